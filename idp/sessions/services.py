"""Browser sessions: create at login, look up from the cookie, end (SPEC §6 "Sessions")."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp import metrics
from idp.accounts.models import User
from idp.clock import Clock
from idp.db import new_id
from idp.mfa.acr import PWD, acr_of
from idp.sessions.models import BrowserSession, SessionClient

# last_seen_at is written at most this often, so page views don't each cost a write.
TOUCH_EVERY = dt.timedelta(seconds=60)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class SessionPolicy:
    idle_timeout: int
    absolute_timeout: int


def start(
    db: Session,
    clock: Clock,
    policy: SessionPolicy,
    user: User,
    ip: str,
    user_agent: str,
    amr: list[str] | None = None,
) -> tuple[BrowserSession, str]:
    """A new session and the cookie value (256 random bits) that names it; ``amr``: how
    the user authenticated (RFC 8176; a password when not said)."""
    methods = list(amr or [PWD])
    token = secrets.token_urlsafe(32)
    now = clock.now()
    session = BrowserSession(
        # Hex, like every other id: a sid never starts with "-", which a shell script
        # passing it to `idp sessions kill SID` would have taken for an option.
        id=new_id(),
        token_hash=token_hash(token),
        user_id=user.id,
        auth_time=now,
        amr=methods,
        acr=acr_of(methods),
        ip=ip[:64],
        user_agent=user_agent[:512],
        created_at=now,
        last_seen_at=now,
        expires_at=now + dt.timedelta(seconds=policy.absolute_timeout),
    )
    db.add(session)
    db.flush()
    metrics.login("success")
    return session, token


def from_cookie(
    db: Session, clock: Clock, policy: SessionPolicy, token: str | None
) -> BrowserSession | None:
    """The live session named by the cookie, touching its last-seen time."""
    if not token or len(token) > 100:
        return None
    session = db.scalar(
        select(BrowserSession).where(BrowserSession.token_hash == token_hash(token))
    )
    now = clock.now()
    if session is None or not session.is_live(now, policy.idle_timeout) or session.user.disabled:
        return None
    if now - session.last_seen_at >= TOUCH_EVERY:
        session.last_seen_at = now
    return session


def remember_client(db: Session, clock: Clock, session_id: str, client_id: str) -> None:
    if db.get(SessionClient, (session_id, client_id)) is None:
        db.add(SessionClient(session_id=session_id, client_id=client_id, first_at=clock.now()))


def end(db: Session, clock: Clock, session_id: str, reason: str) -> BrowserSession | None:
    """Marks the session ended (idempotent) and returns it. Killing a session does more:
    see idp.sessions.kill."""
    session = db.get(BrowserSession, session_id)
    if session is not None and session.ended_at is None:
        session.ended_at = clock.now()
        session.end_reason = reason[:200]
    return session
