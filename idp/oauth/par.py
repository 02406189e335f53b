"""Pushed authorization requests (RFC 9126).

A client POSTs its authorization request to /par, authenticated as at the token
endpoint; idp checks it as /authorize would, keeps it, and hands back a
``request_uri`` to send the browser to /authorize with. The parameters never travel
through the browser, so they cannot be read or changed there.

A request_uri lives 90 seconds until the browser brings it to /authorize; from then it
lives 10 minutes (the person may have to log in and consent), and it is used up when
the authorization response (a code, or a denial) is sent. RFC 9126 §4 asks for
one-time use but allows a reload before that.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any

from sqlalchemy import select, update

from idp.clock import Clock
from idp.db import Database
from idp.oauth.models import PushedRequest

PREFIX = "urn:ietf:params:oauth:request_uri:"
LIFETIME = 90
AFTER_START = 600
# Fields of the pushed request that authenticate the client, not the request.
CLIENT_AUTH_FIELDS = frozenset({"client_secret", "client_assertion", "client_assertion_type"})


def _hash(request_uri: str) -> str:
    return hashlib.sha256(request_uri.encode()).hexdigest()


class PushedRequests:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def push(self, client_id: str, params: dict[str, str]) -> tuple[str, int]:
        """Keeps ``params`` for ``client_id``; returns (request_uri, expires_in)."""
        request_uri = PREFIX + secrets.token_urlsafe(32)
        now = self.clock.now()
        with self.db.transaction() as s:
            s.add(
                PushedRequest(
                    handle_hash=_hash(request_uri),
                    client_id=client_id,
                    params=dict(params),
                    created_at=now,
                    expires_at=now + dt.timedelta(seconds=LIFETIME),
                )
            )
        return request_uri, LIFETIME

    def load(self, request_uri: str, client_id: str) -> dict[str, Any] | None:
        """The pushed parameters behind ``request_uri`` for ``client_id``; None when it is
        unknown, another client's, expired or used. The first load starts the longer
        lifetime of a request the person is working through."""
        if not request_uri.startswith(PREFIX) or len(request_uri) > 200:
            return None
        now = self.clock.now()
        with self.db.transaction() as s:
            row = s.scalar(
                select(PushedRequest).where(PushedRequest.handle_hash == _hash(request_uri))
            )
            if (
                row is None
                or row.client_id != client_id
                or row.used_at is not None
                or row.expires_at <= now
            ):
                return None
            if row.started_at is None:
                row.started_at = now
                row.expires_at = max(row.expires_at, now + dt.timedelta(seconds=AFTER_START))
            return dict(row.params)

    def use(self, request_uri: str) -> None:
        """The authorization response was sent: the request_uri is spent."""
        with self.db.transaction() as s:
            s.execute(
                update(PushedRequest)
                .where(
                    PushedRequest.handle_hash == _hash(request_uri),
                    PushedRequest.used_at.is_(None),
                )
                .values(used_at=self.clock.now())
            )
