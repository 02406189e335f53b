"""Ending a session everywhere at once (SPEC §6 "Sessions").

The session ends, its `sid` goes on the deny list until the longest access token
issued in it could expire (so introspection and the revocation feed reflect it at
once), every refresh family tied to it is revoked, and an audit record is written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.audit.services import record
from idp.ext import Services
from idp.sessions import backchannel
from idp.sessions import services as sessions
from idp.sessions.models import BrowserSession

# Hooks run inside the kill's transaction: (db, session, reason) -> None. The
# refresh-token service registers one that revokes the session's families.
KillHook = Callable[[Session, BrowserSession, str], None]


@dataclass(frozen=True)
class Killed:
    """The session was live and this call killed it."""

    session: BrowserSession


@dataclass(frozen=True)
class AlreadyEnded:
    """The session had ended before this call (``session.end_reason`` says why): no new
    deny entry, logout token or audit record was made for it."""

    session: BrowserSession


def kill(
    svc: Services,
    session_id: str,
    *,
    actor: str,
    action: str,
    reason: str,
    ip: str | None = None,
) -> Killed | AlreadyEnded | None:
    """Kills the session; None when there is no such session. Killing an ended session
    changes nothing but revoking refresh families still live in it (the kill hooks)."""
    now = svc.clock.now()
    with svc.db.read() as s:
        found = s.get(BrowserSession, session_id)
        if found is None:
            return None
        ended_before = found.ended_at is not None
    if not ended_before:
        # Deny first: if the store is down this raises and nothing claims to be killed.
        svc.revocations.revoke(
            "sid", session_id, now + dt.timedelta(seconds=svc.config.longest_token_ttl)
        )
    queued = 0
    with svc.db.transaction() as db:
        live = db.get(BrowserSession, session_id)
        ending_now = live is not None and live.ended_at is None
        session = sessions.end(db, svc.clock, session_id, reason)
        if session is None:
            return None
        for hook in svc.kill_hooks:
            hook(db, session, reason)
        if not ending_now:
            return AlreadyEnded(session)
        queued = backchannel.enqueue(db, session, now)
        record(
            db,
            at=now,
            actor=actor,
            action=action,
            target=session.id,
            reason=reason,
            ip=ip,
            user=session.user.username,
        )
    if queued and svc.notifier is not None:
        svc.notifier.kick()
    return Killed(session)


def kill_session(
    svc: Services,
    session_id: str,
    *,
    actor: str,
    action: str,
    reason: str,
    ip: str | None = None,
) -> BrowserSession | None:
    """:func:`kill` for callers that need only the session (None when there is no such
    session). Killing it again changes nothing: no second logout token, no second audit
    record, no new deny entry."""
    result = kill(svc, session_id, actor=actor, action=action, reason=reason, ip=ip)
    return None if result is None else result.session


def kill_user_sessions(
    svc: Services, user_id: str, *, actor: str, reason: str, ip: str | None = None
) -> int:
    """Kills every live session of a user; returns how many."""
    with svc.db.read() as s:
        ids = list(
            s.scalars(
                select(BrowserSession.id).where(
                    BrowserSession.user_id == user_id, BrowserSession.ended_at.is_(None)
                )
            )
        )
    for sid in ids:
        kill_session(svc, sid, actor=actor, action="session.kill", reason=reason, ip=ip)
    return len(ids)
