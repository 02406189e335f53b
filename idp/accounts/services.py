"""Creating and authenticating users."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.accounts import passwords
from idp.accounts.models import User
from idp.clock import Clock
from idp.db import Database
from idp.state.store import StateStore

if TYPE_CHECKING:
    pass

USERNAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,149}")
EMAIL_RE = re.compile(r"[^@\s<>\"'\x00-\x1f]{1,64}@[^@\s<>\"'\x00-\x1f]{1,255}")


class AccountError(ValueError):
    pass


def by_username(db: Session, username: str) -> User | None:
    return db.scalar(select(User).where(User.username == username))


def create_user(
    db: Session,
    clock: Clock,
    username: str,
    password: str,
    *,
    email: str | None = None,
    name: str | None = None,
    admin: bool = False,
) -> User:
    if not USERNAME_RE.fullmatch(username):
        raise AccountError("Username may use letters, digits and . _ @ - (at most 150).")
    if email is not None and not EMAIL_RE.fullmatch(email):
        raise AccountError("Email address is not valid.")
    if problem := passwords.problem(password):
        raise AccountError(problem)
    if by_username(db, username) is not None:
        raise AccountError("That username is taken.")
    user = User(
        username=username,
        email=email,
        name=name,
        is_admin=admin,
        password_hash=passwords.hash_password(password),
        created_at=clock.now(),
        attributes={},
    )
    db.add(user)
    db.flush()
    return user


@dataclass(frozen=True)
class Throttle:
    """Counts failed logins per account and per IP in the short-lived state store."""

    store: StateStore
    per_account: int
    per_ip: int
    window: int

    def blocked(self, username: str, ip: str) -> bool:
        return (
            self.store.count(f"login:u:{username.lower()}") >= self.per_account
            or self.store.count(f"login:ip:{ip}") >= self.per_ip
        )

    def failed(self, username: str, ip: str) -> None:
        self.store.hit(f"login:u:{username.lower()}", self.window)
        self.store.hit(f"login:ip:{ip}", self.window)

    def succeeded(self, username: str) -> None:
        self.store.reset(f"login:u:{username.lower()}")


def authenticate(
    db: Database, throttle: Throttle, username: str, password: str, ip: str
) -> str | None:
    """The user's id when the credentials are right; None otherwise, in comparable time
    whether the account exists, is disabled, locked, or the password is wrong."""
    if throttle.blocked(username, ip):
        passwords.verify(None, password)
        return None
    with db.read() as s:
        user = by_username(s, username) if len(username) <= 150 else None
        found = (user.id, user.password_hash, user.disabled) if user else None
    ok = passwords.verify(found[1] if found else None, password)
    if not ok or found is None or found[2]:
        throttle.failed(username, ip)
        return None
    throttle.succeeded(username)
    return found[0]
