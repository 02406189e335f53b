"""Wires authlib's AuthorizationServer to idp's storage, grants and token issuer."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import AuthorizationServer, OAuth2Payload, OAuth2Request
from authlib.oauth2.rfc9207 import IssuerParameter
from flask import g
from flask import request as flask_request
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from idp import metrics
from idp.changes.cache import ViewCache
from idp.clients.cache import ClientView
from idp.clients.services import CLIENT_ID_RE
from idp.clock import Clock
from idp.config import Config
from idp.db import Database
from idp.http import ProtocolRequest, ProtocolResponse, error, json_response
from idp.oauth.client_keys import ClientKeys, PrivateKeyJWT
from idp.oauth.code_store import SqlCodeStore
from idp.oauth.endpoints.introspection import IntrospectionEndpoint
from idp.oauth.endpoints.revocation import RevocationEndpoint
from idp.oauth.grants.authorization_code import AuthorizationCodeGrant, OpenIDCodeExtension
from idp.oauth.grants.client_credentials import ClientCredentialsGrant
from idp.oauth.grants.pkce import S256CodeChallenge
from idp.oauth.grants.refresh_token import RefreshTokenGrant
from idp.oauth.jar import RequestObjectError, unpack
from idp.oauth.par import CLIENT_AUTH_FIELDS, PushedRequests
from idp.oauth.registry import TokenRegistry
from idp.oauth.tokens import TokenIssuer
from idp.refresh.types import RefreshStore, ReuseDetected, Revoked, Use
from idp.revocations.service import Revocations
from idp.sessions.kill import Killed, SessionKiller
from idp.state.store import StateStore


class Issuer(IssuerParameter):
    """RFC 9207: ``iss`` in every authorization response."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer

    def get_issuer(self) -> str:
        return self.issuer


class Payload(OAuth2Payload):
    def __init__(self, values: Any) -> None:
        self._values = values
        self._lists: dict[str, list[str]] | None = None

    @property
    def data(self) -> Any:
        return self._values

    @property
    def datalist(self) -> dict[str, list[str]]:
        if self._lists is None:
            lists: dict[str, list[str]] = defaultdict(list)
            for key, values in self._values.lists():
                lists[key].extend(values)
            self._lists = lists
        return self._lists


class IdpOAuth2Request(OAuth2Request):
    """authlib's request over idp's ProtocolRequest.

    authlib's constructor checks that the request's URI is https (or loopback http),
    parsing it each time. For idp that is the issuer's scheme, which idp.config already
    refused at startup unless it is https or loopback http (RFC 9700 §2.6), so the
    check is not repeated per request; the fields are set as that constructor sets them.
    """

    def __init__(self, req: ProtocolRequest, issuer: str, values: Any) -> None:
        self.method = req.method
        self.uri = issuer + req.path
        self.headers = req.headers
        self._body = None
        self.client = None
        self.auth_method = None
        self.user = None
        self.authorization_code = None
        self.refresh_token = None
        self.credential = None
        self._scope = None
        self.protocol = req
        self.payload = Payload(values)

    @property
    def args(self) -> Any:
        return self.protocol.args

    @property
    def form(self) -> Any:
        return self.protocol.form


