"""Changing a password: by the user with the current one (/account/security), or with a
reset link mailed to them (/password/forgot, /password/reset). SPEC §6 "Second factors
and account lifecycle".

Either is one operation (STYLE rule 11) committing, in one transaction: the new hash,
the end of every other session of the user and of every refresh family (their access
tokens denied), the CAEP credential-change event (CAEP 1.0 §3.3), the audit record and
the "your password was changed" mail. Old reset links die with the old hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from idp.accounts import links, passwords
from idp.accounts.models import User
from idp.accounts.services import (
    AccountError,
    Throttle,
    TooManyAttempts,
    authenticate,
    network_of,
    username_key,
)
from idp.audit.services import record
from idp.config import AccountsConfig
from idp.mail.outbox import Outbox
from idp.mail.sender import Mailer
from idp.refresh.types import RefreshStore
from idp.revocations.service import Revocations
from idp.sessions.kill import Killed, SessionKiller
from idp.sessions.models import BrowserSession

MAX_IDENTIFIER = 320
MAX_MATCHES = 5  # users sharing one address who are each sent a link


class PasswordError(AccountError):
    """The new password (or the current one) is not acceptable; the message says why."""


class LinkInvalid(AccountError):
    """A reset link that is unknown, used, expired, or issued under an older password."""

    def __init__(self) -> None:
        super().__init__("This link is not valid any more. Ask for a new one.")


class PasswordChanges:
    def __init__(
        self,
        killer: SessionKiller,
        refresh: RefreshStore,
        revocations: Revocations,
        throttle: Throttle,
        outbox: Outbox,
        mailer: Mailer,
        cfg: AccountsConfig,
        window_seconds: int,
    ) -> None:
        self.db = killer.db
        self.clock = killer.clock
        self.killer = killer
        self.refresh = refresh
        self.revocations = revocations
        self.throttle = throttle
        self.state = throttle.store
        self.outbox = outbox
        self.mailer = mailer
        self.cfg = cfg
        self.window = window_seconds

    # --- change, with the current password ------------------------------------------
    def change(self, session: BrowserSession, current: str, new: str, ip: str) -> None:
        """The user of ``session`` changes their password; that session stays, every
        other one ends. Raises PasswordError, or TooManyAttempts while the account or
        network is locked (the current password is checked like a login)."""
        username = session.user.username
        if authenticate(self.db, self.throttle, username, current, ip) != session.user_id:
            raise PasswordError("Your current password is not right.")
        if new == current:
            raise PasswordError("The new password must differ from the current one.")
        if problem := passwords.problem(new, username=username):
            raise PasswordError(problem)
        new_hash = passwords.hash_password(new)  # before the transaction: argon2 is slow
        with self.db.transaction() as s:
            user = s.get(User, session.user_id)
            assert user is not None
            owed = self._apply(s, user, new_hash, session.id, "password.change", ip)
        self._kick(owed)

    # --- reset, with a mailed link ----------------------------------------------------
    def request_reset(self, identifier: str, ip: str) -> None:
        """Mails a reset link to the account named by ``identifier`` (a username or an
        email address), if there is one with an address. Returns the same way, after
        the same work (one counter, one rendering, one transaction), whether or not
        there is: the answer must not tell (no account enumeration). Raises
        TooManyAttempts when this network asked too often."""
        if self.state.hit(f"reset:ip:{network_of(ip)}", self.window) > (
            self.cfg.reset_requests_per_network
        ):
            raise TooManyAttempts(self.window)
        identifier = identifier.strip()[:MAX_IDENTIFIER]
        with self.db.read() as s:
            found = [(u.id, u.username) for u in self._find(s, identifier)]
        typed = hashlib.sha256(username_key(identifier).encode()).hexdigest()[:32]
        if not found:
            # The same counter write and rendering an existing account costs.
            self.state.hit(f"mail:u:{typed}", self.window)
            self.outbox.render("password_reset", username="", link="", minutes=0)
        allowed = [
            row
            for row in found
            if self.state.hit(f"mail:u:{row[0]}", self.window) <= self.cfg.mails_per_account
        ]
        ttl = self.cfg.reset_link_ttl_seconds
        now = self.clock.now()
        with self.db.transaction() as s:
            if not allowed:
                # Audited too (a burst of these is someone probing for accounts), and the
                # same durable write as a request that mails: no faster answer for "none".
                record(
                    s,
                    at=now,
                    actor="anonymous",
                    action="password.reset_requested",
                    ip=ip[:64],
                    matched=False,
                    identifier_sha256=typed,
                )
            for user_id, username in allowed:
                user = s.get(User, user_id)
                if user is None or user.disabled or not user.email:
                    continue
                token = links.issue(s, now, user, links.RESET, ttl)
                self.outbox.queue(
                    s,
                    now,
                    user.email,
                    "password_reset",
                    user_id=user.id,
                    username=username,
                    link=f"{self.outbox.issuer}/password/reset?token={token}",
                    minutes=ttl // 60,
                )
                record(
                    s,
                    at=now,
                    actor=username,
                    action="password.reset_requested",
                    target=user.id,
                    ip=ip[:64],
                )
        if allowed:
            self.mailer.kick()

    def _find(self, s: Session, identifier: str) -> Sequence[User]:
        """The enabled users with a mail address named by a username or an address."""
        if not identifier:
            return []
        return s.scalars(
            select(User)
            .where(
                or_(
                    User.username_key == username_key(identifier),
                    func.lower(User.email) == identifier.lower(),
                ),
                User.disabled.is_(False),
                User.email.is_not(None),
            )
            .limit(MAX_MATCHES)
        ).all()

    def reset_user(self, token: str) -> User | None:
        """The user a reset link is for, if it can still be used (the form behind it)."""
        with self.db.read() as s:
            return links.peek(s, token, links.RESET, self.clock.now())

    def reset(self, token: str, new: str, ip: str, keep_session: str | None = None) -> User:
        """Sets a new password with a reset link, which is used up. Every session of the
        user ends but ``keep_session`` (the browser's own, when it is the user's).
        Raises LinkInvalid, or PasswordError (the link stays usable)."""
        user = self.reset_user(token)
        if user is None:
            raise LinkInvalid
        if problem := passwords.problem(new, username=user.username):
            raise PasswordError(problem)
        new_hash = passwords.hash_password(new)
        with self.db.transaction() as s:
            used = links.use(s, token, links.RESET, self.clock.now())
            if used is None:
                raise LinkInvalid  # rolls back: used, or the password changed meanwhile
            owed = self._apply(s, used, new_hash, keep_session, "password.reset", ip)
        self._kick(owed)
        # A locked-out user who proved they own the address may log in again at once.
        self.throttle.succeeded(used.username, ip)
        return used

    # --- the one operation --------------------------------------------------------
    def _apply(
        self,
        s: Session,
        user: User,
        new_hash: str,
        keep_session: str | None,
        action: str,
        ip: str,
    ) -> bool:
        """Everything a password change commits; True when deliveries were queued
        (back-channel logouts, Shared Signals events)."""
        now = self.clock.now()
        reason = "password changed" if action == "password.change" else "password reset"
        user.password_hash = new_hash
        links.void(s, user.id, links.RESET)
        others = s.scalars(
            select(BrowserSession.id).where(
                BrowserSession.user_id == user.id,
                BrowserSession.ended_at.is_(None),
                BrowserSession.id != (keep_session or ""),
            )
        ).all()
        killed, owed = 0, False
        for sid in others:
            result = self.killer.kill_in(
                s,
                sid,
                actor=user.username,
                action="session.kill",
                reason=reason,
                ip=ip,
                initiator="user",
            )
            if isinstance(result, Killed):
                killed += 1
                owed = owed or result.logouts_owed
        # Every family, the kept session's too: the apps sign in again, silently while
        # that session lives.
        revoked = self.refresh.revoke_for_user(s, user.id, reason)
        for jti, expires_at in revoked.access_tokens:
            self.revocations.record(s, "jti", jti, expires_at)
        signalled = self.killer.signals.credential_change(
            s,
            now,
            user.id,
            credential_type="password",
            change_type="update",
            initiating_entity="user",
            reason=reason,
        )
        record(
            s,
            at=now,
            actor=user.username,
            action=action,
            target=user.id,
            ip=ip[:64],
            sessions_killed=killed,
            families_revoked=len(revoked.family_ids),
        )
        if user.email:
            self.outbox.queue(
                s,
                now,
                user.email,
                "password_changed",
                user_id=user.id,
                username=user.username,
                when=now.strftime("%Y-%m-%d %H:%M UTC"),
                how="with a reset link" if action == "password.reset" else "on the account page",
            )
        return owed or bool(signalled)

    def _kick(self, owed: bool) -> None:
        if owed:
            self.killer.notifier.kick()
        self.mailer.kick()
