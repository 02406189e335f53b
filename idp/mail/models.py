"""The mail outbox: one row per message owed."""

from __future__ import annotations

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from idp.db import Base, Id, Timestamp


class MailMessage(Base):
    """A message written in the transaction of the action that sends it: a reset that
    rolls back mails nothing, one that commits owes its mail even if the process dies a
    moment later. The bodies are blanked once the message is sent or given up on, so a
    link it carried is not kept in the database."""

    __tablename__ = "mail_outbox"

    id: Mapped[Id]
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(200))
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str] = mapped_column(Text)
    # The template it came from ("password_reset"), for the log and the dashboard.
    kind: Mapped[str] = mapped_column(String(40))
    user_id: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(10), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[Timestamp] = mapped_column(index=True)
    next_attempt_at: Mapped[Timestamp | None]
    last_attempt_at: Mapped[Timestamp | None]
    sent_at: Mapped[Timestamp | None]
    last_error: Mapped[str | None] = mapped_column(String(200))
