"""Creating and authenticating users."""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from idp import metrics
from idp.accounts import passwords
from idp.accounts.models import User
from idp.clock import Clock, SystemClock
from idp.db import Database, RawStatement
from idp.state.store import StateStore

if TYPE_CHECKING:
    pass

USERNAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,149}")
EMAIL_RE = re.compile(r"[^@\s<>\"'\x00-\x1f]{1,64}@[^@\s<>\"'\x00-\x1f]{1,255}")
NAME_RE = re.compile(r"[^\x00-\x1f\x7f]{0,200}")  # one line, as users.name holds it
KEEP: Any = object()  # update_user: leave this field as it is


class AccountError(ValueError):
    pass


def username_key(username: str) -> str:
    """The one normal form of a username: NFKC, then case folded (issue 10)."""
    return unicodedata.normalize("NFKC", username).casefold()[:150]


# What a password login reads (every login: a raw statement, issue 8).
CREDENTIALS = RawStatement(
    select(User.id, User.password_hash, User.disabled).where(User.username_key == bindparam("key"))
)


def by_username(db: Session, username: str) -> User | None:
    return db.scalar(select(User).where(User.username_key == username_key(username)))


def checked_email(email: str | None) -> str | None:
    if email is not None and not EMAIL_RE.fullmatch(email):
        raise AccountError("Email address is not valid.")
    return email


def checked_name(name: str | None) -> str | None:
    """The display name, stripped (blank: none); one line of at most 200 characters."""
    if name is None:
        return None
    if not NAME_RE.fullmatch(name):
        raise AccountError("Name must be one line of at most 200 characters.")
    return name.strip() or None


def create_user(
    db: Session,
    clock: Clock,
    username: str,
    password: str | None,
    *,
    email: str | None = None,
    name: str | None = None,
    admin: bool = False,
) -> User:
    """A new user. ``password`` None gives an account no password matches
    (passwords.UNUSABLE) until the person sets one through a password reset."""
    if not USERNAME_RE.fullmatch(username):
        raise AccountError("Username may use letters, digits and . _ @ - (at most 150).")
    email = checked_email(email)
    name = checked_name(name)
    if password is not None and (problem := passwords.problem(password, username=username)):
        raise AccountError(problem)
    if by_username(db, username) is not None:
        raise AccountError("That username is taken.")
    user = User(
        username=username,
        username_key=username_key(username),
        email=email,
        name=name,
        is_admin=admin,
        password_hash=passwords.UNUSABLE if password is None else passwords.hash_password(password),
        created_at=clock.now(),
        attributes={},
    )
    db.add(user)
    db.flush()
    return user


def update_user(
    user: User, *, email: Any = KEEP, name: Any = KEEP, admin: Any = KEEP
) -> dict[str, Any]:
    """Changes the given fields (KEEP: leave as is; None removes an email or a name);
    returns what changed, as {field: new value}. A changed email is no longer verified."""
    changed: dict[str, Any] = {}
    if email is not KEEP:
        email = checked_email(email)
        if email != user.email:
            user.email, user.email_verified = email, False
            changed["email"] = email
    if name is not KEEP:
        name = checked_name(name)
        if name != user.name:
            user.name = changed["name"] = name
    if admin is not KEEP and bool(admin) != user.is_admin:
        user.is_admin = changed["is_admin"] = bool(admin)
    return changed


class TooManyAttempts(Exception):
    """The account (the username as typed, whether or not it exists) or the network is
    locked for up to ``retry_after`` seconds. Answered 429 without checking the password
    (no argon2 work for a locked login); the same for every username, so it tells
    nothing about which accounts exist."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many attempts; retry after {retry_after} s")
        self.retry_after = retry_after

    @property
    def message(self) -> str:
        minutes = max(1, -(-self.retry_after // 60))
        return f"Too many attempts. Try again in {minutes} minute{'s' if minutes > 1 else ''}."


def network_of(ip: str) -> str:
    """What one client controls: an IPv4 address, or the /64 of an IPv6 one (a single
    host is routinely given a whole /64, so counting full addresses counts nothing)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip[:64]
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


