"""Waiting polls of the revocation feed: capped per process and per client, woken by one
watcher thread when the log moves (idp.revocations.waiting)."""

from __future__ import annotations

import threading
import time

import pytest

from idp.revocations.waiting import Busy, FeedWaits


class Log:
    """The newest revocation id, as DenyList.latest returns it."""

    def __init__(self) -> None:
        self.id = 0
        self.reads = 0
        self.fail = False

    def latest(self) -> int:
        self.reads += 1
        if self.fail:
            raise ConnectionError("database down")
        return self.id


def test_a_poll_beyond_the_process_cap_is_refused_and_a_freed_slot_admits_again():
    waits = FeedWaits(Log().latest, max_total=2, max_per_client=2)
    with waits.slot("a"), waits.slot("b"):
        with pytest.raises(Busy, match="server"), waits.slot("c"):
            pass
        assert waits.waiting == 2
    with waits.slot("c"):
        assert waits.waiting == 1
    assert waits.waiting == 0


def test_one_client_cannot_take_every_slot():
    waits = FeedWaits(Log().latest, max_total=10, max_per_client=2)
    with waits.slot("greedy"), waits.slot("greedy"):
        with pytest.raises(Busy, match="client"), waits.slot("greedy"):
            pass
        with waits.slot("other"):
            assert waits.waiting == 3


def test_waiting_polls_wake_when_the_log_moves_past_their_cursor():
    log = Log()
    log.id = 5
    waits = FeedWaits(log.latest, max_total=10, max_per_client=10, tick=0.01)
    woke: list[int | None] = []

    def poll(after: int) -> None:
        with waits.slot("rs"):
            woke.append(waits.wait_past(after, time.monotonic() + 20))

    threads = [threading.Thread(target=poll, args=(5,)) for _ in range(3)]
    for t in threads:
        t.start()
    while log.reads < 3:  # the watcher has looked a few times, and found nothing new
        time.sleep(0.01)
    assert woke == []
    log.id = 6
    for t in threads:
        t.join(20)
    assert woke == [6, 6, 6]


def test_a_poll_already_behind_the_log_returns_at_once_and_a_timeout_returns_none():
    log = Log()
    log.id = 9
    waits = FeedWaits(log.latest, max_total=10, max_per_client=10, tick=0.01)
    with waits.slot("rs"):
        assert waits.wait_past(3, time.monotonic() + 20) == 9
        assert waits.wait_past(9, time.monotonic() + 0.05) is None


def test_the_watcher_stops_when_no_poll_waits_and_survives_a_failing_database():
    log = Log()
    log.fail = True
    waits = FeedWaits(log.latest, max_total=10, max_per_client=10, tick=0.01)
    with waits.slot("rs"):
        assert waits.wait_past(0, time.monotonic() + 0.1) is None
        log.fail = False
        log.id = 1
        assert waits.wait_past(0, time.monotonic() + 20) == 1
        watcher = waits._watcher
        assert watcher is not None and watcher.is_alive()
    watcher.join(20)  # with no poll waiting, the watcher ends by itself
    assert not watcher.is_alive() and waits._watcher is None


def test_stop_ends_the_watcher_for_good_and_the_polls_answer_at_their_deadline():
    log = Log()
    waits = FeedWaits(log.latest, max_total=10, max_per_client=10, tick=0.01)
    answers: list[int | None] = []

    def poll() -> None:
        with waits.slot("rs"):
            answers.append(waits.wait_past(0, time.monotonic() + 1))

    waiting = threading.Thread(target=poll)
    waiting.start()
    deadline = time.monotonic() + 10
    while log.reads < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    watcher = waits._watcher
    assert watcher is not None and watcher.is_alive()

    waits.stop()
    assert not watcher.is_alive()
    reads = log.reads
    log.id = 1  # not seen any more: nothing looks
    waiting.join(5)
    assert not waiting.is_alive() and answers == [None]
    with waits.slot("rs"):  # a poll after the stop starts no watcher
        assert waits.wait_past(0, time.monotonic() + 0.1) is None
    assert waits._watcher is None and log.reads == reads


def test_closing_the_app_while_a_poll_waits_leaves_no_reader_of_its_database(svc):
    """The leak a flaky CI run showed (a ResourceWarning from a psycopg connection that
    the garbage collector found open, in whatever test ran then): the watcher of a poll
    still waiting at teardown read the database after the pool was disposed, opening a
    connection in a new pool that nobody closes."""
    from sqlalchemy import event

    answers: list[int | None] = []

    def poll() -> None:
        with svc.feed_waits.slot("rs"):
            answers.append(svc.feed_waits.wait_past(10**9, time.monotonic() + 2))

    waiting = threading.Thread(target=poll)
    waiting.start()
    deadline = time.monotonic() + 10
    while svc.feed_waits._watcher is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert svc.feed_waits._watcher is not None
    time.sleep(0.5)  # a few of the watcher's looks at the counters

    svc.close()
    opened: list[object] = []
    event.listen(svc.db.engine, "connect", lambda *args: opened.append(args))
    waiting.join(5)  # its deadline: 2 s after it began, several of the watcher's ticks
    assert not waiting.is_alive() and answers == [None]
    assert opened == [] and svc.db.engine.pool.checkedout() == 0
