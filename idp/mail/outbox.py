"""Writing mails into the outbox, rendered from idp/templates/mail/.

Each message is two templates, ``NAME.txt`` and ``NAME.html``; the text one sets the
subject (``{% set subject = "..." %}``). They are rendered with their own Jinja
environment (autoescaped HTML, undefined names an error), so the CLI and background
work can queue mail as well as a request can.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from sqlalchemy.orm import Session

from idp.mail.models import MailMessage


class Outbox:
    def __init__(self, issuer: str) -> None:
        self.issuer = issuer
        self.env = Environment(
            loader=PackageLoader("idp", "templates/mail"),
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )

    def render(self, kind: str, **context: Any) -> tuple[str, str, str]:
        """(subject, text, html) of the message ``kind``."""
        context.setdefault("issuer", self.issuer)
        text = self.env.get_template(f"{kind}.txt").make_module(context)
        html = self.env.get_template(f"{kind}.html").render(context)
        subject = " ".join(str(getattr(text, "subject", "")).split())
        return subject, str(text).strip() + "\n", html

    def queue(
        self,
        db: Session,
        now: dt.datetime,
        to: str,
        kind: str,
        *,
        user_id: str | None = None,
        **context: Any,
    ) -> MailMessage:
        """Queues one message in the caller's transaction (kick the mailer after the
        commit)."""
        subject, text, html = self.render(kind, **context)
        message = MailMessage(
            to_address=to[:320],
            subject=subject[:200],
            text_body=text,
            html_body=html,
            kind=kind,
            user_id=user_id,
            status="pending",
            attempts=0,
            created_at=now,
            next_attempt_at=now,
        )
        db.add(message)
        return message
