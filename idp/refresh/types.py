"""What the refresh-token store promises (STYLE rules 3, 12, 13): its interface, the
values it hands back and the errors it raises. The grant and the token registry use
these; idp.refresh.store implements them in SQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.orm import Session


@dataclass(frozen=True)
class Use:
    """Who presented a token, when (kept with each link for the operator's timeline)."""

    at: dt.datetime
    ip: str
    user_agent: str


@dataclass(frozen=True)
class FamilyInfo:
    id: str
    client_id: str
    user_id: str
    session_id: str | None
    scope: str
    auth_time: dt.datetime
    nonce: str | None
    dpop_jkt: str | None = None  # the DPoP key the chain is bound to (public clients)
    # How the user authenticated at the family's login (RFC 8176 amr, and acr); None for
    # families opened before idp recorded it.
    amr: tuple[str, ...] | None = None
    acr: str | None = None


@dataclass(frozen=True)
class Holder:
    """The user a family belongs to, as tokens describe them (read with the family)."""

    id: str
    username: str
    email: str | None
    email_verified: bool
    name: str | None
    attributes: dict[str, Any]


@dataclass(frozen=True)
class Rotation:
    refresh_token: str
    family: FamilyInfo
    holder: Holder
    scope: str
    replayed: bool  # True when the grace interval returned an already-issued child


@dataclass(frozen=True)
class Revoked:
    """What a revocation revoked, and what the caller must still deny."""

    family_ids: list[str]
    session_ids: list[str]
    access_tokens: list[tuple[str, dt.datetime]]  # (jti, expires_at) still live


@dataclass(frozen=True)
class TokenState:
    """What introspection and revocation need to know about a presented refresh token."""

    family: FamilyInfo
    active: bool
    scope: str
    issued_at: dt.datetime
    expires_at: dt.datetime


class RefreshError(Exception):
    """A refresh token was refused; the message is the error_description."""


class InvalidRefresh(RefreshError):
    """Unknown, expired, revoked, another client's, or its user is disabled."""


class ScopeWidened(RefreshError):
    """The request asked for more than the original grant (RFC 6749 §6)."""


class ReuseDetected(RefreshError):
    """A spent token came back outside the grace interval: the family is revoked (and
    whatever ``on_reuse`` did, in the same transaction); ``logouts_owed`` is what
    ``on_reuse`` returned: back-channel logouts were queued."""

    def __init__(self, description: str, revoked: Revoked, logouts_owed: bool = False) -> None:
        super().__init__(description)
        self.revoked = revoked
        self.logouts_owed = logouts_owed


# Called inside the transaction that revokes a family for reuse: denies what the family
# issued and kills its sessions (idp.oauth.server); True when logouts were queued.
OnReuse = Callable[[Session, Revoked], bool]


class RefreshStore(Protocol):
    def start(
        self,
        *,
        client_id: str,
        user_id: str,
        session_id: str | None,
        code_id: str | None,
        scope: str,
        auth_time: dt.datetime,
        nonce: str | None,
        use: Use,
        access_jti: str,
        access_expires_at: dt.datetime,
        dpop_jkt: str | None = None,
        amr: list[str] | None = None,
        acr: str | None = None,
    ) -> str:
        """Opens a family for one login at one client; returns its first token (whose
        SHA-256 alone is stored). The access token issued with it is recorded, so that
        revoking the family denies it. ``dpop_jkt`` binds the chain to a DPoP key;
        ``amr`` and ``acr`` are how the login authenticated, for refreshed ID tokens."""
        ...

    def rotate(
        self,
        value: str,
        client_id: str,
        requested_scope: str | None,
        use: Use,
        access_jti: str,
        access_expires_at: dt.datetime,
        on_reuse: OnReuse | None = None,
        dpop_jkt: str | None = None,
    ) -> Rotation:
        """A chain bound to a DPoP key needs ``dpop_jkt`` to be that key's thumbprint
        (else InvalidRefresh, before anything is spent).

        Atomically spends ``value`` and returns its child, recording the access token
        the caller will sign (``access_jti``) with the family. Exactly one of any number
        of concurrent callers with the same value succeeds. Within the grace interval the
        same child comes back; otherwise a spent token raises ReuseDetected after the
        family was revoked, with ``on_reuse`` run in that same transaction. Raises
        InvalidRefresh or ScopeWidened."""
        ...

    def lookup(self, value: str) -> TokenState | None:
        """The presented token's family and whether it is usable now; None if unknown."""
        ...

    def revoke_family(self, family_id: str, reason: str) -> Revoked:
        """Revokes one family (any of its tokens was revoked, RFC 7009 §2.1)."""
        ...

    def revoke_for_code(self, code_id: str, reason: str) -> Revoked:
        """Revokes the family opened by an authorization code (a replayed code)."""
        ...

    def revoke_for_client(self, s: Session, client_id: str, reason: str) -> Revoked:
        """Revokes every live family of a client inside the caller's transaction."""
        ...

    def revoke_for_user(self, s: Session, user_id: str, reason: str) -> Revoked:
        """Revokes every live family of a user inside the caller's transaction."""
        ...

    def revoke_for_session(self, s: Session, session_id: str, reason: str) -> Revoked:
        """Revokes the families of a browser session inside the caller's transaction
        (a session kill)."""
        ...

    def revoke_for_user_at_client(
        self, s: Session, user_id: str, client_id: str, reason: str
    ) -> Revoked:
        """Revokes every live family one user holds at one client inside the caller's
        transaction (the user withdrew their consent to that client)."""
        ...

    def purge_for_user(self, s: Session, user_id: str) -> int:
        """Deletes every family of a user, with its tokens and access-token records,
        inside the caller's transaction (the user is deleted; revoke first, so that the
        caller can deny what they issued). Returns the families deleted."""
        ...
