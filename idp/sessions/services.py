"""Browser sessions: create at login, look up from the cookie, end (SPEC §6 "Sessions")."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session, make_transient_to_detached

from idp import metrics
from idp.accounts.models import User
from idp.clock import Clock
from idp.db import Base, Database, RawCursor, RawStatement, new_id
from idp.mfa.acr import PWD, acr_of
from idp.sessions.models import BrowserSession

# last_seen_at is written at most this often, so page views don't each cost a write.
TOUCH_EVERY = dt.timedelta(seconds=60)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class SessionPolicy:
    idle_timeout: int
    absolute_timeout: int


SESSIONS = Base.metadata.tables[BrowserSession.__tablename__]
USERS = Base.metadata.tables[User.__tablename__]
COLUMNS = [c.key for c in SESSIONS.columns]
ADD_SESSION = RawStatement(insert(SESSIONS), COLUMNS)
# A session with its user, in one statement (every page of a login asks for it).
USER_PREFIX = "user__"
WITH_USER = select(*SESSIONS.c, *(c.label(USER_PREFIX + c.key) for c in USERS.c)).join_from(
    SESSIONS, USERS, SESSIONS.c.user_id == USERS.c.id
)
BY_TOKEN = RawStatement(WITH_USER.where(SESSIONS.c.token_hash == bindparam("b_hash")))
BY_ID = RawStatement(WITH_USER.where(SESSIONS.c.id == bindparam("b_id")))


def start(
    cur: RawCursor,
    clock: Clock,
    policy: SessionPolicy,
    user_id: str,
    ip: str,
    user_agent: str,
    amr: list[str] | None = None,
) -> tuple[BrowserSession, str]:
    """A new session and the cookie value (256 random bits) that names it; ``amr``: how
    the user authenticated (RFC 8176; a password when not said). Written in the
    caller's transaction (every login writes one: a raw statement, issue 8)."""
    methods = list(amr or [PWD])
    token = secrets.token_urlsafe(32)
    now = clock.now()
    session = BrowserSession(
        # Hex, like every other id: a sid never starts with "-", which a shell script
        # passing it to `idp sessions kill SID` would have taken for an option.
        id=new_id(),
        token_hash=token_hash(token),
        user_id=user_id,
        auth_time=now,
        amr=methods,
        acr=acr_of(methods),
        ip=ip[:64],
        user_agent=user_agent[:512],
        created_at=now,
        last_seen_at=now,
        expires_at=now + dt.timedelta(seconds=policy.absolute_timeout),
        ended_at=None,
        end_reason=None,
    )
    cur.execute(ADD_SESSION, {key: getattr(session, key) for key in COLUMNS})
    metrics.login("success")
    return session, token


def _loaded(row: Any) -> BrowserSession:
    """A :data:`WITH_USER` row as the ORM would have left it after a closed session:
    a detached session with its detached user."""
    values = vars(row)
    user = User(
        **{k.removeprefix(USER_PREFIX): values[k] for k in values if k.startswith(USER_PREFIX)}
    )
    session = BrowserSession(**{k: values[k] for k in COLUMNS}, user=user)
    make_transient_to_detached(user)
    make_transient_to_detached(session)
    return session


def by_id(db: Database, session_id: str) -> BrowserSession | None:
    """The session (live or not) with its user."""
    with db.raw_transaction(read_only=True) as cur:
        row = cur.one_or_none(BY_ID, {"b_id": session_id})
    return None if row is None else _loaded(row)


def from_cookie(
    db: Database, clock: Clock, policy: SessionPolicy, token: str | None
) -> BrowserSession | None:
    """The live session named by the cookie. A read; its last-seen time is written at
    most once per ``TOUCH_EVERY`` (every page of a login asks for the session)."""
    if not token or len(token) > 100:
        return None
    with db.raw_transaction(read_only=True) as cur:
        row = cur.one_or_none(BY_TOKEN, {"b_hash": token_hash(token)})
    if row is None:
        return None
    session = _loaded(row)
    now = clock.now()
    if not session.is_live(now, policy.idle_timeout) or session.user.disabled:
        return None
    if now - session.last_seen_at >= TOUCH_EVERY:
        with db.transaction() as s:
            s.execute(
                update(BrowserSession)
                .where(BrowserSession.id == session.id, BrowserSession.ended_at.is_(None))
                .values(last_seen_at=now)
            )
        session.last_seen_at = now
    return session


def end(db: Session, clock: Clock, session_id: str, reason: str) -> BrowserSession | None:
    """Marks the session ended (idempotent) and returns it. Killing a session does more:
    see idp.sessions.kill."""
    session = db.get(BrowserSession, session_id)
    if session is not None and session.ended_at is None:
        session.ended_at = clock.now()
        session.end_reason = reason[:200]
    return session
