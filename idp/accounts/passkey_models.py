"""Passkeys: WebAuthn credentials a user registered (WebAuthn Level 2 §6.1)."""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.db import Base, Id, Json, Timestamp

# WebAuthn L2 §5.1: credential ids are at most 1023 bytes; base64url of that.
CREDENTIAL_ID_CHARS = 1364


class WebAuthnCredential(Base):
    """One public-key credential. Only the public key is here: the private half never
    leaves the authenticator."""

    __tablename__ = "webauthn_credentials"

    id: Mapped[Id]
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # base64url without padding, as the browser's ``PublicKeyCredential.id``.
    credential_id: Mapped[str] = mapped_column(String(CREDENTIAL_ID_CHARS), unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)  # COSE_Key
    # Signature counters are unsigned 32-bit (§6.1.1): beyond a signed integer.
    sign_count: Mapped[int] = mapped_column(BigInteger)
    transports: Mapped[Json] = mapped_column(default=list)
    label: Mapped[str] = mapped_column(String(100))
    aaguid: Mapped[str] = mapped_column(String(36))
    # Backup eligibility (a synced, "multi-device" passkey) and state, flags BE and BS.
    backup_eligible: Mapped[bool] = mapped_column(default=False)
    backed_up: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[Timestamp]
    last_used_at: Mapped[Timestamp | None]
