"""Authorization codes (RFC 6749 §4.1), stored by hash and consumed once."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.db import Base, Hash, Id, Json, Timestamp


class AuthorizationCode(Base):
    __tablename__ = "authorization_codes"

    id: Mapped[Id]
    code_hash: Mapped[Hash] = mapped_column(unique=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    session_id: Mapped[str | None] = mapped_column(
        ForeignKey("browser_sessions.id", ondelete="SET NULL"), index=True
    )
    redirect_uri: Mapped[str] = mapped_column(String(2000))
    scope: Mapped[str] = mapped_column(String(1000))
    nonce: Mapped[str | None] = mapped_column(String(512))
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    code_challenge_method: Mapped[str | None] = mapped_column(String(10))
    # RFC 9449 §10: the DPoP key (thumbprint) the token request must prove.
    dpop_jkt: Mapped[str | None] = mapped_column(String(64))
    auth_time: Mapped[Timestamp]
    # How the session's user authenticated (RFC 8176 amr, and acr), for the ID token.
    amr: Mapped[Json] = mapped_column(default=lambda: ["pwd"])
    acr: Mapped[str] = mapped_column(String(40), default="1")
    created_at: Mapped[Timestamp]
    expires_at: Mapped[Timestamp] = mapped_column(index=True)
    used_at: Mapped[Timestamp | None]
    # What was issued from the code, so that a replay can revoke it (RFC 6749 §4.1.2).
    issued: Mapped[Json] = mapped_column(default=dict)

    # --- authlib AuthorizationCodeMixin ------------------------------------------
    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return int(self.auth_time.timestamp())

    def get_acr(self) -> str:
        return self.acr

    def get_amr(self) -> list[str]:
        return list(self.amr or [])

    def is_expired(self, now: dt.datetime) -> bool:
        return now >= self.expires_at


class PushedRequest(Base):
    """An authorization request pushed to /par (RFC 9126), named by the request_uri
    handed back (only its hash is stored) and used once."""

    __tablename__ = "pushed_requests"

    id: Mapped[Id]
    handle_hash: Mapped[Hash] = mapped_column(unique=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id", ondelete="CASCADE"))
    params: Mapped[Json] = mapped_column(default=dict)
    created_at: Mapped[Timestamp]
    expires_at: Mapped[Timestamp] = mapped_column(index=True)
    started_at: Mapped[Timestamp | None]
    used_at: Mapped[Timestamp | None]
