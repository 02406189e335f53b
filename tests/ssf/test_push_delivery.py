"""How the pusher delivers (RFC 8935) when many push streams are owed events at once:
the heads of all streams go out in one step, side by side, yet each stream still gets
its events one at a time and in order, a slow receiver holds up only itself, and two
idp processes on one database never both send an event."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from idp import create_app
from idp.ssf.models import SsfEvent
from tests.conftest import make_config
from tests.ssf.test_transmitter import ADMIN, PUSH, Receiver
from tests.support.auth import AuthActions
from tests.support.clock import FrozenClock
from tests.support.waiting import wait_for

ACCOUNT_DISABLED = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"


class _Endpoint(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        server = self.server
        assert isinstance(server, _Server)
        token = self.rfile.read(int(self.headers["Content-Length"])).decode()
        payload = token.split(".")[1]
        jti = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["jti"]
        with server.lock:
            server.received.append((self.path, jti))
            answers = server.answers.get(self.path, [])
            status = answers.pop(0) if answers else 202
        gate = server.gates.get(self.path)
        if gate is not None:
            gate.wait(10)  # a slow receiver: it answers when the test lets it
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Endpoint)
        self.lock = threading.Lock()
        self.received: list[tuple[str, str]] = []  # (path, jti) as they arrive
        self.answers: dict[str, list[int]] = {}
        self.gates: dict[str, threading.Event] = {}


class Endpoints:
    """Push endpoints of several receivers on one server: ``/<name>`` each. A receiver
    may answer a list of statuses first (202 after them) or wait behind a gate."""

    def __init__(self) -> None:
        self.server = _Server()
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/{name}"

    def got(self, name: str) -> list[str]:
        """The jti of each SET the receiver was sent, in the order they arrived."""
        with self.server.lock:
            return [jti for path, jti in self.server.received if path == f"/{name}"]

    def close(self) -> None:
        for gate in self.server.gates.values():
            gate.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def endpoints() -> Iterator[Endpoints]:
    server = Endpoints()
    yield server
    server.close()


@pytest.fixture
def driven(svc: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Deliveries driven by the test (``deliver_due``), not by the pusher's thread."""
    monkeypatch.setattr(svc.notifier, "kick", lambda: None)
    monkeypatch.setattr(svc.pusher, "kick", lambda: None)


def push_stream(auth: AuthActions, endpoints: Endpoints, name: str) -> str:
    rx = Receiver(auth, name)
    delivery = {"method": PUSH, "endpoint_url": endpoints.url(name)}
    return str(rx.create(delivery=delivery, events_requested=[ACCOUNT_DISABLED])["stream_id"])


def disable_users(auth: AuthActions, svc: Any, clock: FrozenClock, count: int) -> None:
    """One account-disabled event per user for every stream, a second apart."""
    for n in range(count):
        user = auth.user(f"user{n}")
        assert svc.actions.set_disabled(user.id, True, ADMIN, "left")
        clock.advance(1)


def jtis(svc: Any, stream_id: str) -> list[str]:
    """The stream's events, oldest first."""
    with svc.db.read() as s:
        return list(
            s.scalars(
                select(SsfEvent.jti)
                .where(SsfEvent.stream_id == stream_id)
                .order_by(SsfEvent.created_at, SsfEvent.id)
            )
        )


def statuses(svc: Any) -> list[str]:
    with svc.db.read() as s:
        return list(s.scalars(select(SsfEvent.status)))


@pytest.mark.usefixtures("driven")
def test_streams_are_served_side_by_side_each_in_order_through_a_retry(
    auth: AuthActions, svc: Any, clock: FrozenClock, endpoints: Endpoints
) -> None:
    streams = {name: push_stream(auth, endpoints, name) for name in ("a", "b", "c")}
    endpoints.server.answers["/a"] = [503]  # a's first event fails once
    disable_users(auth, svc, clock, 3)
    a1, a2, a3 = jtis(svc, streams["a"])

    assert svc.pusher.deliver_due() is True  # every stream's first event, in one step
    assert [len(endpoints.got(name)) for name in "abc"] == [1, 1, 1]
    assert svc.pusher.deliver_due() is True
    # a waits out its backoff: its second event does not overtake the first.
    assert endpoints.got("a") == [a1]
    assert [len(endpoints.got(name)) for name in "bc"] == [2, 2]

    clock.advance(2)
    while svc.pusher.deliver_due():
        pass
    assert endpoints.got("a") == [a1, a1, a2, a3]
    for name in "bc":
        assert endpoints.got(name) == jtis(svc, streams[name])
    assert statuses(svc) == ["delivered"] * 9


