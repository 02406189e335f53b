"""Encryption of private keys at rest under the key-encryption key (KEK)."""

from __future__ import annotations

import base64
import logging
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from idp.config import ConfigError

log = logging.getLogger(__name__)


def _decode(value: str) -> bytes:
    padded = value + "=" * (-len(value) % 4)
    try:
        raw = base64.urlsafe_b64decode(padded)
    except ValueError:
        raise ConfigError("keys.kek", "must be base64url") from None
    if len(raw) != 32:
        raise ConfigError("keys.kek", "must decode to 32 bytes")
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
