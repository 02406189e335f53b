"""Signing keys with their private half encrypted at rest."""

from __future__ import annotations

from sqlalchemy import LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.db import Base, Json, Timestamp

NEXT, ACTIVE, RETIRED = "next", "active", "retired"


class SigningKey(Base):
    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(10), index=True)
    state: Mapped[str] = mapped_column(String(10), index=True)
    public_jwk: Mapped[Json]
    # AES-256-GCM(KEK, private JWK JSON), nonce prepended; the kid is the associated data.
    private_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    # Which KEK sealed it (idp.keys.crypto.kek_id); None: sealed before ids were kept.
    kek_id: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[Timestamp]
    activated_at: Mapped[Timestamp | None]
    retired_at: Mapped[Timestamp | None]
    # A retired key stays published until every token it signed has expired.
    remove_after: Mapped[Timestamp | None]
