"""A real SMTP server on loopback (aiosmtpd) that keeps what it is sent: what idp's
mailer talks to in tests, instead of a mock of smtplib."""

from __future__ import annotations

import email
import email.policy
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

LINK_RE = re.compile(r"http://127\.0\.0\.1:5000(/[^\s]+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Sink:
    """The server's mailbox. ``refuse`` makes it answer every message with that SMTP
    reply (for example ``"550 no such user"``)."""

    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    refuse: str | None = None
    arrived: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.refuse:
            return self.refuse
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        self.arrived.set()
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]

    @staticmethod
    def text(message: EmailMessage) -> str:
        part = message.get_body(("plain",))
        assert part is not None
        return str(part.get_content())

    def link(self, message: EmailMessage) -> str:
        """The path (with query) of the idp link in a message's text part."""
        match = LINK_RE.search(self.text(message))
        assert match, self.text(message)
        return match.group(1)


@contextmanager
def smtp_sink(port: int | None = None) -> Iterator[Sink]:
    sink = Sink(port or free_port())
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()