@dataclass(frozen=True)
class Throttle:
    """Login throttling keyed three ways (issue 10 item 1), in the short-lived state
    store:

    - **(account)**: every attempt at a username, from anywhere, is counted *before* its
      password is checked (one atomic increment), so parallel guesses get no more checks
      than the limit. Accounts are keyed by their normalised username (``Alice`` and
      ``alice`` are one account, whether or not it exists).
    - **(account, network)**: the same, with a lower limit, so one network guessing at
      an account is slowed long before the account as a whole is.
    - **(network)**: failed logins from an IPv4 address or an IPv6 /64, any username.

    Past its limit an account key does not lock for the whole window: it opens for one
    attempt after a delay that doubles each time (``first_delay``, 2x, 4x... up to the
    window), so a person who mistyped waits seconds and a guesser waits ever longer.
    Only the account's right password resets its counters.
    """

    store: StateStore
    per_account: int
    per_ip: int
    window: int
    clock: Clock = field(default_factory=SystemClock)  # for the lockout's security event
    per_account_network: int = 5
    first_delay: int = 30
    # What is counted: passwords ("login"), second-factor codes ("mfa"): separate
    # counters under the same policy.
    prefix: str = "login"

    def _keys(self, username: str, ip: str) -> tuple[tuple[str, int], ...]:
        """The (account, network) key first: a guesser from one network is stopped there
        and does not use up the openings of the account's own key."""
        account = f"{self.prefix}:u:{username_key(username)}"
        return (
            (f"{account}|{network_of(ip)}", self.per_account_network),
            (account, self.per_account),
        )

    def _gate(self, key: str, limit: int) -> int:
        """Counts one attempt at ``key``: 0 when it may go on, else the seconds until the
        key may open again. The attempt that reaches the limit closes the gate for
        ``first_delay``; past the limit, the first attempt after each closing gets
        through (an atomic add-once claims it) and closes it for twice as long."""
        count = self.store.hit(key, self.window)
        if count < limit:
            return 0
        closings = self.store.count(f"{key}:gates")
        if not self.store.add_once(f"{key}:gate", self._delay(closings)):
            return self._delay(closings - 1)  # at most this long: the current closing
        self.store.hit(f"{key}:gates", self.window)
        return 0

    def _delay(self, closings: int) -> int:
        return min(self.window, self.first_delay << max(0, min(closings, 16)))

    def attempt(self, username: str, ip: str) -> int:
        """Counts one attempt: 0 when it may go on, else the seconds to wait."""
        if self.store.count(f"{self.prefix}:ip:{network_of(ip)}") >= self.per_ip:
            metrics.throttle_hit(self.prefix)
            return self.window
        for key, limit in self._keys(username, ip):
            if wait := self._gate(key, limit):
                metrics.throttle_hit(self.prefix)
                return wait
        return 0

    def failed(self, ip: str) -> None:
        self.store.hit(f"{self.prefix}:ip:{network_of(ip)}", self.window)

    def network_locked(self, ip: str) -> bool:
        """True while the network has failed too many logins (of any kind: passkey
        sign-ins count their failures here too)."""
        locked = self.store.count(f"login:ip:{network_of(ip)}") >= self.per_ip
        if locked:
            metrics.throttle_hit("login")
        return locked

    def succeeded(self, username: str, ip: str) -> None:
        # One statement (one Redis round trip) for the six keys: on SQLite each write
        # transaction is a commit, and a login had six of them here.
        keys = self._keys(username, ip)
        self.store.reset(*(key + suffix for key, _ in keys for suffix in ("", ":gate", ":gates")))

    def signup_allowed(self, ip: str) -> bool:
        """Sign-ups per network are limited like failed logins (they tell which
        usernames are taken)."""
        return self.store.hit(f"signup:ip:{network_of(ip)}", self.window) <= self.per_ip


def authenticate(
    db: Database, throttle: Throttle, username: str, password: str, ip: str
) -> str | None:
    """The user's id when the credentials are right; None otherwise, in comparable time
    whether the account exists, is disabled, or the password is wrong. Raises
    TooManyAttempts while the username or the network is locked."""
    wait = throttle.attempt(username, ip)
    if wait:
        throttle.failed(ip)
        metrics.login("locked")
        if throttle.store.add_once(f"login:locked:{username_key(username)}", wait):
            from idp.audit.services import security_event  # once per lock, not per refusal

            security_event(db, throttle.clock, "login_locked", username=username[:150], ip=ip[:64])
        raise TooManyAttempts(wait)
    found = None
    if len(username) <= 150:
        with db.raw_transaction(read_only=True) as cur:
            found = cur.one_or_none(CREDENTIALS, {"key": username_key(username)})
    ok = passwords.verify(found.password_hash if found else None, password)
    if not ok or found is None or found.disabled:
        throttle.failed(ip)
        metrics.login("failure")
        return None
    throttle.succeeded(username, ip)
    return str(found.id)
