"""The admin API's Shared Signals routes (issue 12 item 5): operators list streams with
their lag and errors, and pause, disable or enable one; audited, told to the receiver,
and bad input refused with a JSON error that changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from idp.operator import Actor
from idp.ssf import streams
from idp.ssf.models import SsfEvent
from tests.admin.test_api import Api, admin_token, assert_json_error, audit, row_counts
from tests.support.auth import AuthActions

STREAM_UPDATED = "https://schemas.openid.net/secevent/ssf/event-type/stream-updated"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def api(auth: AuthActions) -> Api:
    ops = auth.oauth_client(
        "ops",
        grant_types=["client_credentials"],
        admin_client=True,
        scope="idp:admin",
        redirect_uri="https://ops.example.test/x",
    )
    return Api(auth.client, admin_token(auth, ops))


@pytest.fixture
def stream_id(auth: AuthActions, svc: Any) -> str:
    auth.oauth_client(
        "rx", grant_types=["client_credentials"], scope="ssf", redirect_uri="https://rx.test/x"
    )
    with svc.db.transaction() as s:
        stream = streams.create(
            s,
            svc.clock.now(),
            "rx",
            {"delivery": {"method": streams.POLL}, "events_requested": []},
            svc.pusher.outbound,
        )
        return str(stream.id)


def owed(svc: Any, stream_id: str) -> list[SsfEvent]:
    with svc.db.read() as s:
        return list(s.query(SsfEvent).filter(SsfEvent.stream_id == stream_id))


def test_streams_are_listed_with_receiver_status_lag_and_errors(
    api: Api, svc: Any, clock: Any, stream_id: str
) -> None:
    assert svc.actions.set_stream_status(stream_id, "paused", Actor("root"), "maintenance")
    clock.advance(30)
    [listed] = api.ok("GET", "/ssf/streams")["streams"]
    assert listed["stream_id"] == stream_id and listed["receiver"] == "rx"
    assert listed["method"] == "poll" and listed["endpoint_url"] is None
    assert listed["status"] == "paused" and listed["status_reason"] == "maintenance"
    assert listed["owed"] == 1 and listed["lag_seconds"] == 30  # its stream-updated event
    assert listed["last_delivery_at"] is None and listed["last_error"] is None


def test_a_stream_is_paused_and_enabled_audited_and_its_receiver_told(
    api: Api, svc: Any, stream_id: str
) -> None:
    got = api.ok("POST", f"/ssf/streams/{stream_id}/status", {"status": "paused", "reason": "x"})
    assert got == {"stream_id": stream_id, "status": "paused", "reason": "x"}
    [event] = audit(api, action="ssf.stream_status")
    assert event["actor"] == "client:ops" and event["target"] == stream_id
    [told] = owed(svc, stream_id)
    assert told.event_type == STREAM_UPDATED
    assert told.claims["events"][STREAM_UPDATED] == {"status": "paused", "reason": "x"}
    enabled = api.ok("POST", f"/ssf/streams/{stream_id}/status", {"status": "enabled"})
    assert enabled["reason"] == "set by operator"
    [listed] = api.ok("GET", "/ssf/streams")["streams"]
    assert listed["status"] == "enabled"


def test_an_unknown_stream_is_404_and_nothing_is_audited(api: Api, svc: Any) -> None:
    before = row_counts(svc)
    resp = api.post(f"/ssf/streams/{'0' * 32}/status", {"status": "paused"})
    assert assert_json_error(resp, 404, "not_found")["error_description"] == "No such stream."
    assert row_counts(svc) == before


@pytest.mark.parametrize(
    ("kw", "status"),
    [
        ({"json": {}}, 400),
        ({"json": {"status": "off"}}, 400),
        ({"json": {"status": "PAUSED"}}, 400),
        ({"json": {"status": None}}, 400),
        ({"json": {"status": ["paused"]}}, 400),
        ({"json": {"status": "paused", "reason": "two\nlines"}}, 400),
        ({"json": {"status": "paused", "reason": "nul\x00"}}, 400),
        ({"json": {"status": "paused", "reason": "x" * 501}}, 400),
        ({"json": {"status": "paused", "reason": 5}}, 400),
        ({"json": {"status": "paused", "stream_id": "other"}}, 400),
        ({"json": {"status": "paused", "reason": "x" * 70000}}, 413),
        ({"data": "{", "headers": JSON}, 400),
        ({"data": '"paused"', "headers": JSON}, 400),
        ({"data": "status=paused"}, 415),
        ({}, 400),
    ],
)
def test_bad_status_changes_are_refused_and_change_nothing(
    api: Api, svc: Any, stream_id: str, kw: dict[str, Any], status: int
) -> None:
    before = row_counts(svc)
    assert_json_error(api.call("POST", f"/ssf/streams/{stream_id}/status", **kw), status)
    assert row_counts(svc) == before
    [listed] = api.ok("GET", "/ssf/streams")["streams"]
    assert listed["status"] == "enabled"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/ssf/streams/<script>/status", 404),
        ("POST", "/ssf/streams/" + "a" * 65 + "/status", 404),
        ("POST", "/ssf/streams/..%2F..%2Fetc/status", 404),
        ("GET", "/ssf/streams/{id}/status", 405),
        ("POST", "/ssf/streams", 405),
        ("GET", "/ssf/streams?limit=5", 400),
    ],
)
def test_bad_paths_and_methods_are_json_errors(
    api: Api, svc: Any, stream_id: str, method: str, path: str, status: int
) -> None:
    before = row_counts(svc)
    resp = api.call(method, path.replace("{id}", stream_id), {"status": "paused"})
    assert_json_error(resp, status)
    assert row_counts(svc) == before


def test_only_admin_tokens_change_streams(auth: AuthActions, svc: Any, stream_id: str) -> None:
    rx_token = auth.token(
        auth.oauth_client(
            "rx2", grant_types=["client_credentials"], scope="ssf", redirect_uri="https://r.test/x"
        ),
        {"grant_type": "client_credentials", "scope": "ssf"},
    ).get_json()["access_token"]
    for api in (Api(auth.client, None), Api(auth.client, rx_token)):
        resp = api.post(f"/ssf/streams/{stream_id}/status", {"status": "disabled"})
        assert resp.status_code in (401, 403)
    assert not owed(svc, stream_id)
