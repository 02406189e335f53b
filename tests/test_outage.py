"""An outage is logged once when it starts and once when it ends (idp.outage)."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
import redis
from flask import Flask
from sqlalchemy.exc import OperationalError

from idp.outage import DATABASE, REDIS, Outage
from idp.worker import Worker


def test_an_outage_logs_two_lines_however_many_requests_fail(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outage = Outage("database")
    with caplog.at_level(logging.WARNING, logger="idp.outage"):
        outage.ok()  # nothing was down: nothing to say
        for _ in range(50):
            outage.failed(ConnectionError("connection refused\nmore detail"))
        assert outage.ongoing
        outage.ok()
        outage.ok()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert lines[0].startswith("database unavailable (ConnectionError: connection refused)")
    assert "more detail" not in lines[0]
    assert lines[1].startswith("database available again after") and "(50 failures" in lines[1]
    assert not outage.ongoing


def test_a_redis_refusal_logs_once_however_many_requests_it_fails(
    app: Flask, client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # A refusal (READONLY during a failover, OOM) is not a lost connection, so the state
    # store cannot fall back: each request gets a 503, the log gets one line.
    @app.get("/test-redis-refuses")
    def refuses() -> str:
        raise redis.ReadOnlyError("READONLY You can't write against a read only replica.")

    try:
        with caplog.at_level(logging.WARNING, logger="idp"):
            for _ in range(20):
                assert client.get("/test-redis-refuses").status_code == 503
            REDIS.ok()  # the state store saw Redis answer
            REDIS.ok()
    finally:
        REDIS.ok()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert lines[0].startswith("redis unavailable (ReadOnlyError: READONLY")
    assert lines[1].startswith("redis available again after") and "(20 failures" in lines[1]


class Flaky(Worker):
    """A delivery worker whose database is down for its first ``down`` rounds."""

    what = "test delivery"
    retry_every = 0.0

    def __init__(self, down: int) -> None:
        super().__init__()
        self.down = down
        self.delivered = threading.Event()

    def deliver_due(self) -> bool:
        if self.down:
            self.down -= 1
            raise OperationalError("SELECT 1", {}, ConnectionError("connection refused"))
        DATABASE.ok()  # the pool's checkout does this when the database answers (idp.db)
        self.delivered.set()
        return False


def test_a_delivery_worker_logs_a_database_outage_once(caplog: pytest.LogCaptureFixture) -> None:
    worker = Flaky(down=30)
    try:
        with caplog.at_level(logging.WARNING):
            worker.kick()
            assert worker.delivered.wait(30)
    finally:
        DATABASE.ok()
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("idp")]
    assert len(lines) == 2, lines
    assert lines[0].startswith("database unavailable (OperationalError")
    assert lines[1].startswith("database available again") and "(30 failures" in lines[1]
    assert not any(r.exc_info for r in caplog.records)
