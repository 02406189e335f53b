"""What an operator does, one way for the CLI, the dashboard and the admin API (issue 9
item 2, SPEC §6 "Operator").

Each action commits, in one transaction, its state change, the revocations that deny
what it ends (the revocation log: every process's deny list and the feed), the
back-channel logouts it owes (the outbox the notifier delivers from) and its audit
record. A crash leaves all of it or none of it: never an action without its audit record,
never a killed session whose ``sid`` did not reach the feed.

The callers check their own input (a reason, a fresh login) and show the result; none of
them writes an audit record or a revocation of its own for these actions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.accounts import erasure
from idp.accounts import services as accounts
from idp.accounts.models import Consent, User
from idp.audit.services import record
from idp.clients.models import Client
from idp.clock import Clock, epoch
from idp.db import Database
from idp.keys.services import KeyService
from idp.mfa.services import Factors
from idp.refresh.types import RefreshStore, Revoked
from idp.revocations.service import Revocations
from idp.sessions.backchannel import Notifier
from idp.sessions.kill import AlreadyEnded, Killed, SessionKiller
from idp.sessions.models import BrowserSession


@dataclass(frozen=True)
class Actor:
    """Who acts, as the audit trail names them (``cli``, ``admin:alice``,
    ``client:ops``), and from where."""

    name: str
    ip: str | None = None


@dataclass(frozen=True)
class Deleted:
    """A deleted user: the pseudonym the audit trail now names them by, and what the
    deletion ended."""

    pseudonym: str
    sessions_killed: int


class OperatorActions:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        revocations: Revocations,
        refresh: RefreshStore,
        killer: SessionKiller,
        notifier: Notifier,
        keys: KeyService,
        longest_token_ttl: int,
        algs_in_use: Callable[[], set[str]],
        pseudonym_key: bytes,
        factors: Factors,
    ) -> None:
        self.db = db
        self.clock = clock
        self.revocations = revocations
        self.refresh = refresh
        self.killer = killer
        self.notifier = notifier
        self.keys = keys
        # "Every token of X issued before now" is kept until the last of them expired.
        self.deny_for = dt.timedelta(seconds=longest_token_ttl + 1)
        self.algs_in_use = algs_in_use
        self.pseudonym_key = pseudonym_key
        self.factors = factors

    # --- sessions -----------------------------------------------------------------
    def kill_session(self, sid: str, by: Actor, reason: str) -> Killed | AlreadyEnded | None:
        """Kills one browser session; None when there is none."""
        return self.killer.kill(sid, actor=by.name, action="session.kill", reason=reason, ip=by.ip)

    # --- users --------------------------------------------------------------------
    def revoke_user(self, user_id: str, by: Actor, reason: str) -> int | None:
        """Kills every session and refresh family of a user and denies every access
        token issued to them until now; returns the sessions killed (None: no user)."""
        with self.db.transaction() as s:
            user = s.get(User, user_id)
            if user is None:
                return None
            killed, owed = self._revoke_user(s, user, by, reason)
            record(
                s,
                at=self.clock.now(),
                actor=by.name,
                action="user.kill_sessions",
                target=user.id,
                reason=reason,
                ip=by.ip,
                username=user.username,
                sessions_killed=killed,
            )
        if owed:
            self.notifier.kick()
        return killed

    def set_disabled(self, user_id: str, disabled: bool, by: Actor, reason: str) -> User | None:
        """Disables (or enables) a user. Disabling kills every session and refresh family
        of the user at once (ASVS 7.4.2). None when there is no such user."""
        with self.db.transaction() as s:
            user = s.get(User, user_id)
            if user is None:
                return None
            user.disabled = disabled
            signalled = self.killer.signals.account(s, self.clock.now(), user.id, disabled)
            record(
                s,
                at=self.clock.now(),
                actor=by.name,
                action="user.disable" if disabled else "user.enable",
                target=user.id,
                reason=reason,
                ip=by.ip,
                username=user.username,
            )
            owed = (disabled and self._revoke_user(s, user, by, reason)[1]) or bool(signalled)
        if owed:
            self.notifier.kick()
        return user

    def create_user(
        self,
        by: Actor,
        username: str,
        password: str | None,
        *,
        email: str | None = None,
        name: str | None = None,
        admin: bool = False,
    ) -> User:
        """A new user (idp.accounts.services.create_user: None for ``password`` gives an
        account no password opens). Raises AccountError."""
        with self.db.transaction() as s:
            user = accounts.create_user(
                s, self.clock, username, password, email=email, name=name, admin=admin
            )
            record(
                s,
                at=self.clock.now(),
                actor=by.name,
                action="user.create",
                target=user.id,
                ip=by.ip,
                username=username,
                admin=admin,
                password=password is not None,
            )
        return user

    def update_user(self, user_id: str, by: Actor, **fields: Any) -> dict[str, Any] | None:
        """Changes a user's ``email``, ``name`` or ``admin`` flag (the keyword arguments
        of idp.accounts.services.update_user); returns what changed (None: no user).
        Raises AccountError. Audited only when something changed."""
        with self.db.transaction() as s:
            user = s.get(User, user_id)
            if user is None:
                return None
            changed = accounts.update_user(user, **fields)
            if changed:
                record(
                    s,
                    at=self.clock.now(),
                    actor=by.name,
                    action="user.update",
                    target=user.id,
                    ip=by.ip,
                    username=user.username,
                    changed=changed,
                )
        return changed

    def delete_user(self, user_id: str, by: Actor, reason: str) -> Deleted | None:
        """Deletes a user for good, in one transaction: every session and refresh family
        is killed as :meth:`revoke_user` kills them (with the Shared Signals events and
        back-channel logouts that go with it), RISC account-purged is emitted, the rows
        that exist only for the user are deleted, and the audit trail and security events
        keep a pseudonym in place of every mention of them (idp.accounts.erasure). The
        deletion itself is audited under that pseudonym. None when there is no user."""
        with self.db.transaction() as s:
            user = s.get(User, user_id)
            if user is None:
                return None
            who = erasure.Identity.of(user, self.pseudonym_key)
            why = who.scrub(reason)  # "as alice asked": the reason outlives the user too
            killed, owed = self._revoke_user(s, user, by, why)
            signalled = self.killer.signals.account_purged(s, self.clock.now(), user.id)
            families = self.refresh.purge_for_user(s, user.id)
            erasure.purge_rows(s, user)
            record(
                s,
                at=self.clock.now(),
                actor=by.name,
                action="user.delete",
                target=who.alias,
                reason=why,
                ip=by.ip,
                sessions_killed=killed,
                families_deleted=families,
            )
            s.flush()
            erasure.pseudonymize_records(s, who)
        if owed or signalled:
            self.notifier.kick()
        return Deleted(who.alias, killed)

    def withdraw_consent(self, user_id: str, client_id: str, by: Actor) -> bool:
        """The user takes back what they granted a client: the consent goes, and every
        refresh family the user holds at that client is revoked with the access tokens
        it issued (ASVS 10.7). False when there was no such consent."""
        with self.db.transaction() as s:
            consent = s.scalar(
                select(Consent).where(Consent.user_id == user_id, Consent.client_id == client_id)
            )
            if consent is None:
                return False
            scope = consent.scope
            s.delete(consent)
            revoked = self.refresh.revoke_for_user_at_client(
                s, user_id, client_id, "consent withdrawn by the user"
            )
            self._deny(s, revoked)
            record(
                s,
                at=self.clock.now(),
                actor=by.name,
                action="consent.withdraw",
                target=client_id,
                ip=by.ip,
                user_id=user_id,
                scope=scope,
                families_revoked=len(revoked.family_ids),
            )
        return True

    def _revoke_user(self, s: Session, user: User, by: Actor, reason: str) -> tuple[int, bool]:
        """(sessions killed, whether back-channel logouts were queued)"""
        now = self.clock.now()
        self.revocations.record(s, "user", user.id, now + self.deny_for, epoch(now) + 1)
        # Every session not ended yet, idle ones included (not only BrowserSession.live):
        # their sid may still be in a token, and ending them costs nothing.
        sids = s.scalars(
            select(BrowserSession.id).where(
                BrowserSession.user_id == user.id, BrowserSession.ended_at.is_(None)
            )
        ).all()
        killed, owed = 0, False
        for sid in sids:
            result = self.killer.kill_in(
                s, sid, actor=by.name, action="session.kill", reason=reason, ip=by.ip
            )
            if isinstance(result, Killed):
                killed += 1
                owed = owed or result.logouts_owed
        # Families whose session had already ended too: offline_access outlives it.
        self._deny(s, self.refresh.revoke_for_user(s, user.id, reason))
        return killed, owed

    def reset_factors(self, user_id: str, by: Actor, reason: str) -> int | None:
        """Removes every second factor and recovery code of a user (SPEC §5 ``idp users
        mfa-reset``: a lost phone); their next login asks for the password only. Emits
        CAEP credential-change ``delete``. Returns the factors removed (None: no user)."""
        with self.db.transaction() as s:
            user = s.get(User, user_id)
            if user is None:
                return None
            removed = self.factors.reset_in(s, user.id)
            record(
                s,
                at=self.clock.now(),
                actor=by.name,
                action="user.mfa_reset",
                target=user.id,
                reason=reason,
                ip=by.ip,
                username=user.username,
                factors_removed=removed,
            )
        if removed:
            self.notifier.kick()  # a push stream may be owed the credential-change
        return removed

    # --- clients ------------------------------------------------------------------
    def revoke_client(self, client_id: str, by: Actor, reason: str) -> int | None:
        """Revokes every refresh family and every live access token of a client;
        returns the families revoked (None: no client)."""
        with self.db.transaction() as s:
            if s.get(Client, client_id) is None:
                return None
            families = self.revoke_client_in(s, client_id, reason)
            record(
                s,
                at=self.clock.now(),
                actor=by.name,
                action="client.revoke_tokens",
                target=client_id,
                reason=reason,
                ip=by.ip,
                families=families,
            )
        return families

    def revoke_client_in(self, s: Session, client_id: str, reason: str) -> int:
        """:meth:`revoke_client` inside the caller's transaction, which records what it
        did (a client deleting its own registration, RFC 7592 §2.3); the families
        revoked."""
        now = self.clock.now()
        self.revocations.record(s, "client", client_id, now + self.deny_for, epoch(now) + 1)
        revoked = self.refresh.revoke_for_client(s, client_id, reason)
        self._deny(s, revoked)
        return len(revoked.family_ids)

    # --- keys ---------------------------------------------------------------------
    def rotate_keys(self, by: Actor, reason: str) -> list[str]:
        """Promotes the next key of every algorithm in use (and of every algorithm that
        still has keys); returns the kids now active. The next keys were published
        already, so every cached JWKS knows them."""
        self.keys.ensure(self.algs_in_use())
        with self.db.transaction() as s:
            kids = self.keys.rotate_in(s, self.algs_in_use() | self.keys.algs())
            record(
                s,
                at=self.clock.now(),
                actor=by.name,
                action="keys.rotate",
                target=",".join(kids),
                reason=reason,
                ip=by.ip,
                active=kids,
            )
        self.keys.forget()
        return kids

    def rotate_keys_if_due(self, by: Actor) -> list[str]:
        """The scheduled rotation (``[keys] rotate_every``, run by the janitor): promotes
        the next key of each algorithm whose rotation is due, audited as a manual one;
        returns the kids now active (none: nothing due, or another process did it)."""
        if not self.keys.rotate_every:
            return []
        self.keys.ensure(self.algs_in_use())
        with self.db.transaction() as s:
            kids = self.keys.rotate_due_in(s, self.algs_in_use() | self.keys.algs())
            if kids:
                record(
                    s,
                    at=self.clock.now(),
                    actor=by.name,
                    action="keys.rotate",
                    target=",".join(kids),
                    reason=f"scheduled: [keys] rotate_every = {self.keys.rotate_every} s",
                    ip=by.ip,
                    active=kids,
                    scheduled=True,
                )
        if kids:
            self.keys.forget()
        return kids

    def rewrap_keys(self, by: Actor) -> dict[str, Any]:
        """Re-encrypts every private signing key and TOTP secret under the current KEK,
        in one transaction with its audit record (``idp keys rewrap``); raises
        :class:`idp.keys.crypto.KekMissing` (and changes nothing) when one cannot be
        opened."""
        with self.db.transaction() as s:
            keys = self.keys.rewrap_in(s)
            totp = self.factors.rewrap_in(s)
            result = {"kek_id": self.keys.keyring.id, "signing_keys": keys, "totp_secrets": totp}
            record(
                s,
                at=self.clock.now(),
                actor=by.name,
                action="keys.rewrap",
                target=self.keys.keyring.id,
                reason="re-encrypted under the current KEK",
                ip=by.ip,
                **result,
            )
        return result

    def set_stream_status(self, stream_id: str, status: str, by: Actor, reason: str) -> bool:
        """Pauses (events are kept), disables (owed events are dropped) or enables a
        Shared Signals stream; False when there is no such stream. Raises StreamError
        for an unknown status."""
        from idp.ssf import streams
        from idp.ssf.models import SsfStream

        with self.db.transaction() as s:
            stream = s.get(SsfStream, stream_id)
            if stream is None:
                return False
            streams.set_status(s, stream, self.clock.now(), status, reason, self.killer.signals)
            record(
                s,
                at=self.clock.now(),
                actor=by.name,
                action="ssf.stream_status",
                target=stream_id,
                reason=reason,
                ip=by.ip,
                receiver=stream.client_id,
                status=status,
            )
        self.notifier.kick()  # an enabled push stream may have held events
        return True

    def _deny(self, s: Session, revoked: Revoked) -> None:
        for jti, expires_at in revoked.access_tokens:
            self.revocations.record(s, "jti", jti, expires_at)
