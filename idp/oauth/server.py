"""Wires authlib's AuthorizationServer to idp's storage, grants and token issuer."""

from __future__ import annotations

from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc9207 import IssuerParameter
from flask import Flask

from idp.clients.models import Client
from idp.ext import Services
from idp.oauth.code_store import SqlCodeStore
from idp.oauth.grants.authorization_code import AuthorizationCodeGrant, OpenIDCodeExtension
from idp.oauth.grants.client_credentials import ClientCredentialsGrant
from idp.oauth.grants.pkce import S256CodeChallenge
from idp.oauth.tokens import TokenIssuer
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
        self.issuer = TokenIssuer(svc.config.server.issuer, svc.keys, svc.clock, svc.config.tokens)
        self.codes = SqlCodeStore(
            svc.db, svc.clock, svc.state, svc.config.tokens.authorization_code_ttl
        )
        self.refresh_tokens: Any = None

    def query_client(self, client_id: str) -> Client | None:
        if not isinstance(client_id, str) or len(client_id) > 100:
            return None
        with self.svc.db.transaction() as s:
            client = s.get(Client, client_id)
        return None if client is None or client.disabled else client

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        issued = getattr(request, "issued_access", None)
        code = getattr(request, "authorization_code", None)
        if code is not None and issued is not None:
            self.codes.record_issued(code, issued.jti, issued.expires_at)
            if code.session_id:
                with self.svc.db.transaction() as s:
                    remember_client(s, self.svc.clock, code.session_id, code.client_id)


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
    server.register_grant(ClientCredentialsGrant)
    server.register_extension(Issuer(svc.config.server.issuer))
    svc.oauth = server
    return server
