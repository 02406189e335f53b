"""Signing-key lifecycle: next -> active -> retired -> removed (SPEC §6 "Keys").

A ``next`` key is published before it signs anything, so resource servers that
cache the JWKS already know it when rotation promotes it; a ``retired`` key
stays published until every token it signed has expired.

Each process holds the keys it signs and verifies with, and the JWKS as bytes with its
ETag, until the ``keys`` generation moves (idp.changes.watch): every change here bumps it
in its transaction, so a new key is used by every worker on its next request.

On a schedule (``[keys] rotate_every``), the next key of an algorithm is due to become
active ``rotate_every`` after the active one did, and never before it has been
published for one served JWKS max-age (``idp.config.Config.jwks_max_age``, itself at
most ``rotate_every``): the next key is created at each rotation, so a cached JWKS that
lacks it expires before it signs. :meth:`KeyService.rotate_due_in` decides and rotates
under the same lock as every rotation, so of two processes that find a rotation due,
the second finds it done.
"""

from __future__ import annotations

import builtins
import datetime as dt
import hashlib
import json
import logging
import sys
import threading
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, JWKRegistry, KeySet, OKPKey, RSAKey
from sqlalchemy import delete, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from idp.changes.models import KEYS
from idp.changes.watch import Generations, bump
from idp.clock import Clock
from idp.config import SUPPORTED_ALGS
from idp.db import Database
from idp.keys import crypto
from idp.keys.models import ACTIVE, NEXT, RETIRED, SigningKey

log = logging.getLogger(__name__)

Key = ECKey | RSAKey | OKPKey


def generate(alg: str) -> Key:
    if alg == "ES256":
        return ECKey.generate_key("P-256", private=True)
    if alg == "RS256":
        return RSAKey.generate_key(2048, private=True)
    if alg == "EdDSA":
        return OKPKey.generate_key("Ed25519", private=True)
    raise ValueError(f"unsupported algorithm {alg}")


def _import(data: dict[str, Any]) -> Key:
    key = JWKRegistry.import_key(data)
    if not isinstance(key, ECKey | RSAKey | OKPKey):
        raise ValueError(f"not a signing key type: {data.get('kty')!r}")
    return key


@dataclass(frozen=True)
class Signer:
    kid: str
    alg: str
    key: Key


@dataclass(frozen=True)
class Published:
    """The JWKS document as served, and the same keys ready to verify with."""

    body: bytes
    etag: str
    keyset: KeySet
    until: dt.datetime | None  # when a retired key in it must leave; None: no such key
    eddsa: bool  # whether an EdDSA key is among them


