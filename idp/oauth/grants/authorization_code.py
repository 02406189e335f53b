"""Authorization code grant (RFC 6749 §4.1) with OIDC (Core §3.1) and PKCE.

Codes are single use: consumption is an atomic conditional update, and a replayed
code revokes the access token issued from it (RFC 6749 §4.1.2, RFC 9700 §4.2.4).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

from authlib.oauth2.rfc6749 import InvalidGrantError, grants
from authlib.oidc.core import OpenIDCode
from flask import g

from idp.accounts.models import User
from idp.clients.models import Client
from idp.oauth.grants.proof import proof_for, token_type
from idp.oauth.models import AuthorizationCode
from idp.oauth.tokens import TokenIssuer


class CodeStore(Protocol):
    def save(self, code: str, **fields: Any) -> None:
        """Stores the code's hash and its bindings (client, user, session, redirect URI,
        scope, nonce, PKCE challenge, auth_time) with an expiry."""
        ...

    def consume(self, code: str, client_id: str) -> AuthorizationCode | None:
        """Atomically marks the code used and returns it; exactly one of any number of
        concurrent callers gets it. Returns None for an unknown, expired, foreign or already
        used code; an already used one also has what it issued revoked."""
        ...

    def record_issued(self, code: AuthorizationCode, jti: str, expires_at: dt.datetime) -> None:
        """Remembers the access token issued from the code (and the client among its
        session's clients), revoking it at once if the code was replayed in the meantime."""
        ...

    def user_for(self, code: AuthorizationCode) -> User | None:
        """The code's user, or None when the user is disabled or its session has ended."""
        ...


class RefreshStarter(Protocol):
    def start(
        self,
        *,
        client_id: str,
        user_id: str,
        session_id: str | None,
        code_id: str | None,
        scope: str,
        auth_time: dt.datetime,
        nonce: str | None,
        use: Any,
        access_jti: str,
        access_expires_at: dt.datetime,
        dpop_jkt: str | None = None,
        amr: list[str] | None = None,
        acr: str | None = None,
    ) -> str:
        """Opens a refresh-token family for this login at this client and returns its first
        token (whose SHA-256 alone is stored)."""
        ...


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = [
        "private_key_jwt",
        "client_secret_basic",
        "client_secret_post",
        "none",
    ]

    def __init__(self, request: Any, server: Any) -> None:
        super().__init__(request, server)
        self.codes: CodeStore = server.codes
        self.issuer: TokenIssuer = server.issuer
        self.refresh: RefreshStarter = server.refresh_store

    def save_authorization_code(self, code: str, request: Any) -> None:
        browser_session = g.idp_session
        data = request.payload.data
        self.codes.save(
            code,
            client_id=request.client.client_id,
            user_id=request.user.id,
            session_id=browser_session.id,
            redirect_uri=request.payload.redirect_uri or "",
            scope=request.scope or "",
            nonce=data.get("nonce"),
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
            auth_time=browser_session.auth_time,
            amr=list(browser_session.amr or []),
            acr=browser_session.acr,
            dpop_jkt=data.get("dpop_jkt"),
        )

    def query_authorization_code(self, code: str, client: Client) -> AuthorizationCode | None:
        return self.codes.consume(code, client.client_id)

    def validate_token_request(self) -> None:
        super().validate_token_request()
        proof = proof_for(self.request)
        code: AuthorizationCode = self.request.authorization_code
        # RFC 9449 §10: a code bound to a key at /authorize needs a proof of that key.
        if code.dpop_jkt is not None and (proof is None or proof.jkt != code.dpop_jkt):
            raise InvalidGrantError("The code is bound to another DPoP key (dpop_jkt).")

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        # Used codes are kept (marked used) until they expire, to recognise replays.
        pass

    def authenticate_user(self, authorization_code: AuthorizationCode) -> User | None:
        return self.codes.user_for(authorization_code)

    def generate_token(
        self,
        user: Any = None,
        scope: Any = None,
        grant_type: Any = None,
        expires_in: Any = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        code: AuthorizationCode = self.request.authorization_code
        client: Client = self.request.client
        proof = proof_for(self.request)
        jkt = proof.jkt if proof is not None else None
        issued = self.issuer.access_token(
            client,
            user,
            code.scope,
            grant_type=self.GRANT_TYPE,
            sid=code.session_id,
            auth_time=code.auth_time,
            jkt=jkt,
        )
        self.request.issued_access = issued
        token = {
            "token_type": token_type(proof),
            "access_token": issued.token,
            "expires_in": issued.expires_in,
            "scope": code.scope,
        }
        if include_refresh_token and self.server.wants_refresh_token(client, code.scope):
            token["refresh_token"] = self.refresh.start(
                client_id=client.client_id,
                user_id=code.user_id,
                session_id=code.session_id,
                code_id=code.id,
                scope=code.scope,
                auth_time=code.auth_time,
                nonce=code.nonce,
                use=self.server.current_use(self.request),
                access_jti=issued.jti,
                access_expires_at=issued.expires_at,
                # RFC 9449 §5: a public client's chain is bound to its key; a confidential
                # client's refresh tokens are already bound by its authentication.
                dpop_jkt=jkt if client.is_public else None,
                # OIDC Core §12.2: a refreshed ID token describes this same login.
                amr=code.get_amr(),
                acr=code.acr,
            )
        return token


class OpenIDCodeExtension(OpenIDCode):
    """ID tokens for the code flow, signed by idp's keys (OIDC Core §3.1.3.3)."""

    def __init__(self, issuer: TokenIssuer) -> None:
        super().__init__(require_nonce=False)
        self.issuer = issuer

    def exists_nonce(self, nonce: str, request: Any) -> bool:
        return False

    def encode_id_token(self, token: dict[str, Any], request: Any) -> str:
        code: AuthorizationCode = request.authorization_code
        return self.issuer.id_token(
            request.client,
            request.user,
            token["scope"],
            access_token=token.get("access_token"),
            nonce=code.nonce,
            auth_time=code.auth_time,
            sid=code.session_id,
            amr=code.get_amr(),
            acr=code.acr,
        )
