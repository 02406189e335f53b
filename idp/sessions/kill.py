"""Ending a session everywhere at once (SPEC §6 "Sessions").

The session ends, its `sid` is revoked until the longest access token issued in it
could expire (so introspection and the revocation feed reflect it at once), every
refresh family tied to it is revoked, relying apps are owed a back-channel logout, and
an audit record is written: all in one transaction, so a crash leaves either all of it
or none of it (STYLE rule 11).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from idp import metrics
from idp.audit.services import record
from idp.clock import Clock
from idp.db import Database
from idp.refresh.types import RefreshStore
from idp.revocations.service import Revocations
from idp.sessions import backchannel
from idp.sessions import services as sessions
from idp.sessions.backchannel import Notifier
from idp.sessions.models import BrowserSession
from idp.ssf.events import Emitter


@dataclass(frozen=True)
class Killed:
    """The session was live and this call killed it; ``logouts_owed``: back-channel
    logout tokens or Shared Signals events were queued for delivery (kick the
    notifier after the commit)."""

    session: BrowserSession
    logouts_owed: bool = False


@dataclass(frozen=True)
class AlreadyEnded:
    """The session had ended before this call (``session.end_reason`` says why): no new
    deny entry, logout token or audit record was made for it."""

    session: BrowserSession


class SessionKiller:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        revocations: Revocations,
        refresh: RefreshStore,
        notifier: Notifier,
        deny_seconds: int,
        signals: Emitter,
    ) -> None:
        self.db = db
        self.clock = clock
        self.revocations = revocations
        self.refresh = refresh
        self.notifier = notifier
        self.signals = signals
        # A session's sid stays revoked until the longest token issued in it has expired.
        self.deny_for = dt.timedelta(seconds=deny_seconds)

    def kill(
        self,
        session_id: str,
        *,
        actor: str,
        action: str,
        reason: str,
        ip: str | None = None,
        initiator: str | None = None,
    ) -> Killed | AlreadyEnded | None:
        """Kills the session in a transaction of its own; None when there is no such
        session. Killing an ended session changes nothing but revoking refresh families
        still live in it."""
        with self.db.transaction() as db:
            result = self.kill_in(
                db,
                session_id,
                actor=actor,
                action=action,
                reason=reason,
                ip=ip,
                initiator=initiator,
            )
        if isinstance(result, Killed) and result.logouts_owed:
            self.notifier.kick()
        return result

    def kill_in(
        self,
        db: Session,
        session_id: str,
        *,
        actor: str,
        action: str,
        reason: str,
        ip: str | None = None,
        initiator: str | None = None,
    ) -> Killed | AlreadyEnded | None:
        """:meth:`kill` inside the caller's transaction (idp.operator); the caller kicks
        the notifier after its commit. ``initiator`` is CAEP's initiating_entity (admin,
        user, policy or system); by default the user for a logout, policy for idp's own
        kills, else an admin."""
        now = self.clock.now()
        live = db.get(BrowserSession, session_id)
        if live is None:
            return None
        ending_now = live.ended_at is None
        session = sessions.end(db, self.clock, session_id, reason)
        assert session is not None
        self.refresh.revoke_for_session(db, session_id, reason)
        if not ending_now:
            return AlreadyEnded(session)
        # The families' access tokens carry this sid: revoking it denies them all.
        self.revocations.record(db, "sid", session_id, now + self.deny_for)
        queued = backchannel.enqueue(db, session, now)
        if initiator is None:
            user_actions = ("logout", "session.end_other")
            initiator = (
                "user" if action in user_actions else "policy" if actor == "idp" else "admin"
            )
        queued += self.signals.session_revoked(
            db, now, session.id, session.user_id, initiating_entity=initiator, reason=reason
        )
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
        # Counted before the caller's commit: a kill rolled back after this is rare
        # enough (a failing database) not to be worth a commit hook per kill.
        metrics.session_killed(initiator, action)
        return Killed(session, bool(queued))

    def kill_session(
        self,
        session_id: str,
        *,
        actor: str,
        action: str,
        reason: str,
        ip: str | None = None,
        initiator: str | None = None,
    ) -> BrowserSession | None:
        """:meth:`kill` for callers that need only the session (None when there is no
        such session)."""
        result = self.kill(
            session_id, actor=actor, action=action, reason=reason, ip=ip, initiator=initiator
        )
        return None if result is None else result.session
