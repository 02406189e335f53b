"""The revocation feed's log: every revoked ``sid`` and ``jti``, in order."""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.db import Base, Timestamp


class RevocationEntry(Base):
    __tablename__ = "revocations"

    # SQLite only autoincrements INTEGER primary keys; PostgreSQL gets a bigint.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    kind: Mapped[str] = mapped_column(String(8))  # "sid" or "jti"
    value: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[Timestamp] = mapped_column(index=True)
    created_at: Mapped[Timestamp]
