"""Password hashing with argon2id (OWASP Password Storage Cheat Sheet parameters), and
what a new password must be (NIST SP 800-63B §3.1.1.2)."""

from __future__ import annotations

import functools
import threading
from importlib.resources import files

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# OWASP: argon2id, m=19 MiB, t=2, p=1.
HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
# Verified against when the user does not exist, so both answers cost the same time
# (no account enumeration by timing).
_DUMMY = HASHER.hash("idp-dummy-password-for-unknown-users")

MIN_LENGTH = 8
MAX_LENGTH = 1024
# The hash of an account created without a password (admin API): no argon2 hash, so no
# password ever matches it; the person sets one through a password reset.
UNUSABLE = "!"


# argon2id walks its 19 MiB at random, so checks that run at once on one core evict each
# other from its caches. Measured (bench/, one worker of 4 threads pinned to one core,
# paired rounds of whole logins): one check at a time gave 16 % more logins a second and
# 13 % less server CPU per login than up to four at once. A process therefore runs at
# most ``slots`` of them at once (idp.serve.hash_slots: the cores it may use, shared with
# the other workers); a request beyond waits for the turn it would otherwise have waited
# for on the CPU. It also bounds how many 19 MiB buffers a burst of logins holds.
_slots = threading.BoundedSemaphore(1)


def set_slots(slots: int) -> None:
    """How many argon2id computations this process runs at once (at least one); called
    as a serving process starts, before any request."""
    global _slots
    _slots = threading.BoundedSemaphore(max(1, slots))


def hash_password(password: str) -> str:
    with _slots:
        return HASHER.hash(password)


def verify(password_hash: str | None, password: str) -> bool:
    """Constant-shape check: always runs one argon2 verification (against a dummy hash
    for an unknown user or one without a password, so neither answers faster)."""
    real = password_hash if password_hash != UNUSABLE else None
    try:
        with _slots:
            return HASHER.verify(real or _DUMMY, password) and real is not None
    except (VerificationError, InvalidHashError):
        return False


def usable(password_hash: str) -> bool:
    """Whether any password can match (False for an account created without one)."""
    return password_hash != UNUSABLE


@functools.cache
def common_passwords() -> frozenset[str]:
    """The most common leaked passwords (common_passwords.txt, shipped with idp: no
    network), lower case."""
    text = files("idp.accounts").joinpath("common_passwords.txt").read_text(encoding="utf-8")
    return frozenset(
        line.casefold() for line in text.splitlines() if line and not line.startswith("#")
    )


def problem(password: str, username: str | None = None) -> str | None:
    """Why ``password`` may not be set, or None. NIST SP 800-63B §3.1.1.2: at least 8
    characters, any characters, and not a value known from breaches or the account's own
    name; no composition rules."""
    if len(password) < MIN_LENGTH:
        return f"Password must have at least {MIN_LENGTH} characters."
    if len(password) > MAX_LENGTH:
        return f"Password must have at most {MAX_LENGTH} characters."
    folded = password.casefold()
    if folded in common_passwords():
        return "That password is one of the most common ones, which are guessed first."
    if username and folded == username.casefold():
        return "Password must not be your username."
    return None
