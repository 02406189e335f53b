"""idp as a transmitter under the CAEP Interoperability Profile 1.0 (OpenID Shared
Signals WG), checked over real HTTP by a receiver written from the profile and the
specifications it profiles (SSF 1.0, CAEP 1.0, RFC 8417, 8935, 8936, 9493, 6750) with
libraries independent of idp's own: ``requests`` for HTTP, PyJWT (not joserfc) for
the signatures, ``http.server`` for the push endpoint.

What the profile requires of a transmitter, section by section:

- §2.3 metadata: ``spec_version`` 1_0, ``delivery_methods_supported``, ``jwks_uri``
  with the current signing keys, ``configuration_endpoint`` (POST creates),
  ``verification_endpoint``, ``authorization_schemes`` with urn:ietf:rfc:6749;
- §2.3.x streams: push and poll accepted, ``delivery`` in every configuration;
  create, read, verify with valid authorization;
- §2.5 event subjects; §2.6 SETs signed RS256 with keys of 2048 bits or more;
- §2.7 OAuth: a client_credentials token; ``ssf.manage`` for management, ``ssf.read``
  for reading; the token only in the Authorization header (never the query); RFC 6750
  §3.1 errors when the scope is not enough;
- §2.8 one event per SET; §3.1 ``session-revoked`` and §3.2 ``credential-change``
  carry a non-empty ``reason_admin``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from sqlalchemy import select

from tests.support.auth import AuthActions, RegisteredClient

pytestmark = pytest.mark.slow

TIMEOUT = 10
POLL = "urn:ietf:rfc:8936"
PUSH = "urn:ietf:rfc:8935"
CAEP = "https://schemas.openid.net/secevent/caep/event-type/"
SESSION_REVOKED = CAEP + "session-revoked"
CREDENTIAL_CHANGE = CAEP + "credential-change"
VERIFICATION = "https://schemas.openid.net/secevent/ssf/event-type/verification"


@pytest.fixture
def transmitter(live: Any) -> dict[str, Any]:
    live.svc.keys.ensure(live.svc.algs_in_use())  # what `idp serve` does as it starts
    resp = requests.get(f"{live.url}/.well-known/ssf-configuration", timeout=TIMEOUT)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    return dict(resp.json())


@pytest.fixture
def token_endpoint(live: Any) -> str:
    meta = requests.get(f"{live.url}/.well-known/oauth-authorization-server", timeout=TIMEOUT)
    return str(meta.json()["token_endpoint"])


class Receiver:
    """The receiver's side: a registered client and the calls the profile gives it."""

    def __init__(self, rp: RegisteredClient, token_endpoint: str, meta: dict[str, Any]):
        self.rp = rp
        self.token_endpoint = token_endpoint
        self.meta = meta

    def token(self, scope: str) -> str:
        resp = requests.post(
            self.token_endpoint,
            data={"grant_type": "client_credentials", "scope": scope},
            headers=self.rp.basic(),
            timeout=TIMEOUT,
        )
        assert resp.status_code == 200, resp.text
        return str(resp.json()["access_token"])

    def call(self, method: str, url: str, token: str, **kw: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}", **kw.pop("headers", {})}
        return requests.request(method, url, headers=headers, timeout=TIMEOUT, **kw)

    def poll(self, stream: dict[str, Any], token: str, **body: Any) -> dict[str, Any]:
        url = stream["delivery"]["endpoint_url"]
        resp = self.call("POST", url, token, json={"returnImmediately": True, **body})
        assert resp.status_code == 200, resp.text
        return dict(resp.json())


@pytest.fixture
def receiver(auth: AuthActions, transmitter: dict[str, Any], token_endpoint: str) -> Receiver:
    rp = auth.oauth_client(
        "caep-rx",
        grant_types=["client_credentials"],
        scope="ssf.manage ssf.read",
        redirect_uri="https://caep-rx.example.test/cb",
    )
    return Receiver(rp, token_endpoint, transmitter)


