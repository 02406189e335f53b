"""The revocation log: every revoked ``sid`` and ``jti``, and every "tokens of this client
or user issued before" moment, in commit order. It is the durable deny list (see
idp.revocations.denylist) and the feed resource servers follow."""

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
    kind: Mapped[str] = mapped_column(String(8))  # "sid", "jti", "client" or "user"
    value: Mapped[str] = mapped_column(String(128))
    # For "client" and "user": tokens of that client or user with iat below this epoch
    # second are revoked. None for "sid" and "jti".
    issued_before: Mapped[int | None] = mapped_column(BigInteger)
    expires_at: Mapped[Timestamp] = mapped_column(index=True)
    created_at: Mapped[Timestamp]
