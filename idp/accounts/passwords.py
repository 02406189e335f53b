"""Password hashing with argon2id (OWASP Password Storage Cheat Sheet parameters)."""

from __future__ import annotations

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


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def verify(password_hash: str | None, password: str) -> bool:
    """Constant-shape check: always runs one argon2 verification (against a dummy hash
    for an unknown user or one without a password, so neither answers faster)."""
    real = password_hash if password_hash != UNUSABLE else None
    try:
        return HASHER.verify(real or _DUMMY, password) and real is not None
    except (VerificationError, InvalidHashError):
        return False


def usable(password_hash: str) -> bool:
    """Whether any password can match (False for an account created without one)."""
    return password_hash != UNUSABLE


def problem(password: str) -> str | None:
    if len(password) < MIN_LENGTH:
        return f"Password must have at least {MIN_LENGTH} characters."
    if len(password) > MAX_LENGTH:
        return f"Password must have at most {MAX_LENGTH} characters."
    return None
