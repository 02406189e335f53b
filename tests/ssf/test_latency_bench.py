"""The kill-latency benchmark (bench/ssf_latency.py, issue 12 item 6) runs end to end:
in each mode (idp's feed, SSF poll, SSF push) every kill is refused by every resource
server. Only that: its timings belong in bench/RESULTS.md, not in assertions."""

from __future__ import annotations

import pytest

from bench.ssf_latency import MODES, Options, measure

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("setup", ["sqlite", "postgresql"])
def test_every_kill_is_refused_by_every_resource_server(setup):
    opts = Options(
        receivers=3,
        seconds=3,
        setup=setup,
        rate=10,
        kill_every=0.7,
        sessions=3,
        processes=1,
        grace=30,
        workers=1,
    )
    summaries, runs, _ = measure(opts)
    assert [run.mode for run in runs] == list(MODES)
    for run, summary in zip(runs, summaries, strict=True):
        assert len(run.kills) >= 2, run.mode
        assert len(run.receivers) == 3
        for rx in run.receivers:
            for kill in run.kills:
                last_accepted, first_refused, _ = rx["seen"][kill.sid]
                assert first_refused is not None, (run.mode, rx["client_id"], kill.sid)
        assert summary.never_refused == 0 and summary.false_refusals == 0
        if run.mode == "push":
            assert {row["status"] for row in run.outbox} == {"delivered"}
            assert len(run.outbox) == len(run.kills) * 3
