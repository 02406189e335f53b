"""idp as a Shared Signals transmitter (SSF 1.0, CAEP 1.0, RISC, RFC 8417/8935/8936/9493),
checked by a receiver written here from the specifications (joserfc against the
published JWKS), not by idp's own code."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import func, select

from idp.operator import Actor
from idp.ssf.models import SsfEvent, SsfStream
from tests.conftest import ISSUER
from tests.support.auth import AuthActions
from tests.support.waiting import wait_for

POLL = "urn:ietf:rfc:8936"
PUSH = "urn:ietf:rfc:8935"
SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
ACCOUNT_DISABLED = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
ACCOUNT_ENABLED = "https://schemas.openid.net/secevent/risc/event-type/account-enabled"
VERIFICATION = "https://schemas.openid.net/secevent/ssf/event-type/verification"
STREAM_UPDATED = "https://schemas.openid.net/secevent/ssf/event-type/stream-updated"
ADMIN = Actor("root", "127.0.0.1")


class Receiver:
    """A receiver app: its ssf-scoped token and the calls SSF 1.0 gives it."""

    def __init__(self, auth: AuthActions, client_id: str = "rx") -> None:
        self.auth = auth
        self.client_id = client_id
        rp = auth.oauth_client(
            client_id,
            grant_types=["client_credentials"],
            scope="ssf",
            redirect_uri="https://rx.example.test/cb",
        )
        got = auth.token(rp, {"grant_type": "client_credentials", "scope": "ssf"})
        self.token = got.get_json()["access_token"]

    def call(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"}
        return self.auth.client.open(path, method=method, json=body, headers=headers, **kw)

    def create(self, **config: Any) -> dict[str, Any]:
        body = {"delivery": {"method": POLL}, "events_requested": [SESSION_REVOKED], **config}
        resp = self.call("POST", "/ssf/stream", body)
        assert resp.status_code == 201, resp.get_json()
        return dict(resp.get_json())

    def poll(self, stream: dict[str, Any], **body: Any) -> dict[str, Any]:
        url = stream["delivery"]["endpoint_url"].removeprefix(ISSUER)
        resp = self.call("POST", url, {"returnImmediately": True, **body})
        assert resp.status_code == 200, resp.get_json()
        return dict(resp.get_json())


def verify_set(client: Any, token: str, audience: str) -> dict[str, Any]:
    """RFC 8417 / SSF 1.0 §4 as a receiver checks them: signed by a key of the JWKS
    (never none), typ secevent+jwt, iss the transmitter, aud this receiver, a jti, an
    iat, exactly one event, and no exp-style claims that would make it an ID token."""
    keys = KeySet.import_key_set(client.get("/jwks.json").get_json())
    decoded = jwt.decode(token, keys, algorithms=["ES256", "RS256", "EdDSA"])
    assert decoded.header["typ"] == "secevent+jwt"
    claims = dict(decoded.claims)
    assert claims["iss"] == ISSUER and claims["aud"] == audience
    assert claims["jti"] and isinstance(claims["iat"], int)
    assert len(claims["events"]) == 1
    assert "sub" not in claims and "exp" not in claims
    return claims


@pytest.fixture
def victim(auth: AuthActions) -> Any:
    user = auth.user()
    auth.login()
    auth.tokens(auth.oauth_client())
    return user


def sessions_of(svc: Any, user_id: str) -> list[str]:
    from idp.sessions.models import BrowserSession

    with svc.db.read() as s:
        return list(s.scalars(select(BrowserSession.id).where(BrowserSession.user_id == user_id)))


def test_the_transmitter_configuration_names_every_endpoint(client: Any) -> None:
    meta = client.get("/.well-known/ssf-configuration").get_json()
    assert meta["spec_version"] == "1_0" and meta["issuer"] == ISSUER
    assert meta["jwks_uri"] == ISSUER + "/jwks.json"
    assert set(meta["delivery_methods_supported"]) == {PUSH, POLL}
    for name in ("configuration", "status", "add_subject", "remove_subject", "verification"):
        assert meta[f"{name}_endpoint"].startswith(ISSUER + "/ssf/")
    assert meta["authorization_schemes"] == [{"spec_urn": "urn:ietf:rfc:6749"}]


def test_a_kill_reaches_a_poll_stream_as_a_signed_session_revoked(
    auth: AuthActions, svc: Any, client: Any, victim: Any
) -> None:
    rx = Receiver(auth)
    stream = rx.create()
    assert stream["aud"] == "rx" and stream["events_delivered"] == [SESSION_REVOKED]
    [sid] = sessions_of(svc, victim.id)
    svc.actions.kill_session(sid, ADMIN, "stolen laptop")
    got = rx.poll(stream)
    [(jti, token)] = got["sets"].items()
    claims = verify_set(client, token, "rx")
    assert claims["jti"] == jti
    assert claims["sub_id"] == {
        "format": "complex",
        "session": {"format": "opaque", "id": sid},
        "user": {"format": "iss_sub", "iss": ISSUER, "sub": victim.id},
    }
    event = claims["events"][SESSION_REVOKED]
    assert event["initiating_entity"] == "admin"
    assert event["reason_admin"] == {"en": "stolen laptop"}
    assert isinstance(event["event_timestamp"], int)
    # Not acknowledged: it comes again; acknowledged: it is gone.
    assert list(rx.poll(stream)["sets"]) == [jti]
    assert rx.poll(stream, ack=[jti])["sets"] == {}
    with svc.db.read() as s:
        assert s.scalar(select(SsfEvent.status).where(SsfEvent.jti == jti)) == "delivered"


def test_an_action_that_rolls_back_owes_no_event(auth: AuthActions, svc: Any, victim: Any) -> None:
    rx = Receiver(auth)
    rx.create()
    [sid] = sessions_of(svc, victim.id)
    with pytest.raises(RuntimeError), svc.db.transaction() as s:
        svc.killer.kill_in(s, sid, actor="root", action="session.kill", reason="r")
        raise RuntimeError("the transaction fails after the kill")
    with svc.db.read() as s:
        assert s.scalar(select(func.count()).select_from(SsfEvent)) == 0


def test_disabling_a_user_tells_the_account_and_every_session_in_one_txn(
    auth: AuthActions, svc: Any, client: Any, victim: Any
) -> None:
    rx = Receiver(auth)
    stream = rx.create(events_requested=[SESSION_REVOKED, ACCOUNT_DISABLED, ACCOUNT_ENABLED])
    svc.actions.set_disabled(victim.id, True, ADMIN, "left the company")
    claims = [verify_set(client, t, "rx") for t in rx.poll(stream)["sets"].values()]
    kinds = sorted(next(iter(c["events"])) for c in claims)
    assert kinds == sorted([ACCOUNT_DISABLED, SESSION_REVOKED])
    assert len({c["txn"] for c in claims}) == 1
    disabled = next(c for c in claims if ACCOUNT_DISABLED in c["events"])
    assert disabled["sub_id"] == {"format": "iss_sub", "iss": ISSUER, "sub": victim.id}
    rx.poll(stream, ack=[c["jti"] for c in claims])
    svc.actions.set_disabled(victim.id, False, ADMIN, "came back")
    [enabled] = [verify_set(client, t, "rx") for t in rx.poll(stream)["sets"].values()]
    assert ACCOUNT_ENABLED in enabled["events"]


def test_a_receiver_manages_only_its_own_streams(auth: AuthActions) -> None:
    rx, other = Receiver(auth), Receiver(auth, "other")
    stream = rx.create(description="orders API")
    sid = stream["stream_id"]
    assert rx.call("GET", f"/ssf/stream?stream_id={sid}").get_json()["description"] == "orders API"
    assert [s["stream_id"] for s in rx.call("GET", "/ssf/stream").get_json()] == [sid]
    assert other.call("GET", "/ssf/stream").get_json() == []
    for method, path, body in (
        ("GET", f"/ssf/stream?stream_id={sid}", None),
        ("PATCH", "/ssf/stream", {"stream_id": sid, "description": "mine now"}),
        ("DELETE", f"/ssf/stream?stream_id={sid}", None),
        ("GET", f"/ssf/status?stream_id={sid}", None),
        ("POST", "/ssf/verify", {"stream_id": sid}),
        ("POST", f"/ssf/poll/{sid}", {"returnImmediately": True}),
    ):
        assert other.call(method, path, body).status_code == 404, (method, path)
    patched = rx.call("PATCH", "/ssf/stream", {"stream_id": sid, "description": "v2"})
    assert patched.get_json()["description"] == "v2"
    replaced = rx.call("PUT", "/ssf/stream", {"stream_id": sid, "delivery": {"method": POLL}})
    assert (
        replaced.get_json()["events_requested"] == [] and "description" not in replaced.get_json()
    )
    assert rx.call("DELETE", f"/ssf/stream?stream_id={sid}").status_code == 204
    assert rx.call("GET", f"/ssf/stream?stream_id={sid}").status_code == 404


def test_verification_echoes_state_at_most_every_15_seconds(auth: AuthActions, client: Any) -> None:
    rx = Receiver(auth)
    stream = rx.create()
    sid = stream["stream_id"]
    assert rx.call("POST", "/ssf/verify", {"stream_id": sid, "state": "abc"}).status_code == 204
    assert rx.call("POST", "/ssf/verify", {"stream_id": sid}).status_code == 429
    [token] = rx.poll(stream)["sets"].values()
    claims = verify_set(client, token, "rx")
    assert claims["events"] == {VERIFICATION: {"state": "abc"}}
    assert claims["sub_id"] == {"format": "opaque", "id": sid}


def test_a_paused_stream_holds_events_and_a_disabled_one_drops_them(
    auth: AuthActions, svc: Any, client: Any, victim: Any
) -> None:
    rx = Receiver(auth)
    stream = rx.create()
    sid = stream["stream_id"]
    paused = rx.call("POST", "/ssf/status", {"stream_id": sid, "status": "paused", "reason": "r"})
    assert paused.get_json() == {"stream_id": sid, "status": "paused", "reason": "r"}
    [session] = sessions_of(svc, victim.id)
    svc.actions.kill_session(session, ADMIN, "held")
    # Only the stream-updated events come through a held stream (tests/ssf/test_stream_updated.py).
    assert kinds(client, rx.poll(stream)) == {STREAM_UPDATED}
    rx.call("POST", "/ssf/status", {"stream_id": sid, "status": "enabled"})
    assert kinds(client, rx.poll(stream)) == {SESSION_REVOKED, STREAM_UPDATED}
    rx.call("POST", "/ssf/status", {"stream_id": sid, "status": "disabled"})
    rx.call("POST", "/ssf/status", {"stream_id": sid, "status": "enabled"})
    assert SESSION_REVOKED not in kinds(client, rx.poll(stream)), "disabling dropped it"


def kinds(client: Any, got: dict[str, Any]) -> set[str]:
    """The event types of a poll answer's SETs."""
    return {k for token in got["sets"].values() for k in verify_set(client, token, "rx")["events"]}


