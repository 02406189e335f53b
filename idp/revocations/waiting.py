"""Long polls of the revocation feed, kept off the token path (issue 9, SPEC §6).

A WSGI request that waits holds a thread. ``idp serve`` therefore gives every worker
``[server] feed_waits`` threads beyond its ``[server] threads`` request threads
(idp.serve), and :class:`FeedWaits` lets at most that many polls wait at once in the
process, at most ``[server] feed_waits_per_client`` of them for one client: a poll beyond
either cap is answered ``429`` with ``Retry-After`` at once. However many polls are open,
the request threads stay free for ``/token``.

Waiting polls do not query the database. One watcher thread per process, running only
while a poll waits, asks the change counters (idp.changes.watch) every ``TICK`` seconds
whether the revocation log moved, lets the in-process deny list catch up, and wakes the
polls whose cursor the log has passed. A kill reaches a waiting poll within ``TICK``
plus the signal's delay (at most idp.changes.watch.MAX_AGE): under a second.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

TICK = 0.2  # seconds between two looks of the watcher while polls wait
RETRY_AFTER = 5  # seconds a refused poll is told to wait


class Busy(Exception):
    """Too many polls wait already (in the process, or of this client)."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


class FeedWaits:
    """Admission of waiting polls and the one thread that wakes them."""

    def __init__(
        self,
        latest: Callable[[], int],
        max_total: int,
        max_per_client: int,
        tick: float = TICK,
    ) -> None:
        """``latest`` returns the id of the newest revocation this process knows of,
        after looking for new ones (DenyList.latest)."""
        self._latest = latest
        self.max_total = max_total
        self.max_per_client = max_per_client
        self._tick = tick
        self._cond = threading.Condition()
        self._waiting: Counter[str] = Counter()
        self._known = 0
        self._watcher: threading.Thread | None = None
        self._pid = 0
        self._stopped = threading.Event()

    @property
    def waiting(self) -> int:
        with self._cond:
            return sum(self._waiting.values())

    @contextmanager
    def slot(self, client_id: str) -> Iterator[None]:
        """Admits one waiting poll of ``client_id`` for the block, or raises Busy."""
        with self._cond:
            if sum(self._waiting.values()) >= self.max_total:
                raise Busy("too many polls are waiting on this server")
            if self._waiting[client_id] >= self.max_per_client:
                raise Busy("this client has too many polls waiting")
            self._waiting[client_id] += 1
            self._ensure_watcher()
        try:
            yield
        finally:
            with self._cond:
                self._waiting[client_id] -= 1
                if self._waiting[client_id] <= 0:
                    del self._waiting[client_id]

    def wait_past(self, after: int, deadline: float) -> int | None:
        """Waits until a revocation newer than id ``after`` is known and returns the
        newest id known, or None at ``deadline`` (time.monotonic; call inside
        :meth:`slot`)."""
        with self._cond:
            while self._known <= after:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
            return self._known

    def stop(self, timeout: float = 5.0) -> None:
        """Ends the watcher for good and waits for it: the app is being torn down, and
        nothing may read its database afterwards (a read would open a connection in a
        pool nobody closes). Polls still waiting, and any admitted later, are no longer
        woken: each answers at its deadline."""
        with self._cond:
            self._stopped.set()
            watcher = self._watcher
        if watcher is not None and watcher is not threading.current_thread():
            watcher.join(timeout)

    def _ensure_watcher(self) -> None:
        if self._stopped.is_set():
            return
        # A thread does not survive a fork: each worker process starts its own.
        if self._watcher is None or self._pid != os.getpid() or not self._watcher.is_alive():
            self._pid = os.getpid()
            self._watcher = threading.Thread(target=self._watch, name="feed-waits", daemon=True)
            self._watcher.start()

    def _watch(self) -> None:
        failing = False
        while True:
            with self._cond:
                if not self._waiting or self._stopped.is_set():
                    self._watcher = None
                    return
            try:
                latest = self._latest()
                if failing:
                    log.warning("revocation feed: the database answers again")
                    failing = False
            except Exception:  # noqa: BLE001 - one line per outage, polls keep waiting
                if not failing:
                    log.warning("revocation feed: cannot read the revocation log; retrying")
                    failing = True
                latest = self._known
            with self._cond:
                if latest > self._known:
                    self._known = latest
                    self._cond.notify_all()
            self._stopped.wait(self._tick)