@pytest.fixture
def second(
    backend: dict[str, Any], tmp_path: Path, clock: FrozenClock, app: Flask
) -> Iterator[Any]:
    """A second idp process on the ``app`` fixture's database: its own pusher."""
    other = create_app(make_config(backend, tmp_path / "other"), clock=clock)
    yield other.extensions["idp"]
    other.extensions["idp"].close()


@pytest.mark.usefixtures("driven")
def test_two_processes_never_send_one_event_twice_nor_out_of_order(
    auth: AuthActions, svc: Any, second: Any, clock: FrozenClock, endpoints: Endpoints
) -> None:
    stream = push_stream(auth, endpoints, "rx")
    endpoints.server.gates["/rx"] = gate = threading.Event()
    disable_users(auth, svc, clock, 2)
    first, then = jtis(svc, stream)

    assert svc.pusher.step() is True  # claims the first event; its POST waits at the gate
    wait_for(lambda: endpoints.got("rx") == [first])
    # The other process sees the claim: it sends neither that event nor the next one.
    assert second.pusher.deliver_due() is True
    assert endpoints.got("rx") == [first]
    gate.set()
    svc.pusher.deliver_due()  # records the first as delivered
    assert second.pusher.deliver_due() is True
    assert endpoints.got("rx") == [first, then]


@pytest.mark.usefixtures("driven")
def test_two_processes_racing_over_a_backlog_send_each_event_once_in_order(
    auth: AuthActions, svc: Any, second: Any, clock: FrozenClock, endpoints: Endpoints
) -> None:
    streams = {name: push_stream(auth, endpoints, name) for name in ("a", "b")}
    disable_users(auth, svc, clock, 6)

    def drain(pusher: Any) -> None:
        while pusher.deliver_due():
            pass

    racers = [threading.Thread(target=drain, args=(p.pusher,)) for p in (svc, second)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(30)
    for name, stream_id in streams.items():
        assert endpoints.got(name) == jtis(svc, stream_id)
    assert statuses(svc) == ["delivered"] * 12


def test_a_slow_receiver_does_not_hold_up_the_others(
    auth: AuthActions, svc: Any, clock: FrozenClock, endpoints: Endpoints
) -> None:
    slow, fast = push_stream(auth, endpoints, "slow"), push_stream(auth, endpoints, "fast")
    endpoints.server.gates["/slow"] = gate = threading.Event()
    disable_users(auth, svc, clock, 3)  # each kick wakes the pusher's thread

    # While the slow receiver sits on its first event, the fast one gets all of its own.
    wait_for(lambda: endpoints.got("fast") == jtis(svc, fast))
    wait_for(lambda: statuses(svc).count("delivered") == 3)
    assert endpoints.got("slow") == jtis(svc, slow)[:1]
    gate.set()
    wait_for(lambda: endpoints.got("slow") == jtis(svc, slow))
    wait_for(lambda: statuses(svc) == ["delivered"] * 6)


@pytest.mark.usefixtures("driven")
def test_push_attempts_and_backlog_show_in_metrics(
    auth: AuthActions, svc: Any, clock: FrozenClock, endpoints: Endpoints
) -> None:
    from tests.support.scrape import moved, scrape, value

    push_stream(auth, endpoints, "rx")
    endpoints.server.answers["/rx"] = [503]  # the first attempt fails once
    disable_users(auth, svc, clock, 2)  # events at t and t+1; the clock then at t+2
    clock.advance(5)
    before = scrape(auth.client)
    assert value(before, "idp_delivery_owed", channel="ssf_push") == 2
    assert value(before, "idp_delivery_oldest_age_seconds", channel="ssf_push") == 7
    while svc.pusher.deliver_due():
        clock.advance(2)
    after = scrape(auth.client)
    attempts = "idp_delivery_attempts_total"
    assert moved(before, after, attempts, channel="ssf_push", outcome="retry") == 1
    assert moved(before, after, attempts, channel="ssf_push", outcome="delivered") == 2
    assert value(after, "idp_delivery_owed", channel="ssf_push") == 0
