"""Finding, revoking and describing any token idp issued (for RFC 7009 and RFC 7662)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from idp.accounts.cache import UserView
from idp.changes.cache import ViewCache
from idp.oauth.access_tokens import AccessTokens
from idp.oauth.endpoints.records import AccessTokenRecord, RefreshTokenRecord, epoch
from idp.refresh.types import RefreshStore
from idp.revocations.service import Revocations


class TokenRegistry:
    def __init__(
        self,
        access_tokens: AccessTokens,
        users: ViewCache[UserView],
        revocations: Revocations,
        refresh: RefreshStore,
    ) -> None:
        self.access_tokens = access_tokens
        self.users = users
        self.revocations = revocations
        self.refresh = refresh

    def find(self, value: Any, hint: str | None) -> AccessTokenRecord | RefreshTokenRecord | None:
        if not isinstance(value, str) or not value:
            return None
        order = (
            ("refresh_token", "access_token")
            if hint == "refresh_token"
            else ("access_token", "refresh_token")
        )
        for kind in order:
            record = self._access(value) if kind == "access_token" else self._refresh(value)
            if record is not None:
                return record
        return None

    def _access(self, value: str) -> AccessTokenRecord | None:
        claims = self.access_tokens.decode(value)
        if claims is None:
            return None
        active = not self.access_tokens.deny.denies(claims)
        if active and claims.get("sub") != claims.get("client_id"):
            # Disabling a user revokes their tokens (a "user" entry of the deny list); the
            # in-process user also says so if the row was changed some other way.
            user = self.users.get(str(claims.get("sub")))
            active = user is not None and not user.disabled
        return AccessTokenRecord(claims, active)

    def _refresh(self, value: str) -> RefreshTokenRecord | None:
        state = self.refresh.lookup(value)
        return None if state is None else RefreshTokenRecord(value, state)

    def revoke(self, record: AccessTokenRecord | RefreshTokenRecord, client_id: str) -> None:
        if isinstance(record, AccessTokenRecord):
            exp = dt.datetime.fromtimestamp(int(record.claims["exp"]), dt.UTC)
            self.revocations.revoke("jti", str(record.claims["jti"]), exp)
            return
        revoked = self.refresh.revoke_family(
            record.state.family.id, f"revoked by client {client_id}"
        )
        self.revocations.revoke_all("jti", revoked.access_tokens)

    def introspect(self, record: AccessTokenRecord | RefreshTokenRecord) -> dict[str, Any]:
        iss = self.access_tokens.issuer
        if isinstance(record, AccessTokenRecord):
            c = record.claims
            # RFC 7662 §2.2: token_type is an RFC 6749 §5.1 type; which kind of token it
            # is goes in token_use (as in ORY Hydra).
            out = {
                "active": True,
                "token_type": "Bearer",
                "token_use": "access_token",
                "iss": iss,
                "scope": c.get("scope"),
                "client_id": c.get("client_id"),
                "sub": c.get("sub"),
                "aud": c.get("aud"),
                "exp": c.get("exp"),
                "iat": c.get("iat"),
                "nbf": c.get("nbf"),
                "jti": c.get("jti"),
            }
            if c.get("sid"):
                out["sid"] = c["sid"]
            if isinstance(c.get("cnf"), dict):
                # RFC 9449 §6.2: the key a DPoP-bound token is bound to.
                out["cnf"] = c["cnf"]
                out["token_type"] = "DPoP"  # noqa: S105 - a token type, not a secret
            if c.get("preferred_username"):
                out["username"] = c["preferred_username"]
            return out
        state = record.state
        user = self.users.get(state.family.user_id)
        username = user.username if user else None
        out = {
            "active": True,
            "token_use": "refresh_token",
            "iss": iss,
            "scope": state.scope,
            "client_id": state.family.client_id,
            "sub": state.family.user_id,
            "username": username,
            "aud": state.family.client_id,
            "exp": epoch(state.expires_at),
            "iat": epoch(state.issued_at),
            "nbf": epoch(state.issued_at),
        }
        if state.family.session_id:
            out["sid"] = state.family.session_id
        if state.family.dpop_jkt:
            out["cnf"] = {"jkt": state.family.dpop_jkt}
        return out
