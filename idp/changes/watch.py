"""Knowing, cheaply and on every request, whether what this process holds is stale.

Processes keep clients, signing keys, users and the deny list in memory (STYLE rule 14).
A change bumps its generation counter (idp.changes.models) *in the transaction that makes
the change*, so a counter never announces a change that rolled back and never misses one
that committed. Before a process trusts its memory it asks :meth:`Generations.check`,
which re-reads the counters only when a cheap signal says they may have moved:

- SQLite: ``PRAGMA data_version`` on a connection of its own, which moves whenever any
  other connection (any process) commits; a local call, no I/O.
- Redis configured: a key incremented after each commit that bumped a counter; one GET.
- PostgreSQL without Redis: no signal; the counters are read on every check.

Whatever the signal says, the counters are re-read at least every ``MAX_AGE`` seconds, so
a lost increment (Redis restarted or failed over between a commit and its increment)
delays a change by at most that long. A change is therefore seen by every process, on
every machine, at its next check: the request after the changing request has answered.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from idp.changes.models import NAMES, Generation
from idp.db import Database, upsert_insert
from idp.outage import Outage

log = logging.getLogger(__name__)

MAX_AGE = 1.0
BUMPED = "idp.changes.bumped"
# Within one request the counters are looked at once: None outside a request, False
# until the first look, True after it.
_LOOKED: ContextVar[bool | None] = ContextVar("idp_changes_looked", default=None)


@contextmanager
def one_request() -> Iterator[None]:
    """Marks the code inside as one request (idp.front, Flask's request hooks)."""
    token = _LOOKED.set(False)
    try:
        yield
    finally:
        _LOOKED.reset(token)


class Signal(Protocol):
    def read(self) -> object:
        """A value that differs from the last one read whenever a counter may have moved
        since (it may also differ when none did)."""
        ...

    def touch(self) -> None:
        """Called after a transaction that bumped a counter has committed."""
        ...


class NoSignal:
    """PostgreSQL without Redis: every check reads the counters."""

    def read(self) -> object:
        return object()

    def touch(self) -> None:
        pass


class SqliteSignal:
    """``PRAGMA data_version`` on a connection used for nothing else (opened in each
    process: a SQLite connection must not cross a fork). The counters are read on it too,
    which costs microseconds where a pooled session costs a hundred."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            self._conn = sqlite3.connect(
                self._path, check_same_thread=False, isolation_level=None, timeout=3
            )
            self._pid = os.getpid()
        return self._conn

    def read(self) -> object:
        with self._lock:
            return self._connection().execute("PRAGMA data_version").fetchone()[0]

    def counters(self) -> dict[str, int]:
        with self._lock:
            rows = self._connection().execute("SELECT name, value FROM generations").fetchall()
        return {str(name): int(value) for name, value in rows}

    def touch(self) -> None:
        pass  # the commit itself moves data_version for every other connection


class RedisSignal:
    def __init__(self, client: Any, key: str) -> None:
        self._redis = client
        self._key = key
        self._outage = Outage(
            "Redis (change signals)", f"other processes see changes within {MAX_AGE}s"
        )

    def read(self) -> object:
        try:
            return self._redis.get(self._key)
        except Exception:  # noqa: BLE001 - Redis down: fall back to reading the counters
            return object()

    def touch(self) -> None:
        try:
            self._redis.incr(self._key)
        except Exception as exc:  # noqa: BLE001 - readers fall back to MAX_AGE
            self._outage.failed(exc)
        else:
            self._outage.ok()


def bump(s: Session, name: str) -> None:
    """Marks ``name`` changed, inside the caller's transaction (see the module doc)."""
    assert name in NAMES
    stmt = upsert_insert(s.get_bind().dialect.name)(Generation).values(name=name, value=1)
    s.execute(
        stmt.on_conflict_do_update(
            index_elements=[Generation.name], set_={"value": Generation.value + 1}
        )
    )
    s.info.setdefault(BUMPED, set()).add(name)


class Generations:
    """This process's view of the counters, and who to tell when one moves."""

    def __init__(
        self, db: Database, signal: Signal, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.db = db
        self.signal = signal
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._seen: dict[str, int] = {}
        self._signal_seen: object = object()
        self._checked_at = float("-inf")
        self._stale = True
        self._listeners: dict[str, list[Callable[[], None]]] = {name: [] for name in NAMES}
        event.listen(db.sessionmaker, "after_commit", self._after_commit)

    def on_change(self, name: str, listener: Callable[[], None]) -> None:
        self._listeners[name].append(listener)

    def bump_on_flush(self, model: type, name: str) -> None:
        """Bumps ``name`` in every transaction that adds, changes or deletes a ``model``
        row through the ORM, so no code path can change one and forget to say so."""

        def before_flush(session: Session, _context: Any, _instances: Any) -> None:
            changed = (
                any(isinstance(o, model) for o in session.new)
                or any(isinstance(o, model) for o in session.deleted)
                or any(isinstance(o, model) and session.is_modified(o) for o in session.dirty)
            )
            if changed and name not in session.info.get(BUMPED, ()):
                bump(session, name)

        event.listen(self.db.sessionmaker, "before_flush", before_flush)

    def _after_commit(self, session: Session) -> None:
        if session.info.pop(BUMPED, None):
            self._stale = True  # this process sees its own change at once
            self.signal.touch()

    def check(self) -> None:
        """Tells the listeners of every counter that moved since the last check. Within a
        request it looks once (every cache the request uses calls it)."""
        looked = _LOOKED.get()
        if looked:
            return
        if looked is False:
            _LOOKED.set(True)
        signal = self.signal.read()  # before the counters: a change in between is re-read
        if (
            not self._stale
            and signal == self._signal_seen
            and self._monotonic() - self._checked_at < MAX_AGE
        ):
            return
        with self._lock:
            self._stale = False
            values = self._counters()
            changed = [name for name in NAMES if values.get(name) != self._seen.get(name)]
            self._seen, self._signal_seen = values, signal
            self._checked_at = self._monotonic()
        for name in changed:
            for listener in self._listeners[name]:
                listener()

    def _counters(self) -> dict[str, int]:
        read = getattr(self.signal, "counters", None)
        if read is not None:
            return dict(read())
        with self.db.reading() as conn:
            return {
                str(name): int(value)
                for name, value in conn.execute(select(Generation.name, Generation.value))
            }


def signal_for(database_url: str, redis_url: str, redis_prefix: str) -> Signal:
    """The cheapest signal the deployment offers (see the module doc)."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            return SqliteSignal(url.database)
        return NoSignal()
    if redis_url:
        from idp.state.redis_client import connect

        client = connect(redis_url)
        return RedisSignal(client, redis_prefix + "generations")
    return NoSignal()
