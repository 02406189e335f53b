"""Checking idp's own access tokens (RFC 9068 §4): signature, type, issuer, time, kills."""

from __future__ import annotations

from typing import Any

from joserfc.errors import JoseError

from idp.clock import Clock, epoch
from idp.keys.services import KeyService
from idp.revocations.denylist import DenyList

MAX_TOKEN_LENGTH = 8000
LEEWAY = 0


class AccessTokens:
    def __init__(self, keys: KeyService, issuer: str, clock: Clock, deny: DenyList) -> None:
        self.keys = keys
        self.issuer = issuer
        self.clock = clock
        self.deny = deny

    def decode(self, token: str) -> dict[str, Any] | None:
        """The claims of a well-signed, current idp access token, else None. Kills are
        not consulted here; see :meth:`active`."""
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
            return None
        try:
            decoded = self.keys.verify(token)
        except (JoseError, ValueError, TypeError, KeyError):
            return None
        # An ID token or logout token must never pass as an access token (typ confusion).
        if decoded.header.get("typ") != "at+jwt" or decoded.header.get("crit"):
            return None
        claims = dict(decoded.claims)
        now = epoch(self.clock.now())
        try:
            if claims.get("iss") != self.issuer:
                return None
            if int(claims["exp"]) <= now - LEEWAY or int(claims.get("nbf", 0)) > now + LEEWAY:
                return None
        except (KeyError, TypeError, ValueError):
            return None
        return claims

    def active(self, token: str) -> dict[str, Any] | None:
        """Like :meth:`decode`, and None once the token has been revoked: its jti, its
        session, or every token of its client or user (the in-process deny list)."""
        claims = self.decode(token)
        if claims is None or self.deny.denies(claims):
            return None
        return claims
