"""The deny list, held in process: what introspection, userinfo and the admin API consult
on every request, without a database read (issue 8) and without trusting a cache that
can lose entries (issue 9).

The revocations table (idp.revocations.models) is the durable truth: every kill, every
revoked token, every "all tokens of this client / user" writes a row there in the
transaction of the action, and bumps the ``deny`` generation first (the bump's row lock
makes row ids follow commit order, so following ``id`` misses nothing). Each process
loads the unexpired rows once and then reads only the rows after the last id it applied,
whenever the generation moves (idp.changes.watch).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from idp.changes.models import DENY
from idp.changes.watch import Generations
from idp.clock import Clock, epoch
from idp.db import Database
from idp.revocations.models import RevocationEntry

# Entries whose last token has expired are dropped this often (seconds of the clock).
PRUNE_EVERY = 60


@dataclass
class _State:
    last_id: int = 0
    denied: dict[str, int] = field(default_factory=dict)  # "sid:x" / "jti:x" -> exp
    # "client:x" / "user:x" -> (issued_before, exp): tokens with iat < issued_before die.
    not_before: dict[str, tuple[int, int]] = field(default_factory=dict)
    pruned_at: int = 0


class DenyList:
    def __init__(self, db: Database, clock: Clock, generations: Generations) -> None:
        self._db = db
        self._clock = clock
        self._generations = generations
        self._lock = threading.Lock()
        self._state: _State | None = None
        generations.on_change(DENY, self.catch_up)

    def catch_up(self) -> None:
        """Applies the rows written since the last one applied."""
        with self._lock:
            state = self._state or _State()
            now = epoch(self._clock.now())
            with self._db.read() as s:
                rows = s.execute(
                    select(
                        RevocationEntry.id,
                        RevocationEntry.kind,
                        RevocationEntry.value,
                        RevocationEntry.expires_at,
                        RevocationEntry.issued_before,
                    )
                    .where(RevocationEntry.id > state.last_id)
                    .order_by(RevocationEntry.id)
                ).all()
            for id_, kind, value, expires_at, issued_before in rows:
                state.last_id = id_
                exp = epoch(expires_at)
                key = f"{kind}:{value}"
                if exp <= now:
                    continue
                if issued_before is None:
                    state.denied[key] = max(exp, state.denied.get(key, 0))
                else:
                    before, until = state.not_before.get(key, (0, 0))
                    state.not_before[key] = (max(before, issued_before), max(until, exp))
            if now - state.pruned_at >= PRUNE_EVERY:
                state.denied = {k: exp for k, exp in state.denied.items() if exp > now}
                state.not_before = {k: v for k, v in state.not_before.items() if v[1] > now}
                state.pruned_at = now
            self._state = state

    def _current(self) -> _State:
        self._generations.check()
        state = self._state
        if state is None:
            self.catch_up()
            state = self._state
            assert state is not None
        return state

    def latest(self) -> int:
        """The id of the newest revocation written, after looking for new ones (what
        waiting polls of the feed follow: idp.revocations.waiting)."""
        return self._current().last_id

    def denies(self, claims: dict[str, Any]) -> bool:
        """True when the access token with these (verified) claims has been revoked: its
        jti, its session, or every token of its client or user issued before a moment."""
        state = self._current()
        now = epoch(self._clock.now())
        iat = int(claims.get("iat", 0))
        keys = [f"jti:{claims.get('jti')}"]
        if claims.get("sid"):
            keys.append(f"sid:{claims['sid']}")
        if any(state.denied.get(key, 0) > now for key in keys):
            return True
        owners = [f"client:{claims.get('client_id')}"]
        if claims.get("sub") != claims.get("client_id"):  # a user's token, not a client's own
            owners.append(f"user:{claims.get('sub')}")
        for key in owners:
            before, until = state.not_before.get(key, (0, 0))
            if until > now and iat < before:
                return True
        return False

    def is_denied(self, kind: str, value: str) -> bool:
        """True while ``kind:value`` (a sid or jti) is revoked."""
        return self._current().denied.get(f"{kind}:{value}", 0) > epoch(self._clock.now())
