"""SSF 1.0 §8.1.5: when a stream's status changes, by the operator or by the receiver,
the transmitter tells the receiver with a stream-updated SET, which reaches it even
while the stream holds (paused) or drops (disabled) everything else: it is how a
receiver learns that it may be missing events."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from idp.ssf.models import SsfEvent
from tests.ssf.test_transmitter import (
    ADMIN,
    PUSH,
    SESSION_REVOKED,
    STREAM_UPDATED,
    Receiver,
    sessions_of,
    verify_set,
)
from tests.ssf.test_transmitter import collector as _collector
from tests.support.auth import AuthActions
from tests.support.waiting import wait_for

collector = _collector


@pytest.fixture
def rx(auth: AuthActions) -> Receiver:
    return Receiver(auth)


@pytest.fixture
def sid(auth: AuthActions, svc: Any) -> Iterator[str]:
    user = auth.user()
    auth.login()
    auth.tokens(auth.oauth_client())
    [session] = sessions_of(svc, user.id)
    yield session


def events_of(client: Any, got: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(event type, event) of each SET of a poll answer, in order, each verified."""
    out = []
    for token in got["sets"].values():
        claims = verify_set(client, token, "rx")
        [(kind, event)] = claims["events"].items()
        out.append((kind, event))
    return out


def test_an_operator_pause_is_told_to_the_receiver_while_other_events_are_held(
    rx: Receiver, svc: Any, client: Any, clock: Any, sid: str
) -> None:
    stream = rx.create()
    assert svc.actions.set_stream_status(stream["stream_id"], "paused", ADMIN, "maintenance")
    clock.advance(1)
    svc.actions.kill_session(sid, ADMIN, "held while paused")
    clock.advance(1)
    got = rx.poll(stream)
    [token] = got["sets"].values()
    claims = verify_set(client, token, "rx")
    assert claims["sub_id"] == {"format": "opaque", "id": stream["stream_id"]}
    assert claims["events"] == {STREAM_UPDATED: {"status": "paused", "reason": "maintenance"}}
    assert rx.poll(stream, ack=list(got["sets"]))["sets"] == {}
    assert svc.actions.set_stream_status(stream["stream_id"], "enabled", ADMIN, "done")
    # Enabled again: what was held, then the news, in the order they happened.
    assert [kind for kind, _ in events_of(client, rx.poll(stream))] == [
        SESSION_REVOKED,
        STREAM_UPDATED,
    ]


def test_the_receivers_own_status_update_is_confirmed_by_an_event(
    rx: Receiver, client: Any
) -> None:
    stream = rx.create()
    resp = rx.call("POST", "/ssf/status", {"stream_id": stream["stream_id"], "status": "paused"})
    assert resp.status_code == 200
    assert events_of(client, rx.poll(stream)) == [(STREAM_UPDATED, {"status": "paused"})]


def test_disabling_drops_what_was_owed_but_says_so(
    rx: Receiver, svc: Any, client: Any, sid: str
) -> None:
    stream = rx.create()
    svc.actions.kill_session(sid, ADMIN, "owed")
    assert svc.actions.set_stream_status(stream["stream_id"], "disabled", ADMIN, "abuse")
    assert events_of(client, rx.poll(stream)) == [
        (STREAM_UPDATED, {"status": "disabled", "reason": "abuse"})
    ]


def test_setting_the_status_it_already_has_sends_nothing(rx: Receiver, svc: Any) -> None:
    stream = rx.create()
    assert svc.actions.set_stream_status(stream["stream_id"], "enabled", ADMIN, "again")
    assert rx.poll(stream)["sets"] == {}


def test_a_refused_status_changes_nothing_and_sends_nothing(rx: Receiver, svc: Any) -> None:
    stream = rx.create()
    resp = rx.call("POST", "/ssf/status", {"stream_id": stream["stream_id"], "status": "off"})
    assert resp.status_code == 400
    with svc.db.read() as s:
        assert s.scalar(select(func.count()).select_from(SsfEvent)) == 0


def test_a_paused_push_stream_still_pushes_its_stream_updated_event(
    rx: Receiver, svc: Any, client: Any, sid: str, collector: Any
) -> None:
    stream = rx.create(delivery={"method": PUSH, "endpoint_url": collector.url})
    assert svc.actions.set_stream_status(stream["stream_id"], "paused", ADMIN, "maintenance")
    svc.actions.kill_session(sid, ADMIN, "held while paused")
    wait_for(lambda: collector.received)
    svc.pusher.deliver_due()  # a round that could push the held kill, if it did
    [(_, token)] = collector.received
    assert verify_set(client, token, "rx")["events"] == {
        STREAM_UPDATED: {"status": "paused", "reason": "maintenance"}
    }
