"""Revoking a session id, a token id, or every token of a client or user issued before a
moment, everywhere idp answers (SPEC §6 "Revocation feed").

A revocation is one row of the revocation log, written in the transaction of the action
that revokes: it is what the in-process deny list of every idp process applies
(idp.revocations.denylist), and the feed resource servers follow at ``/revocations``, so
a leaked JWT stops passing offline verification within about a second instead of living
until ``exp``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from idp.changes.models import DENY
from idp.changes.watch import bump
from idp.clock import Clock, epoch
from idp.db import Database
from idp.revocations.models import RevocationEntry

KINDS = ("sid", "jti")  # one token or session
OWNER_KINDS = ("client", "user")  # every token of one, issued before a moment


@dataclass(frozen=True)
class Entry:
    id: int
    kind: str
    value: str
    expires_at: dt.datetime
    issued_before: int | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "type": self.kind,
            "value": self.value,
            "exp": epoch(self.expires_at),
        }
        if self.issued_before is not None:
            out["issued_before"] = self.issued_before
        return out


class Revocations:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def revoke(self, kind: str, value: str, expires_at: dt.datetime) -> None:
        """Revokes the ``sid`` or ``jti`` ``value`` until ``expires_at``, in a transaction
        of its own."""
        with self.db.transaction() as s:
            self.record(s, kind, value, expires_at)

    def revoke_all(self, kind: str, values: list[tuple[str, dt.datetime]]) -> None:
        """Revokes each (value, expires_at) of ``kind`` in one transaction."""
        if values:
            with self.db.transaction() as s:
                for value, expires_at in values:
                    self.record(s, kind, value, expires_at)

    def revoke_issued_before(
        self, kind: str, value: str, issued_before: int, expires_at: dt.datetime
    ) -> None:
        """Revokes every token of a client or user with ``iat`` below ``issued_before``,
        until ``expires_at`` (when the last of them has expired anyway)."""
        with self.db.transaction() as s:
            self.record(s, kind, value, expires_at, issued_before)

    def record(
        self,
        s: Session,
        kind: str,
        value: str,
        expires_at: dt.datetime,
        issued_before: int | None = None,
    ) -> None:
        """Writes the revocation inside the caller's transaction."""
        assert (kind in KINDS and issued_before is None) or (
            kind in OWNER_KINDS and issued_before is not None
        )
        now = self.clock.now()
        if expires_at <= now:
            return  # already dead: nothing to deny
        # The bump first: its row lock orders the ids of concurrent revocations by commit,
        # so whoever follows the log by id (processes, resource servers) misses none.
        bump(s, DENY)
        s.execute(
            insert(RevocationEntry).values(
                kind=kind,
                value=value[:128],
                expires_at=expires_at,
                issued_before=issued_before,
                created_at=now,
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
            return [Entry(r.id, r.kind, r.value, r.expires_at, r.issued_before) for r in rows]

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
