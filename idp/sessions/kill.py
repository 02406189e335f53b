"""Ending a session everywhere at once (SPEC §6 "Sessions").

The session ends, its `sid` goes on the deny list until the longest access token
issued in it could expire (so introspection and the revocation feed reflect it at
once), every refresh family tied to it is revoked, and an audit record is written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy.orm import Session

from idp.audit.services import record
from idp.ext import Services
from idp.sessions import services as sessions
from idp.sessions.models import BrowserSession

# Hooks run inside the kill's transaction: (db, session, reason) -> None. The
# refresh-token service registers one that revokes the session's families.
KillHook = Callable[[Session, BrowserSession, str], None]


def kill_session(
    svc: Services,
    session_id: str,
    *,
    actor: str,
    action: str,
    reason: str,
    ip: str | None = None,
) -> BrowserSession | None:
    """Kills the session; returns it (None when there is no such session)."""
    now = svc.clock.now()
    # Deny first: if the store is down this raises and nothing claims to be killed.
    svc.state.deny(f"sid:{session_id}", now + dt.timedelta(seconds=svc.config.longest_token_ttl))
    with svc.db.transaction() as db:
        session = sessions.end(db, svc.clock, session_id, reason)
        if session is None:
            return None
        for hook in svc.kill_hooks:
            hook(db, session, reason)
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
    return session
