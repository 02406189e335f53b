"""Second factors, recovery codes, and logins waiting for their second factor."""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.db import Base, Hash, Id, Json, Timestamp

TOTP = "totp"
WEBAUTHN = "webauthn"


class MfaFactor(Base):
    """One second factor of a user. ``kind`` says which: ``totp`` keeps its shared
    secret sealed under the KEK in ``secret``; ``webauthn`` (passkeys) keeps its public
    credential in ``credential``. A factor counts only once ``confirmed_at`` is set (a
    TOTP enrolment is confirmed by a first code)."""

    __tablename__ = "mfa_factors"

    id: Mapped[Id]
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    label: Mapped[str] = mapped_column(String(100))
    # AES-GCM under the KEK, the factor's id as associated data (idp.keys.crypto).
    secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Which KEK sealed ``secret`` (idp.keys.crypto.kek_id); None: sealed before ids were kept.
    kek_id: Mapped[str | None] = mapped_column(String(16))
    credential: Mapped[Json | None] = mapped_column()
    created_at: Mapped[Timestamp]
    confirmed_at: Mapped[Timestamp | None]
    last_used_at: Mapped[Timestamp | None]
    # RFC 6238 §5.2: the time step of the last accepted code; a code of this step or an
    # earlier one is refused, so an observed code cannot be replayed within its window.
    last_used_step: Mapped[int | None] = mapped_column(BigInteger)


class RecoveryCode(Base):
    """A single-use code for when the factor is lost; only its SHA-256 is stored (80
    random bits, so a fast hash is enough, as for client secrets)."""

    __tablename__ = "recovery_codes"

    id: Mapped[Id]
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[Hash] = mapped_column(unique=True)
    created_at: Mapped[Timestamp]
    used_at: Mapped[Timestamp | None]


class PendingLogin(Base):
    """A right password for a user with a second factor: no session yet, only this,
    named by a random cookie value whose SHA-256 is ``token_hash``, until the code is
    given (``/login/code``) or it expires."""

    __tablename__ = "pending_logins"

    id: Mapped[Id]
    token_hash: Mapped[Hash] = mapped_column(unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    next_url: Mapped[str] = mapped_column(String(4000))
    # RFC 8176 methods proven so far (``["pwd"]``).
    amr: Mapped[Json] = mapped_column(default=list)
    created_at: Mapped[Timestamp]
    expires_at: Mapped[Timestamp] = mapped_column(index=True)