@pytest.mark.parametrize("config_overrides", [{"ssf": {"poll_wait_seconds": 10}}])
def test_a_waiting_poll_returns_when_a_kill_happens(
    auth: AuthActions, svc: Any, victim: Any
) -> None:
    rx = Receiver(auth)
    stream = rx.create()
    [sid] = sessions_of(svc, victim.id)
    started = threading.Event()

    def kill_soon() -> None:
        started.wait(10)
        time.sleep(0.2)
        svc.actions.kill_session(sid, ADMIN, "while the receiver waits")

    killer = threading.Thread(target=kill_soon)
    killer.start()
    started.set()
    got = rx.poll(stream, returnImmediately=False)
    killer.join(10)
    assert len(got["sets"]) == 1


# --- push (RFC 8935) ----------------------------------------------------------------


class _Collector(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        server: Any = self.server
        body = self.rfile.read(int(self.headers["Content-Length"]))
        server.received.append((dict(self.headers), body.decode()))
        self.send_response(server.answer)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[Any]:
    server: Any = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    server.received, server.answer = [], 202
    server.url = f"http://127.0.0.1:{server.server_address[1]}/events"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_a_kill_is_pushed_with_the_receivers_authorization(
    auth: AuthActions, svc: Any, client: Any, victim: Any, collector: Any
) -> None:
    rx = Receiver(auth)
    delivery = {
        "method": PUSH,
        "endpoint_url": collector.url,
        "authorization_header": "Bearer rx-secret",
    }
    stream = rx.create(delivery=delivery)
    assert stream["delivery"] == {"method": PUSH, "endpoint_url": collector.url}
    [sid] = sessions_of(svc, victim.id)
    svc.actions.kill_session(sid, ADMIN, "pushed")
    wait_for(lambda: collector.received)
    headers, token = collector.received[0]
    assert headers["Content-Type"] == "application/secevent+jwt"
    assert headers["Authorization"] == "Bearer rx-secret"
    claims = verify_set(client, token, "rx")
    assert claims["sub_id"]["session"]["id"] == sid
    wait_for(lambda: _status(svc, claims["jti"]) == "delivered")


def _status(svc: Any, jti: str) -> str | None:
    with svc.db.read() as s:
        return s.scalar(select(SsfEvent.status).where(SsfEvent.jti == jti))


def test_a_set_the_receiver_refuses_is_not_sent_again(
    auth: AuthActions, svc: Any, victim: Any, collector: Any
) -> None:
    collector.answer = 400
    rx = Receiver(auth)
    rx.create(delivery={"method": PUSH, "endpoint_url": collector.url})
    [sid] = sessions_of(svc, victim.id)
    svc.actions.kill_session(sid, ADMIN, "refused")
    wait_for(lambda: collector.received)
    with svc.db.read() as s:
        jti = s.scalar(select(SsfEvent.jti))
    wait_for(lambda: _status(svc, str(jti)) == "failed")
    assert len(collector.received) == 1


# --- who may, and hostile input -------------------------------------------------------


def test_only_ssf_scoped_client_tokens_manage_streams(auth: AuthActions) -> None:
    assert auth.client.get("/ssf/stream").status_code == 401
    bad = auth.client.get("/ssf/stream", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    plain = auth.oauth_client(
        "plain", grant_types=["client_credentials"], scope="api", redirect_uri="https://p.test/x"
    )
    token = auth.token(plain, {"grant_type": "client_credentials"}).get_json()["access_token"]
    no_scope = auth.client.get("/ssf/stream", headers={"Authorization": f"Bearer {token}"})
    assert no_scope.status_code == 403 and no_scope.get_json()["error"] == "insufficient_scope"


BAD_CREATES: list[Any] = [
    {"delivery": {"method": "urn:example:carrier-pigeon"}},
    {"delivery": {"method": PUSH}},
    {"delivery": {"method": PUSH, "endpoint_url": "http://169.254.169.254/latest"}},
    {"delivery": {"method": PUSH, "endpoint_url": "javascript:alert(1)"}},
    {
        "delivery": {
            "method": PUSH,
            "endpoint_url": "https://rx.test/e",
            "authorization_header": "x\ny",
        }
    },
    {"delivery": {"method": POLL, "endpoint_url": "https://rx.test/poll"}},
    {"delivery": "poll"},
    {"events_requested": "all"},
    {"events_requested": ["x"] * 21},
    {"events_requested": [7]},
    {"description": "d" * 501},
    {"stream_id": "mine"},
    {"unknown_field": 1},
]


@pytest.mark.parametrize("body", BAD_CREATES)
def test_a_bad_stream_is_refused_and_nothing_is_stored(
    auth: AuthActions, svc: Any, body: dict[str, Any]
) -> None:
    rx = Receiver(auth)
    resp = rx.call("POST", "/ssf/stream", {"delivery": {"method": POLL}, **body})
    assert resp.status_code == 400, resp.get_json()
    assert resp.get_json()["error"] == "invalid_request"
    with svc.db.read() as s:
        assert s.scalar(select(func.count()).select_from(SsfStream)) == 0


@pytest.mark.parametrize(
    "body",
    [
        {"maxEvents": 1000},
        {"maxEvents": -1},
        {"maxEvents": "10"},
        {"returnImmediately": "yes"},
        {"ack": "jti"},
        {"ack": [1, 2]},
        {"setErrs": []},
        {"setErrs": {"jti": "bad"}},
    ],
)
def test_a_bad_poll_is_refused(auth: AuthActions, body: dict[str, Any]) -> None:
    rx = Receiver(auth)
    stream = rx.create()
    url = stream["delivery"]["endpoint_url"].removeprefix(ISSUER)
    resp = rx.call("POST", url, {"returnImmediately": True, **body})
    assert resp.status_code == 400, resp.get_json()


def test_non_json_and_oversized_bodies_are_refused(auth: AuthActions, svc: Any) -> None:
    rx = Receiver(auth)
    headers = {"Authorization": f"Bearer {rx.token}"}
    form = auth.client.post("/ssf/stream", data={"x": "1"}, headers=headers)
    assert form.status_code == 415
    broken = auth.client.post(
        "/ssf/stream", data="{not json", content_type="application/json", headers=headers
    )
    assert broken.status_code == 400
    huge = auth.client.post(
        "/ssf/stream",
        data=json.dumps({"description": "x" * 200_000}),
        content_type="application/json",
        headers=headers,
    )
    assert huge.status_code == 413
    with svc.db.read() as s:
        assert s.scalar(select(func.count()).select_from(SsfStream)) == 0
