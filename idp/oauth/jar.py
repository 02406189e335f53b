"""Signed authorization requests (JAR, RFC 9101; OIDC Core §6.1): the ``request``
parameter, a JWT the client signs with one of its registered keys, at /authorize or
inside a pushed request (RFC 9126 §3).

Only signed objects are taken (never ``alg: none``, never an HMAC), from clients that
registered keys; ``iss`` is the client, ``aud`` the issuer, and when present ``exp`` and
``nbf`` hold. The request's parameters are the object's alone (RFC 9101 §6.3): what the
browser adds beside it is ignored, except ``client_id``, which must match. A request
object that fails is never answered by a redirect, since its redirect URI is not known
to be the client's.
"""

from __future__ import annotations

import time
from typing import Any

from joserfc.errors import JoseError

from idp.oauth.client_keys import ClientKeyError, ClientKeys, verify_client_jwt

MAX_OBJECT = 16_000
MAX_LIFETIME = 3600  # an exp further ahead than this is refused (FAPI 2.0 uses 60 min)
SKEW = 60
ENVELOPE = frozenset({"iss", "aud", "exp", "nbf", "iat", "jti"})


class RequestObjectError(Exception):
    """``invalid_request_object`` (RFC 9101 §7); ``str()`` says why."""


def unpack(keys: ClientKeys, client: Any, issuer: str, request_object: str) -> dict[str, str]:
    """The authorization request's parameters from ``client``'s signed object."""
    if client is None:
        raise RequestObjectError("client_id names no client.")
    if not isinstance(request_object, str) or len(request_object) > MAX_OBJECT:
        raise RequestObjectError("The request object is too long.")
    if not client.jwks and not client.jwks_uri:
        raise RequestObjectError("The client has registered no keys to sign requests with.")
    try:
        claims = dict(verify_client_jwt(keys, client, request_object).claims)
    except (JoseError, ValueError, TypeError, KeyError, ClientKeyError) as exc:
        raise RequestObjectError(
            f"The request object is not signed by the client ({exc})."
        ) from None
    if claims.get("iss") != client.client_id:
        raise RequestObjectError("The request object's iss must be the client_id.")
    aud = claims.get("aud")
    if issuer not in (aud if isinstance(aud, list) else [aud]):
        raise RequestObjectError("The request object's aud must be the issuer.")
    now = time.time()
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if exp is not None and (not isinstance(exp, int | float) or not now - SKEW < exp):
        raise RequestObjectError("The request object has expired.")
    if exp is not None and exp > now + MAX_LIFETIME:
        raise RequestObjectError("The request object lives too long (exp).")
    if nbf is not None and (not isinstance(nbf, int | float) or nbf > now + SKEW):
        raise RequestObjectError("The request object is not valid yet (nbf).")
    if claims.get("client_id", client.client_id) != client.client_id:
        raise RequestObjectError("The request object's client_id is another client.")
    params: dict[str, str] = {}
    for name, value in claims.items():
        if name in ENVELOPE:
            continue
        if name in ("request", "request_uri"):
            raise RequestObjectError(f"A request object cannot hold {name}.")
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise RequestObjectError(f"The request object's {name} must be a string.")
        params[name] = str(value)
    params["client_id"] = client.client_id
    return params
