"""Finding, revoking and describing any token idp issued (for RFC 7009 and RFC 7662)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from idp.accounts.models import User
from idp.ext import Services
from idp.oauth import access_tokens
from idp.oauth.endpoints.records import AccessTokenRecord, RefreshTokenRecord, epoch
from idp.refresh.types import RefreshStore, Revoked


class TokenRegistry:
    def __init__(self, svc: Services, refresh: RefreshStore) -> None:
        self.svc = svc
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
        claims = access_tokens.decode(self.svc, value)
        if claims is None:
            return None
        active = not self.svc.deny.denies(claims)
        if active and claims.get("sub") != claims.get("client_id"):
            # Disabling a user revokes their tokens (a "user" entry of the deny list); the
            # in-process user also says so if the row was changed some other way.
            user = self.svc.users.get(str(claims.get("sub")))
            active = user is not None and not user.disabled
        return AccessTokenRecord(claims, active)

    def _refresh(self, value: str) -> RefreshTokenRecord | None:
        state = self.refresh.lookup(value)
        return None if state is None else RefreshTokenRecord(value, state)

    def revoke(self, record: AccessTokenRecord | RefreshTokenRecord, client_id: str) -> None:
        if isinstance(record, AccessTokenRecord):
            exp = dt.datetime.fromtimestamp(int(record.claims["exp"]), dt.UTC)
            self.svc.revocations.revoke("jti", str(record.claims["jti"]), exp)
            return
        revoked = self.refresh.revoke_family(
            record.state.family.id, f"revoked by client {client_id}"
        )
        self.deny(revoked)

    def deny(self, revoked: Revoked) -> None:
        """Puts the access tokens of revoked families on the deny list."""
        for jti, expires_at in revoked.access_tokens:
            self.svc.revocations.revoke("jti", jti, expires_at)

    def introspect(self, record: AccessTokenRecord | RefreshTokenRecord) -> dict[str, Any]:
        iss = self.svc.config.server.issuer
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
            if c.get("preferred_username"):
                out["username"] = c["preferred_username"]
            return out
        state = record.state
        with self.svc.db.read() as s:
            user = s.get(User, state.family.user_id)
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
        return out
