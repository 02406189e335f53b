"""Single-use links mailed to users: password reset and email verification.

A link carries 256 random bits; only their SHA-256 is stored (a database read gives no
usable link), with an expiry and what the link is bound to: a reset link to a
fingerprint of the password hash it was issued under (any password change voids it), a
verification link to the address it verifies (an address change voids it). Using a link
marks it used with one conditional update, so of any number of concurrent uses exactly
one wins.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from idp.accounts.models import AccountToken, User

RESET = "reset"
VERIFY = "verify"
MAX_TOKEN = 100  # longer input is not a token we issued: refused without a lookup


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def password_fingerprint(password_hash: str) -> str:
    return hashlib.sha256(b"idp-reset|" + password_hash.encode()).hexdigest()


def binding_of(user: User, purpose: str) -> str:
    if purpose == RESET:
        return password_fingerprint(user.password_hash)
    return user.email or ""


def issue(db: Session, now: dt.datetime, user: User, purpose: str, ttl_seconds: int) -> str:
    """A new link token for ``user`` (in the caller's transaction); its value is mailed
    and never stored."""
    value = secrets.token_urlsafe(32)
    db.add(
        AccountToken(
            token_hash=_hash(value),
            user_id=user.id,
            purpose=purpose,
            binding=binding_of(user, purpose)[:320],
            created_at=now,
            expires_at=now + dt.timedelta(seconds=ttl_seconds),
        )
    )
    return value


def _valid(db: Session, value: str, purpose: str, now: dt.datetime) -> AccountToken | None:
    if not value or len(value) > MAX_TOKEN:
        return None
    row = db.get(AccountToken, _hash(value))
    if row is None or row.purpose != purpose or row.used_at is not None or row.expires_at <= now:
        return None
    return row


def peek(db: Session, value: str, purpose: str, now: dt.datetime) -> User | None:
    """The user a link would act for, without using it (the page behind the link)."""
    row = _valid(db, value, purpose, now)
    if row is None:
        return None
    user = db.get(User, row.user_id)
    if user is None or user.disabled or binding_of(user, purpose) != row.binding:
        return None
    return user


def use(db: Session, value: str, purpose: str, now: dt.datetime) -> User | None:
    """Marks the link used and returns its user; None when it is unknown, used, expired,
    for another purpose, or no longer bound to what it was issued for (then it stays
    unusable). Inside the caller's transaction: the action it authorises commits with
    the mark, or neither does."""
    row = _valid(db, value, purpose, now)
    if row is None:
        return None
    result = db.execute(
        update(AccountToken)
        .where(AccountToken.token_hash == row.token_hash, AccountToken.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        return None  # another request used it first
    user = db.get(User, row.user_id)
    if user is None or user.disabled or binding_of(user, purpose) != row.binding:
        return None
    return user


def void(db: Session, user_id: str, purpose: str) -> None:
    """Deletes a user's links of ``purpose`` (a password changed: old reset links go)."""
    db.execute(
        delete(AccountToken)
        .where(AccountToken.user_id == user_id, AccountToken.purpose == purpose)
        .execution_options(synchronize_session=False)
    )


def purge(db: Session, now: dt.datetime) -> int:
    """Deletes expired links (the janitor)."""
    result = db.execute(delete(AccountToken).where(AccountToken.expires_at < now))
    return int(getattr(result, "rowcount", 0) or 0)
