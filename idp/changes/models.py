"""Generation counters: one row per kind of thing processes hold in memory."""

from __future__ import annotations

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.db import Base

# What processes keep in memory and must drop or refresh when it changes.
CLIENTS, KEYS, USERS, DENY = "clients", "keys", "users", "deny"
NAMES = (CLIENTS, KEYS, USERS, DENY)


class Generation(Base):
    __tablename__ = "generations"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)
