"""SQL backing of the short-lived state interface (see idp.state.store)."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from idp.db import Base, Timestamp


class StateEntry(Base):
    __tablename__ = "state_entries"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    value: Mapped[int] = mapped_column(default=0)
    expires_at: Mapped[Timestamp] = mapped_column(index=True)
