"""A client's signing keys and the JWTs it signs with them (private_key_jwt assertions,
request objects), and a tiny jwks_uri server, for tests."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, RSAKey

from tests.support.live import running

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class ClientKey:
    def __init__(self, alg: str = "ES256") -> None:
        self.alg = alg
        self.key: Any = (
            ECKey.generate_key("P-256") if alg.startswith("ES") else RSAKey.generate_key(2048)
        )
        self.kid = secrets.token_hex(8)

    def jwk(self) -> dict[str, Any]:
        return {**self.key.as_dict(private=False), "kid": self.kid, "alg": self.alg}

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.jwk()]}

    def sign(self, claims: dict[str, Any], header: dict[str, Any] | None = None) -> str:
        head = {"alg": self.alg, "kid": self.kid, **(header or {})}
        return jwt.encode(head, claims, self.key, algorithms=[self.alg])

    def assertion(self, client_id: str, aud: str | None, **changes: Any) -> str:
        now = int(time.time())
        claims = {
            "iss": client_id,
            "sub": client_id,
            "aud": aud,
            "jti": secrets.token_urlsafe(12),
            "iat": now,
            "exp": now + 60,
            **changes,
        }
        return self.sign({k: v for k, v in claims.items() if v is not None})


def hs256(claims: dict[str, Any], secret: bytes = b"x" * 32) -> str:
    key = OctKey.import_key(secret)
    return jwt.encode({"alg": "HS256"}, claims, key, algorithms=["HS256"])


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        server: Any = self.server
        server.hits += 1
        body = json.dumps(server.document).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def jwks_server(document: dict[str, Any]) -> Iterator[Any]:
    """Serves ``server.document`` at http://127.0.0.1:PORT/jwks; ``server.hits`` counts."""
    server: Any = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.document, server.hits = document, 0
    server.url = f"http://127.0.0.1:{server.server_address[1]}/jwks"
    with running(server):
        yield server
