"""Prints a DPoP proof (RFC 9449) for one HTTP request, for trying DPoP with curl.

A DPoP client keeps a private key and signs a fresh proof for every request; tokens idp
issues against a proof are bound to that key (``cnf.jkt``) and refused without it. This
script plays that client: the key lives in a JWK file (created on first use, mode 0600),
and each run prints one proof::

    python -m examples.dpop_proof --key dpop.jwk POST http://127.0.0.1:5000/token
    python -m examples.dpop_proof --key dpop.jwk GET http://127.0.0.1:5002/api/me --token "$AT"
    python -m examples.dpop_proof --key dpop.jwk --thumbprint   # for dpop_jkt

``--token`` adds ``ath`` (a proof sent with an access token must name it); ``--nonce``
adds a server nonce (``DPoP-Nonce``) when idp asks for one (``use_dpop_nonce``).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import time
from pathlib import Path

from joserfc import jwt
from joserfc.jwk import ECKey

from idp.oauth.dpop import access_token_hash


def load_key(path: Path) -> ECKey:
    if path.exists():
        return ECKey.import_key(json.loads(path.read_text()))
    key = ECKey.generate_key("P-256")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(key.as_dict(private=True), f)
    return key


def proof(
    key: ECKey, method: str, url: str, token: str | None = None, nonce: str | None = None
) -> str:
    claims: dict[str, object] = {
        "jti": secrets.token_urlsafe(16),
        "htm": method.upper(),
        "htu": url.split("?", 1)[0].split("#", 1)[0],
        "iat": int(time.time()),
    }
    if token:
        claims["ath"] = access_token_hash(token)
    if nonce:
        claims["nonce"] = nonce
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.as_dict(private=False)}
    return jwt.encode(header, claims, key, algorithms=["ES256"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--key", type=Path, required=True, help="JWK file (created if absent)")
    parser.add_argument("--token", help="the access token the request carries (adds ath)")
    parser.add_argument("--nonce", help="the server's DPoP-Nonce")
    parser.add_argument("--thumbprint", action="store_true", help="print the key's jkt")
    parser.add_argument("method", nargs="?")
    parser.add_argument("url", nargs="?")
    args = parser.parse_args()
    key = load_key(args.key)
    if args.thumbprint:
        print(key.thumbprint())
        return
    if not args.method or not args.url:
        parser.error("METHOD and URL are needed (or --thumbprint)")
    print(proof(key, args.method, args.url, args.token, args.nonce))


if __name__ == "__main__":
    main()
