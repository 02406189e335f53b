"""``/readyz`` fails only when tokens cannot be issued (the database); a Redis outage
degrades to the database and shows in the body (issue 9 item 5, SPEC "HTTP endpoints").

Outages are made with a TCP proxy in front of the machine's PostgreSQL and Redis
(tests.support.proxy), never by stopping the shared servers."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests.support.proxy import Proxy, proxied_app


def test_readyz_is_ok_while_storage_answers(client: Any, backend: dict[str, Any]) -> None:
    resp = client.get("/readyz")
    assert resp.status_code == 200
    expected = {"database": "ok"} | ({"redis": "ok"} if backend["redis"]["url"] else {})
    assert resp.json == {"status": "ok", "checks": expected}


@pytest.fixture
def proxied(backend: dict[str, Any], tmp_path: Path) -> Iterator[tuple[Flask, Proxy, Proxy]]:
    with proxied_app(backend, tmp_path) as found:
        yield found


def test_a_redis_outage_degrades_readiness_and_state_goes_to_the_database(
    proxied: tuple[Flask, Proxy, Proxy], caplog: pytest.LogCaptureFixture
) -> None:
    app, _, redis = proxied
    state = app.extensions["idp"].state
    client = app.test_client()
    redis.set("refuse")
    with caplog.at_level(logging.WARNING, logger="idp.state.fallback"):
        resp = client.get("/readyz")
        assert resp.status_code == 200
        assert resp.json == {
            "status": "degraded",
            "checks": {"database": "ok", "redis": "unavailable"},
        }
        # Throttling still counts, in the database, and says so once, not per request.
        assert [state.hit("login:u:chaos", 60) for _ in range(3)] == [1, 2, 3]
        assert state.count("login:u:chaos") == 3
        assert "\nidp_redis_degraded 1\n" in client.get("/metrics").get_data(as_text=True)
    outage_lines = [r for r in caplog.records if "Redis unreachable" in r.getMessage()]
    assert len(outage_lines) == 1


def test_readiness_returns_when_redis_answers_again(
    proxied: tuple[Flask, Proxy, Proxy], monkeypatch: pytest.MonkeyPatch
) -> None:
    from idp.state import fallback

    monkeypatch.setattr(fallback, "RETRY_SECONDS", 0.0)
    app, _, redis = proxied
    client = app.test_client()
    redis.set("refuse")
    assert client.get("/readyz").get_json()["status"] == "degraded"
    redis.set("pass")
    resp = client.get("/readyz")
    assert resp.status_code == 200 and resp.get_json()["status"] == "ok"
    assert "\nidp_redis_degraded 0\n" in client.get("/metrics").get_data(as_text=True)


@pytest.mark.parametrize("mode", ["refuse", "hang"])
def test_readyz_fails_without_the_database_and_does_not_hang(
    proxied: tuple[Flask, Proxy, Proxy], mode: str
) -> None:
    app, db, _ = proxied
    client = app.test_client()
    db.set(mode)
    resp = client.get("/readyz")
    assert resp.status_code == 503
    assert resp.get_json()["status"] == "unavailable"
    assert resp.get_json()["checks"]["database"] == "unavailable"
    metrics = client.get("/metrics")
    assert metrics.status_code == 200, "metrics are still read during an outage"
    assert "\nidp_database_outage 1\n" in metrics.get_data(as_text=True)
    db.set("pass")
    assert client.get("/readyz").status_code == 200
