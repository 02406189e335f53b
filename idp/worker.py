"""A delivery worker: one background thread per process that sends what is owed
(back-channel logouts, Shared Signals pushes) and sleeps when nothing is.

``kick`` starts the thread if it is not running and wakes it; the thread calls ``step``
(by default one ``deliver_due`` round) until it reports nothing pending, then waits a
minute for another kick before it ends. A round that fails is logged and tried again.
``stop`` ends it for good (the app is being torn down: nothing may use its database
afterwards, or a round would open connections in a pool nobody closes).
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
        self._stopped = False

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
            if self._stopped:
                return
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Ends the thread after its current round and waits for it; later kicks do
        nothing."""
        with self._lock:
            self._stopped = True
            thread = self._thread
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        while not self._stopped:
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
            if self._stopped or (not pending and not self._wake.wait(timeout=60)):
                return
            if pending:
                self._wake.wait(timeout=self.retry_every)
