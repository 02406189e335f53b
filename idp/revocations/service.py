"""Revoking a session id or token id everywhere idp answers (SPEC §6 "Revocation feed").

A revocation goes on the deny list (the short-lived state store that introspection and
userinfo consult) and into an ordered log that resource servers follow at
``/revocations``, so a leaked JWT stops passing offline verification within about a
second instead of living until ``exp``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select

from idp.clock import Clock, epoch
from idp.db import Database
from idp.revocations.models import RevocationEntry
from idp.state.store import StateStore

KINDS = ("sid", "jti")


@dataclass(frozen=True)
class Entry:
    id: int
    kind: str
    value: str
    expires_at: dt.datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.kind,
            "value": self.value,
            "exp": epoch(self.expires_at),
        }


class Revocations:
    def __init__(self, db: Database, state: StateStore, clock: Clock) -> None:
        self.db = db
        self.state = state
        self.clock = clock

    def revoke(self, kind: str, value: str, expires_at: dt.datetime) -> None:
        """Denies ``kind:value`` until ``expires_at`` and appends it to the feed."""
        assert kind in KINDS
        if expires_at <= self.clock.now():
            return  # already dead: nothing to deny
        # The deny list first: it is what introspection decides on (fail closed).
        self.state.deny(f"{kind}:{value}", expires_at)
        with self.db.transaction() as s:
            s.add(
                RevocationEntry(
                    kind=kind, value=value[:128], expires_at=expires_at, created_at=self.clock.now()
                )
            )

    def since(self, after: int, limit: int = 500) -> list[Entry]:
        """Unexpired entries with an id above ``after``, oldest first."""
        with self.db.read() as s:
            rows = s.scalars(
                select(RevocationEntry)
                .where(RevocationEntry.id > after, RevocationEntry.expires_at > self.clock.now())
                .order_by(RevocationEntry.id)
                .limit(limit)
            )
            return [Entry(r.id, r.kind, r.value, r.expires_at) for r in rows]

    def last_id(self) -> int:
        with self.db.read() as s:
            return int(
                s.scalar(select(RevocationEntry.id).order_by(RevocationEntry.id.desc()).limit(1))
                or 0
            )

    def purge(self) -> int:
        with self.db.transaction() as s:
            result: Any = s.execute(
                delete(RevocationEntry).where(RevocationEntry.expires_at <= self.clock.now())
            )
            return int(result.rowcount or 0)
