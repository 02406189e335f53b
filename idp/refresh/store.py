"""SQL storage of refresh-token families: issue, rotate atomically, detect reuse, revoke.

Rotation is one transaction: the family row is locked (``SELECT ... FOR UPDATE`` on
PostgreSQL; SQLite transactions here begin IMMEDIATE, which serialises writers), then the
presented token is marked used with a conditional ``UPDATE ... WHERE used_at IS NULL``
whose row count decides the single winner, and the child is inserted. Under any number
of concurrent requests on any number of processes exactly one gets the child.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from idp.accounts.models import User
from idp.audit.models import SecurityEvent
from idp.clock import Clock
from idp.db import Database
from idp.refresh.models import FamilyAccessToken, RefreshFamily, RefreshToken

MAX_TOKEN_LENGTH = 200


def token_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_value() -> str:
    """256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def _seal_key(parent_value: str, parent_id: str) -> bytes:
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=parent_id.encode(),
        info=b"idp refresh-token child seal",
    )
    return hkdf.derive(parent_value.encode())


def seal_child(parent_value: str, parent_id: str, child_value: str) -> bytes:
    """Encrypts the child under a key only the parent's holder can derive.

    The grace interval must hand a client that lost the response the *same* child again
    (the chain must not fork) without idp keeping any refresh token in clear. The child is
    therefore stored encrypted under HKDF(parent value): a database leak reveals nothing,
    and presenting the parent again is exactly what opens it.
    """
    nonce = secrets.token_bytes(12)
    return nonce + AESGCM(_seal_key(parent_value, parent_id)).encrypt(
        nonce, child_value.encode(), parent_id.encode()
    )


def open_child(parent_value: str, parent_id: str, sealed: bytes) -> str:
    return (
        AESGCM(_seal_key(parent_value, parent_id))
        .decrypt(sealed[:12], sealed[12:], parent_id.encode())
        .decode()
    )


# Signs an access token for (family, scope, user) without touching the database.
Mint = Callable[["FamilyInfo", str, User], "Minted"]


class RefreshError(Exception):
    """Why a refresh token was refused; ``kind`` is ``invalid``, ``scope`` or ``reuse``.
    On reuse, ``revoked`` says what was revoked and what the caller must still deny."""

    def __init__(self, kind: str, description: str, revoked: Revoked | None = None) -> None:
        super().__init__(description)
        self.kind = kind
        self.description = description
        self.revoked = revoked


@dataclass(frozen=True)
class FamilyInfo:
    id: str
    client_id: str
    user_id: str
    session_id: str | None
    scope: str
    auth_time: dt.datetime
    nonce: str | None


@dataclass(frozen=True)
class Minted:
    """An access token minted for a rotation: its jti and expiry are recorded."""

    jti: str
    expires_at: dt.datetime
    payload: Any


@dataclass(frozen=True)
class Rotation:
    refresh_token: str
    family: FamilyInfo
    scope: str
    access: Minted
    replayed: bool  # True when the grace interval returned an already-issued child


@dataclass(frozen=True)
class Revoked:
    family_ids: list[str]
    session_ids: list[str]
    access_tokens: list[tuple[str, dt.datetime]]  # (jti, expires_at) still to deny


@dataclass(frozen=True)
class Use:
    at: dt.datetime
    ip: str
    user_agent: str


@dataclass(frozen=True)
class TokenState:
    """What introspection and revocation need to know about a presented refresh token."""

    family: FamilyInfo
    active: bool
    scope: str
    issued_at: dt.datetime
    expires_at: dt.datetime


def _info(f: RefreshFamily) -> FamilyInfo:
    return FamilyInfo(f.id, f.client_id, f.user_id, f.session_id, f.scope, f.auth_time, f.nonce)


