"""Wires authlib's AuthorizationServer to idp's storage, grants and token issuer."""

from __future__ import annotations

from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc9207 import IssuerParameter
from flask import Flask, request
from sqlalchemy.orm import Session

from idp.clients.cache import ClientView
from idp.clients.services import CLIENT_ID_RE
from idp.ext import Services
from idp.oauth.code_store import SqlCodeStore
from idp.oauth.endpoints.introspection import IntrospectionEndpoint
from idp.oauth.endpoints.revocation import RevocationEndpoint
from idp.oauth.grants.authorization_code import AuthorizationCodeGrant, OpenIDCodeExtension
from idp.oauth.grants.client_credentials import ClientCredentialsGrant
from idp.oauth.grants.pkce import S256CodeChallenge
from idp.oauth.grants.refresh_token import RefreshTokenGrant
from idp.oauth.registry import TokenRegistry
from idp.oauth.tokens import TokenIssuer
from idp.refresh.store import SqlRefreshStore
from idp.refresh.types import Revoked, Use
from idp.sessions.kill import kill_session
from idp.sessions.models import BrowserSession
from idp.sessions.services import remember_client


class Issuer(IssuerParameter):
    """RFC 9207: ``iss`` in every authorization response."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer

    def get_issuer(self) -> str:
        return self.issuer


class IdpAuthorizationServer(AuthorizationServer):
    def __init__(self, svc: Services) -> None:
        super().__init__()
        self.svc = svc
        t = svc.config.tokens
        self.issuer = TokenIssuer(svc.config.server.issuer, svc.keys, svc.clock, t)
        self.refresh_store = SqlRefreshStore(
            svc.db,
            svc.clock,
            t.refresh_token_idle_ttl,
            t.refresh_token_absolute_ttl,
            t.refresh_reuse_grace_seconds,
        )
        self.token_registry = TokenRegistry(svc, self.refresh_store)
        self.codes = SqlCodeStore(
            svc.db,
            svc.clock,
            svc.state,
            svc.revocations,
            t.authorization_code_ttl,
            revoke_family=self.revoke_code_family,
        )

    def query_client(self, client_id: str) -> ClientView | None:
        if not isinstance(client_id, str) or not CLIENT_ID_RE.fullmatch(client_id):
            return None
        client = self.svc.clients.get(client_id)
        return None if client is None or client.disabled else client

    def current_use(self) -> Use:
        from idp.web import client_ip

        return Use(
            at=self.svc.clock.now(), ip=client_ip(), user_agent=request.user_agent.string or ""
        )

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
                with self.svc.db.transaction() as s:
                    remember_client(s, self.svc.clock, code.session_id, code.client_id)

    # --- revocation glue ---------------------------------------------------------------
    def revoke_code_family(self, code_id: str, reason: str) -> None:
        revoked = self.refresh_store.revoke_for_code(code_id, reason)
        self.token_registry.deny(revoked)

    def after_reuse(self, revoked: Revoked) -> None:
        """Refresh-token reuse: deny the family's access tokens, kill its session."""
        self.token_registry.deny(revoked)
        if self.svc.config.tokens.reuse_kills_session:
            for sid in revoked.session_ids:
                kill_session(
                    self.svc,
                    sid,
                    actor="idp",
                    action="session.kill",
                    reason="refresh token reuse detected",
                )

    def revoke_session_families(self, db: Session, session: BrowserSession, reason: str) -> None:
        # Kill hook: the families' access tokens carry the session's sid, which the kill
        # has already put on the deny list.
        self.refresh_store.revoke_for_session(db, session.id, reason)


def init_app(app: Flask, svc: Services) -> IdpAuthorizationServer:
    server = IdpAuthorizationServer(svc)
    server.init_app(app)
    server.register_grant(
        AuthorizationCodeGrant,
        [
            S256CodeChallenge(required_for_all=svc.config.oauth.pkce_required),
            OpenIDCodeExtension(server.issuer),
        ],
    )
    server.register_grant(RefreshTokenGrant)
    server.register_grant(ClientCredentialsGrant)
    server.register_endpoint(RevocationEndpoint)
    server.register_endpoint(IntrospectionEndpoint)
    server.register_extension(Issuer(svc.config.server.issuer))
    svc.kill_hooks.append(server.revoke_session_families)
    svc.oauth = server
    return server
