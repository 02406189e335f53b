"""Token revocation (RFC 7009 §2).

Client-authenticated; a client revokes only its own tokens. Revoking a refresh token
revokes its whole family (SPEC §6); revoking an access token puts its ``jti`` on the
deny list until it expires. Unknown tokens answer 200 (§2.2).
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc7009 import RevocationEndpoint as _RevocationEndpoint

from idp.oauth.endpoints.records import AccessTokenRecord, RefreshTokenRecord


class RevocationEndpoint(_RevocationEndpoint):
    CLIENT_AUTH_METHODS = ["private_key_jwt", "client_secret_basic", "client_secret_post", "none"]

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        return self.server.token_registry.find(token_string, token_type_hint)

    def revoke_token(self, token: AccessTokenRecord | RefreshTokenRecord, request: Any) -> None:
        self.server.token_registry.revoke(token, request.client.get_client_id())
