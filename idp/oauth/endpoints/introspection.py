"""Token introspection (RFC 7662 §2).

Requires client authentication. Any confidential client (a resource server) may
introspect access tokens; refresh tokens only by the client they were issued to.
``active`` turns false at once after expiry, revocation, reuse, a session kill or a
disabled user. Garbage answers ``{"active": false}``.
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc7662 import IntrospectionEndpoint as _IntrospectionEndpoint

from idp.oauth.endpoints.records import AccessTokenRecord, RefreshTokenRecord


class IntrospectionEndpoint(_IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = ["private_key_jwt", "client_secret_basic", "client_secret_post"]

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        return self.server.token_registry.find(token_string, token_type_hint)

    def check_permission(self, token: Any, client: Any, request: Any) -> bool:
        if isinstance(token, RefreshTokenRecord):
            return token.check_client(client)
        return not client.is_public

    def introspect_token(self, token: AccessTokenRecord | RefreshTokenRecord) -> dict[str, Any]:
        answer: dict[str, Any] = self.server.token_registry.introspect(token)
        return answer