def verified(live: Any, token: str, audience: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A SET as the profile's receiver checks it: RS256 only (§2.6), by a key of the
    transmitter's jwks_uri of 2048 bits or more, typ secevent+jwt (SSF 1.0 §4.1.1),
    iss the transmitter, aud this receiver, jti and iat (RFC 8417 §2.2), exactly one
    event (§2.8)."""
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256" and header["typ"] == "secevent+jwt"
    keys = jwt.PyJWKClient(f"{live.url}/jwks.json", timeout=TIMEOUT, cooldown_duration=0)
    key = keys.get_signing_key(header["kid"])
    assert isinstance(key.key, RSAPublicKey) and key.key.key_size >= 2048
    claims = jwt.decode(
        token,
        key.key,
        algorithms=["RS256"],
        audience=audience,
        issuer=live.url,
        options={"require": ["iss", "aud", "iat", "jti"], "verify_exp": False},
    )
    assert len(claims["events"]) == 1
    return header, claims


def test_the_metadata_has_what_the_profile_requires(live: Any, transmitter: dict[str, Any]):
    assert transmitter["spec_version"] == "1_0"
    assert transmitter["issuer"] == live.url
    assert {PUSH, POLL} <= set(transmitter["delivery_methods_supported"])
    assert {"spec_urn": "urn:ietf:rfc:6749"} in transmitter["authorization_schemes"]
    for endpoint in ("configuration_endpoint", "verification_endpoint", "status_endpoint"):
        assert transmitter[endpoint].startswith(live.url + "/")
    jwks = requests.get(transmitter["jwks_uri"], timeout=TIMEOUT).json()
    assert any(k["kty"] == "RSA" and k.get("alg") == "RS256" for k in jwks["keys"])


def test_a_receiver_creates_reads_verifies_and_polls_with_the_profiles_scopes(
    live: Any, auth: AuthActions, receiver: Receiver
) -> None:
    manage, read = receiver.token("ssf.manage"), receiver.token("ssf.read")
    config_url = receiver.meta["configuration_endpoint"]
    body = {"delivery": {"method": POLL}, "events_requested": [SESSION_REVOKED]}

    # Reading is not managing: a read-only token creates nothing (RFC 6750 §3.1).
    refused = receiver.call("POST", config_url, read, json=body)
    assert refused.status_code == 403
    assert 'error="insufficient_scope"' in refused.headers["WWW-Authenticate"]

    created = receiver.call("POST", config_url, manage, json=body)
    assert created.status_code == 201, created.text
    stream = created.json()
    assert stream["aud"] == "caep-rx" and stream["delivery"]["method"] == POLL
    assert stream["delivery"]["endpoint_url"].startswith(live.url + "/")

    again = receiver.call("GET", config_url, read, params={"stream_id": stream["stream_id"]})
    assert again.status_code == 200 and again.json()["stream_id"] == stream["stream_id"]
    # The token only in the Authorization header, never the query (RFC 6750 §2.3).
    in_query = requests.get(
        config_url, params={"stream_id": stream["stream_id"], "access_token": read}, timeout=10
    )
    assert in_query.status_code == 401

    asked = receiver.call(
        "POST",
        receiver.meta["verification_endpoint"],
        manage,
        json={"stream_id": stream["stream_id"], "state": "VGhpcyBpcyBhbiBleGFtcGxl"},
    )
    assert asked.status_code == 204
    [(jti, token)] = receiver.poll(stream, manage)["sets"].items()
    _, claims = verified(live, token, "caep-rx")
    assert claims["jti"] == jti
    assert claims["events"][VERIFICATION] == {"state": "VGhpcyBpcyBhbiBleGFtcGxl"}
    assert claims["sub_id"] == {"format": "opaque", "id": stream["stream_id"]}
    assert receiver.poll(stream, manage, ack=[jti])["sets"] == {}


def test_a_session_kill_is_polled_as_session_revoked_with_a_reason(
    live: Any, auth: AuthActions, receiver: Receiver
) -> None:
    from idp.operator import Actor
    from idp.sessions.models import BrowserSession

    manage = receiver.token("ssf.manage")
    body = {"delivery": {"method": POLL}, "events_requested": [SESSION_REVOKED]}
    stream = receiver.call("POST", receiver.meta["configuration_endpoint"], manage, json=body)
    assert stream.status_code == 201, stream.text
    user = auth.user()
    auth.login()
    with live.svc.db.read() as s:
        [sid] = s.scalars(select(BrowserSession.id).where(BrowserSession.user_id == user.id))
    live.svc.actions.kill_session(sid, Actor("root", "127.0.0.1"), "laptop stolen")

    [(jti, token)] = receiver.poll(stream.json(), manage)["sets"].items()
    _, claims = verified(live, token, "caep-rx")
    # RFC 9493 §3.2.2: the session and the user it belongs to (iss_sub, §2.5).
    assert claims["sub_id"]["format"] == "complex"
    assert claims["sub_id"]["session"] == {"format": "opaque", "id": sid}
    assert claims["sub_id"]["user"] == {"format": "iss_sub", "iss": live.url, "sub": user.id}
    event = claims["events"][SESSION_REVOKED]
    assert event["reason_admin"]["en"] and isinstance(event["event_timestamp"], int)
    assert event["initiating_entity"] in {"admin", "user", "policy", "system"}


class _PushEndpoint(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        server: Any = self.server
        body = self.rfile.read(int(self.headers["Content-Length"]))
        server.received.append((dict(self.headers), body.decode()))
        self.send_response(202)  # RFC 8935 §2.2: accepted
        self.send_header("Content-Length", "0")
        self.end_headers()
        server.arrived.set()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def push_endpoint() -> Iterator[Any]:
    server: Any = ThreadingHTTPServer(("127.0.0.1", 0), _PushEndpoint)
    server.received, server.arrived = [], threading.Event()
    server.url = f"http://127.0.0.1:{server.server_address[1]}/caep"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_a_verification_is_pushed_as_rfc_8935_says(
    live: Any, receiver: Receiver, push_endpoint: Any
) -> None:
    manage = receiver.token("ssf.manage")
    body = {
        "delivery": {
            "method": PUSH,
            "endpoint_url": push_endpoint.url,
            "authorization_header": "Bearer caep-rx-inbox",
        },
        "events_requested": [SESSION_REVOKED, CREDENTIAL_CHANGE],
    }
    created = receiver.call("POST", receiver.meta["configuration_endpoint"], manage, json=body)
    assert created.status_code == 201, created.text
    stream = created.json()
    # The stream's configuration never echoes the receiver's secret.
    assert "authorization_header" not in stream["delivery"]
    assert set(stream["events_delivered"]) <= {SESSION_REVOKED, CREDENTIAL_CHANGE}
    asked = receiver.call(
        "POST",
        receiver.meta["verification_endpoint"],
        manage,
        json={"stream_id": stream["stream_id"]},
    )
    assert asked.status_code == 204
    assert push_endpoint.arrived.wait(TIMEOUT), "no push arrived"
    headers, token = push_endpoint.received[0]
    # RFC 8935 §2: the SET as the body, its media type, JSON asked for in answer.
    assert headers["Content-Type"] == "application/secevent+jwt"
    assert headers["Accept"] == "application/json"
    assert headers["Authorization"] == "Bearer caep-rx-inbox"
    _, claims = verified(live, token, "caep-rx")
    assert VERIFICATION in claims["events"]
