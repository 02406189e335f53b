"""Client credentials grant (RFC 6749 §4.4): tokens for a client acting for itself."""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import InvalidScopeError, grants

from idp.clients.models import Client
from idp.oauth.tokens import TokenIssuer

# Scopes that only make sense with a user behind the token.
USER_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def __init__(self, request: Any, server: Any) -> None:
        super().__init__(request, server)
        self.issuer: TokenIssuer = server.issuer

    def validate_token_request(self) -> None:
        super().validate_token_request()
        client: Client = self.request.client
        requested = (self.request.payload.scope or "").split()
        allowed = set(client.scope.split()) - USER_SCOPES
        # RFC 6749 §5.2: a scope the client may not have is refused, not silently dropped.
        unknown = [s for s in requested if s not in allowed]
        if unknown:
            raise InvalidScopeError(f"Scope not allowed for this client: {' '.join(unknown)}")

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
        granted = (
            requested
            if requested
            else " ".join(s for s in client.scope.split() if s not in USER_SCOPES)
        )
        issued = self.issuer.access_token(client, None, granted, grant_type=self.GRANT_TYPE)
        self.request.issued_access = issued
        # Never a refresh token here (RFC 6749 §4.4.3).
        return {
            "token_type": "Bearer",
            "access_token": issued.token,
            "expires_in": issued.expires_in,
            "scope": granted,
        }
