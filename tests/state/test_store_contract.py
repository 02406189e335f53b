"""One contract for the short-lived state store, run against SQLite, PostgreSQL and Redis
(SPEC §7, STYLE rule 4)."""

from __future__ import annotations

import datetime as dt
import threading
from contextlib import contextmanager

import pytest

from idp import migrate
from idp.db import Database
from idp.state.store import RedisStateStore, SqlStateStore
from tests.support.clock import FrozenClock
from tests.support.databases import REDIS_URL, clear_redis, postgres_database, redis_prefix


@contextmanager
def opened(kind, tmp_path):
    """A store of ``kind`` on throwaway storage, with the clock it decides expiries by."""
    clock = FrozenClock()
    if kind == "redis":
        prefix = redis_prefix()
        yield RedisStateStore(REDIS_URL, prefix, clock), clock
        clear_redis(prefix)
        return
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path}/state.db"
        migrate.upgrade(url)
        db = Database(url)
        yield SqlStateStore(db, clock), clock
        db.dispose()
        return
    with postgres_database() as url:
        migrate.upgrade(url)
        db = Database(url)
        yield SqlStateStore(db, clock), clock
        db.dispose()


@pytest.fixture(params=["sqlite", "postgresql", "redis"])
def store(request, tmp_path):
    with opened(request.param, tmp_path) as pair:
        yield pair


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_store(request, tmp_path):
    """The SQL stores only: they expire entries by the injected clock and purge them."""
    with opened(request.param, tmp_path) as pair:
        yield pair


def denied_at(s, clock, key, moment):
    """Whether ``key`` is still denied at ``moment``. The SQL stores expire entries by the
    injected clock, so it is moved there; Redis expires keys on its own clock, so the key's
    remaining time to live is compared instead of waiting."""
    ahead = (moment - clock.now()).total_seconds()
    if isinstance(s, RedisStateStore):
        return s.redis.pttl(s.prefix + key) > ahead * 1000
    clock.advance(ahead)
    return s.is_denied(key)


def test_denied_key_is_denied_until_its_expiry(store):
    s, clock = store
    start = clock.now()
    assert not s.is_denied("jti:a")
    s.deny("jti:a", start + dt.timedelta(seconds=30))
    assert s.is_denied("jti:a")
    assert not s.is_denied("jti:b")
    assert denied_at(s, clock, "jti:a", start + dt.timedelta(seconds=29))
    assert not denied_at(s, clock, "jti:a", start + dt.timedelta(seconds=31))


def test_deny_in_the_past_is_a_no_op(store):
    s, clock = store
    s.deny("sid:x", clock.now() - dt.timedelta(seconds=1))
    assert not s.is_denied("sid:x")


def test_deny_keeps_the_longer_expiry(store):
    s, clock = store
    start = clock.now()
    s.deny("sid:y", start + dt.timedelta(seconds=100))
    s.deny("sid:y", start + dt.timedelta(seconds=10))
    assert denied_at(s, clock, "sid:y", start + dt.timedelta(seconds=11)), (
        "the shorter expiry replaced the longer one"
    )
    assert not denied_at(s, clock, "sid:y", start + dt.timedelta(seconds=101))


def test_hits_count_within_a_window_and_reset(store):
    s, _ = store
    assert [s.hit("login:u:a", 60) for _ in range(3)] == [1, 2, 3]
    assert s.count("login:u:a") == 3
    s.reset("login:u:a")
    assert s.count("login:u:a") == 0


def test_reset_forgets_several_keys_at_once_and_no_others(store):
    s, _ = store
    for key in ("login:u:a", "login:u:a:gate", "login:u:b"):
        s.hit(key, 60)
    s.reset("login:u:a", "login:u:a:gate", "login:u:never-counted")
    assert [s.count(k) for k in ("login:u:a", "login:u:a:gate", "login:u:b")] == [0, 0, 1]
    s.reset()  # nothing to forget: no error, nothing changes
    assert s.count("login:u:b") == 1


def test_add_once_is_true_only_the_first_time(store):
    s, _ = store
    assert s.add_once("nonce:1", 60) is True
    assert s.add_once("nonce:1", 60) is False


def test_concurrent_add_once_has_exactly_one_winner(store):
    s, _ = store
    results = []
    barrier = threading.Barrier(8)

    def race():
        barrier.wait()
        results.append(s.add_once("race", 60))

    threads = [threading.Thread(target=race) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]


def test_sql_entries_expire_by_the_injected_clock_and_are_purged(sql_store):
    s, clock = sql_store
    s.hit("c", 60)
    s.deny("jti:z", clock.now() + dt.timedelta(seconds=5))
    clock.advance(61)
    assert s.count("c") == 0 and not s.is_denied("jti:z")
    assert s.hit("c", 60) == 1, "a new window starts after expiry"
    assert s.purge_expired() == 1


def test_ping_succeeds_when_reachable(store):
    store[0].ping()
