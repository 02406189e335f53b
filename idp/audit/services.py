"""Writing audit events."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from idp.audit.models import AuditEvent


def record(
    db: Session,
    *,
    at: dt.datetime,
    actor: str,
    action: str,
    target: str | None = None,
    reason: str | None = None,
    ip: str | None = None,
    **details: Any,
) -> AuditEvent:
    event = AuditEvent(
        at=at,
        actor=actor[:200],
        action=action,
        target=target,
        reason=(reason or None) and reason[:500],
        ip=ip,
        details=details,
    )
    db.add(event)
    return event
