"""Plays a client that holds its own key, for trying private_key_jwt (RFC 7523), pushed
requests (RFC 9126) and signed request objects (RFC 9101) with curl.

The private key lives in a JWK file (created on first use, mode 0600); idp only ever
sees the public half::

    python -m examples.client_jwt --key client.jwk jwks > client-jwks.json
    python -m examples.client_jwt --key client.jwk assertion CLIENT_ID http://127.0.0.1:5000
    python -m examples.client_jwt --key client.jwk request CLIENT_ID http://127.0.0.1:5000 \\
        response_type=code redirect_uri=https://app.example/cb scope=openid ...

``assertion`` prints a client assertion (send it as ``client_assertion`` with
``client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer``);
``request`` prints a request object holding the NAME=VALUE parameters (send it as
``request``, to /par or /authorize).
"""

from __future__ import annotations

import argparse
import json
import secrets
import time
from pathlib import Path

from joserfc import jwt
from joserfc.jwk import ECKey

from examples.dpop_proof import load_key


def kid_of(key: ECKey) -> str:
    return str(key.thumbprint())


def public_jwks(key: ECKey) -> dict[str, object]:
    return {"keys": [{**key.as_dict(private=False), "kid": kid_of(key), "alg": "ES256"}]}


def sign(key: ECKey, claims: dict[str, object]) -> str:
    header = {"alg": "ES256", "kid": kid_of(key)}
    return jwt.encode(header, claims, key, algorithms=["ES256"])


def assertion(key: ECKey, client_id: str, audience: str) -> str:
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "jti": secrets.token_urlsafe(16),
        "iat": now,
        "exp": now + 60,
    }
    return sign(key, claims)


def request_object(key: ECKey, client_id: str, audience: str, params: list[str]) -> str:
    now = int(time.time())
    claims: dict[str, object] = {"iss": client_id, "aud": audience, "iat": now, "exp": now + 300}
    for pair in params:
        name, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"parameters are NAME=VALUE, got {pair!r}")
        claims[name] = value
    claims["client_id"] = client_id
    return sign(key, claims)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--key", type=Path, required=True, help="JWK file (created if absent)")
    parser.add_argument("what", choices=["jwks", "assertion", "request"])
    parser.add_argument("client_id", nargs="?")
    parser.add_argument("audience", nargs="?", help="the issuer (or the endpoint's URL)")
    parser.add_argument("params", nargs="*", help="NAME=VALUE parameters of a request")
    args = parser.parse_args()
    key = load_key(args.key)
    if args.what == "jwks":
        print(json.dumps(public_jwks(key)))
        return
    if not args.client_id or not args.audience:
        parser.error("CLIENT_ID and AUDIENCE are needed")
    if args.what == "assertion":
        print(assertion(key, args.client_id, args.audience))
    else:
        print(request_object(key, args.client_id, args.audience, args.params))


if __name__ == "__main__":
    main()
