"""``id_token_hint``: an ID token idp signed, sent back as a hint about the user, at
/authorize (OIDC Core §3.1.2.1) and /logout (RP-Initiated Logout 1.0 §2)."""

from __future__ import annotations

from typing import Any

from joserfc.errors import JoseError

from idp.ext import services

MAX_HINT = 8000


def verify_id_token_hint(hint: str) -> dict[str, Any] | None:
    """Claims of an ID token idp signed (expired ones are accepted, as both specs
    allow); None for anything else."""
    if not hint or len(hint) > MAX_HINT:
        return None
    svc = services()
    try:
        token = svc.keys.verify(hint)
    except (JoseError, ValueError, TypeError, KeyError):
        return None
    claims = dict(token.claims)
    # Only an ID token: not an access token (at+jwt) nor a logout token (logout+jwt,
    # with its "events"), which the same keys sign.
    if (
        claims.get("iss") != svc.config.server.issuer
        or token.header.get("typ", "JWT") != "JWT"
        or "events" in claims
        or not isinstance(claims.get("sub"), str)
    ):
        return None
    return claims
