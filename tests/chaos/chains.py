"""Clients that follow refresh chains the way a client must, for the chaos trials."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
from sqlalchemy import func, select

from idp.audit.models import SecurityEvent
from idp.refresh.models import RefreshFamily
from tests.support.browserless import code_flow

REDIRECT = "http://127.0.0.1/cb"


class Chain:
    """One client following one refresh chain until told to stop."""

    def __init__(self, url: str, secret: str, token: str, counts: Counter[str]) -> None:
        self.url, self.secret, self.token, self.counts = url, secret, token, counts
        self.lost = ""

    def follow(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                resp = requests.post(
                    self.url + "/token",
                    data={"grant_type": "refresh_token", "refresh_token": self.token},
                    auth=("rp", self.secret),
                    timeout=15,
                )
            except requests.RequestException:
                self.counts["dropped"] += 1
                time.sleep(0.1)
                continue  # the same token again
            if resp.status_code >= 500:
                self.counts["5xx"] += 1
                time.sleep(0.1)
                continue
            if resp.status_code != 200:
                self.counts["4xx"] += 1
                self.lost = resp.text
                return
            self.counts["ok"] += 1
            self.token = resp.json()["refresh_token"]


@contextmanager
def following(url: str, secret: str, count: int, counts: Counter[str]) -> Iterator[list[Chain]]:
    """``count`` chains of client "rp", each started by a code flow against ``url`` and
    followed in its own thread until the block ends."""
    chains = [
        Chain(url, secret, code_flow(url, "rp", secret, REDIRECT)["refresh_token"], counts)
        for _ in range(count)
    ]
    stop = threading.Event()
    threads = [threading.Thread(target=c.follow, args=(stop,)) for c in chains]
    for t in threads:
        t.start()
    try:
        yield chains
    finally:
        stop.set()
        for t in threads:
            t.join(30)


def false_alarms(svc: Any) -> tuple[int, int]:
    """(security events recorded, families revoked): both 0 when no theft happened."""
    with svc.db.read() as s:
        reuse = int(s.scalar(select(func.count()).select_from(SecurityEvent)) or 0)
        revoked = int(
            s.scalar(
                select(func.count())
                .select_from(RefreshFamily)
                .where(RefreshFamily.revoked_at.is_not(None))
            )
            or 0
        )
    return reuse, revoked
