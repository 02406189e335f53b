"""Reading idp's tokens with PyJWT, a JOSE library independent of idp's joserfc."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Unpack

import jwt as pyjwt

if TYPE_CHECKING:
    from jwt.types import Options


def header(token: str) -> dict[str, Any]:
    return dict(pyjwt.get_unverified_header(token))


def claims_unverified(token: str) -> dict[str, Any]:
    """The payload, unverified (for tests that need a claim such as ``sid``)."""
    return dict(pyjwt.decode(token, options={"verify_signature": False}))


def verify(
    token: str, jwks: dict[str, Any], audience: str, issuer: str, **options: Unpack[Options]
) -> dict[str, Any]:
    kid = header(token)["kid"]
    jwk = next(k for k in jwks["keys"] if k["kid"] == kid)
    key = pyjwt.PyJWK.from_json(json.dumps(jwk))
    return dict(
        pyjwt.decode(
            token,
            key.key,
            algorithms=[jwk["alg"]],
            audience=audience,
            issuer=issuer,
            options=options,
        )
    )
