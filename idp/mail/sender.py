"""Delivering the mail outbox: a worker thread in each process (idp.worker.Worker)
sends owed messages over SMTP, with retries and backoff; with no ``[mail] smtp_url``
it writes them to the log instead, so a developer can click the link they carry.

A message is leased before it is sent (no two processes send it at once) and marked sent
after the server accepted it. A crash between the two sends it again after the lease:
a mail may come twice, never not at all.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Any, Protocol
from urllib.parse import urlsplit

from sqlalchemy import or_, select, update

from idp import metrics
from idp.clock import Clock
from idp.config import MailConfig
from idp.db import Database
from idp.mail.models import MailMessage
from idp.worker import Worker

log = logging.getLogger(__name__)

BACKOFF = (0, 10, 60, 300, 1800, 3600)  # seconds before attempt n+1; then failed
LEASE = 120


class SendError(Exception):
    """The message was not accepted. ``permanent``: the server refused it for good (a
    5xx answer), so it is not tried again."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Transport(Protocol):
    def send(self, message: EmailMessage) -> None:
        """Hands the message on; raises SendError when it was not accepted."""


class LogTransport:
    """No SMTP server configured (development): each message goes to the log, text part
    in full, so the link in it can be clicked from the console."""

    def send(self, message: EmailMessage) -> None:
        body = message.get_body(("plain",))
        text = body.get_content() if body is not None else ""
        log.warning(
            "mail (no [mail] smtp_url, so not sent)\n  To: %s\n  Subject: %s\n\n%s",
            message["To"],
            message["Subject"],
            text,
        )


class SmtpTransport:
    """SMTP with STARTTLS (required, certificate checked), implicit TLS, or plain for a
    local sink; AUTH when a user name is set."""

    def __init__(self, cfg: MailConfig) -> None:
        parts = urlsplit(cfg.smtp_url)
        self.implicit_tls = parts.scheme == "smtps" or cfg.tls == "tls"
        self.starttls = not self.implicit_tls and cfg.tls == "starttls"
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (465 if self.implicit_tls else 25)
        self.cfg = cfg
        self.context = ssl.create_default_context()

    def _connect(self) -> smtplib.SMTP:
        timeout = self.cfg.timeout_seconds
        if self.implicit_tls:
            return smtplib.SMTP_SSL(self.host, self.port, timeout=timeout, context=self.context)
        return smtplib.SMTP(self.host, self.port, timeout=timeout)

    def send(self, message: EmailMessage) -> None:
        try:
            with self._connect() as smtp:
                if self.starttls:
                    smtp.starttls(context=self.context)
                if self.cfg.username:
                    smtp.login(self.cfg.username, self.cfg.password)
                smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise SendError("recipient refused", permanent=all(c >= 500 for c in codes)) from None
        except smtplib.SMTPResponseException as exc:
            # 5xx: refused for good (RFC 5321 §4.2.1); 4xx: try again later.
            permanent = exc.smtp_code >= 500 and not isinstance(
                exc, smtplib.SMTPAuthenticationError
            )
            raise SendError(f"SMTP {exc.smtp_code}", permanent=permanent) from None
        except smtplib.SMTPNotSupportedError:
            raise SendError("the server does not offer STARTTLS") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise SendError(type(exc).__name__) from None


def transport_for(cfg: MailConfig) -> Transport:
    return SmtpTransport(cfg) if cfg.smtp_url else LogTransport()


class Mailer(Worker):
    """Sends owed mail from a background thread (one per process)."""

    name = "mail"
    what = "mail delivery"
    retry_every = 10.0

    def __init__(self, db: Database, clock: Clock, cfg: MailConfig, transport: Transport) -> None:
        super().__init__()
        self.db = db
        self.clock = clock
        self.sender = cfg.from_
        self.transport = transport

    def message(self, row: MailMessage) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = row.to_address
        message["Subject"] = row.subject
        message["Date"] = format_datetime(self.clock.now())
        domain = parseaddr(self.sender)[1].rpartition("@")[2] or "localhost"
        message["Message-ID"] = make_msgid(domain=domain)
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
        message.set_content(row.text_body)
        message.add_alternative(row.html_body, subtype="html")
        return message

    def deliver_due(self, limit: int = 20) -> bool:
        """Tries every due message once; True while some are still owed."""
        now = self.clock.now()
        with self.db.read() as s:
            due = s.scalars(
                select(MailMessage)
                .where(MailMessage.status == "pending", self._due(now))
                .order_by(MailMessage.created_at)
                .limit(limit)
            ).all()
        for row in due:
            if self._claim(row.id, now):
                self._attempt(row)
        with self.db.read() as s:
            owed = s.scalar(select(MailMessage.id).where(MailMessage.status == "pending").limit(1))
        return owed is not None

    @staticmethod
    def _due(now: dt.datetime) -> Any:
        return or_(MailMessage.next_attempt_at.is_(None), MailMessage.next_attempt_at <= now)

    def _claim(self, message_id: str, now: dt.datetime) -> bool:
        """Leases a due message to this worker, so that no two processes send it."""
        with self.db.transaction() as s:
            result: Any = s.execute(
                update(MailMessage)
                .where(
                    MailMessage.id == message_id,
                    MailMessage.status == "pending",
                    self._due(now),
                )
                .values(next_attempt_at=now + dt.timedelta(seconds=LEASE))
            )
            return bool(result.rowcount == 1)

    def _attempt(self, row: MailMessage) -> None:
        error: SendError | None = None
        try:
            self.transport.send(self.message(row))
        except SendError as exc:
            error = exc
        now = self.clock.now()
        with self.db.transaction() as s:
            current = s.get(MailMessage, row.id)
            if current is None or current.status != "pending":
                return
            current.attempts += 1
            current.last_attempt_at = now
            if error is None:
                current.status, current.sent_at, current.last_error = "sent", now, None
                outcome = "delivered"
            elif error.permanent or current.attempts >= len(BACKOFF):
                current.status, current.last_error = "failed", str(error)[:200]
                log.warning("mail %s to a user was not delivered: %s", row.kind, error)
                outcome = "failed"
            else:
                current.last_error = str(error)[:200]
                current.next_attempt_at = now + dt.timedelta(seconds=BACKOFF[current.attempts])
                outcome = "retry"
            if outcome != "retry":
                # Sent or given up: the link it carried is not kept.
                current.text_body = current.html_body = ""
                current.next_attempt_at = None
        metrics.delivery_attempt("mail", outcome)