class KeyService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        keyring: crypto.Keyring,
        retire_seconds: int,
        generations: Generations,
        rotate_every: int = 0,
        max_age: int = 300,
    ) -> None:
        self.db = db
        self.clock = clock
        self.keyring = keyring
        self.retire_seconds = retire_seconds
        self.rotate_every = rotate_every
        self.max_age = max_age
        self._lock = threading.Lock()
        self._signers: dict[str, Signer] = {}
        self._published: Published | None = None
        self._generations = generations
        generations.on_change(KEYS, self.forget)

    # --- lifecycle ------------------------------------------------------------
    def _create(self, s: Session, alg: str, state: str) -> SigningKey:
        key = generate(alg)
        public = key.as_dict(private=False)
        kid = key.thumbprint()
        now = self.clock.now()
        sealed, kek_id = self.keyring.seal(json.dumps(key.as_dict(private=True)).encode(), kid)
        row = SigningKey(
            kid=kid,
            alg=alg,
            state=state,
            public_jwk={**public, "kid": kid, "alg": alg, "use": "sig"},
            private_encrypted=sealed,
            kek_id=kek_id,
            created_at=now,
            activated_at=now if state == ACTIVE else None,
            retired_at=None,
            remove_after=None,
        )
        s.add(row)
        bump(s, KEYS)
        return row

    def _by_state(self, s: Session, alg: str, state: str) -> list[SigningKey]:
        return list(
            s.scalars(
                select(SigningKey)
                .where(SigningKey.alg == alg, SigningKey.state == state)
                .order_by(SigningKey.created_at)
            )
        )

    def _serialise(self, s: Session) -> None:
        # Two processes creating the first keys at once must not both create them. SQLite's
        # write transactions are already serial (BEGIN IMMEDIATE); PostgreSQL takes a
        # transaction-scoped advisory lock.
        if self.db.engine.dialect.name == "postgresql":
            s.execute(text("SELECT pg_advisory_xact_lock(hashtext('idp.signing_keys'))"))

    def ensure(self, algs: Iterable[str]) -> None:
        """Makes sure every algorithm has one active and one next key."""
        with self.db.transaction() as s:
            self._serialise(s)
            for alg in sorted(set(algs)):
                if not self._by_state(s, alg, ACTIVE):
                    self._create(s, alg, ACTIVE)
                if not self._by_state(s, alg, NEXT):
                    self._create(s, alg, NEXT)
        self.forget()

    def rotate(self, algs: Iterable[str]) -> list[str]:
        """Promotes each next key to active, retires the old active one, adds a new next key.

        Returns the kids that became active.
        """
        with self.db.transaction() as s:
            promoted = self.rotate_in(s, algs)
        self.forget()
        return promoted

    @property
    def kek(self) -> bytes:
        """The current KEK: what seals every new key."""
        return self.keyring.current

    def due(self, active: SigningKey, nxt: SigningKey | None) -> dt.datetime | None:
        """When the schedule promotes ``nxt`` (None: no schedule): ``rotate_every`` after
        ``active`` became active, and not before ``nxt`` was published for one max-age."""
        if not self.rotate_every or active.activated_at is None:
            return None
        at = active.activated_at + dt.timedelta(seconds=self.rotate_every)
        published = nxt.created_at if nxt is not None else self.clock.now()
        return max(at, published + dt.timedelta(seconds=self.max_age))

    def schedule_of(self, s: Session) -> dict[str, dt.datetime]:
        """Each algorithm's next scheduled rotation (empty without a schedule)."""
        out: dict[str, dt.datetime] = {}
        if not self.rotate_every:
            return out
        for alg in sorted(set(s.scalars(select(SigningKey.alg).distinct()))):
            active = self._by_state(s, alg, ACTIVE)
            if active:
                nxt = self._by_state(s, alg, NEXT)
                when = self.due(active[-1], nxt[0] if nxt else None)
                if when is not None:
                    out[alg] = when
        return out

    def schedule(self) -> dict[str, dt.datetime]:
        with self.db.read() as s:
            return self.schedule_of(s)

    def rotate_due_in(self, s: Session, algs: Iterable[str]) -> list[str]:
        """Rotates, inside the caller's transaction, every algorithm whose scheduled
        rotation is due; returns the kids that became active (none: nothing was due, or
        another process rotated first). The lock is taken before anything is read, so two
        processes never both rotate."""
        self._serialise(s)
        now = self.clock.now()
        due = [alg for alg, when in self.schedule_of(s).items() if when <= now]
        wanted = set(algs)
        due = [alg for alg in due if alg in wanted]
        return self.rotate_in(s, due) if due else []

    def rotate_in(self, s: Session, algs: Iterable[str]) -> list[str]:
        """:meth:`rotate` inside the caller's transaction (idp.operator); the caller
        calls :meth:`forget` after its commit."""
        now = self.clock.now()
        promoted = []
        self._serialise(s)
        for alg in sorted(set(algs)):
            for old in self._by_state(s, alg, ACTIVE):
                old.state = RETIRED
                old.retired_at = now
                old.remove_after = now + dt.timedelta(seconds=self.retire_seconds)
            nxt = self._by_state(s, alg, NEXT)
            new = nxt[0] if nxt else self._create(s, alg, ACTIVE)
            new.state, new.activated_at = ACTIVE, now
            promoted.append(new.kid)
            s.flush()
            self._create(s, alg, NEXT)
        self._purge(s, now)
        return promoted

    def _purge(self, s: Session, now: dt.datetime) -> None:
        result: Any = s.execute(
            delete(SigningKey).where(SigningKey.state == RETIRED, SigningKey.remove_after <= now)
        )
        if result.rowcount:
            bump(s, KEYS)

    def check_keks(self) -> None:
        """Opens every next and active private key once; raises
        :class:`crypto.KekMissing` naming the first this process cannot open (``idp
        serve`` refuses to start then, rather than fail at its first token)."""
        with self.db.read() as s:
            rows = list(s.scalars(select(SigningKey).where(SigningKey.state != RETIRED)))
        for row in rows:
            self.keyring.open(
                row.private_encrypted,
                row.kid,
                row.kek_id,
                f"the {row.state} {row.alg} key {row.kid}",
            )

    def check_at_start(self) -> None:
        """What a server checks before it answers: every key that may sign opens under
        this process's KEKs, else it exits (status 2) naming the KEK it lacks, never a
        key. ``idp serve`` runs it before it forks; ``idp.wsgi`` and ``idp.admin.wsgi`` (the
        entry points gunicorn or granian import directly) run it as they load. A
        database not reachable yet is left to readiness (/readyz)."""
        try:
            self.check_keks()
        except crypto.KekMissing as exc:
            print(f"idp: cannot sign: {exc}", file=sys.stderr, flush=True)
            raise SystemExit(2) from exc
        except SQLAlchemyError:
            log.warning("the signing keys were not checked: the database did not answer")

    def rewrap_in(self, s: Session) -> dict[str, int]:
        """Re-encrypts, in the caller's transaction, every private key not sealed under
        the current KEK (or sealed before KEK ids were kept). A next or active key no KEK
        of this process opens stops it all (:class:`crypto.KekMissing`); a retired one is
        left as it is and counted: it only verifies now, with its public half."""
        self._serialise(s)
        counts = {"rewrapped": 0, "current": 0, "retired_unopened": 0}
        for row in s.scalars(select(SigningKey).order_by(SigningKey.alg, SigningKey.created_at)):
            if row.kek_id == self.keyring.id:
                counts["current"] += 1
                continue
            what = f"the {row.state} {row.alg} key {row.kid}"
            try:
                plain = self.keyring.open(row.private_encrypted, row.kid, row.kek_id, what)
            except crypto.KekMissing:
                if row.state != RETIRED:
                    raise
                counts["retired_unopened"] += 1
                continue
            row.private_encrypted, row.kek_id = self.keyring.seal(plain, row.kid)
            counts["rewrapped"] += 1
        # No generation bump: the keys themselves are unchanged, and processes keep the
        # ones they hold.
        return counts

    def purge(self) -> None:
        with self.db.transaction() as s:
            self._purge(s, self.clock.now())
        self.forget()

    def algs(self) -> set[str]:
        """Every algorithm that has a key."""
        with self.db.read() as s:
            return set(s.scalars(select(SigningKey.alg).distinct()))

    def list(self) -> list[SigningKey]:
        with self.db.read() as s:
            return list(
                s.scalars(select(SigningKey).order_by(SigningKey.alg, SigningKey.created_at))
            )

    def described(self) -> builtins.list[dict[str, Any]]:
        """Every key (as :meth:`list`) with its times, planned ones included: a next key
        ``activates_at`` and an active key ``retires_at`` the scheduled rotation (None
        without a schedule); ``remove_after`` is when a retired key leaves the JWKS."""
        with self.db.read() as s:
            rows = list(
                s.scalars(select(SigningKey).order_by(SigningKey.alg, SigningKey.created_at))
            )
            planned = self.schedule_of(s)
        return [
            {
                "kid": k.kid,
                "alg": k.alg,
                "state": k.state,
                "created_at": k.created_at,
                "activated_at": k.activated_at,
                "retired_at": k.retired_at,
                "remove_after": k.remove_after,
                "activates_at": planned.get(k.alg) if k.state == NEXT else None,
                "retires_at": planned.get(k.alg) if k.state == ACTIVE else None,
                "kek_id": k.kek_id,
            }
            for k in rows
        ]

    def check(self) -> None:
        """Drops what this process holds if the keys changed elsewhere (a rotation)."""
        self._generations.check()

    def forget(self) -> None:
        with self._lock:
            self._signers = {}
            self._published = None

    # --- use --------------------------------------------------------------------
    def signer(self, alg: str) -> Signer:
        """The active key for ``alg``; creates one the first time an algorithm is used."""
        self._generations.check()
        signer = self._signers.get(alg)
        if signer is not None:
            return signer
        with self.db.read() as s:
            rows = self._by_state(s, alg, ACTIVE)
        if not rows:
            self.ensure([alg])
            with self.db.read() as s:
                rows = self._by_state(s, alg, ACTIVE)
        row = rows[-1]
        private = json.loads(
            self.keyring.open(
                row.private_encrypted, row.kid, row.kek_id, f"the active {alg} key {row.kid}"
            )
        )
        signer = Signer(kid=row.kid, alg=alg, key=_import(private))
        with self._lock:
            self._signers = {**self._signers, alg: signer}
        return signer

    def published(self) -> Published:
        """Next, active and unexpired retired keys: the JWKS bytes, ETag and key set."""
        self._generations.check()
        current = self._published
        now = self.clock.now()
        if current is not None and (current.until is None or now < current.until):
            return current
        with self.db.read() as s:
            rows = list(
                s.scalars(select(SigningKey).order_by(SigningKey.alg, SigningKey.created_at))
            )
        shown = [r for r in rows if r.state != RETIRED or (r.remove_after and r.remove_after > now)]
        keys = [r.public_jwk for r in shown]
        body = json.dumps({"keys": keys}, sort_keys=True, separators=(",", ":")).encode()
        leaving = [r.remove_after for r in shown if r.state == RETIRED and r.remove_after]
        current = Published(
            body=body,
            etag='"' + hashlib.sha256(body).hexdigest()[:32] + '"',
            keyset=KeySet.import_key_set({"keys": keys}) if keys else KeySet([]),
            until=min(leaving, default=None),
            eddsa=any(r.alg == "EdDSA" for r in shown),
        )
        with self._lock:
            self._published = current
        return current

    def jwks(self) -> tuple[bytes, str]:
        """The JWKS document and its strong ETag."""
        current = self.published()
        return current.body, current.etag

    def public_keyset(self) -> dict[str, Any]:
        return dict(json.loads(self.published().body))

    def verify(self, token: str) -> jwt.Token:
        """Decodes a JWT signed by one of our published keys (signature only: the caller
        checks claims). Only our algorithms; never ``none``, never HMAC. Raises JoseError,
        ValueError or KeyError on anything else."""
        published = self.published()
        with eddsa_allowed(published.eddsa):
            return jwt.decode(token, published.keyset, algorithms=list(SUPPORTED_ALGS))


@contextmanager
def eddsa_allowed(needed: bool = True) -> Iterator[None]:
    """SPEC §6 names "EdDSA"; joserfc warns that RFC 9864 deprecates the polymorphic name in
    favour of "Ed25519". Our EdDSA keys are always Ed25519, so the warning is silenced here,
    when ``needed`` (catching warnings costs more than an ES256 signature's bookkeeping)."""
    if not needed:
        yield
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="EdDSA is deprecated", category=Warning)
        yield
