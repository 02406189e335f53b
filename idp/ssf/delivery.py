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
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.orm import Session

from idp import metrics
from idp.clock import Clock
from idp.db import Database
from idp.oauth.tokens import TokenIssuer
from idp.outbound import Outbound, Sent
from idp.ssf.events import STREAM_UPDATED
from idp.ssf.models import SsfEvent, SsfStream
from idp.ssf.streams import PUSH
from idp.worker import Worker

BACKOFF = (0, 1, 5, 30, 120, 600)  # seconds before attempt n+1, then every 600 s
LEASE = 15  # seconds a claimed event is another process's to leave alone (> the timeout)
PARALLEL = 16  # POSTs in flight at once per process, each to a different stream

log = logging.getLogger(__name__)
Row = TypeVar("Row", SsfEvent, SsfStream)


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


@dataclass(frozen=True)
class _Push:
    """A claimed event on its way: what its POST needs, copied out of the session."""

    event_id: str
    stream_id: str
    url: str
    authorization: str | None
    claims: dict[str, Any]


class Pusher(Worker):
    """Sends owed events of push streams from a background thread (one per process),
    in steps that each cost at most one query and two transactions, however many
    streams there are. Each time the thread wakes (a kick, a POST that finished, or
    every second while events wait out their backoff) a step:

    1. records the outcome of every POST that finished since the last step, in one
       transaction: delivered (2xx), refused (400: not retried) or tried again after
       a backoff;
    2. reads the head of every push stream in one query: its oldest owed event (of a
       paused or disabled stream, its oldest stream-updated event). Only heads are sent,
       and only of streams with nothing in flight, so a stream's next event never leaves
       before the previous one was delivered or given up (RFC 8935 order per stream);
    3. in one transaction, gives up the expired heads and claims the due ones, at most
       as many as the pool has free threads: one UPDATE moves their ``next_attempt_at``
       LEASE seconds ahead, and only where it was still due, so when processes or nodes
       share the database exactly one of them claims (and sends) a given event;
    4. signs and POSTs each claimed event from a pool of PARALLEL threads. A POST that
       finishes wakes the thread, so a slow receiver holds up its own stream only.

    ``deliver_due`` is the same step, waiting for its POSTs (the CLI, which exits next).
    """

    name = "ssf-push"
    what = "SSF push"
    retry_every = 1.0

    def __init__(self, db: Database, clock: Clock, issuer: TokenIssuer, outbound: Outbound) -> None:
        super().__init__()
        self.db = db
        self.clock = clock
        self.issuer = issuer
        self.outbound = outbound
        self._pool = ThreadPoolExecutor(PARALLEL, thread_name_prefix="ssf-push-post")
        self._in_flight: dict[str, tuple[_Push, Future[Sent]]] = {}  # by stream id
        self._stepping = threading.Lock()  # the thread and a caller of deliver_due

    def stop(self, timeout: float = 10.0) -> None:
        """The thread, then the POSTs in flight (their outcomes are not recorded: the
        claims' leases let another process send them again)."""
        super().stop(timeout)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def step(self) -> bool:
        """Records finished POSTs and starts the next ones; True while events are owed
        or POSTs are in flight."""
        with self._stepping:
            self._record_finished()
            owed = self._send_heads()
            return owed or bool(self._in_flight)

    def deliver_due(self) -> bool:
        """One step that waits for its POSTs and records them; True while push events
        are still owed."""
        with self._stepping:
            self._record_finished()
            owed = self._send_heads()
            wait([future for _, future in self._in_flight.values()])
            self._record_finished()
            return owed

    def _send_heads(self) -> bool:
        """Steps 2-4: True when some push stream owes an event."""
        now = self.clock.now()
        with self.db.read() as s:
            heads = list(s.execute(_heads()))
        expired = [
            event.id
            for event, stream in heads
            if event.expires_at <= now and stream.id not in self._in_flight
        ]
        free = PARALLEL - len(self._in_flight)
        due = [
            (event, stream)
            for event, stream in heads
            if stream.id not in self._in_flight
            and event.expires_at > now
            and (event.next_attempt_at is None or event.next_attempt_at <= now)
        ][:free]
        if expired or due:
            with self.db.transaction() as s:
                if expired:
                    s.execute(
                        update(SsfEvent)
                        .where(SsfEvent.id.in_(expired), SsfEvent.status == "pending")
                        .values(status="expired", last_error="not delivered in time")
                        .execution_options(synchronize_session=False)
                    )
                claimed = (
                    set(s.scalars(_claim([event.id for event, _ in due], now))) if due else set()
                )
            for event, stream in due:
                if event.id in claimed:
                    self._start(event, stream)
        return bool(heads)

    def _start(self, event: SsfEvent, stream: SsfStream) -> None:
        assert stream.endpoint_url is not None
        push = _Push(
            event.id, stream.id, stream.endpoint_url, stream.authorization_header, event.claims
        )
        future = self._pool.submit(self._post, push)
        self._in_flight[stream.id] = (push, future)
        future.add_done_callback(lambda _: self._wake.set())

    def _post(self, push: _Push) -> Sent:
        """In a pool thread: the signed SET, POSTed under the outbound rules."""
        headers = {"Content-Type": "application/secevent+jwt", "Accept": "application/json"}
        if push.authorization:
            headers["Authorization"] = push.authorization
        try:
            return self.outbound.post(push.url, sign(self.issuer, push.claims).encode(), headers)
        except Exception:  # noqa: BLE001 - recorded as a failed attempt, tried again
            log.exception("SSF push to stream %s failed", push.stream_id)
            return Sent(None, "could not send")

    def _record_finished(self) -> None:
        """Step 1: the outcomes of the POSTs that finished, in one transaction."""
        finished = [
            (push, future.result()) for push, future in self._in_flight.values() if future.done()
        ]
        if not finished:
            return
        now = self.clock.now()
        outcomes = []
        with self.db.transaction() as s:
            events = _by_id(s, SsfEvent, [push.event_id for push, _ in finished])
            streams = _by_id(s, SsfStream, [push.stream_id for push, _ in finished])
            for push, sent in finished:
                event, stream = events.get(push.event_id), streams.get(push.stream_id)
                if event is not None and event.status == "pending" and stream is not None:
                    outcomes.append(_record(event, stream, sent, now))
        for outcome in outcomes:
            metrics.delivery_attempt("ssf_push", outcome)
        for push, _ in finished:
            del self._in_flight[push.stream_id]