REUSE_REASON = "refresh token reuse detected"
PAR_AUTH_METHODS = ["private_key_jwt", "client_secret_basic", "client_secret_post", "none"]


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
        client_keys: ClientKeys,
        state: StateStore,
    ) -> None:
        super().__init__()
        self.client_keys = client_keys
        self.state = state
        self.pushed = PushedRequests(db, clock)
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

    def create_oauth2_request(self, request: Any) -> IdpOAuth2Request:
        """Token, introspection and revocation requests come as a ProtocolRequest and are
        read from their body only (RFC 6749 §3.2); the authorization endpoint, a Flask
        view, passes None and is read from its query and form."""
        issuer = self.config.server.issuer.rstrip("/")
        if isinstance(request, ProtocolRequest):
            return IdpOAuth2Request(request, issuer, request.form)
        req = ProtocolRequest.from_flask(flask_request)
        # A pushed request (RFC 9126) or a request object (RFC 9101) replaces the
        # parameters the browser brought (idp.oauth.views puts them in g).
        values = g.get("authorization_params")
        return IdpOAuth2Request(req, issuer, flask_request.values if values is None else values)

    def push_authorization_request(
        self, req: ProtocolRequest, dpop_jkt: str | None
    ) -> ProtocolResponse:
        """RFC 9126 §2: authenticates the client, checks the request as /authorize
        would, keeps it and answers 201 with its request_uri."""
        oauth_request = self.create_oauth2_request(req)
        try:
            client = self.authenticate_client(oauth_request, PAR_AUTH_METHODS, endpoint="par")
        except OAuth2Error as err:
            resp: ProtocolResponse = self.handle_error_response(oauth_request, err)
            return resp
        params: dict[str, str] = {}
        for name, values in req.form.lists():
            if name in CLIENT_AUTH_FIELDS:
                continue
            if len(values) > 1:
                return error(400, "invalid_request", f"Parameter {name} is repeated.")
            params[name] = values[0]
        if "request_uri" in params:
            return error(400, "invalid_request", "A pushed request cannot hold request_uri.")
        if "request" in params:  # RFC 9126 §3: a signed request object, pushed
            try:
                params = unpack(
                    self.client_keys, client, self.config.server.issuer, params["request"]
                )
            except RequestObjectError as exc:
                return error(400, "invalid_request_object", str(exc))
        if params.setdefault("client_id", client.client_id) != client.client_id:
            return error(400, "invalid_request", "client_id is not the authenticated client.")
        # RFC 9449 §10.1: a proof at /par binds the code like dpop_jkt does.
        if dpop_jkt is not None and params.setdefault("dpop_jkt", dpop_jkt) != dpop_jkt:
            return error(400, "invalid_request", "dpop_jkt is not the proof's key.")
        issuer = self.config.server.issuer.rstrip("/")
        check = IdpOAuth2Request(req, issuer, MultiDict(params))
        try:
            self.get_authorization_grant(check).validate_authorization_request()
        except OAuth2Error as err:
            return error(400, err.error, err.description or "The request is not valid.")
        request_uri, expires_in = self.pushed.push(client.client_id, params)
        return json_response(201, {"request_uri": request_uri, "expires_in": expires_in})

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """authlib's hook for framework signals; idp listens to none."""

    def handle_response(
        self, status: int, body: Any, headers: list[tuple[str, str]]
    ) -> ProtocolResponse:
        if isinstance(body, dict):
            body = json.dumps(body)  # as authlib's Flask integration wrote it
        return ProtocolResponse(status, str(body or "").encode(), list(headers))

    def query_client(self, client_id: str) -> ClientView | None:
        if not isinstance(client_id, str) or not CLIENT_ID_RE.fullmatch(client_id):
            return None
        client = self.clients.get(client_id)
        return None if client is None or client.disabled else client

    def current_use(self, request: IdpOAuth2Request) -> Use:
        req = request.protocol
        return Use(at=self.clock.now(), ip=req.remote_addr, user_agent=req.user_agent)

    def wants_refresh_token(self, client: ClientView, scope: str) -> bool:
        """Policy: refresh tokens for clients allowed the refresh_token grant that asked
        for (and were granted) offline_access; never for client_credentials."""
        return client.check_grant_type("refresh_token") and "offline_access" in scope.split()

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        """authlib calls this once for every token response a grant issues."""
        metrics.token_issued(request.payload.grant_type, request.client.client_id)
        issued = getattr(request, "issued_access", None)
        code = getattr(request, "authorization_code", None)
        if code is not None and issued is not None:
            self.codes.record_issued(code, issued.jti, issued.expires_at)

    def reuse_in(self, s: Session, revoked: Revoked) -> bool:
        """Refresh-token reuse, inside the transaction that revokes the family: deny the
        family's access tokens, kill its sessions (``reuse_kills_session``). True when
        back-channel logouts were queued."""
        for jti, expires_at in revoked.access_tokens:
            self.revocations.record(s, "jti", jti, expires_at)
        owed = False
        if self.config.tokens.reuse_kills_session:
            for sid in revoked.session_ids:
                result = self.killer.kill_in(
                    s,
                    sid,
                    actor="idp",
                    action="session.kill",
                    reason="refresh token reuse detected",
                )
                owed = owed or (isinstance(result, Killed) and result.logouts_owed)
        return owed

    def after_reuse(self, err: ReuseDetected) -> None:
        """After the reuse's commit: deliver the back-channel logouts it queued."""
        if err.logouts_owed:
            self.killer.notifier.kick()

    def install(self) -> None:
        """Registers idp's grants, endpoints and extensions."""
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
        self.register_client_auth_method(
            PrivateKeyJWT.CLIENT_AUTH_METHOD,
            PrivateKeyJWT(self.config.server.issuer, self.client_keys, self.state),
        )
