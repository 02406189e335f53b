"""Redis when it answers, the database when it does not (issue 9: degrade, don't fall
over).

Nothing that denies a token lives in the state store (idp.revocations), so a Redis outage
costs only short-lived state: while Redis is unreachable, login throttling counters and
replay markers are kept in the database (the SQL store), and the switch back happens
when Redis answers again. Counters restart at the switch (a window's count is lost,
never a revocation). The outage is logged once when it starts and once when it ends, and
shows in ``/readyz``'s body (idp.health) without failing it.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from idp.outage import REDIS
from idp.state.store import RedisStateStore, SqlStateStore

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRY_SECONDS = 5.0  # while Redis is down, it is tried again this often


class FallbackStateStore:
    def __init__(
        self,
        primary: RedisStateStore,
        fallback: SqlStateStore,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        import redis

        self.primary = primary
        self.fallback = fallback
        self._monotonic = monotonic
        self._errors = (redis.ConnectionError, redis.TimeoutError)
        self._lock = threading.Lock()
        self._down_until: float | None = None  # set while Redis is thought down

    @property
    def degraded(self) -> bool:
        return self._down_until is not None

    def _use(self, on_redis: Callable[[RedisStateStore], T], on_sql: Callable[[], T]) -> T:
        down = self._down_until
        if down is not None and self._monotonic() < down:
            return on_sql()
        try:
            result = on_redis(self.primary)
        except self._errors as exc:
            with self._lock:
                if self._down_until is None:
                    log.warning(
                        "Redis unreachable (%s): short-lived state goes to the database "
                        "until it answers",
                        type(exc).__name__,
                    )
                self._down_until = self._monotonic() + RETRY_SECONDS
            return on_sql()
        if down is not None:
            with self._lock:
                if self._down_until is not None:
                    log.warning("Redis answers again: short-lived state is back in Redis")
                self._down_until = None
        REDIS.ok()  # a refusal that reached requests (idp.outage) is over too
        return result

    def deny(self, key: str, until: dt.datetime) -> None:
        self._use(lambda r: r.deny(key, until), lambda: self.fallback.deny(key, until))

    def is_denied(self, key: str) -> bool:
        # A marker set during an outage is in the database: look there too.
        return self._use(lambda r: r.is_denied(key), lambda: False) or (
            self.fallback.is_denied(key)
        )

    def hit(self, key: str, window_seconds: int) -> int:
        return self._use(
            lambda r: r.hit(key, window_seconds), lambda: self.fallback.hit(key, window_seconds)
        )

    def count(self, key: str) -> int:
        return self._use(lambda r: r.count(key), lambda: self.fallback.count(key))

    def reset(self, *keys: str) -> None:
        self._use(lambda r: r.reset(*keys), lambda: self.fallback.reset(*keys))

    def add_once(self, key: str, ttl_seconds: int) -> bool:
        return self._use(
            lambda r: r.add_once(key, ttl_seconds),
            lambda: self.fallback.add_once(key, ttl_seconds),
        )

    def purge_expired(self) -> int:
        return self.fallback.purge_expired()

    def ping(self) -> None:
        """Raises when Redis cannot be reached (the database is checked on its own)."""
        self._use(lambda r: r.ping(), self._raise_down)

    @staticmethod
    def _raise_down() -> None:
        raise ConnectionError("Redis is unreachable")
