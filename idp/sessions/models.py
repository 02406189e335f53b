"""Server-side browser sessions; the cookie holds only a random id whose hash is here."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ColumnElement, ForeignKey, Index, String, and_, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from idp.accounts.models import User
from idp.db import Base, Hash, Id, Json, Timestamp


class BrowserSession(Base):
    __tablename__ = "browser_sessions"
    __table_args__ = (
        # The operator's session list: live sessions newest first, keyset-paginated on
        # (created_at, id), optionally by IP. Partial, so ended sessions cost nothing.
        Index(
            "ix_browser_sessions_live_created",
            "created_at",
            "id",
            postgresql_where=text("ended_at IS NULL"),
            sqlite_where=text("ended_at IS NULL"),
        ),
        Index(
            "ix_browser_sessions_live_ip",
            "ip",
            "created_at",
            "id",
            postgresql_where=text("ended_at IS NULL"),
            sqlite_where=text("ended_at IS NULL"),
        ),
    )

    # ``id`` is the public `sid` that appears in tokens and the dashboard; it is not
    # the cookie value, which is stored only as ``token_hash``.
    id: Mapped[Id]
    token_hash: Mapped[Hash] = mapped_column(unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    auth_time: Mapped[Timestamp]
    # How the user authenticated at auth_time: RFC 8176 methods (["pwd"], or
    # ["pwd", "otp", "mfa"]) and the acr they earn (idp.mfa.acr).
    amr: Mapped[Json] = mapped_column(default=lambda: ["pwd"])
    acr: Mapped[str] = mapped_column(String(40), default="1")
    ip: Mapped[str] = mapped_column(String(64))
    user_agent: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[Timestamp] = mapped_column(index=True)
    last_seen_at: Mapped[Timestamp]
    expires_at: Mapped[Timestamp] = mapped_column(index=True)
    ended_at: Mapped[Timestamp | None] = mapped_column(index=True)
    end_reason: Mapped[str | None] = mapped_column(String(200))

    user: Mapped[User] = relationship(lazy="joined")

    @classmethod
    def live(cls, now: dt.datetime, idle_timeout: int) -> ColumnElement[bool]:
        """The one definition of a live session, as SQL: not ended, not past its absolute
        lifetime, seen within the idle timeout (:meth:`is_live` is the same in Python)."""
        return and_(
            cls.ended_at.is_(None),
            cls.expires_at > now,
            cls.last_seen_at > now - dt.timedelta(seconds=idle_timeout),
        )

    def is_live(self, now: dt.datetime, idle_timeout: int) -> bool:
        """:meth:`live` for a loaded row."""
        return (
            self.ended_at is None
            and now < self.expires_at
            and now < self.last_seen_at + dt.timedelta(seconds=idle_timeout)
        )


class SessionClient(Base):
    """A client that received tokens within a session (for back-channel logout)."""

    __tablename__ = "session_clients"

    session_id: Mapped[str] = mapped_column(
        ForeignKey("browser_sessions.id", ondelete="CASCADE"), primary_key=True
    )
    client_id: Mapped[str] = mapped_column(
        ForeignKey("clients.client_id", ondelete="CASCADE"), primary_key=True
    )
    first_at: Mapped[Timestamp]


class BackchannelDelivery(Base):
    """One OIDC Back-Channel Logout token owed to one client for one ended session."""

    __tablename__ = "backchannel_deliveries"

    id: Mapped[Id]
    session_id: Mapped[str] = mapped_column(String(32), index=True)
    client_id: Mapped[str] = mapped_column(
        ForeignKey("clients.client_id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[str] = mapped_column(String(32))
    uri: Mapped[str] = mapped_column(String(2000))
    status: Mapped[str] = mapped_column(String(20), index=True)  # pending, delivered, failed
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    last_status_code: Mapped[int | None]
    created_at: Mapped[Timestamp]
    last_attempt_at: Mapped[Timestamp | None]
    next_attempt_at: Mapped[Timestamp | None] = mapped_column(index=True)
