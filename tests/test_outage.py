"""An outage is logged once when it starts and once when it ends (idp.outage)."""

from __future__ import annotations

import logging

import pytest

from idp.outage import Outage


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
