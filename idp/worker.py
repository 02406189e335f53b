"""A delivery worker: one background thread per process that sends what is owed
(back-channel logouts, Shared Signals pushes) and sleeps when nothing is.

``kick`` starts the thread if it is not running and wakes it; the thread calls ``step``
(by default one ``deliver_due`` round) until it reports nothing pending, then waits a
minute for another kick before it ends. A round that fails is logged and tried again.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy.exc import OperationalError

from idp.outage import DATABASE

log = logging.getLogger(__name__)


class Worker:
    name = "worker"  # the thread's name
    what = "delivery"  # for the log
    retry_every = 5.0  # seconds between rounds while work is pending

    def __init__(self) -> None:
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def deliver_due(self) -> bool:
        """One round; True while something is still owed."""
        raise NotImplementedError

    def step(self) -> bool:
        """What the thread does each time it wakes; True while something is still owed.
        A worker whose sends finish on their own (the Shared Signals pusher) returns
        without waiting for them and sets ``_wake`` when one does."""
        return self.deliver_due()

    def kick(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                pending = self.step()
            except OperationalError as exc:
                # The database is down: one line per outage, not a traceback a round.
                DATABASE.failed(exc)
                pending = True
            except Exception:  # noqa: BLE001 - the worker must survive a bad moment
                log.exception("%s round failed", self.what)
                pending = True
            if not pending and not self._wake.wait(timeout=60):
                return
            if pending:
                self._wake.wait(timeout=self.retry_every)
