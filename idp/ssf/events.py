"""What idp tells Shared Signals receivers, as Security Event Tokens (RFC 8417) in the
SSF 1.0 profile: CAEP session-revoked, RISC account-disabled and account-enabled, and
SSF verification and stream-updated.

Events are rows written in the transaction of the action they report (the outbox): a
kill that rolls back owes nothing, a kill that commits owes its events even if the
process dies a moment later. They are signed when sent (idp.ssf.delivery), with a key
from the JWKS.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.clock import epoch
from idp.ssf.models import SsfEvent, SsfStream

CAEP = "https://schemas.openid.net/secevent/caep/event-type/"
RISC = "https://schemas.openid.net/secevent/risc/event-type/"
SSF = "https://schemas.openid.net/secevent/ssf/event-type/"
SESSION_REVOKED = CAEP + "session-revoked"
CREDENTIAL_CHANGE = CAEP + "credential-change"
ACCOUNT_DISABLED = RISC + "account-disabled"
ACCOUNT_ENABLED = RISC + "account-enabled"
VERIFICATION = SSF + "verification"
STREAM_UPDATED = SSF + "stream-updated"
# What a receiver may ask for (verification and stream-updated always come).
SUPPORTED = (SESSION_REVOKED, CREDENTIAL_CHANGE, ACCOUNT_DISABLED, ACCOUNT_ENABLED)
ALWAYS = (VERIFICATION, STREAM_UPDATED)
TXN = "ssf_txn"  # key in the SQLAlchemy session's info: one txn per transaction


def delivered(requested: list[str]) -> list[str]:
    """SSF 1.0 §8.1.1: events_delivered is what was requested and is supported."""
    return [e for e in requested if e in SUPPORTED]


def user_subject(issuer: str, user_id: str) -> dict[str, Any]:
    return {"format": "iss_sub", "iss": issuer, "sub": user_id}


def session_subject(issuer: str, session_id: str, user_id: str) -> dict[str, Any]:
    """RFC 9493 §3.2.2 complex subject: the session and the user it belongs to."""
    return {
        "format": "complex",
        "session": {"format": "opaque", "id": session_id},
        "user": user_subject(issuer, user_id),
    }


def _txn(db: Session) -> str:
    """RFC 8417 §2.2 ``txn``: every event one transaction emits shares it (a user
    disabled: one account-disabled and a session-revoked per session)."""
    txn = db.info.get(TXN)
    if txn is None:
        txn = db.info[TXN] = secrets.token_urlsafe(16)
    return str(txn)


class Emitter:
    def __init__(self, issuer: str, ttl_seconds: int) -> None:
        self.issuer = issuer
        self.ttl = dt.timedelta(seconds=ttl_seconds)

    def emit(
        self,
        db: Session,
        now: dt.datetime,
        event_type: str,
        sub_id: dict[str, Any],
        event: dict[str, Any],
        *,
        session_id: str | None = None,
        user_id: str | None = None,
        streams: list[SsfStream] | None = None,
    ) -> int:
        """Queues the event for every stream that asked for it (or for ``streams``), in
        the caller's transaction; returns how many were queued. A disabled stream gets
        nothing; a paused one keeps them until it is enabled (SSF 1.0 §8.1.2)."""
        if streams is None:
            streams = list(
                db.scalars(select(SsfStream).where(SsfStream.status.in_(("enabled", "paused"))))
            )
            streams = [s for s in streams if event_type in delivered(s.events_requested)]
        txn = _txn(db)
        for stream in streams:
            jti = secrets.token_urlsafe(24)
            claims = {
                "iss": self.issuer,
                "aud": stream.client_id,
                "iat": epoch(now),
                "jti": jti,
                "txn": txn,
                "sub_id": sub_id,
                "events": {event_type: event},
            }
            db.add(
                SsfEvent(
                    stream_id=stream.id,
                    jti=jti,
                    event_type=event_type,
                    claims=claims,
                    session_id=session_id,
                    user_id=user_id,
                    created_at=now,
                    expires_at=now + self.ttl,
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                )
            )
        return len(streams)

    def session_revoked(
        self,
        db: Session,
        now: dt.datetime,
        session_id: str,
        user_id: str,
        *,
        initiating_entity: str,
        reason: str,
    ) -> int:
        """CAEP 1.0 §3.1 session-revoked."""
        event = {
            "event_timestamp": epoch(now),
            "initiating_entity": initiating_entity,
            "reason_admin": {"en": reason[:200]},
        }
        subject = session_subject(self.issuer, session_id, user_id)
        return self.emit(
            db, now, SESSION_REVOKED, subject, event, session_id=session_id, user_id=user_id
        )

    def account(self, db: Session, now: dt.datetime, user_id: str, disabled: bool) -> int:
        """RISC 1.0 account-disabled / account-enabled."""
        kind = ACCOUNT_DISABLED if disabled else ACCOUNT_ENABLED
        return self.emit(db, now, kind, user_subject(self.issuer, user_id), {}, user_id=user_id)

    def credential_change(
        self,
        db: Session,
        now: dt.datetime,
        user_id: str,
        *,
        initiating_entity: str,
        reason: str,
        credential_type: str = "password",
        change_type: str = "update",
    ) -> int:
        """CAEP 1.0 §3.3 credential-change: ``credential_type`` (password, ...) and
        ``change_type`` (create, revoke, update, delete) are required."""
        event = {
            "credential_type": credential_type,
            "change_type": change_type,
            "event_timestamp": epoch(now),
            "initiating_entity": initiating_entity,
            "reason_admin": {"en": reason[:200]},
        }
        subject = user_subject(self.issuer, user_id)
        return self.emit(db, now, CREDENTIAL_CHANGE, subject, event, user_id=user_id)
