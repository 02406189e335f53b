"""Writing audit events, and reading them out in order (``idp audit export``)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, insert, or_, select
from sqlalchemy.orm import Session

from idp.audit.models import AuditEvent, SecurityEvent
from idp.db import Base, Database, RawCursor, RawStatement, new_id

if TYPE_CHECKING:
    from idp.clock import Clock

EVENTS = Base.metadata.tables[AuditEvent.__tablename__]
ADD_EVENT = RawStatement(insert(EVENTS), [c.key for c in EVENTS.c])


def record(
    db: Session | RawCursor,
    *,
    at: dt.datetime,
    actor: str,
    action: str,
    target: str | None = None,
    reason: str | None = None,
    ip: str | None = None,
    **details: Any,
) -> None:
    """An audit event, in the caller's transaction: an ORM session's, or a hot path's
    raw one (the login's)."""
    values = {
        "at": at,
        "actor": actor[:200],
        "action": action,
        "target": target,
        "reason": (reason or None) and reason[:500],
        "ip": ip,
        "details": details,
    }
    if isinstance(db, RawCursor):
        db.execute(ADD_EVENT, {"id": new_id(), **values})
    else:
        db.add(AuditEvent(**values))


def security_event(
    db: Database,
    clock: Clock,
    kind: str,
    *,
    user_id: str | None = None,
    client_id: str | None = None,
    session_id: str | None = None,
    **details: Any,
) -> None:
    """Records something an attacker did or tried (the dashboard's security events),
    in a transaction of its own."""
    with db.transaction() as s:
        s.add(
            SecurityEvent(
                at=clock.now(),
                kind=kind,
                user_id=user_id,
                client_id=client_id,
                session_id=session_id,
                details=details,
            )
        )


def export(db: Session, after: str | None, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` audit events after the cursor ``after`` (None: from the first),
    oldest first; each carries the ``cursor`` to resume after it. The cursor is the
    event's time and id, so events are neither skipped nor repeated between calls."""
    query = select(AuditEvent).order_by(AuditEvent.at, AuditEvent.id).limit(limit)
    if after:
        at_text, _, last_id = after.partition("~")
        at = dt.datetime.fromisoformat(at_text)  # ValueError: not a cursor
        if not last_id:
            raise ValueError("not a cursor")
        query = query.where(
            or_(AuditEvent.at > at, and_(AuditEvent.at == at, AuditEvent.id > last_id))
        )
    return [
        {
            "cursor": f"{e.at.isoformat()}~{e.id}",
            "id": e.id,
            "at": e.at.isoformat(),
            "actor": e.actor,
            "action": e.action,
            "target": e.target,
            "reason": e.reason,
            "ip": e.ip,
            "details": e.details,
        }
        for e in db.scalars(query)
    ]
