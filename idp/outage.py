"""One log line when storage stops answering and one when it answers again, instead of
an error (or a traceback) for every request in between (issue 9 item 5).

Each process tracks its own view: the first request that fails on the database logs
the start of the outage; the first connection the pool hands out afterwards (it pings
the database first: idp.db) logs its end, with how long it lasted and how many requests
were refused meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger(__name__)


class Outage:
    def __init__(self, what: str, meanwhile: str = "answering 503 until it is back") -> None:
        self.what = what
        self.meanwhile = meanwhile
        self._lock = threading.Lock()
        self._since: float | None = None
        self._refused = 0

    @property
    def ongoing(self) -> bool:
        return self._since is not None

    def failed(self, exc: BaseException) -> None:
        """A request failed because ``what`` did not answer."""
        with self._lock:
            self._refused += 1
            if self._since is not None:
                return
            self._since = time.monotonic()
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        log.error(
            "%s unavailable (%s: %s); %s",
            self.what,
            type(exc).__name__,
            first_line[:300],
            self.meanwhile,
        )

    def ok(self, *_: object) -> None:
        """``what`` answered: if an outage was on, it is over."""
        if self._since is None:
            return  # the common case, without the lock
        with self._lock:
            if self._since is None:
                return
            lasted, refused = time.monotonic() - self._since, self._refused
            self._since, self._refused = None, 0
        log.warning(
            "%s available again after %.1f s (%d failures meanwhile)",
            self.what,
            lasted,
            refused,
        )


# The database of this process (idp.front, idp.web and admin.api report to it).
DATABASE = Outage("database")
# Redis errors that reach a request (the state store falls back to the database on a
# lost connection, idp.state.fallback; a refusal such as READONLY or OOM reaches here);
# the state store reports each answer Redis gives.
REDIS = Outage("redis")
