"""SQL storage of refresh-token families: issue, rotate atomically, detect reuse, revoke.

Rotation is one short transaction (issue 8): one statement reads the presented token,
its family and its user and locks the token and family rows (``FOR UPDATE`` on
PostgreSQL; SQLite transactions here begin IMMEDIATE, which serialises writers); a
conditional ``UPDATE ... WHERE used_at IS NULL`` marks it used, its child and the access
token the caller will sign are inserted, and the family's last use is stamped. Under any
number of concurrent requests on any number of processes exactly one gets the child.
The hot path is SQLAlchemy Core on one connection; the rare paths (a spent token: grace
replay or reuse) run afterwards in an ORM transaction that re-reads under the same lock.
The caller allocates the access token's jti and expiry before, and signs after the
commit, so no signature is computed while the family row is locked.

A rotation that fails on a database error may still have committed (the answer to the
COMMIT was lost with the connection). It is remembered for a few minutes in the state
store, and the client's retry of the same token, even after an outage longer than the
grace interval, gets the same child back: still the immediate parent only, never a fork.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import ColumnElement, and_, bindparam, delete, insert, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from idp import metrics
from idp.accounts.models import User
from idp.audit.models import SecurityEvent
from idp.clock import Clock
from idp.db import Base, Database, RawCursor, RawStatement, new_id
from idp.refresh.models import FamilyAccessToken, RefreshFamily, RefreshToken
from idp.refresh.types import (
    FamilyInfo,
    Holder,
    InvalidRefresh,
    OnReuse,
    ReuseDetected,
    Revoked,
    Rotation,
    ScopeWidened,
    TokenState,
    Use,
)
from idp.state.store import StateStore

log = logging.getLogger(__name__)
MAX_TOKEN_LENGTH = 200
# A rotation that failed on a database error is remembered this long (idp.state): its
# retry returns the child even past the grace interval (the outage may outlast it).
UNCONFIRMED = "rotation-unconfirmed:"
UNCONFIRMED_FOR = dt.timedelta(minutes=10)
REUSE = "Refresh token reuse detected; the grant is revoked."


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


def _amr(stored: Any) -> tuple[str, ...] | None:
    return tuple(stored) if stored is not None else None


def _info(f: Any) -> FamilyInfo:
    return FamilyInfo(
        f.id,
        f.client_id,
        f.user_id,
        f.session_id,
        f.scope,
        f.auth_time,
        f.nonce,
        f.dpop_jkt,
        _amr(f.amr),
        f.acr,
    )


def _holder(u: Any) -> Holder:
    return Holder(u.id, u.username, u.email, u.email_verified, u.name, dict(u.attributes or {}))


TOKENS, FAMILIES, ACCESS, USERS = (
    Base.metadata.tables[name]
    for name in ("refresh_tokens", "refresh_families", "family_access_tokens", "users")
)
T, F, U = TOKENS.c, FAMILIES.c, USERS.c
# The presented token, its family and its user, in one statement (the rotation's read).
PRESENTED = select(
    T.id,
    T.family_id,
    T.generation,
    T.scope,
    T.issued_at,
    T.expires_at,
    T.used_at,
    F.client_id,
    F.user_id,
    F.session_id,
    F.scope.label("family_scope"),
    F.auth_time,
    F.nonce,
    F.dpop_jkt,
    F.amr,
    F.acr,
    F.absolute_expires_at,
    F.revoked_at,
    U.username,
    U.email,
    U.email_verified,
    U.name,
    U.attributes,
    U.disabled,
).select_from(TOKENS.join(FAMILIES, F.id == T.family_id).join(USERS, U.id == F.user_id))
BY_HASH = PRESENTED.where(T.token_hash == bindparam("hash"))
LINK_KEYS = (
    "id",
    "family_id",
    "parent_id",
    "generation",
    "token_hash",
    "scope",
    "issued_at",
    "issued_ip",
    "issued_user_agent",
    "expires_at",
    "used_at",
    "used_ip",
    "used_user_agent",
    "child_sealed",
)
# The rotation's writes, built once: Core statements on tables (not the ORM entities,
# whose DML path costs more than the statement) with their values bound per call.
SPEND = RawStatement(
    update(TOKENS)
    .where(T.id == bindparam("b_id"), T.used_at.is_(None))
    .values(
        used_at=bindparam("b_used_at"),
        used_ip=bindparam("b_used_ip"),
        used_user_agent=bindparam("b_used_user_agent"),
        child_sealed=bindparam("b_child_sealed"),
    )
)
ADD_TOKEN = RawStatement(insert(TOKENS), LINK_KEYS)
ADD_ACCESS = RawStatement(insert(ACCESS), ("jti", "family_id", "expires_at"))
ADD_FAMILY = RawStatement(
    insert(FAMILIES),
    (
        "id",
        "client_id",
        "user_id",
        "session_id",
        "code_id",
        "scope",
        "auth_time",
        "nonce",
        "created_at",
        "last_used_at",
        "absolute_expires_at",
        "revoked_at",
        "revoked_reason",
        "dpop_jkt",
        "amr",
        "acr",
    ),
)
TOUCH_FAMILY = RawStatement(
    update(FAMILIES).where(F.id == bindparam("b_id")).values(last_used_at=bindparam("b_at"))
)


class SqlRefreshStore:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        idle_ttl: int,
        absolute_ttl: int,
        grace_seconds: int,
        state: StateStore | None = None,
    ) -> None:
        """``state``: where rotations whose outcome a database error left unknown are
        remembered (see :meth:`rotate`); None keeps no such memory."""
        self.db = db
        self.state = state
        self.clock = clock
        self.idle = dt.timedelta(seconds=idle_ttl)
        self.absolute = dt.timedelta(seconds=absolute_ttl)
        self.grace = dt.timedelta(seconds=grace_seconds)
        self._postgres = db.engine.dialect.name == "postgresql"
        # PostgreSQL locks the token and family rows; SQLite's BEGIN IMMEDIATE serialises.
        self._presented_locked = RawStatement(
            BY_HASH.with_for_update(of=[TOKENS, FAMILIES]) if self._postgres else BY_HASH
        )

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
        dpop_jkt: str | None = None,
        amr: list[str] | None = None,
        acr: str | None = None,
    ) -> str:
        """Opens a family for a login at a client; returns its first refresh token.
        ``dpop_jkt`` binds the whole chain to that DPoP key; ``amr`` and ``acr`` (how the
        login authenticated) come back with every rotation, for its ID token."""
        now = self.clock.now()
        value = new_value()
        family_id = new_id()
        absolute = now + self.absolute
        with self.db.raw_transaction() as cur:
            cur.execute(
                ADD_FAMILY,
                {
                    "id": family_id,
                    "client_id": client_id,
                    "user_id": user_id,
                    "session_id": session_id,
                    "code_id": code_id,
                    "scope": scope,
                    "auth_time": auth_time,
                    "nonce": nonce,
                    "created_at": now,
                    "last_used_at": now,
                    "absolute_expires_at": absolute,
                    "revoked_at": None,
                    "revoked_reason": None,
                    "dpop_jkt": dpop_jkt,
                    "amr": list(amr) if amr is not None else None,
                    "acr": acr,
                },
            )
            cur.execute(ADD_TOKEN, self._link(family_id, absolute, None, 0, value, scope, use, now))
            cur.execute(
                ADD_ACCESS,
                {"jti": access_jti, "family_id": family_id, "expires_at": access_expires_at},
            )
        return value

    def _link(
        self,
        family_id: str,
        absolute_expires_at: dt.datetime,
        parent_id: str | None,
        parent_generation: int,
        value: str,
        scope: str,
        use: Use,
        now: dt.datetime,
    ) -> dict[str, Any]:
        """The next link of a chain: stored by hash, idle expiry never past the family's."""
        return {
            "id": new_id(),
            "family_id": family_id,
            "parent_id": parent_id,
            "generation": parent_generation + 1,
            "token_hash": token_hash(value),
            "scope": scope,
            "issued_at": now,
            "issued_ip": use.ip[:64],
            "issued_user_agent": use.user_agent[:512],
            "expires_at": min(now + self.idle, absolute_expires_at),
            "used_at": None,
            "used_ip": None,
            "used_user_agent": None,
            "child_sealed": None,
        }

    # --- rotate ---------------------------------------------------------------------
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
        """See idp.refresh.types.RefreshStore.rotate."""
        if not value or len(value) > MAX_TOKEN_LENGTH:
            raise InvalidRefresh("Invalid refresh token.")
        now = self.clock.now()
        try:
            rotation = self._rotate(
                value,
                client_id,
                requested_scope,
                use,
                access_jti,
                now,
                access_expires_at,
                on_reuse,
                dpop_jkt,
            )
        except ReuseDetected:
            metrics.refresh_reuse(client_id)  # committed: the family is revoked
            raise
        except DBAPIError:
            # The commit may have reached the database while its answer did not (a cut
            # connection, a server that stopped): the client retries this token once the
            # database is back, maybe after the grace interval. Remember the attempt so
            # that retry gets the child instead of counting as theft.
            self._remember_unconfirmed(value, now)
            raise
        metrics.refresh_rotated(rotation.replayed)
        return rotation

    def _rotate(
        self,
        value: str,
        client_id: str,
        requested_scope: str | None,
        use: Use,
        access_jti: str,
        now: dt.datetime,
        access_expires_at: dt.datetime,
        on_reuse: OnReuse | None,
        dpop_jkt: str | None,
    ) -> Rotation:
        with self.db.raw_transaction() as cur:
            row = cur.one_or_none(self._presented_locked, {"hash": token_hash(value)})
            if row is None:
                raise InvalidRefresh("Invalid refresh token.")
            self._check(row, client_id, now)
            # Before anything is spent or counted as reuse: without the key, a copied
            # token can neither refresh nor kill the chain.
            if row.dpop_jkt is not None and row.dpop_jkt != dpop_jkt:
                raise InvalidRefresh("The refresh token is bound to another DPoP key.")
            if row.used_at is None:
                spent = self._spend(cur, row, value, requested_scope, use, now)
                if spent is not None:
                    child_value, scope = spent
                    cur.execute(
                        ADD_ACCESS,
                        {
                            "jti": access_jti,
                            "family_id": row.family_id,
                            "expires_at": access_expires_at,
                        },
                    )
                    return Rotation(child_value, _info_of(row), _holder_of(row), scope, False)
        # A spent token: the grace replay of its child, or reuse (theft).
        return self._spent_again(value, row.id, use, now, access_jti, access_expires_at, on_reuse)

    @staticmethod
    def _check(row: Any, client_id: str, now: dt.datetime) -> None:
        if row.client_id != client_id:
            raise InvalidRefresh("Refresh token was issued to another client.")
        if row.revoked_at is not None:
            raise InvalidRefresh("Refresh token has been revoked.")
        if now >= row.absolute_expires_at or now >= row.expires_at:
            raise InvalidRefresh("Refresh token has expired.")
        if row.disabled:
            raise InvalidRefresh("The user is disabled.")

    def _spend(
        self,
        cur: RawCursor,
        row: Any,
        value: str,
        requested_scope: str | None,
        use: Use,
        now: dt.datetime,
    ) -> tuple[str, str] | None:
        """Marks the token used and inserts its child; None if another request got there
        first (then the caller takes the spent-token path)."""
        scope = _narrowed(row.scope, requested_scope)
        child_value = new_value()
        spent = cur.execute(
            SPEND,
            {
                "b_id": row.id,
                "b_used_at": now,
                "b_used_ip": use.ip[:64],
                "b_used_user_agent": use.user_agent[:512],
                "b_child_sealed": seal_child(value, row.id, child_value),
            },
        )
        if spent != 1:
            return None
        link = self._link(
            row.family_id,
            row.absolute_expires_at,
            row.id,
            row.generation,
            child_value,
            scope,
            use,
            now,
        )
        cur.execute(ADD_TOKEN, link)
        cur.execute(TOUCH_FAMILY, {"b_id": row.family_id, "b_at": now})
        return child_value, scope

    def _spent_again(
        self,
        value: str,
        token_id: str,
        use: Use,
        now: dt.datetime,
        access_jti: str,
        access_expires_at: dt.datetime,
        on_reuse: OnReuse | None,
    ) -> Rotation:
        with self.db.transaction() as s:
            token = s.get(RefreshToken, token_id)
            assert token is not None
            family = self._lock_family(s, token.family_id)
            s.refresh(token)
            user = s.get(User, family.user_id)
            assert user is not None
            replay = self._replay(s, family, token, value, now)
            if isinstance(replay, tuple):
                child_value, scope = replay
                s.add(
                    FamilyAccessToken(
                        jti=access_jti, family_id=family.id, expires_at=access_expires_at
                    )
                )
                return Rotation(child_value, _info(family), _holder(user), scope, True)
            self._record_reuse(s, family, token, use, now)
            owed = on_reuse(s, replay) if on_reuse is not None else False
        # The revocation is committed above, before the refusal.
        raise ReuseDetected(REUSE, replay, owed)

    def _lock_family(self, s: Session, family_id: str) -> RefreshFamily:
        stmt = select(RefreshFamily).where(RefreshFamily.id == family_id)
        if self._postgres:
            stmt = stmt.with_for_update()
        return s.scalars(stmt).one()

    def _replay(
        self, s: Session, family: RefreshFamily, token: RefreshToken, value: str, now: dt.datetime
    ) -> tuple[str, str] | Revoked:
        """The grace replay of the newest child (its value and scope), or the revocation
        of the whole family: a spent token came back, so someone holds a copy."""
        child = s.scalar(select(RefreshToken).where(RefreshToken.parent_id == token.id))
        in_grace = (
            self.grace
            and family.revoked_at is None
            and token.used_at is not None
            and (now - token.used_at <= self.grace or self._was_unconfirmed(value))
            and child is not None
            and child.used_at is None
            and token.child_sealed is not None
        )
        if in_grace:
            assert child is not None and token.child_sealed is not None
            return open_child(value, token.id, token.child_sealed), child.scope
        return self._revoke(s, RefreshFamily.id == family.id, "refresh token reuse detected")

    def _remember_unconfirmed(self, value: str, now: dt.datetime) -> None:
        if self.state is None:
            return
        try:
            self.state.deny(UNCONFIRMED + token_hash(value), now + UNCONFIRMED_FOR)
        except Exception:  # noqa: BLE001 - the state store is down too: the grace applies
            log.warning("could not remember a rotation left unconfirmed by a database error")

    def _was_unconfirmed(self, value: str) -> bool:
        return self.state is not None and self.state.is_denied(UNCONFIRMED + token_hash(value))

    def _record_reuse(
        self, s: Session, family: RefreshFamily, token: RefreshToken, use: Use, now: dt.datetime
    ) -> None:
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

    # --- revoke ---------------------------------------------------------------------
    def _revoke(self, s: Session, condition: ColumnElement[bool], reason: str) -> Revoked:
        """Revokes every live family matching ``condition`` inside ``s``'s transaction;
        returns what the caller must still deny (after commit)."""
        now = self.clock.now()
        stmt = select(RefreshFamily).where(condition, RefreshFamily.revoked_at.is_(None))
        if self._postgres:
            stmt = stmt.with_for_update()
        families = list(s.scalars(stmt))
        for family in families:
            family.revoked_at = now
            family.revoked_reason = reason[:200]
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

    def _revoke_now(self, condition: ColumnElement[bool], reason: str) -> Revoked:
        with self.db.transaction() as s:
            return self._revoke(s, condition, reason)

    def revoke_family(self, family_id: str, reason: str) -> Revoked:
        return self._revoke_now(RefreshFamily.id == family_id, reason)

    def revoke_for_code(self, code_id: str, reason: str) -> Revoked:
        return self._revoke_now(RefreshFamily.code_id == code_id, reason)

    def revoke_for_client(self, s: Session, client_id: str, reason: str) -> Revoked:
        return self._revoke(s, RefreshFamily.client_id == client_id, reason)

    def revoke_for_user(self, s: Session, user_id: str, reason: str) -> Revoked:
        return self._revoke(s, RefreshFamily.user_id == user_id, reason)

    def revoke_for_session(self, s: Session, session_id: str, reason: str) -> Revoked:
        return self._revoke(s, RefreshFamily.session_id == session_id, reason)

    def revoke_for_user_at_client(
        self, s: Session, user_id: str, client_id: str, reason: str
    ) -> Revoked:
        condition = and_(RefreshFamily.user_id == user_id, RefreshFamily.client_id == client_id)
        return self._revoke(s, condition, reason)

    def purge_for_user(self, s: Session, user_id: str) -> int:
        families = select(RefreshFamily.id).where(RefreshFamily.user_id == user_id)
        s.execute(delete(RefreshToken).where(RefreshToken.family_id.in_(families)))
        s.execute(delete(FamilyAccessToken).where(FamilyAccessToken.family_id.in_(families)))
        result = s.execute(delete(RefreshFamily).where(RefreshFamily.user_id == user_id))
        return int(getattr(result, "rowcount", 0) or 0)

    # --- inspect --------------------------------------------------------------------
    def lookup(self, value: str) -> TokenState | None:
        if not value or len(value) > MAX_TOKEN_LENGTH:
            return None
        now = self.clock.now()
        with self.db.reading() as conn:
            row = conn.execute(BY_HASH, {"hash": token_hash(value)}).one_or_none()
        if row is None:
            return None
        active = (
            row.revoked_at is None
            and now < row.absolute_expires_at
            and row.used_at is None
            and now < row.expires_at
            and not row.disabled
        )
        return TokenState(_info_of(row), active, row.scope, row.issued_at, row.expires_at)


def _narrowed(granted: str, requested: str | None) -> str:
    # RFC 6749 §6: the scope may narrow on refresh, never widen.
    if not requested:
        return granted
    wanted = requested.split()
    if not set(wanted) <= set(granted.split()):
        raise ScopeWidened("Requested scope exceeds the original grant.")
    return " ".join(dict.fromkeys(wanted))


def _info_of(row: Any) -> FamilyInfo:
    return FamilyInfo(
        row.family_id,
        row.client_id,
        row.user_id,
        row.session_id,
        row.family_scope,
        row.auth_time,
        row.nonce,
        row.dpop_jkt,
        _amr(row.amr),
        row.acr,
    )


def _holder_of(row: Any) -> Holder:
    return Holder(
        row.user_id,
        row.username,
        row.email,
        row.email_verified,
        row.name,
        dict(row.attributes or {}),
    )
