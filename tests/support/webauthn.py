"""A software WebAuthn authenticator and client, written from WebAuthn Level 2, so the
server side is tested against bytes built independently of py_webauthn's parser.

- §6.1 authenticator data: rpIdHash (32) | flags (1) | signCount (4, big-endian) |
  attested credential data (aaguid 16 | credentialIdLength 2 | credentialId |
  credentialPublicKey as a COSE_Key) when the AT flag is set;
- §6.5.4 "none" attestation: ``{"fmt": "none", "attStmt": {}, "authData": ...}`` in CBOR;
- §5.8.1 client data: ``{"type", "challenge", "origin", "crossOrigin"}`` as JSON;
- §6.3.3 assertion signature: ES256 (COSE -7) over authData || SHA-256(clientDataJSON).

Keys are derived from a fixed seed, so runs are repeatable (ECDSA signatures still use
fresh nonces, which changes no outcome).
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from webauthn.helpers import encode_cbor

UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40
AAGUID = bytes(range(16))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Passkey:
    """One credential held by the authenticator: its id, private key, user and counter."""

    credential_id: bytes
    key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    sign_count: int = 0

    def cose_public_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        # COSE_Key, EC2 (kty 2), ES256 (alg -7), P-256 (crv 1), x (-2), y (-3): RFC 9053.
        return encode_cbor(
            {
                1: 2,
                3: -7,
                -1: 1,
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )


@dataclass
class SoftAuthenticator:
    """A platform authenticator with resident keys and user verification.

    ``origin`` is what the client (the browser) would put in clientDataJSON; tests change
    it, or the RP ID, to play a phishing site."""

    origin: str
    seed: int = 1
    counter_step: int = 1
    backup_eligible: bool = False
    passkeys: list[Passkey] = field(default_factory=list)

    def _new_key(self) -> ec.EllipticCurvePrivateKey:
        self.seed += 1
        secret = int.from_bytes(hashlib.sha256(f"passkey-{self.seed}".encode()).digest())
        return ec.derive_private_key(secret % (2**255) + 1, ec.SECP256R1())

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        return json.dumps(
            {
                "type": kind,
                "challenge": challenge,
                "origin": origin or self.origin,
                "crossOrigin": False,
            },
            separators=(",", ":"),
        ).encode()

    def _flags(self, user_verified: bool, extra: int = 0) -> int:
        flags = UP | (UV if user_verified else 0) | extra
        return flags | (BE if self.backup_eligible else 0)

    def create(
        self,
        options: dict[str, Any],
        *,
        origin: str | None = None,
        rp_id: str | None = None,
        user_verified: bool = True,
    ) -> dict[str, Any]:
        """navigator.credentials.create(): a new passkey, as the browser's JSON."""
        rp = rp_id or options["rp"]["id"]
        passkey = Passkey(
            credential_id=hashlib.sha256(f"cred-{self.seed}".encode()).digest(),
            key=self._new_key(),
            rp_id=rp,
            user_handle=unb64url(options["user"]["id"]),
        )
        client_data = self._client_data("webauthn.create", options["challenge"], origin)
        attested = (
            AAGUID
            + struct.pack(">H", len(passkey.credential_id))
            + passkey.credential_id
            + passkey.cose_public_key()
        )
        auth_data = (
            hashlib.sha256(rp.encode()).digest()
            + bytes([self._flags(user_verified, AT)])
            + struct.pack(">I", passkey.sign_count)
            + attested
        )
        attestation = encode_cbor({"fmt": "none", "attStmt": {}, "authData": auth_data})
        self.passkeys.append(passkey)
        raw_id = b64url(passkey.credential_id)
        return {
            "id": raw_id,
            "rawId": raw_id,
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation),
                "transports": ["internal"],
            },
        }

    def get(
        self,
        options: dict[str, Any],
        *,
        passkey: Passkey | None = None,
        origin: str | None = None,
        rp_id: str | None = None,
        user_verified: bool = True,
        sign_count: int | None = None,
    ) -> dict[str, Any]:
        """navigator.credentials.get(): an assertion by ``passkey`` (default: the last one
        made), as the browser's JSON; ``sign_count`` forces the counter sent."""
        passkey = passkey or self.passkeys[-1]
        if sign_count is None:
            passkey.sign_count += self.counter_step
            sign_count = passkey.sign_count
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        auth_data = (
            hashlib.sha256((rp_id or passkey.rp_id).encode()).digest()
            + bytes([self._flags(user_verified)])
            + struct.pack(">I", sign_count)
        )
        signed = auth_data + hashlib.sha256(client_data).digest()
        signature = passkey.key.sign(signed, ec.ECDSA(hashes.SHA256()))
        raw_id = b64url(passkey.credential_id)
        return {
            "id": raw_id,
            "rawId": raw_id,
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
                "userHandle": b64url(passkey.user_handle),
            },
        }
