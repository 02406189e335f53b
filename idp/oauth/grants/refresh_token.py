"""Refresh token grant (RFC 6749 §6) with rotation and reuse detection (RFC 9700 §4.14).

Every refresh token is single use: presenting it returns a child. Presenting a spent
one is reuse (theft) and revokes the whole family; within the configured grace
interval, the parent of the newest token returns that same child again, so a client
that lost a response does not fork or kill its chain.
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import (
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    UnauthorizedClientError,
)
from authlib.oauth2.rfc6749.grants import BaseGrant, TokenEndpointMixin

from idp.clients.cache import ClientView
from idp.oauth.grants.proof import proof_for, token_type
from idp.oauth.tokens import TokenIssuer
from idp.refresh.types import InvalidRefresh, RefreshStore, ReuseDetected, ScopeWidened


class RefreshTokenGrant(BaseGrant, TokenEndpointMixin):
    GRANT_TYPE = "refresh_token"
    TOKEN_ENDPOINT_AUTH_METHODS = [
        "private_key_jwt",
        "client_secret_basic",
        "client_secret_post",
        "none",
    ]

    def __init__(self, request: Any, server: Any) -> None:
        super().__init__(request, server)
        self.store: RefreshStore = server.refresh_store
        self.issuer: TokenIssuer = server.issuer

    def validate_token_request(self) -> None:
        client = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClientError("The client may not use refresh tokens.")
        if not self.request.form.get("refresh_token"):
            raise InvalidRequestError("Missing 'refresh_token'.")
        if len(self.request.payload.datalist.get("refresh_token", [])) > 1:
            raise InvalidRequestError("Repeated 'refresh_token'.")
        self.request.client = client
        proof_for(self.request)

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        client: ClientView = self.request.client
        # Everything the answer needs but the rotation itself comes first: the access
        # token's jti and lifetime, and the signing keys. After the commit nothing can
        # fail for want of the database, so a rotation that committed is always answered.
        planned = self.issuer.plan_access_token(self.GRANT_TYPE)
        self.issuer.load_keys(client)
        proof = proof_for(self.request)
        jkt = proof.jkt if proof is not None else None
        try:
            rotation = self.store.rotate(
                self.request.form["refresh_token"],
                client.client_id,
                self.request.payload.scope,
                self.server.current_use(self.request),
                planned.jti,
                planned.expires_at,
                self.server.reuse_in,
                dpop_jkt=jkt,
            )
        except ReuseDetected as err:
            self.server.after_reuse(err)
            raise InvalidGrantError(str(err)) from None
        except ScopeWidened as err:
            raise InvalidScopeError(str(err)) from None
        except InvalidRefresh as err:
            raise InvalidGrantError(str(err)) from None
        family, holder = rotation.family, rotation.holder
        issued = self.issuer.access_token(
            client,
            holder,
            rotation.scope,
            grant_type=self.GRANT_TYPE,
            sid=family.session_id,
            auth_time=family.auth_time,
            planned=planned,
            jkt=jkt,
        )
        token = {
            "token_type": token_type(proof),
            "access_token": issued.token,
            "expires_in": issued.expires_in,
            "scope": rotation.scope,
            "refresh_token": rotation.refresh_token,
        }
        if "openid" in rotation.scope.split():
            token["id_token"] = self.issuer.id_token(
                client,
                holder,
                rotation.scope,
                access_token=issued.token,
                nonce=None,
                auth_time=family.auth_time,
                sid=family.session_id,
                # OIDC Core §12.2: the same authentication as the first ID token (none
                # for families opened before idp recorded it).
                amr=list(family.amr) if family.amr is not None else None,
                acr=family.acr,
            )
        self.save_token(token)  # as authlib's own grants do: the server counts the issue
        return 200, token, self.TOKEN_RESPONSE_HEADER


__all__ = ["RefreshTokenGrant"]
