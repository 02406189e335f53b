"""Refresh-token families and their rotation chains (SPEC §6 "Refresh-token chains")."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from idp.db import Base, Hash, Id, Json, Timestamp


class RefreshFamily(Base):
    """All refresh tokens descended from one login at one client."""

    __tablename__ = "refresh_families"

    id: Mapped[Id]
    client_id: Mapped[str] = mapped_column(
        ForeignKey("clients.client_id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    session_id: Mapped[str | None] = mapped_column(
        ForeignKey("browser_sessions.id", ondelete="SET NULL"), index=True
    )
    code_id: Mapped[str | None] = mapped_column(String(32), index=True)
    scope: Mapped[str] = mapped_column(String(1000))
    auth_time: Mapped[Timestamp]
    nonce: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[Timestamp] = mapped_column(index=True)
    last_used_at: Mapped[Timestamp]
    absolute_expires_at: Mapped[Timestamp]
    revoked_at: Mapped[Timestamp | None] = mapped_column(index=True)
    revoked_reason: Mapped[str | None] = mapped_column(String(200))
    # RFC 9449 §5: a public client's chain is bound to the DPoP key of its first token
    # request (the key's thumbprint); every refresh must prove possession of that key.
    dpop_jkt: Mapped[str | None] = mapped_column(String(64))
    # How the user authenticated at the login that opened the family (RFC 8176 amr, and
    # acr), so that a refreshed ID token says the same (OIDC Core §12.2). None for
    # families opened before idp recorded it: their refreshed ID tokens carry neither.
    amr: Mapped[Json | None] = mapped_column()
    acr: Mapped[str | None] = mapped_column(String(40))

    tokens: Mapped[list[RefreshToken]] = relationship(
        back_populates="family", order_by="RefreshToken.generation", lazy="raise"
    )

    def is_live(self, now: dt.datetime) -> bool:
        return self.revoked_at is None and now < self.absolute_expires_at


class RefreshToken(Base):
    """One link of the chain. Only the SHA-256 of the value is stored."""

    __tablename__ = "refresh_tokens"

    id: Mapped[Id]
    family_id: Mapped[str] = mapped_column(
        ForeignKey("refresh_families.id", ondelete="CASCADE"), index=True
    )
    parent_id: Mapped[str | None] = mapped_column(String(32))
    generation: Mapped[int] = mapped_column(Integer)
    token_hash: Mapped[Hash] = mapped_column(unique=True)
    scope: Mapped[str] = mapped_column(String(1000))
    issued_at: Mapped[Timestamp]
    issued_ip: Mapped[str | None] = mapped_column(String(64))
    issued_user_agent: Mapped[str | None] = mapped_column(String(512))
    expires_at: Mapped[Timestamp] = mapped_column(index=True)
    used_at: Mapped[Timestamp | None]
    used_ip: Mapped[str | None] = mapped_column(String(64))
    used_user_agent: Mapped[str | None] = mapped_column(String(512))
    # The child's value, AES-GCM-sealed under a key derived from THIS token's value, which
    # idp never stores: only whoever presents this token again can open it (grace replay).
    child_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)

    family: Mapped[RefreshFamily] = relationship(back_populates="tokens", lazy="raise")


class FamilyAccessToken(Base):
    """Access tokens minted from a family, so that revoking the family denies them."""

    __tablename__ = "family_access_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    family_id: Mapped[str] = mapped_column(
        ForeignKey("refresh_families.id", ondelete="CASCADE"), index=True
    )
    expires_at: Mapped[Timestamp] = mapped_column(index=True)
