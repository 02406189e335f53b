"""SQL storage of authorization codes (the CodeStore of the authorization code grant).

Every login runs each of these once, so they are :class:`RawStatement`s built once:
through ORM sessions the code's four transactions cost more CPU than the rest of the
code exchange (issue 8's profile of a login)."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from sqlalchemy import bindparam, insert, select, update

from idp.accounts.models import User
from idp.audit.services import security_event
from idp.clock import Clock
from idp.db import Base, Database, RawStatement, new_id, upsert_insert
from idp.oauth.models import AuthorizationCode
from idp.refresh.types import RefreshStore
from idp.revocations.service import Revocations
from idp.sessions import services as sessions
from idp.sessions.models import SessionClient
from idp.state.store import StateStore


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


CODES = Base.metadata.tables[AuthorizationCode.__tablename__]
FIELDS = [c.key for c in CODES.columns]
SAVE = RawStatement(insert(CODES), FIELDS)
# Marks the code used and returns it in one statement; nothing when it is unknown, used
# already or another client's.
SPEND = RawStatement(
    update(CODES)
    .where(
        CODES.c.code_hash == bindparam("b_hash"),
        CODES.c.client_id == bindparam("b_client"),
        CODES.c.used_at.is_(None),
    )
    .values(used_at=bindparam("b_now"))
    .returning(*CODES.columns)
)
BY_HASH = RawStatement(select(CODES).where(CODES.c.code_hash == bindparam("b_hash")))
RECORD_ISSUED = RawStatement(
    update(CODES).where(CODES.c.id == bindparam("b_id")).values(issued=bindparam("b_issued"))
)


def _remember_client(dialect: str) -> RawStatement:
    """The session's clients (whom its back-channel logout notifies): one row per pair."""
    return RawStatement(
        upsert_insert(dialect)(SessionClient)
        .values(
            session_id=bindparam("session_id"),
            client_id=bindparam("client_id"),
            first_at=bindparam("first_at"),
        )
        .on_conflict_do_nothing()
    )


class SqlCodeStore:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        state: StateStore,
        revocations: Revocations,
        refresh: RefreshStore,
        ttl: int,
    ) -> None:
        self.db = db
        self.clock = clock
        self.state = state
        self.revocations = revocations
        self.refresh = refresh
        self.ttl = ttl
        self._remember_client = _remember_client(db.engine.dialect.name)

    def save(self, code: str, **fields: Any) -> None:
        now = self.clock.now()
        row = dict.fromkeys(FIELDS)
        row.update(
            fields,
            id=new_id(),
            code_hash=code_hash(code),
            created_at=now,
            expires_at=now + dt.timedelta(seconds=self.ttl),
            issued={},
        )
        with self.db.raw_transaction() as cur:
            cur.execute(SAVE, row)

    def consume(self, code: str, client_id: str) -> AuthorizationCode | None:
        if len(code) > 200:
            return None
        now = self.clock.now()
        hashed = code_hash(code)
        with self.db.raw_transaction() as cur:
            spent = cur.one_or_none(SPEND, {"b_hash": hashed, "b_client": client_id, "b_now": now})
            # Nothing spent: an unknown code, another client's, or a replay.
            found = None if spent else cur.one_or_none(BY_HASH, {"b_hash": hashed})
        if found is not None:
            if found.client_id == client_id:
                self._revoke_issued(AuthorizationCode(**vars(found)))
            return None
        if spent is None:
            return None
        row = AuthorizationCode(**vars(spent))
        if row.is_expired(now):
            return None
        return row

    def _revoke_issued(self, row: AuthorizationCode) -> None:
        # Flag the replay first, so an issuance still in flight sees it (record_issued).
        self.state.deny(f"code:{row.id}", row.created_at + dt.timedelta(hours=1))
        issued = row.issued or {}
        if issued.get("jti"):
            self.revocations.revoke(
                "jti", issued["jti"], dt.datetime.fromtimestamp(issued["exp"], dt.UTC)
            )
        # RFC 9700 §4.2.4: what was issued from a replayed code is revoked, the refresh
        # family born of it included, and the family's access tokens with it.
        revoked = self.refresh.revoke_for_code(row.id, "authorization code replayed")
        self.revocations.revoke_all("jti", revoked.access_tokens)
        security_event(
            self.db,
            self.clock,
            "authorization_code_replay",
            user_id=row.user_id,
            client_id=row.client_id,
            session_id=row.session_id,
            families_revoked=len(revoked.family_ids),
        )

    def record_issued(self, code: AuthorizationCode, jti: str, expires_at: dt.datetime) -> None:
        # One write transaction for both records (on SQLite each one is a commit).
        with self.db.raw_transaction() as cur:
            issued = {"jti": jti, "exp": int(expires_at.timestamp())}
            cur.execute(RECORD_ISSUED, {"b_id": code.id, "b_issued": issued})
            if code.session_id:
                cur.execute(
                    self._remember_client,
                    {
                        "session_id": code.session_id,
                        "client_id": code.client_id,
                        "first_at": self.clock.now(),
                    },
                )
        if self.state.is_denied(f"code:{code.id}"):
            # A replay raced this exchange: it flagged the code, then found nothing to
            # revoke because the family did not exist yet. Revoke what this exchange made.
            self.revocations.revoke("jti", jti, expires_at)
            revoked = self.refresh.revoke_for_code(code.id, "authorization code replayed")
            self.revocations.revoke_all("jti", revoked.access_tokens)

    def user_for(self, code: AuthorizationCode) -> User | None:
        """The code's user while the account is enabled and, for a code from a browser
        session, that session is live (one read: the session comes with its user)."""
        now = self.clock.now()
        if code.session_id:
            session = sessions.by_id(self.db, code.session_id)
            if session is None or session.ended_at is not None or session.expires_at <= now:
                return None
            user: User | None = session.user if session.user_id == code.user_id else None
        else:
            with self.db.read() as s:
                user = s.get(User, code.user_id)
                if user is not None:
                    s.expunge(user)
        if user is None or user.disabled:
            return None
        return user
