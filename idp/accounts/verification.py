"""Verifying email addresses (issue 13 item 3): a single-use, expiring link is mailed at
signup and at every change of address; following it and confirming sets
``email_verified``, which ID tokens and userinfo carry (OIDC Core §5.1) and which a
client may require (``require_verified_email``).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from idp.accounts import links
from idp.accounts.models import User
from idp.accounts.services import EMAIL_RE, AccountError, Throttle, authenticate
from idp.audit.services import record
from idp.config import AccountsConfig
from idp.db import Database
from idp.mail.outbox import Outbox
from idp.mail.sender import Mailer
from idp.sessions.models import BrowserSession


class EmailVerification:
    def __init__(
        self,
        db: Database,
        throttle: Throttle,
        outbox: Outbox,
        mailer: Mailer,
        cfg: AccountsConfig,
        window_seconds: int,
    ) -> None:
        self.db = db
        self.clock = throttle.clock
        self.throttle = throttle
        self.outbox = outbox
        self.mailer = mailer
        self.cfg = cfg
        self.window = window_seconds

    def queue(self, s: Session, now: dt.datetime, user: User) -> bool:
        """Queues a verification mail for the user's address, in the caller's
        transaction (kick the mailer after the commit); False when there is no address
        to verify."""
        if not user.email or user.email_verified:
            return False
        ttl = self.cfg.verify_link_ttl_seconds
        token = links.issue(s, now, user, links.VERIFY, ttl)
        self.outbox.queue(
            s,
            now,
            user.email,
            "verify_email",
            user_id=user.id,
            username=user.username,
            email=user.email,
            link=f"{self.outbox.issuer}/email/verify?token={token}",
            hours=max(1, ttl // 3600),
        )
        return True

    def resend(self, user_id: str) -> bool:
        """Mails a new link (the account page's button); False when there is nothing to
        verify or the account was sent enough mail for now."""
        if self.throttle.store.hit(f"mail:u:{user_id}", self.window) > self.cfg.mails_per_account:
            return False
        with self.db.transaction() as s:
            user = s.get(User, user_id)
            queued = user is not None and self.queue(s, self.clock.now(), user)
        if queued:
            self.mailer.kick()
        return queued

    def pending(self, token: str) -> User | None:
        """The user a verification link is for, if it can still be used."""
        with self.db.read() as s:
            return links.peek(s, token, links.VERIFY, self.clock.now())

    def confirm(self, token: str, ip: str) -> User | None:
        """Uses the link and marks the address verified; None when the link is unknown,
        used, expired, or for an address the account no longer has."""
        now = self.clock.now()
        with self.db.transaction() as s:
            user = links.use(s, token, links.VERIFY, now)
            if user is None:
                return None
            user.email_verified = True
            record(
                s,
                at=now,
                actor=user.username,
                action="email.verify",
                target=user.id,
                ip=ip[:64],
                email=user.email,
            )
        return user

    def change(self, session: BrowserSession, password: str, new_email: str, ip: str) -> None:
        """A new address for the user of ``session``, unverified until its link is
        followed; the old address is told. Needs the current password (ASVS 7.5.1: an
        address is how an account is recovered). Raises AccountError or TooManyAttempts."""
        new_email = new_email.strip()
        if not EMAIL_RE.fullmatch(new_email):
            raise AccountError("Email address is not valid.")
        username = session.user.username
        if authenticate(self.db, self.throttle, username, password, ip) != session.user_id:
            raise AccountError("Your current password is not right.")
        now = self.clock.now()
        with self.db.transaction() as s:
            user = s.get(User, session.user_id)
            assert user is not None
            old = user.email
            if old is not None and old.lower() == new_email.lower() and user.email_verified:
                raise AccountError("That is already your address.")
            user.email, user.email_verified = new_email, False
            links.void(s, user.id, links.VERIFY)
            self.queue(s, now, user)
            if old and old.lower() != new_email.lower():
                self.outbox.queue(
                    s,
                    now,
                    old,
                    "email_changed",
                    user_id=user.id,
                    username=user.username,
                    new_email=new_email,
                    when=now.strftime("%Y-%m-%d %H:%M UTC"),
                )
            record(
                s,
                at=now,
                actor=user.username,
                action="email.change",
                target=user.id,
                ip=ip[:64],
                email=new_email,
            )
        self.mailer.kick()
