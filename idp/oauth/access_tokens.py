"""Checking idp's own access tokens (RFC 9068 §4): signature, type, issuer, time, kills."""

from __future__ import annotations

from typing import Any

from joserfc.errors import JoseError

from idp.changes.models import KEYS
from idp.changes.watch import Generations
from idp.clock import Clock, epoch
from idp.keys.services import KeyService
from idp.revocations.denylist import DenyList

MAX_TOKEN_LENGTH = 8000
LEEWAY = 0


# Tokens whose signature was verified are remembered (resource servers introspect the
# same token many times in its few minutes); past this many the memory starts over.
VERIFIED_MAX = 10_000


class AccessTokens:
    def __init__(
        self,
        keys: KeyService,
        issuer: str,
        clock: Clock,
        deny: DenyList,
        generations: Generations,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.clock = clock
        self.deny = deny
        # token -> its claims, for tokens that passed every check but time; an ES256
        # verification costs more than the rest of an introspection.
        self._verified: dict[str, dict[str, Any]] = {}
        generations.on_change(KEYS, self._forget)

    def _forget(self) -> None:
        self._verified = {}

    def _verify(self, token: str) -> dict[str, Any] | None:
        try:
            decoded = self.keys.verify(token)
        except (JoseError, ValueError, TypeError, KeyError):
            return None
        # An ID token or logout token must never pass as an access token (typ confusion).
        if decoded.header.get("typ") != "at+jwt" or decoded.header.get("crit"):
            return None
        claims = dict(decoded.claims)
        try:
            if claims.get("iss") != self.issuer:
                return None
            int(claims["exp"]), int(claims.get("nbf", 0))  # both numbers, checked per use
        except (KeyError, TypeError, ValueError):
            return None
        verified = self._verified
        if len(verified) >= VERIFIED_MAX:
            verified = self._verified = {}
        verified[token] = claims
        return claims

    def decode(self, token: str) -> dict[str, Any] | None:
        """The claims of a well-signed, current idp access token, else None. Kills are
        not consulted here; see :meth:`active`."""
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
            return None
        self.keys.check()
        claims = self._verified.get(token) or self._verify(token)
        if claims is None:
            return None
        now = epoch(self.clock.now())
        if int(claims["exp"]) <= now - LEEWAY or int(claims.get("nbf", 0)) > now + LEEWAY:
            return None
        return dict(claims)

    def active(self, token: str) -> dict[str, Any] | None:
        """Like :meth:`decode`, and None once the token has been revoked: its jti, its
        session, or every token of its client or user (the in-process deny list)."""
        claims = self.decode(token)
        if claims is None or self.deny.denies(claims):
            return None
        return claims
