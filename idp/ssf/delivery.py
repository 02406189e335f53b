"""Delivering Security Event Tokens: push (RFC 8935) from a worker thread in each
process, and poll (RFC 8936) answered to the receiver.

A SET is signed when it leaves (``typ: secevent+jwt``, with the access-token key from
the JWKS). Push keeps each stream's order: only a stream's oldest owed event is tried,
with retries and backoff, until it is accepted (2xx), refused (400: the receiver said
why; not retried) or expires. Poll returns owed events until the receiver
acknowledges them (``ack``) or reports them (``setErrs``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import or_, select, update

from idp.clock import Clock
from idp.db import Database
from idp.oauth.tokens import TokenIssuer
from idp.outbound import Outbound
from idp.ssf.events import STREAM_UPDATED
from idp.ssf.models import SsfEvent, SsfStream
from idp.ssf.streams import PUSH
from idp.worker import Worker

BACKOFF = (0, 1, 5, 30, 120, 600)  # seconds before attempt n+1, then every 600 s
LEASE = 15


# CAEP Interoperability Profile 1.0 §2.6: events are signed RS256 (2048-bit keys or
# more), whatever algorithm access tokens use.
SET_ALG = "RS256"


def sign(issuer: TokenIssuer, claims: dict[str, Any]) -> str:
    return issuer.sign({"typ": "secevent+jwt"}, claims, SET_ALG)


def acknowledge(
    db: Database, clock: Clock, stream_id: str, acks: list[str], errors: dict[str, Any]
) -> None:
    """RFC 8936 §2.4: acknowledged events are delivered; reported ones failed."""
    now = clock.now()
    with db.transaction() as s:
        if acks:
            s.execute(
                update(SsfEvent)
                .where(
                    SsfEvent.stream_id == stream_id,
                    SsfEvent.jti.in_(acks),
                    SsfEvent.status == "pending",
                )
                .values(status="delivered", delivered_at=now)
            )
        for jti, err in errors.items():
            s.execute(
                update(SsfEvent)
                .where(
                    SsfEvent.stream_id == stream_id,
                    SsfEvent.jti == jti,
                    SsfEvent.status == "pending",
                )
                .values(status="failed", last_error=str(err.get("err", "error"))[:200])
            )
        if acks or errors:
            stream = s.get(SsfStream, stream_id)
            if stream is not None:
                stream.last_delivery_at = now


def _owed(stream_id: str, held: bool) -> Any:
    """The stream's pending events, oldest first; of a held stream (paused or
    disabled), only those that say so (SSF 1.0 §8.1.5 stream-updated)."""
    query = (
        select(SsfEvent)
        .where(SsfEvent.stream_id == stream_id, SsfEvent.status == "pending")
        .order_by(SsfEvent.created_at, SsfEvent.id)
    )
    return query.where(SsfEvent.event_type == STREAM_UPDATED) if held else query


def owed(
    db: Database, clock: Clock, stream_id: str, most: int, held: bool = False
) -> tuple[list[SsfEvent], bool]:
    """A poll's events: the stream's oldest owed ones (only its stream-updated events
    while it is ``held``), and whether more are waiting."""
    now = clock.now()
    with db.read() as s:
        rows = list(
            s.scalars(_owed(stream_id, held).where(SsfEvent.expires_at > now).limit(most + 1))
        )
    return rows[:most], len(rows) > most


class Pusher(Worker):
    """Sends owed events of push streams from a background thread (one per process)."""

    name = "ssf-push"
    what = "SSF push"
    retry_every = 1.0

    def __init__(self, db: Database, clock: Clock, issuer: TokenIssuer, outbound: Outbound) -> None:
        super().__init__()
        self.db = db
        self.clock = clock
        self.issuer = issuer
        self.outbound = outbound

    def deliver_due(self) -> bool:
        """Tries the oldest owed event of each push stream once (of a paused or
        disabled one, its oldest stream-updated event); True while push events are
        still owed."""
        now = self.clock.now()
        with self.db.read() as s:
            streams = list(s.scalars(select(SsfStream).where(SsfStream.method == PUSH)))
            heads: list[tuple[SsfStream, SsfEvent]] = []
            for stream in streams:
                head = s.scalar(_owed(stream.id, stream.status != "enabled").limit(1))
                if head is not None:
                    heads.append((stream, head))
        waiting = False
        for stream, event in heads:
            if event.expires_at <= now:
                self._finish(event.id, "expired", "not delivered in time")
                waiting = True
                continue
            due = event.next_attempt_at is None or event.next_attempt_at <= now
            if due and self._claim(event.id, now):
                self._attempt(stream, event)
            waiting = True
        return waiting

    def _claim(self, event_id: str, now: dt.datetime) -> bool:
        with self.db.transaction() as s:
            result: Any = s.execute(
                update(SsfEvent)
                .where(
                    SsfEvent.id == event_id,
                    SsfEvent.status == "pending",
                    or_(SsfEvent.next_attempt_at.is_(None), SsfEvent.next_attempt_at <= now),
                )
                .values(next_attempt_at=now + dt.timedelta(seconds=LEASE))
            )
            return bool(result.rowcount == 1)

    def _attempt(self, stream: SsfStream, event: SsfEvent) -> None:
        headers = {"Content-Type": "application/secevent+jwt", "Accept": "application/json"}
        if stream.authorization_header:
            headers["Authorization"] = stream.authorization_header
        assert stream.endpoint_url is not None
        sent = self.outbound.post(
            stream.endpoint_url, sign(self.issuer, event.claims).encode(), headers
        )
        now = self.clock.now()
        with self.db.transaction() as s:
            row = s.get(SsfEvent, event.id)
            owner = s.get(SsfStream, stream.id)
            if row is None or row.status != "pending" or owner is None:
                return
            row.attempts += 1
            if sent.status is not None and 200 <= sent.status < 300:
                row.status, row.delivered_at, row.last_error = "delivered", now, None
                owner.last_delivery_at, owner.last_error = now, None
            elif sent.status == 400:  # RFC 8935 §2.3: the receiver refused this SET
                row.status, row.last_error = "failed", "refused by the receiver (HTTP 400)"
                owner.last_error = row.last_error
            else:
                row.last_error = sent.error
                owner.last_error = sent.error
                wait = BACKOFF[min(row.attempts, len(BACKOFF) - 1)]
                row.next_attempt_at = now + dt.timedelta(seconds=wait)

    def _finish(self, event_id: str, status: str, why: str) -> None:
        with self.db.transaction() as s:
            row = s.get(SsfEvent, event_id)
            if row is not None and row.status == "pending":
                row.status, row.last_error = status, why
