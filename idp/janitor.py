"""Purges what has expired: deny-list and counter entries, used or expired authorization
codes, access-token records of families, and retired keys past their last token
(as Hydra's janitor does). Runs from `idp janitor` and, at most every few minutes, in
the background of each serving process."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from typing import Any

from sqlalchemy import delete

from idp.oauth.models import AuthorizationCode
from idp.refresh.models import FamilyAccessToken

log = logging.getLogger(__name__)
EVERY_SECONDS = 300.0
# Used codes are kept a while after expiry so that a late replay still revokes.
CODE_GRACE = dt.timedelta(hours=1)


def purge(svc: Any) -> dict[str, int]:
    now = svc.clock.now()
    counts = {"state_entries": svc.state.purge_expired(), "revocations": svc.revocations.purge()}
    with svc.db.transaction() as s:
        result: Any = s.execute(
            delete(AuthorizationCode).where(AuthorizationCode.expires_at < now - CODE_GRACE)
        )
        counts["authorization_codes"] = int(result.rowcount or 0)
        result = s.execute(delete(FamilyAccessToken).where(FamilyAccessToken.expires_at < now))
        counts["family_access_tokens"] = int(result.rowcount or 0)
    svc.keys.purge()
    return counts


class Janitor:
    """Runs :func:`purge` in a background thread, at most every ``EVERY_SECONDS``."""

    def __init__(self, svc: Any) -> None:
        self.svc = svc
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def maybe_run(self) -> None:
        if time.monotonic() - self._last < EVERY_SECONDS:
            return  # the common case, without taking the lock
        with self._lock:
            if time.monotonic() - self._last < EVERY_SECONDS:
                return
            self._last = time.monotonic()
        threading.Thread(target=self._run, name="janitor", daemon=True).start()

    def _run(self) -> None:
        try:
            counts = purge(self.svc)
            log.info("janitor purged %s", counts)
            # Back-channel logout deliveries left pending by a restart are retried too.
            self.svc.notifier.kick()
        except Exception:  # noqa: BLE001 - a failed purge is retried next round
            log.exception("janitor failed")
