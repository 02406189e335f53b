"""People who log in, and what they consented to."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from idp.db import Base, Hash, Id, Json, Timestamp


class User(Base):
    __tablename__ = "users"

    id: Mapped[Id]
    username: Mapped[str] = mapped_column(String(150), unique=True)
    # The username normalised once (NFKC + casefold): what is unique and looked up, so
    # "Alice" and "alice" are one account (idp.accounts.services.username_key).
    username_key: Mapped[str] = mapped_column(String(150), unique=True)
    email: Mapped[str | None] = mapped_column(String(320))
    email_verified: Mapped[bool] = mapped_column(default=False)
    name: Mapped[str | None] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    is_admin: Mapped[bool] = mapped_column(default=False)
    disabled: Mapped[bool] = mapped_column(default=False)
    attributes: Mapped[Json] = mapped_column(default=dict)
    created_at: Mapped[Timestamp]

    # authlib's grants ask the user object for its id.
    def get_user_id(self) -> str:
        return self.id


class Consent(Base):
    """Scopes a user granted to a non-first-party client, remembered per pair."""

    __tablename__ = "consents"
    __table_args__ = (UniqueConstraint("user_id", "client_id"),)

    id: Mapped[Id]
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(String(1000))
    granted_at: Mapped[Timestamp]

    def covers(self, scope: str) -> bool:
        return set(scope.split()) <= set(self.scope.split())


class AccountToken(Base):
    """A single-use link mailed to a user (a password reset, an email verification),
    stored as the SHA-256 of its token only: the database never holds a usable link.

    ``binding`` is what the link was issued against: for a reset, a fingerprint of the
    password hash then (a changed password voids every older link); for a verification,
    the address it verifies (a changed address voids it)."""

    __tablename__ = "account_tokens"

    token_hash: Mapped[Hash] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(10))
    binding: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[Timestamp]
    expires_at: Mapped[Timestamp] = mapped_column(index=True)
    used_at: Mapped[Timestamp | None]
