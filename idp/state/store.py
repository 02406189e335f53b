"""Short-lived shared state (SPEC §7): rate-limit counters, replay caches and markers.

What denies a token is not here: it must survive a Redis restart, so it lives in SQL
(idp.revocations).

One small interface, two implementations: Redis when ``[redis] url`` is set, the
SQL database otherwise. Both are shared by every idp process, so a kill or a
counter seen by one worker is seen by all. Errors propagate: callers that decide
access fail closed (the app answers 503).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

from sqlalchemy import bindparam, case, delete, func, select

from idp.clock import Clock
from idp.db import Database, RawStatement, UTCDateTime, upsert_insert
from idp.state.models import StateEntry


class StateStore(Protocol):
    def deny(self, key: str, until: dt.datetime) -> None:
        """Puts ``key`` (``jti:...`` or ``sid:...``) on the deny list until ``until``."""
        ...

    def is_denied(self, key: str) -> bool:
        """True while ``key`` is on the deny list."""
        ...

    def hit(self, key: str, window_seconds: int) -> int:
        """Atomically counts one event in a fixed window; returns the count so far."""
        ...

    def count(self, key: str) -> int:
        """The events counted for ``key`` in its current window (0 when none)."""
        ...

    def reset(self, *keys: str) -> None:
        """Forgets ``keys`` (counters or deny entries), in one statement or round trip."""
        ...

    def add_once(self, key: str, ttl_seconds: int) -> bool:
        """Atomically records ``key``; False when it was already there (replay)."""
        ...

    def purge_expired(self) -> int:
        """Deletes entries past their expiry; returns how many (0 where the store expires
        entries itself)."""
        ...

    def ping(self) -> None:
        """Raises when the store cannot be reached."""
        ...


class SqlStateStore:
    """The embedded default: one table, upserts that are atomic on SQLite and PostgreSQL.

    Its statements are built once and run as :class:`RawStatement`: a login counts
    attempts, reads a counter and resets them, and through an ORM session each of those
    cost several times the statement (issue 8's profile of a login)."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        postgres = db.engine.dialect.name == "postgresql"
        insert = upsert_insert(db.engine.dialect.name)
        live = StateEntry.expires_at > bindparam("now")
        until: Any = bindparam("until", type_=UTCDateTime)
        self._counted = RawStatement(
            insert(StateEntry)
            .values(key=bindparam("key"), value=1, expires_at=until)
            .on_conflict_do_update(
                index_elements=[StateEntry.key],
                set_={
                    "value": case((live, StateEntry.value + bindparam("step")), else_=1),
                    "expires_at": case((live, StateEntry.expires_at), else_=until),
                },
            )
            .returning(StateEntry.value)
        )
        # A deny entry keeps the later of two expiries.
        later = func.greatest if postgres else func.max
        self._deny = RawStatement(
            insert(StateEntry)
            .values(key=bindparam("key"), value=1, expires_at=until)
            .on_conflict_do_update(
                index_elements=[StateEntry.key],
                set_={"value": 1, "expires_at": later(StateEntry.expires_at, until)},
            )
        )
        self._count = RawStatement(
            select(StateEntry.value).where(
                StateEntry.key == bindparam("key"), StateEntry.expires_at > bindparam("now")
            )
        )
        self._forget: dict[int, RawStatement] = {}  # by the number of keys

    def _upsert(self, key: str, window: int, counting: bool) -> int:
        now = self.clock.now()
        until = now + dt.timedelta(seconds=window)
        params = {"key": key, "now": now, "until": until, "step": 1 if counting else 0}
        with self.db.raw_transaction() as cur:
            return int(cur.one_or_none(self._counted, params).value)

    def deny(self, key: str, until: dt.datetime) -> None:
        if until <= self.clock.now():
            return
        with self.db.raw_transaction() as cur:
            cur.execute(self._deny, {"key": key, "until": until})

    def is_denied(self, key: str) -> bool:
        return self.count(key) > 0

    def hit(self, key: str, window_seconds: int) -> int:
        return self._upsert(key, window_seconds, counting=True)

    def count(self, key: str) -> int:
        with self.db.raw_transaction(read_only=True) as cur:
            row = cur.one_or_none(self._count, {"key": key, "now": self.clock.now()})
        return int(row.value) if row else 0

    def reset(self, *keys: str) -> None:
        if not keys:
            return
        forget = self._forget.get(len(keys))
        if forget is None:
            names = [bindparam(f"k{i}", type_=StateEntry.key.type) for i in range(len(keys))]
            forget = RawStatement(delete(StateEntry).where(StateEntry.key.in_(names)))
            self._forget[len(keys)] = forget
        with self.db.raw_transaction() as cur:
            cur.execute(forget, {f"k{i}": key for i, key in enumerate(keys)})

    def add_once(self, key: str, ttl_seconds: int) -> bool:
        return self._upsert(key, ttl_seconds, counting=True) == 1

    def purge_expired(self) -> int:
        with self.db.transaction() as s:
            result = s.execute(delete(StateEntry).where(StateEntry.expires_at <= self.clock.now()))
        return int(getattr(result, "rowcount", 0) or 0)

    def ping(self) -> None:
        self.count("ping")


class RedisStateStore:
    """Redis implementation; keys expire on their own, so purge has nothing to do.

    Expiry uses Redis' own clock: the injected clock only decides deny-list lengths.
    """

    def __init__(self, url: str, prefix: str, clock: Clock) -> None:
        from idp.state.redis_client import connect

        self.redis = connect(url)
        self.prefix = prefix
        self.clock = clock

    def _k(self, key: str) -> str:
        return self.prefix + key

    def deny(self, key: str, until: dt.datetime) -> None:
        ms = int((until - self.clock.now()).total_seconds() * 1000)
        if ms <= 0:
            return
        k = self._k(key)
        # Keep the longer of two overlapping deny entries.
        current = self.redis.pttl(k)
        if int(current) < ms:
            self.redis.set(k, 1, px=ms)

    def is_denied(self, key: str) -> bool:
        return bool(self.redis.exists(self._k(key)))

    def hit(self, key: str, window_seconds: int) -> int:
        k = self._k(key)
        pipe = self.redis.pipeline()
        pipe.incr(k)
        pipe.expire(k, window_seconds, nx=True)
        count, _ = pipe.execute()
        return int(count)

    def count(self, key: str) -> int:
        return int(self.redis.get(self._k(key)) or 0)

    def reset(self, *keys: str) -> None:
        if keys:
            self.redis.delete(*(self._k(k) for k in keys))

    def add_once(self, key: str, ttl_seconds: int) -> bool:
        return bool(self.redis.set(self._k(key), 1, ex=ttl_seconds, nx=True))

    def purge_expired(self) -> int:
        return 0

    def ping(self) -> None:
        self.redis.ping()
