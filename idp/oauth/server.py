"""Wires authlib's AuthorizationServer to idp's storage, grants and token issuer."""

from __future__ import annotations

from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Payload, FlaskOAuth2Request
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc9207 import IssuerParameter
from flask import Flask, request

from idp.changes.cache import ViewCache
from idp.clients.cache import ClientView
from idp.clients.services import CLIENT_ID_RE
from idp.clock import Clock
from idp.config import Config
from idp.db import Database
from idp.oauth.code_store import SqlCodeStore
from idp.oauth.endpoints.introspection import IntrospectionEndpoint
from idp.oauth.endpoints.revocation import RevocationEndpoint
from idp.oauth.grants.authorization_code import AuthorizationCodeGrant, OpenIDCodeExtension
from idp.oauth.grants.client_credentials import ClientCredentialsGrant
from idp.oauth.grants.pkce import S256CodeChallenge
from idp.oauth.grants.refresh_token import RefreshTokenGrant
from idp.oauth.registry import TokenRegistry
from idp.oauth.tokens import TokenIssuer
from idp.refresh.types import RefreshStore, Revoked, Use
from idp.revocations.service import Revocations
from idp.sessions.kill import SessionKiller
from idp.sessions.services import remember_client


class Issuer(IssuerParameter):
    """RFC 9207: ``iss`` in every authorization response."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer

    def get_issuer(self) -> str:
        return self.issuer


class IdpOAuth2Request(FlaskOAuth2Request):
    """authlib's request, with its URI made from the issuer: authlib's Flask request asks
    werkzeug for ``request.url`` (an IRI conversion that cost a tenth of a token request
    in issue 8's profile) only to check that the transport is https, which the issuer
    decides for idp (RFC 9700 §2.6; loopback http in development)."""

    def __init__(self, req: Any, issuer: str) -> None:
        OAuth2Request.__init__(self, req.method, issuer + req.path, headers=req.headers)
        self._request = req
        self.payload = FlaskOAuth2Payload(req)


class IdpAuthorizationServer(AuthorizationServer):
    """authlib's server, asking idp's own parts (each built once, at startup) for
    clients, codes, refresh tokens and signatures."""

    def __init__(
        self,
        config: Config,
        db: Database,
        clock: Clock,
        clients: ViewCache[ClientView],
        issuer: TokenIssuer,
        refresh_store: RefreshStore,
        token_registry: TokenRegistry,
        codes: SqlCodeStore,
        revocations: Revocations,
        killer: SessionKiller,
    ) -> None:
        super().__init__()
        self.config = config
        self.db = db
        self.clock = clock
        self.clients = clients
        self.issuer = issuer
        self.refresh_store = refresh_store
        self.token_registry = token_registry
        self.codes = codes
        self.revocations = revocations
        self.killer = killer

    def create_oauth2_request(self, req: Any) -> IdpOAuth2Request:
        return IdpOAuth2Request(request, self.config.server.issuer.rstrip("/"))

    def query_client(self, client_id: str) -> ClientView | None:
        if not isinstance(client_id, str) or not CLIENT_ID_RE.fullmatch(client_id):
            return None
        client = self.clients.get(client_id)
        return None if client is None or client.disabled else client

    def current_use(self) -> Use:
        from idp.web import client_ip

        return Use(at=self.clock.now(), ip=client_ip(), user_agent=request.user_agent.string or "")

    def wants_refresh_token(self, client: ClientView, scope: str) -> bool:
        """Policy: refresh tokens for clients allowed the refresh_token grant that asked
        for (and were granted) offline_access; never for client_credentials."""
        return client.check_grant_type("refresh_token") and "offline_access" in scope.split()

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        issued = getattr(request, "issued_access", None)
        code = getattr(request, "authorization_code", None)
        if code is not None and issued is not None:
            self.codes.record_issued(code, issued.jti, issued.expires_at)
            if code.session_id:
                with self.db.transaction() as s:
                    remember_client(s, self.clock, code.session_id, code.client_id)

    def after_reuse(self, revoked: Revoked) -> None:
        """Refresh-token reuse: deny the family's access tokens, kill its session."""
        self.revocations.revoke_all("jti", revoked.access_tokens)
        if self.config.tokens.reuse_kills_session:
            for sid in revoked.session_ids:
                self.killer.kill_session(
                    sid, actor="idp", action="session.kill", reason="refresh token reuse detected"
                )

    def install(self, app: Flask) -> None:
        """Binds the server to ``app`` with idp's grants, endpoints and extensions."""
        self.init_app(app)
        self.register_grant(
            AuthorizationCodeGrant,
            [
                S256CodeChallenge(required_for_all=self.config.oauth.pkce_required),
                OpenIDCodeExtension(self.issuer),
            ],
        )
        self.register_grant(RefreshTokenGrant)
        self.register_grant(ClientCredentialsGrant)
        self.register_endpoint(RevocationEndpoint)
        self.register_endpoint(IntrospectionEndpoint)
        self.register_extension(Issuer(self.config.server.issuer))
