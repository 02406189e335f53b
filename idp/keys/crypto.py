"""Encryption of private keys (and TOTP secrets) at rest under the key-encryption key
(KEK).

Each sealed value is stored with the id of the KEK that sealed it (:func:`kek_id`), so a
process given the new KEK and the previous ones (``[keys] kek_previous``) opens each
value with the right one and seals with the new one, and ``idp keys rewrap`` moves every
value to the new KEK: a KEK rotation without a stop (docs/operations.md)."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from idp.config import ConfigError

log = logging.getLogger(__name__)


def _decode(value: str, key: str = "keys.kek") -> bytes:
    padded = value + "=" * (-len(value) % 4)
    try:
        raw = base64.urlsafe_b64decode(padded)
    except ValueError:
        raise ConfigError(key, "must be base64url") from None
    if len(raw) != 32:
        raise ConfigError(key, "must decode to 32 bytes")
    return raw


def generate_kek() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def load_kek(configured: str, instance_path: str) -> bytes:
    """The configured KEK, or a development one kept in the instance folder (mode 0600)."""
    if configured:
        return _decode(configured)
    path = Path(instance_path) / "kek"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(generate_kek())
        log.warning("generated a development key-encryption key at %s", path)
    return _decode(path.read_text().strip())


def encrypt(kek: bytes, plaintext: bytes, aad: str) -> bytes:
    nonce = secrets.token_bytes(12)
    return nonce + AESGCM(kek).encrypt(nonce, plaintext, aad.encode())


def decrypt(kek: bytes, blob: bytes, aad: str) -> bytes:
    return AESGCM(kek).decrypt(blob[:12], blob[12:], aad.encode())


def kek_id(kek: bytes) -> str:
    """A short public name for a KEK, stored beside what it sealed: the first 64 bits of
    a SHA-256 of it under a fixed label (no use to anyone without the KEK itself)."""
    return hashlib.sha256(b"idp kek id v1" + kek).hexdigest()[:16]


class KekMissing(ValueError):
    """Something was sealed under a KEK this process was not given."""


@dataclass(frozen=True)
class Keyring:
    """The current KEK, which seals everything new, and the previous ones, which only
    open what they sealed (during a KEK rotation, until ``idp keys rewrap``)."""

    current: bytes
    previous: tuple[bytes, ...] = ()

    @property
    def id(self) -> str:
        return kek_id(self.current)

    def ids(self) -> list[str]:
        return [kek_id(k) for k in (self.current, *self.previous)]

    def seal(self, plaintext: bytes, aad: str) -> tuple[bytes, str]:
        """The sealed bytes and the id of the KEK that sealed them (always the current)."""
        return encrypt(self.current, plaintext, aad), self.id

    def open(self, blob: bytes, aad: str, sealed_by: str | None, what: str) -> bytes:
        """Opens ``blob`` with the KEK named ``sealed_by``; None (sealed before KEK ids
        were recorded) tries each KEK. Raises :class:`KekMissing` naming ``what``, the
        KEK id it needs and the ones this process has, never a key."""
        keks = (self.current, *self.previous)
        if sealed_by is not None:
            keks = tuple(k for k in keks if kek_id(k) == sealed_by)
        for kek in keks:
            try:
                return decrypt(kek, blob, aad)
            except InvalidTag:
                continue
        needed = f"KEK {sealed_by}" if sealed_by else "a KEK"
        raise KekMissing(
            f"{what} was sealed under {needed} this process does not have "
            f"(it has {', '.join(self.ids())}): set [keys] kek to the KEK that sealed it, "
            "or add that one to [keys] kek_previous (IDP_KEK_PREVIOUS)"
        )


def load_keyring(configured: str, previous: str, instance_path: str) -> Keyring:
    """The configured KEK (or the development one) and the comma-separated previous ones."""
    current = load_kek(configured, instance_path)
    older = []
    for part in previous.split(","):
        if part.strip():
            raw = _decode(part.strip(), "keys.kek_previous")
            if raw != current and raw not in older:
                older.append(raw)
    return Keyring(current, tuple(older))
