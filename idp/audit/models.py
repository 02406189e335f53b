"""Audit trail: who did what to which object, from where, and why."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from idp.db import Base, Id, Json, Timestamp


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[Id]
    at: Mapped[Timestamp] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100), index=True)
    target: Mapped[str | None] = mapped_column(String(200), index=True)
    reason: Mapped[str | None] = mapped_column(String(500))
    ip: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[Json] = mapped_column(default=dict)


class SecurityEvent(Base):
    """Something an attacker did or tried: refresh-token reuse, code replay."""

    __tablename__ = "security_events"

    id: Mapped[Id]
    at: Mapped[Timestamp] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(String(50), index=True)
    user_id: Mapped[str | None] = mapped_column(String(32), index=True)
    client_id: Mapped[str | None] = mapped_column(String(100))
    session_id: Mapped[str | None] = mapped_column(String(32), index=True)
    family_id: Mapped[str | None] = mapped_column(String(32), index=True)
    details: Mapped[Json] = mapped_column(default=dict)