def _by_id(s: Session, model: type[Row], ids: list[str]) -> dict[str, Row]:
    return {row.id: row for row in s.scalars(select(model).where(model.id.in_(ids)))}


def _heads() -> Select[SsfEvent, SsfStream]:
    """Every push stream's oldest owed event (of a held stream, its oldest stream-updated
    event), oldest first: one query for all streams."""
    place = func.row_number().over(
        partition_by=SsfEvent.stream_id, order_by=(SsfEvent.created_at, SsfEvent.id)
    )
    owed = (
        select(SsfEvent.id, place.label("place"))
        .join(SsfStream, SsfStream.id == SsfEvent.stream_id)
        .where(
            SsfStream.method == PUSH,
            SsfEvent.status == "pending",
            or_(SsfStream.status == "enabled", SsfEvent.event_type == STREAM_UPDATED),
        )
        .subquery()
    )
    return (
        select(SsfEvent, SsfStream)
        .join(owed, owed.c.id == SsfEvent.id)
        .join(SsfStream, SsfStream.id == SsfEvent.stream_id)
        .where(owed.c.place == 1)
        .order_by(SsfEvent.created_at, SsfEvent.id)
    )


def _claim(event_ids: list[str], now: dt.datetime) -> Any:
    """The lease: each event still pending and due gets ``next_attempt_at`` LEASE
    seconds ahead; the ids it was taken for (none that another process took first)."""
    return (
        update(SsfEvent)
        .where(
            SsfEvent.id.in_(event_ids),
            SsfEvent.status == "pending",
            or_(SsfEvent.next_attempt_at.is_(None), SsfEvent.next_attempt_at <= now),
        )
        .values(next_attempt_at=now + dt.timedelta(seconds=LEASE))
        .returning(SsfEvent.id)
        .execution_options(synchronize_session=False)
    )


def _record(event: SsfEvent, stream: SsfStream, sent: Sent, now: dt.datetime) -> str:
    """One attempt's outcome: delivered, refused by the receiver (failed), or tried again
    (retry)."""
    event.attempts += 1
    if sent.status is not None and 200 <= sent.status < 300:
        event.status, event.delivered_at, event.last_error = "delivered", now, None
        stream.last_delivery_at, stream.last_error = now, None
        return "delivered"
    if sent.status == 400:  # RFC 8935 §2.3: the receiver refused this SET
        event.status, event.last_error = "failed", "refused by the receiver (HTTP 400)"
        stream.last_error = event.last_error
        return "failed"
    event.last_error = sent.error
    stream.last_error = sent.error
    wait = BACKOFF[min(event.attempts, len(BACKOFF) - 1)]
    event.next_attempt_at = now + dt.timedelta(seconds=wait)
    return "retry"
