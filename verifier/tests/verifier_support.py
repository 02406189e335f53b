"""A stand-in issuer for idp-verifier's own tests: the HTTP endpoints a resource server
calls (JWKS, idp's revocation feed, token, SSF configuration, stream and poll), served
on loopback from the specs, not from idp's code, so the distribution is tested without
idp, Flask or SQLAlchemy. tests/test_revocation_feed.py runs it against the real idp."""

from __future__ import annotations

import base64
import json
import secrets
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey

from idp_verifier.dpop import access_token_hash

CLIENT_ID = "shop-api"
SECRET = "s3cret"
NOW = 1_800_000_000.0
POLL = "urn:ietf:rfc:8936"
CAEP = "https://schemas.openid.net/secevent/caep/event-type/"
SESSION_REVOKED = CAEP + "session-revoked"
ACCOUNT_DISABLED = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
STREAM_UPDATED = "https://schemas.openid.net/secevent/ssf/event-type/stream-updated"


class FakeClock:
    def __init__(self) -> None:
        self.now = NOW
        self.mono = 1000.0

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.mono += seconds


class Issuer:
    """State the handler serves; tests change it between polls."""

    def __init__(self) -> None:
        self.url = ""
        self.key = ECKey.generate_key("P-256", parameters={"kid": "k1"})
        self.published = [self.key]
        self.down = False
        self.feed: list[dict[str, Any]] = []
        self.streams: list[dict[str, Any]] = []
        self.status = "enabled"
        self.owed: dict[str, str] = {}  # jti -> SET
        self.polls: list[dict[str, Any]] = []
        self.tokens_issued = 0
        self.jwks_fetches = 0
        self.lock = threading.Lock()

    # --- what a test makes ------------------------------------------------------------
    def access_token(self, key: ECKey | None = None, typ: str = "at+jwt", **claims: Any) -> str:
        body = {
            "iss": self.url,
            "sub": "user-1",
            "aud": "shop",
            "client_id": "shop",
            "iat": int(NOW),
            "exp": int(NOW) + 300,
            "jti": secrets.token_hex(8),
            "sid": "sid-1",
            **claims,
        }
        signer = key or self.key
        header = {"alg": "ES256", "typ": typ, "kid": signer.kid}
        return jwt.encode(header, {k: v for k, v in body.items() if v is not None}, signer)

    def send(
        self,
        event_type: str,
        sub_id: dict[str, Any],
        event: dict[str, Any] | None = None,
        *,
        key: ECKey | None = None,
        typ: str = "secevent+jwt",
        **claims: Any,
    ) -> str:
        """Queues a SET on the poll stream; returns its jti."""
        jti = secrets.token_hex(8)
        body = {
            "iss": self.url,
            "aud": CLIENT_ID,
            "iat": int(NOW),
            "jti": jti,
            "sub_id": sub_id,
            "events": {event_type: event or {}},
            **claims,
        }
        signer = key or self.key
        header = {"alg": "ES256", "typ": typ, "kid": signer.kid}
        self.owed[jti] = jwt.encode(header, body, signer)
        return jti

    def stream_updated(self, status: str) -> str:
        self.status = status
        return self.send(
            STREAM_UPDATED,
            {"format": "opaque", "id": self.streams[0]["stream_id"]},
            {"status": status},
        )

    # --- what the handler answers -----------------------------------------------------
    def answer(self, method: str, path: str, query: dict[str, str], headers: Any, body: Any) -> Any:
        if self.down:
            return 503, {"error": "temporarily_unavailable"}
        basic = "Basic " + base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()
        bearer = headers.get("Authorization", "").startswith("Bearer at-")
        if path == "/jwks.json":
            self.jwks_fetches += 1
            return 200, {"keys": [k.as_dict(private=False) for k in self.published]}
        if path == "/revocations":
            if headers.get("Authorization") != basic:
                return 401, {"error": "invalid_client"}
            after = int(query.get("after", 0))
            return 200, {"revocations": self.feed[after:], "cursor": len(self.feed)}
        if path == "/token" and method == "POST":
            if headers.get("Authorization") != basic or body.get("scope") != ["ssf"]:
                return 401, {"error": "invalid_client"}
            self.tokens_issued += 1
            return 200, {"access_token": f"at-{self.tokens_issued}", "expires_in": 300}
        if path == "/.well-known/ssf-configuration":
            return 200, {
                "issuer": self.url,
                "configuration_endpoint": self.url + "/ssf/stream",
                "status_endpoint": self.url + "/ssf/status",
            }
        if not bearer:
            return 401, {"error": "invalid_token"}
        if path == "/ssf/stream" and method == "GET":
            return 200, self.streams
        if path == "/ssf/stream" and method == "POST":
            stream_id = f"stream-{len(self.streams) + 1}"
            endpoint = f"{self.url}/ssf/poll/{stream_id}"
            self.streams.append(
                {
                    "stream_id": stream_id,
                    **body,
                    "delivery": {"method": POLL, "endpoint_url": endpoint},
                }
            )
            return 201, self.streams[-1]
        if path == "/ssf/status":
            return 200, {"stream_id": query["stream_id"], "status": self.status}
        if path.startswith("/ssf/poll/"):
            self.polls.append(body)
            for jti in [*body.get("ack", []), *body.get("setErrs", {})]:
                self.owed.pop(jti, None)
            return 200, {"sets": dict(self.owed), "moreAvailable": False}
        return 404, {"error": "not_found"}


def handler(issuer: Issuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _do(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.headers.get("Content-Type") == "application/json":
                body = json.loads(raw)
            else:
                body = urllib.parse.parse_qs(raw.decode())
            with issuer.lock:
                status, out = issuer.answer(
                    self.command,
                    url.path,
                    dict(urllib.parse.parse_qsl(url.query)),
                    self.headers,
                    body,
                )
            data = json.dumps(out).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _do

    return Handler


def dpop_proof(
    key: ECKey, method: str, url: str, access_token: str, iat: float, **extra: Any
) -> str:
    """A client's RFC 9449 §4.2 proof."""
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.as_dict(private=False)}
    claims = {
        "jti": secrets.token_hex(8),
        "htm": method,
        "htu": url,
        "iat": int(iat),
        "ath": access_token_hash(access_token),
        **extra,
    }
    return jwt.encode(header, claims, key)
