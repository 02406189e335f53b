"""OIDC Back-Channel Logout 1.0: a killed session's relying apps get a logout token."""

from __future__ import annotations

import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from sqlalchemy import select

from idp.sessions.models import BackchannelDelivery
from tests.conftest import ISSUER
from tests.support.jwt import header, verify

# Deliveries are driven by each test (deliver_due) unless it is marked background_worker.
pytestmark = pytest.mark.usefixtures("no_background_worker")


class Receiver:
    """A relying app's back-channel endpoint on 127.0.0.1 that records what it gets."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.tokens: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                receiver.tokens.append(urllib.parse.parse_qs(body)["logout_token"][0])
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/backchannel"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def deliveries(svc):
    with svc.db.read() as s:
        return s.scalars(select(BackchannelDelivery)).all()


def session_with_client(auth, uri):
    auth.user()
    rp = auth.oauth_client(backchannel_logout_uri=uri)
    auth.login()
    tokens = auth.tokens(rp)
    sid = verify(tokens["access_token"], auth.client.get("/jwks.json").get_json(), "rp", ISSUER)[
        "sid"
    ]
    return rp, sid


def test_killed_session_sends_a_logout_token(auth, svc, receiver):
    rp, sid = session_with_client(auth, receiver.url)
    svc.killer.kill_session(sid, actor="test", action="session.kill", reason="stolen laptop")
    assert svc.notifier.deliver_due() is False
    [token] = receiver.tokens
    assert header(token)["typ"] == "logout+jwt"
    claims = verify(token, auth.client.get("/jwks.json").get_json(), "rp", ISSUER)
    assert claims["sid"] == sid and "nonce" not in claims
    assert claims["events"] == {"http://schemas.openid.net/event/backchannel-logout": {}}
    [d] = deliveries(svc)
    assert d.status == "delivered" and d.attempts == 1 and d.last_status_code == 200


def test_failed_delivery_is_retried_with_backoff_then_given_up(auth, svc, clock, receiver):
    receiver.status = 500
    _, sid = session_with_client(auth, receiver.url)
    svc.killer.kill_session(sid, actor="test", action="session.kill", reason="r")
    assert svc.notifier.deliver_due() is True
    [d] = deliveries(svc)
    assert d.status == "pending" and d.attempts == 1 and d.last_error == "HTTP 500"
    assert svc.notifier.deliver_due() is True
    assert len(receiver.tokens) == 1, "not retried before its time"
    for _ in range(4):
        clock.advance(601)
        svc.notifier.deliver_due()
    [d] = deliveries(svc)
    assert d.status == "failed" and d.attempts == 5
    assert len(receiver.tokens) == 5


def test_unreachable_receiver_is_recorded(auth, svc):
    _, sid = session_with_client(auth, "http://127.0.0.1:9/backchannel")
    svc.killer.kill_session(sid, actor="test", action="session.kill", reason="r")
    svc.notifier.deliver_due()
    [d] = deliveries(svc)
    assert d.status == "pending" and d.last_error and d.last_status_code is None


def test_clients_without_backchannel_uri_get_nothing(auth, svc):
    auth.user()
    rp = auth.oauth_client()
    auth.login()
    tokens = auth.tokens(rp)
    sid = verify(tokens["access_token"], auth.client.get("/jwks.json").get_json(), "rp", ISSUER)[
        "sid"
    ]
    svc.killer.kill_session(sid, actor="test", action="session.kill", reason="r")
    assert deliveries(svc) == []


@pytest.mark.background_worker
def test_logout_triggers_backchannel_in_the_background(auth, svc, receiver):
    from tests.support.auth import csrf_from

    session_with_client(auth, receiver.url)
    page = auth.client.get("/logout")
    auth.client.post(
        "/logout", data={"confirm": "yes", "csrf_token": csrf_from(page.get_data(as_text=True))}
    )
    for _ in range(100):  # the worker thread delivers; wait for its result, not a time
        if deliveries(svc) and deliveries(svc)[0].status == "delivered":
            break
        threading.Event().wait(0.1)
    [d] = deliveries(svc)
    assert d.status == "delivered" and len(receiver.tokens) == 1
