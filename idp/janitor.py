"""Purges what has expired and prunes what is kept only for a while (issue 9 item 6):
deny-list and counter entries, used or expired authorization codes, access-token records
of families, expired initial access tokens (RFC 7591), expired reset and verification
links, retired keys past their last
token (as Hydra's janitor does), and after ``[retention]``: expired refresh tokens, dead
refresh families, ended browser sessions with their back-channel deliveries, mail sent
or given up on (the outbox rows, bodies already blanked), and (when
configured) audit and security events.

Runs from ``idp janitor`` (a CronJob: deploy/k8s/janitor-cronjob.yaml) and in the
background of serving processes, once per ``janitor_every_seconds`` in the whole cluster:
whichever process first takes the lease (a key in the shared state store) runs it.
Deletes go in batches, so no transaction holds locks the token path needs for long.

With ``[keys] rotate_every``, each round first rotates the signing keys that are due
(idp.keys.services: the decision is taken under the rotation lock, so the lease is an
economy, not what keeps two processes from both rotating)."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, delete, or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from idp.accounts.links import purge as purge_links
from idp.audit.models import AuditEvent, SecurityEvent
from idp.clients.models import InitialAccessToken
from idp.mail.models import MailMessage
from idp.mfa import pending as pending_logins
from idp.oauth.models import AuthorizationCode, PushedRequest
from idp.operator import Actor
from idp.outage import DATABASE
from idp.refresh.models import FamilyAccessToken, RefreshFamily, RefreshToken
from idp.sessions.models import BackchannelDelivery, BrowserSession, SessionClient
from idp.ssf.models import SsfEvent

log = logging.getLogger(__name__)
# Used codes are kept a while after expiry so that a late replay still revokes.
CODE_GRACE = dt.timedelta(hours=1)
BATCH = 5000
LEASE = "lease:janitor"
# Who the audit trail names for a scheduled key rotation.
SCHEDULE = Actor("schedule")


def _delete_batches(
    svc: Any,
    key: Any,
    condition: ColumnElement[bool],
    dependents: Callable[[Session, list[str]], None] = lambda _s, _ids: None,
) -> int:
    """Deletes the rows whose ``key`` column matches ``condition``, BATCH at a time, each
    batch in its own short transaction after ``dependents`` cleared what refers to it."""
    total = 0
    while True:
        with svc.db.transaction() as s:
            ids = list(s.scalars(select(key).where(condition).limit(BATCH)))
            if not ids:
                return total
            dependents(s, ids)
            s.execute(delete(key.class_).where(key.in_(ids)))
            total += len(ids)
        if len(ids) < BATCH:
            return total


def _dead_families(svc: Any, now: dt.datetime) -> int:
    cutoff = now - dt.timedelta(days=svc.config.retention.families_days)
    idle = dt.timedelta(seconds=svc.config.tokens.refresh_token_idle_ttl)
    F = RefreshFamily

    def tokens(s: Session, ids: list[str]) -> None:
        s.execute(delete(RefreshToken).where(RefreshToken.family_id.in_(ids)))
        s.execute(delete(FamilyAccessToken).where(FamilyAccessToken.family_id.in_(ids)))

    dead = or_(
        F.revoked_at < cutoff, F.absolute_expires_at < cutoff, F.last_used_at < cutoff - idle
    )
    return _delete_batches(svc, F.id, dead, tokens)


def _ended_sessions(svc: Any, now: dt.datetime) -> int:
    cutoff = now - dt.timedelta(days=svc.config.retention.sessions_days)
    S = BrowserSession

    def links(s: Session, ids: list[str]) -> None:
        s.execute(delete(SessionClient).where(SessionClient.session_id.in_(ids)))
        s.execute(
            update(RefreshFamily).where(RefreshFamily.session_id.in_(ids)).values(session_id=None)
        )
        s.execute(
            delete(BackchannelDelivery).where(
                BackchannelDelivery.session_id.in_(ids),
                BackchannelDelivery.status != "pending",
            )
        )

    return _delete_batches(svc, S.id, or_(S.ended_at < cutoff, S.expires_at < cutoff), links)


def rotate_keys(svc: Any) -> int:
    """The scheduled key rotation, when one is due; how many keys became active."""
    kids = svc.actions.rotate_keys_if_due(SCHEDULE)
    if kids:
        log.info("scheduled key rotation: %s now active", ",".join(kids))
    return len(kids)


def run(svc: Any) -> dict[str, int]:
    """One janitor round: the scheduled key rotation, then :func:`purge`."""
    rotated = rotate_keys(svc)
    return {"keys_rotated": rotated, **purge(svc)}


def purge(svc: Any) -> dict[str, int]:
    now = svc.clock.now()
    keep = svc.config.retention
    counts = {"state_entries": svc.state.purge_expired(), "revocations": svc.revocations.purge()}
    with svc.db.transaction() as s:
        result: Any = s.execute(
            delete(AuthorizationCode).where(AuthorizationCode.expires_at < now - CODE_GRACE)
        )
        counts["authorization_codes"] = int(result.rowcount or 0)
        result = s.execute(delete(PushedRequest).where(PushedRequest.expires_at < now))
        counts["pushed_requests"] = int(result.rowcount or 0)
        # Shared Signals events past their time, delivered or not (a pending one that
        # expired is owed no more).
        result = s.execute(delete(SsfEvent).where(SsfEvent.expires_at < now))
        counts["ssf_events"] = int(result.rowcount or 0)
        result = s.execute(delete(FamilyAccessToken).where(FamilyAccessToken.expires_at < now))
        counts["family_access_tokens"] = int(result.rowcount or 0)
        result = s.execute(delete(InitialAccessToken).where(InitialAccessToken.expires_at < now))
        counts["initial_access_tokens"] = int(result.rowcount or 0)
        counts["pending_logins"] = pending_logins.purge_expired(s, now)
        counts["account_links"] = purge_links(s, now)
        result = s.execute(
            delete(MailMessage).where(
                MailMessage.status != "pending",
                MailMessage.created_at < now - dt.timedelta(days=keep.sessions_days),
            )
        )
        counts["mails"] = int(result.rowcount or 0)
    counts["refresh_tokens"] = _delete_batches(
        svc,
        RefreshToken.id,
        RefreshToken.expires_at < now - dt.timedelta(days=keep.refresh_tokens_days),
    )
    counts["refresh_families"] = _dead_families(svc, now)
    counts["browser_sessions"] = _ended_sessions(svc, now)
    if keep.audit_days:
        cutoff = now - dt.timedelta(days=keep.audit_days)
        counts["audit_events"] = _delete_batches(svc, AuditEvent.id, AuditEvent.at < cutoff)
        counts["security_events"] = _delete_batches(
            svc, SecurityEvent.id, SecurityEvent.at < cutoff
        )
    svc.keys.purge()
    return counts


class Janitor:
    """Runs :func:`purge` in a background thread of a serving process, at most once per
    ``[retention] janitor_every_seconds`` in the cluster (the lease)."""

    def __init__(self, svc: Any) -> None:
        self.svc = svc
        self.every = svc.config.retention.janitor_every_seconds
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def maybe_run(self) -> None:
        if not self.every or time.monotonic() - self._last < self.every:
            return  # the common case, without taking the lock
        with self._lock:
            if time.monotonic() - self._last < self.every:
                return
            self._last = time.monotonic()
        threading.Thread(target=self._run, name="janitor", daemon=True).start()

    def _run(self) -> None:
        try:
            # Back-channel logout deliveries and mail left pending by a restart are
            # retried by every process; the purge runs in one process of the cluster
            # per interval.
            self.svc.notifier.kick()
            self.svc.mailer.kick()
            if not self.svc.state.add_once(LEASE, self.every):
                return
            counts = run(self.svc)
            log.info("janitor purged %s", counts)
        except OperationalError as exc:
            DATABASE.failed(exc)  # one line per outage (idp.outage), not a traceback a round
        except Exception:  # noqa: BLE001 - a failed purge is retried next round
            log.exception("janitor failed")
