"""Checking idp's own access tokens (RFC 9068 §4): signature, type, issuer, time, kills."""

from __future__ import annotations

from typing import Any

from joserfc.errors import JoseError

from idp.clock import epoch
from idp.ext import Services

MAX_TOKEN_LENGTH = 8000
LEEWAY = 0


def decode(svc: Services, token: str) -> dict[str, Any] | None:
    """The claims of a well-signed, current idp access token, else None. Kills are not
    consulted here; see :func:`active_claims`."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    try:
        decoded = svc.keys.verify(token)
    except (JoseError, ValueError, TypeError, KeyError):
        return None
    # An ID token or logout token must never pass as an access token (typ confusion).
    if decoded.header.get("typ") != "at+jwt" or decoded.header.get("crit"):
        return None
    claims = dict(decoded.claims)
    now = epoch(svc.clock.now())
    try:
        if claims.get("iss") != svc.config.server.issuer:
            return None
        if int(claims["exp"]) <= now - LEEWAY or int(claims.get("nbf", 0)) > now + LEEWAY:
            return None
    except (KeyError, TypeError, ValueError):
        return None
    return claims


def active_claims(svc: Services, token: str) -> dict[str, Any] | None:
    """Like :func:`decode`, and None once the token has been revoked: its jti, its session,
    or every token of its client or user (idp.revocations.denylist, in memory)."""
    claims = decode(svc, token)
    if claims is None or svc.deny.denies(claims):
        return None
    return claims
