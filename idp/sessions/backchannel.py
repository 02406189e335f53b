"""OIDC Back-Channel Logout 1.0: tell relying apps that a session ended.

A kill enqueues one delivery per client that received tokens in the session and
registered a ``backchannel_logout_uri`` (in the kill's transaction, so none is lost).
A worker thread in each process sends them: a logout token (``typ: logout+jwt``, with
``events`` and ``sid`` and never a ``nonce``, §2.4) POSTed as ``logout_token``; failures
are retried with backoff and every result is kept for the dashboard.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from idp import metrics
from idp.clients.models import Client
from idp.clock import Clock, epoch
from idp.config import LOGOUT_TOKEN_TTL
from idp.db import Database
from idp.oauth.tokens import TokenIssuer
from idp.outbound import Outbound
from idp.sessions.models import BackchannelDelivery, BrowserSession, SessionClient
from idp.worker import Worker

EVENT = "http://schemas.openid.net/event/backchannel-logout"
BACKOFF = (0, 5, 30, 120, 600)  # seconds before attempt n+1
TIMEOUT = 5
LEASE = 3 * TIMEOUT


def enqueue(db: Session, session: BrowserSession, now: dt.datetime) -> int:
    """Creates the deliveries owed for ``session``; returns how many."""
    rows = db.execute(
        select(Client.client_id, Client.backchannel_logout_uri)
        .join(SessionClient, SessionClient.client_id == Client.client_id)
        .where(SessionClient.session_id == session.id, Client.backchannel_logout_uri.is_not(None))
    ).all()
    for client_id, uri in rows:
        db.add(
            BackchannelDelivery(
                session_id=session.id,
                client_id=client_id,
                user_id=session.user_id,
                uri=uri,
                status="pending",
                attempts=0,
                created_at=now,
                next_attempt_at=now,
            )
        )
    return len(rows)


class Notifier(Worker):
    """Sends pending deliveries from a background thread (one per process)."""

    name = "backchannel"
    what = "back-channel delivery"
    retry_every = 5.0

    def __init__(self, db: Database, clock: Clock, issuer: TokenIssuer, outbound: Outbound) -> None:
        super().__init__()
        self.db = db
        self.clock = clock
        self.issuer = issuer
        self.outbound = outbound
        # Others woken with it: the Shared Signals pusher (kills queue both).
        self.followers: list[Callable[[], None]] = []

    def kick(self) -> None:
        for follower in self.followers:
            follower()
        super().kick()

    def logout_token(self, client: Client, session_id: str, user_id: str) -> str:
        now = self.clock.now()
        claims = {
            "iss": self.issuer.issuer,
            "aud": client.client_id,
            "iat": epoch(now),
            "exp": epoch(now) + LOGOUT_TOKEN_TTL,
            "jti": secrets.token_urlsafe(16),
            "sub": user_id,
            "sid": session_id,
            "events": {EVENT: {}},
        }
        return self.issuer.sign({"typ": "logout+jwt"}, claims, self.issuer.id_token_alg(client))

    def deliver_due(self, limit: int = 50) -> bool:
        """Attempts every due delivery once; True when some are still pending."""
        now = self.clock.now()
        with self.db.read() as s:
            due = s.scalars(
                select(BackchannelDelivery)
                .where(
                    BackchannelDelivery.status == "pending",
                    or_(
                        BackchannelDelivery.next_attempt_at.is_(None),
                        BackchannelDelivery.next_attempt_at <= now,
                    ),
                )
                .order_by(BackchannelDelivery.created_at)
                .limit(limit)
            ).all()
            clients = (
                {
                    c.client_id: c
                    for c in s.scalars(
                        select(Client).where(Client.client_id.in_({d.client_id for d in due}))
                    )
                }
                if due
                else {}
            )
        for delivery in due:
            client = clients.get(delivery.client_id)
            if client is not None and self._claim(delivery.id, now):
                self._attempt(delivery, client)
        with self.db.read() as s:
            return (
                s.scalar(
                    select(BackchannelDelivery.id)
                    .where(BackchannelDelivery.status == "pending")
                    .limit(1)
                )
                is not None
            )

    def _claim(self, delivery_id: str, now: dt.datetime) -> bool:
        """Leases a due delivery to this worker, so that no two processes send it at once."""
        with self.db.transaction() as s:
            result: Any = s.execute(
                update(BackchannelDelivery)
                .where(
                    BackchannelDelivery.id == delivery_id,
                    BackchannelDelivery.status == "pending",
                    or_(
                        BackchannelDelivery.next_attempt_at.is_(None),
                        BackchannelDelivery.next_attempt_at <= now,
                    ),
                )
                .values(next_attempt_at=now + dt.timedelta(seconds=LEASE))
            )
            return bool(result.rowcount == 1)

    def _attempt(self, delivery: BackchannelDelivery, client: Client) -> None:
        token = self.logout_token(client, delivery.session_id, delivery.user_id)
        # §2.5: sent only to the registered URI (no redirects), through idp.outbound.
        sent = self.outbound.post_form(delivery.uri, {"logout_token": token})
        code, error = sent.status, sent.error
        now = self.clock.now()
        with self.db.transaction() as s:
            row = s.get(BackchannelDelivery, delivery.id)
            if row is None or row.status != "pending":
                return
            row.attempts += 1
            row.last_attempt_at = now
            row.last_status_code = code
            if code is not None and 200 <= code < 300:
                row.status, row.last_error, row.next_attempt_at = "delivered", None, None
                outcome = "delivered"
            elif row.attempts >= len(BACKOFF):
                row.status, row.last_error, row.next_attempt_at = "failed", error, None
                outcome = "failed"
            else:
                row.last_error = error
                row.next_attempt_at = now + dt.timedelta(seconds=BACKOFF[row.attempts])
                outcome = "retry"
        metrics.delivery_attempt("backchannel", outcome)
