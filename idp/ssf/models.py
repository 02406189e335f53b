"""Shared Signals streams and the events owed to them (OpenID SSF 1.0)."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.db import Base, Id, Json, Timestamp


class SsfStream(Base):
    """One receiver's stream: what it asked for, how it is delivered, its status."""

    __tablename__ = "ssf_streams"

    id: Mapped[Id]
    # The receiver: the client whose ssf-scoped token manages the stream (its aud).
    client_id: Mapped[str] = mapped_column(
        ForeignKey("clients.client_id", ondelete="CASCADE"), index=True
    )
    method: Mapped[str] = mapped_column(String(40))  # urn:ietf:rfc:8935 | 8936
    endpoint_url: Mapped[str | None] = mapped_column(String(2000))  # push only
    authorization_header: Mapped[str | None] = mapped_column(String(2000))
    events_requested: Mapped[Json] = mapped_column(default=list)
    description: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(10), default="enabled")
    status_reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[Timestamp]
    updated_at: Mapped[Timestamp]
    last_delivery_at: Mapped[Timestamp | None]
    last_error: Mapped[str | None] = mapped_column(String(200))


class SsfEvent(Base):
    """A Security Event Token owed to a stream: its claims (signed when sent), written
    in the transaction of the action it reports (the outbox: none lost, none for an
    action that rolled back)."""

    __tablename__ = "ssf_events"

    id: Mapped[Id]
    stream_id: Mapped[str] = mapped_column(
        ForeignKey("ssf_streams.id", ondelete="CASCADE"), index=True
    )
    jti: Mapped[str] = mapped_column(String(64), unique=True)
    event_type: Mapped[str] = mapped_column(String(200))
    claims: Mapped[Json] = mapped_column(default=dict)
    # The session and user it is about, for the dashboard ("which events went to whom").
    session_id: Mapped[str | None] = mapped_column(String(32), index=True)
    user_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[Timestamp] = mapped_column(index=True)
    expires_at: Mapped[Timestamp] = mapped_column(index=True)
    status: Mapped[str] = mapped_column(String(10), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[Timestamp | None]
    delivered_at: Mapped[Timestamp | None]
    last_error: Mapped[str | None] = mapped_column(String(200))