class SqlRefreshStore:
    def __init__(
        self, db: Database, clock: Clock, idle_ttl: int, absolute_ttl: int, grace_seconds: int
    ) -> None:
        self.db = db
        self.clock = clock
        self.idle = dt.timedelta(seconds=idle_ttl)
        self.absolute = dt.timedelta(seconds=absolute_ttl)
        self.grace = dt.timedelta(seconds=grace_seconds)
        self._postgres = db.engine.dialect.name == "postgresql"

    # --- issue ----------------------------------------------------------------------
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
    ) -> str:
        """Opens a family for a login at a client; returns its first refresh token."""
        now = self.clock.now()
        value = new_value()
        with self.db.transaction() as s:
            family = RefreshFamily(
                client_id=client_id,
                user_id=user_id,
                session_id=session_id,
                code_id=code_id,
                scope=scope,
                auth_time=auth_time,
                nonce=nonce,
                created_at=now,
                last_used_at=now,
                absolute_expires_at=now + self.absolute,
            )
            s.add(family)
            s.flush()
            s.add(self._link(family, None, value, scope, use, now))
            s.add(
                FamilyAccessToken(jti=access_jti, family_id=family.id, expires_at=access_expires_at)
            )
        return value

    def _link(
        self,
        family: RefreshFamily,
        parent: RefreshToken | None,
        value: str,
        scope: str,
        use: Use,
        now: dt.datetime,
    ) -> RefreshToken:
        """The next link of a chain: stored by hash, idle expiry never past the family's."""
        return RefreshToken(
            family_id=family.id,
            parent_id=parent.id if parent else None,
            generation=parent.generation + 1 if parent else 1,
            token_hash=token_hash(value),
            scope=scope,
            issued_at=now,
            issued_ip=use.ip[:64],
            issued_user_agent=use.user_agent[:512],
            expires_at=min(now + self.idle, family.absolute_expires_at),
        )

    # --- rotate ---------------------------------------------------------------------
    def _lock_family(self, s: Session, family_id: str) -> RefreshFamily:
        stmt = select(RefreshFamily).where(RefreshFamily.id == family_id)
        if self._postgres:
            stmt = stmt.with_for_update()
        return s.scalars(stmt).one()

    def rotate(
        self,
        value: str,
        client_id: str,
        requested_scope: str | None,
        use: Use,
        mint: Mint,
    ) -> Rotation:
        """Spends ``value`` and returns its child (or, within the grace interval, the child
        already issued to the same client). Raises RefreshError; on reuse the whole family
        has been revoked and ``RefreshError.revoked`` lists what the caller must still deny."""
        if not value or len(value) > MAX_TOKEN_LENGTH:
            raise RefreshError("invalid", "Invalid refresh token.")
        now = self.clock.now()
        with self.db.transaction() as s:
            token = s.scalar(
                select(RefreshToken).where(RefreshToken.token_hash == token_hash(value))
            )
            if token is None:
                raise RefreshError("invalid", "Invalid refresh token.")
            family = self._lock_family(s, token.family_id)
            s.refresh(token)
            if family.client_id != client_id:
                raise RefreshError("invalid", "Refresh token was issued to another client.")
            if family.revoked_at is not None:
                raise RefreshError("invalid", "Refresh token has been revoked.")
            if not family.is_live(now) or now >= token.expires_at:
                raise RefreshError("invalid", "Refresh token has expired.")
            user = s.get(User, family.user_id)
            if user is None or user.disabled:
                raise RefreshError("invalid", "The user is disabled.")
            s.expunge(user)
            if token.used_at is None:
                return self._spend(s, family, token, value, requested_scope, use, now, mint, user)
            replay = self._replay(s, family, token, value, use, now, mint, user)
            if isinstance(replay, Rotation):
                return replay
        # Reuse: the revocation is committed above, before the refusal.
        raise RefreshError("reuse", "Refresh token reuse detected; the grant is revoked.", replay)

    def _spend(
        self,
        s: Session,
        family: RefreshFamily,
        token: RefreshToken,
        value: str,
        requested_scope: str | None,
        use: Use,
        now: dt.datetime,
        mint: Mint,
        user: User,
    ) -> Rotation:
        scope = self._narrowed(token.scope, requested_scope)
        child_value = new_value()
        result: Any = s.execute(
            update(RefreshToken)
            .where(RefreshToken.id == token.id, RefreshToken.used_at.is_(None))
            .values(
                used_at=now,
                used_ip=use.ip[:64],
                used_user_agent=use.user_agent[:512],
                child_sealed=seal_child(value, token.id, child_value),
            )
        )
        won = result.rowcount == 1
        if not won:  # pragma: no cover - the family lock makes this unreachable
            raise RefreshError("invalid", "Refresh token was used concurrently.")
        s.add(self._link(family, token, child_value, scope, use, now))
        family.last_used_at = now
        info = _info(family)
        access = mint(info, scope, user)
        s.add(FamilyAccessToken(jti=access.jti, family_id=family.id, expires_at=access.expires_at))
        return Rotation(child_value, info, scope, access, replayed=False)

    @staticmethod
    def _narrowed(granted: str, requested: str | None) -> str:
        # RFC 6749 §6: the scope may narrow on refresh, never widen.
        if not requested:
            return granted
        wanted = requested.split()
        if not set(wanted) <= set(granted.split()):
            raise RefreshError("scope", "Requested scope exceeds the original grant.")
        return " ".join(dict.fromkeys(wanted))

    def _replay(
        self,
        s: Session,
        family: RefreshFamily,
        token: RefreshToken,
        value: str,
        use: Use,
        now: dt.datetime,
        mint: Mint,
        user: User,
    ) -> Rotation | Revoked:
        """A spent token again: the grace replay of the newest child, or reuse."""
        child = s.scalar(select(RefreshToken).where(RefreshToken.parent_id == token.id))
        in_grace = (
            self.grace
            and token.used_at is not None
            and now - token.used_at <= self.grace
            and child is not None
            and child.used_at is None
            and token.child_sealed is not None
        )
        if in_grace:
            assert child is not None and token.child_sealed is not None
            child_value = open_child(value, token.id, token.child_sealed)
            info = _info(family)
            access = mint(info, child.scope, user)
            s.add(
                FamilyAccessToken(jti=access.jti, family_id=family.id, expires_at=access.expires_at)
            )
            return Rotation(child_value, info, child.scope, access, replayed=True)
        # Reuse: a spent token came back, so someone holds a copy: revoke the whole family.
        revoked = self.revoke_where(
            s, RefreshFamily.id == family.id, "refresh token reuse detected"
        )
        newest = s.scalar(
            select(RefreshToken.generation)
            .where(RefreshToken.family_id == family.id)
            .order_by(RefreshToken.generation.desc())
        )
        s.add(
            SecurityEvent(
                at=now,
                kind="refresh_token_reuse",
                user_id=family.user_id,
                client_id=family.client_id,
                session_id=family.session_id,
                family_id=family.id,
                details={
                    "generation": token.generation,
                    "newest_generation": newest,
                    "first_use": {
                        "at": token.used_at.isoformat() if token.used_at else None,
                        "ip": token.used_ip,
                        "user_agent": token.used_user_agent,
                    },
                    "reuse": {
                        "at": now.isoformat(),
                        "ip": use.ip[:64],
                        "user_agent": use.user_agent[:512],
                    },
                },
            )
        )
        return revoked

    # --- revoke ---------------------------------------------------------------------
    def _revoke(
        self, s: Session, families: list[RefreshFamily], reason: str, now: dt.datetime
    ) -> None:
        for family in families:
            if family.revoked_at is None:
                family.revoked_at = now
                family.revoked_reason = reason[:200]

    def revoke_where(self, s: Session, condition: Any, reason: str) -> Revoked:
        """Revokes every live family matching ``condition`` inside the caller's transaction;
        returns what the caller must still deny (after commit) in the short-lived store."""
        now = self.clock.now()
        stmt = select(RefreshFamily).where(condition)
        if self._postgres:
            stmt = stmt.with_for_update()
        families = list(s.scalars(stmt))
        self._revoke(s, families, reason, now)
        ids = [f.id for f in families]
        access = (
            [
                (row.jti, row.expires_at)
                for row in s.scalars(
                    select(FamilyAccessToken).where(
                        FamilyAccessToken.family_id.in_(ids), FamilyAccessToken.expires_at > now
                    )
                )
            ]
            if ids
            else []
        )
        return Revoked(ids, sorted({f.session_id for f in families if f.session_id}), access)

    def revoke(self, condition: Any, reason: str) -> Revoked:
        with self.db.transaction() as s:
            return self.revoke_where(s, condition, reason)

    # --- inspect --------------------------------------------------------------------
    def lookup(self, value: str) -> TokenState | None:
        if not value or len(value) > MAX_TOKEN_LENGTH:
            return None
        now = self.clock.now()
        with self.db.read() as s:
            token = s.scalar(
                select(RefreshToken).where(RefreshToken.token_hash == token_hash(value))
            )
            if token is None:
                return None
            family = s.get(RefreshFamily, token.family_id)
            assert family is not None
            user = s.get(User, family.user_id)
            active = (
                family.is_live(now)
                and token.used_at is None
                and now < token.expires_at
                and user is not None
                and not user.disabled
            )
            return TokenState(_info(family), active, token.scope, token.issued_at, token.expires_at)
