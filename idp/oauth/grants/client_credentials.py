"""Client credentials grant (RFC 6749 §4.4): tokens for a client acting for itself."""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import InvalidScopeError, grants

from idp.clients.models import ADMIN_SCOPE, Client
from idp.clients.services import SCOPE_TOKEN_RE
from idp.oauth.grants.proof import proof_for, token_type
from idp.oauth.tokens import TokenIssuer

# Scopes that only make sense with a user behind the token.
USER_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})


def allowed_scopes(client: Client) -> set[str]:
    """What a client may ask for on its own behalf: its scopes less the user ones, and the
    admin API scope only for clients registered as admin clients."""
    allowed = set(client.scope.split()) - USER_SCOPES
    if not client.is_admin_client:
        allowed.discard(ADMIN_SCOPE)
    return allowed


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["private_key_jwt", "client_secret_basic", "client_secret_post"]

    def __init__(self, request: Any, server: Any) -> None:
        super().__init__(request, server)
        self.issuer: TokenIssuer = server.issuer

    def validate_token_request(self) -> None:
        super().validate_token_request()
        client: Client = self.request.client
        requested = (self.request.payload.scope or "").split()
        if not all(SCOPE_TOKEN_RE.fullmatch(s) for s in requested):
            raise InvalidScopeError("The scope is malformed (RFC 6749 section 3.3).")
        allowed = allowed_scopes(client)
        unknown = [s for s in requested if s not in allowed]
        if unknown:
            raise InvalidScopeError(f"Scope not allowed for this client: {' '.join(unknown)}")
        proof_for(self.request)

    def generate_token(
        self,
        user: Any = None,
        scope: Any = None,
        grant_type: Any = None,
        expires_in: Any = None,
        include_refresh_token: bool = False,
    ) -> dict[str, Any]:
        client: Client = self.request.client
        requested = self.request.payload.scope
        granted = requested or " ".join(
            s for s in client.scope.split() if s in allowed_scopes(client)
        )
        proof = proof_for(self.request)
        issued = self.issuer.access_token(
            client,
            None,
            granted,
            grant_type=self.GRANT_TYPE,
            jkt=proof.jkt if proof else None,
        )
        self.request.issued_access = issued
        # Never a refresh token here (RFC 6749 §4.4.3).
        return {
            "token_type": token_type(proof),
            "access_token": issued.token,
            "expires_in": issued.expires_in,
            "scope": granted,
        }
