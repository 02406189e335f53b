"""SQL storage of authorization codes (the CodeStore of the authorization code grant)."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from sqlalchemy import select, update

from idp.accounts.models import User
from idp.audit.services import security_event
from idp.clock import Clock
from idp.db import Database
from idp.oauth.models import AuthorizationCode
from idp.refresh.types import RefreshStore
from idp.revocations.service import Revocations
from idp.sessions.models import BrowserSession
from idp.sessions.services import remember_client
from idp.state.store import StateStore


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


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

    def save(self, code: str, **fields: Any) -> None:
        now = self.clock.now()
        with self.db.transaction() as s:
            s.add(
                AuthorizationCode(
                    code_hash=code_hash(code),
                    created_at=now,
                    expires_at=now + dt.timedelta(seconds=self.ttl),
                    issued={},
                    **fields,
                )
            )

    def consume(self, code: str, client_id: str) -> AuthorizationCode | None:
        if len(code) > 200:
            return None
        now = self.clock.now()
        with self.db.transaction() as s:
            row = s.scalar(
                select(AuthorizationCode).where(AuthorizationCode.code_hash == code_hash(code))
            )
            if row is None or row.client_id != client_id:
                return None
            result: Any = s.execute(
                update(AuthorizationCode)
                .where(AuthorizationCode.id == row.id, AuthorizationCode.used_at.is_(None))
                .values(used_at=now)
            )
            won = result.rowcount == 1
        if not won:
            self._revoke_issued(row)
            return None
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
        with self.db.transaction() as s:
            s.execute(
                update(AuthorizationCode)
                .where(AuthorizationCode.id == code.id)
                .values(issued={"jti": jti, "exp": int(expires_at.timestamp())})
            )
            if code.session_id:
                # The session's clients: whom its back-channel logout notifies.
                remember_client(s, self.clock, code.session_id, code.client_id)
        if self.state.is_denied(f"code:{code.id}"):
            # A replay raced this exchange: it flagged the code, then found nothing to
            # revoke because the family did not exist yet. Revoke what this exchange made.
            self.revocations.revoke("jti", jti, expires_at)
            revoked = self.refresh.revoke_for_code(code.id, "authorization code replayed")
            self.revocations.revoke_all("jti", revoked.access_tokens)

    def user_for(self, code: AuthorizationCode) -> User | None:
        now = self.clock.now()
        with self.db.read() as s:
            user = s.get(User, code.user_id)
            if user is None or user.disabled:
                return None
            if code.session_id:
                session = s.get(BrowserSession, code.session_id)
                if session is None or session.ended_at is not None or session.expires_at <= now:
                    return None
            s.expunge(user)
            return user
