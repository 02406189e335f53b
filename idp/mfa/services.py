"""Enrolling, checking and removing second factors (TOTP and recovery codes).

Each change commits the factor, its audit record and the CAEP ``credential-change``
event (CAEP 1.0 §3.3, ``credential_type`` ``app``) in one transaction, like every other
action (STYLE rule 11).
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, exists, or_, select, update
from sqlalchemy.orm import Session

from idp.accounts.models import User
from idp.accounts.passkey_models import WebAuthnCredential
from idp.accounts.passkeys import CREDENTIAL_TYPE as PASSKEY_CREDENTIAL
from idp.accounts.passkeys import delete_for_user as delete_passkeys
from idp.accounts.services import Throttle, TooManyAttempts
from idp.audit.services import record
from idp.clock import Clock
from idp.db import Database, RawStatement, new_id
from idp.keys import crypto
from idp.mfa import totp
from idp.mfa.acr import OTP
from idp.mfa.models import TOTP, MfaFactor, RecoveryCode
from idp.ssf.events import Emitter

RECOVERY_CODES = 10
RECOVERY_RE = re.compile(r"[a-z2-7]{16}")
TOTP_LABEL = "Authenticator app"
# CAEP 1.0 §3.3: an authenticator app.
CREDENTIAL_TYPE = "app"


class FactorError(ValueError):
    """A refused enrolment or removal; the message is for the user."""


def recovery_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def normal_recovery_code(code: str) -> str:
    """A recovery code as stored: lower case, without the dashes and spaces it is shown
    and typed with."""
    return re.sub(r"[\s-]", "", code).lower()


def _new_recovery_code() -> str:
    raw = base64.b32encode(secrets.token_bytes(10)).decode().lower()  # 80 bits
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


def _aad(factor_id: str) -> str:
    return f"mfa-totp:{factor_id}"


@dataclass(frozen=True)
class Enrolment:
    """A TOTP factor waiting for its first code: what the user copies into their app."""

    factor_id: str
    secret: str
    uri: str
    qr_svg: str


@dataclass(frozen=True)
class FactorView:
    id: str
    kind: str
    label: str
    created_at: Any
    last_used_at: Any


class Factors:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        keyring: crypto.Keyring,
        signals: Emitter,
        throttle: Throttle,
        issuer_label: str,
        kick: Callable[[], None],
    ) -> None:
        self.db = db
        self.clock = clock
        self.keyring = keyring
        self.signals = signals
        # Codes are counted apart from passwords, under the same policy.
        self.throttle = throttle
        self.issuer_label = issuer_label
        # Wakes the delivery of the credential-change events a change queued.
        self.kick = kick

    # --- reading ------------------------------------------------------------------
    def has_totp(self, user_id: str) -> bool:
        with self.db.read() as s:
            return _confirmed(s, user_id).first() is not None

    def has_factor(self, user_id: str) -> bool:
        """A confirmed TOTP factor or a passkey: the login asks for one after the
        password."""
        with self.db.raw_transaction(read_only=True) as cur:  # every password login asks
            return bool(cur.one_or_none(HAS_FACTOR, {"user_id": user_id}).found)

    def of_user(self, user_id: str) -> list[FactorView]:
        with self.db.read() as s:
            return [
                FactorView(f.id, f.kind, f.label, f.created_at, f.last_used_at)
                for f in _confirmed(s, user_id)
            ]

    def recovery_codes_left(self, user_id: str) -> int:
        with self.db.read() as s:
            return len(
                s.scalars(
                    select(RecoveryCode.id).where(
                        RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None)
                    )
                ).all()
            )

    def enrolment(self, user: User) -> Enrolment | None:
        """The user's TOTP enrolment waiting for its first code, if any."""
        with self.db.read() as s:
            factor = s.scalar(
                select(MfaFactor).where(
                    MfaFactor.user_id == user.id,
                    MfaFactor.kind == TOTP,
                    MfaFactor.confirmed_at.is_(None),
                )
            )
            if factor is None or factor.secret is None:
                return None
            secret = self._open(factor)
        uri = totp.uri(secret, user.username, self.issuer_label)
        return Enrolment(factor.id, secret, uri, totp.qr_svg(uri))

    def _open(self, factor: MfaFactor) -> str:
        assert factor.secret is not None
        return self.keyring.open(
            factor.secret, _aad(factor.id), factor.kek_id, f"the TOTP secret of factor {factor.id}"
        ).decode()

    def rewrap_in(self, s: Session) -> dict[str, int]:
        """Re-encrypts, in the caller's transaction, every TOTP secret not sealed under
        the current KEK; one that no KEK of this process opens stops it all."""
        counts = {"rewrapped": 0, "current": 0}
        for factor in s.scalars(
            select(MfaFactor).where(MfaFactor.secret.is_not(None)).order_by(MfaFactor.id)
        ):
            if factor.kek_id == self.keyring.id:
                counts["current"] += 1
                continue
            factor.secret, factor.kek_id = self.keyring.seal(
                self._open(factor).encode(), _aad(factor.id)
            )
            counts["rewrapped"] += 1
        return counts

    # --- enrolment ----------------------------------------------------------------
    def start_totp(self, user_id: str) -> None:
        """A new TOTP secret waiting for its first code (replacing one that waited).
        One authenticator app per user: a second is refused."""
        now = self.clock.now()
        with self.db.transaction() as s:
            existing = s.scalars(
                select(MfaFactor).where(MfaFactor.user_id == user_id, MfaFactor.kind == TOTP)
            ).all()
            if any(f.confirmed_at is not None for f in existing):
                raise FactorError("An authenticator app is already set up; remove it first.")
            for f in existing:
                s.delete(f)
            factor_id = new_id()
            sealed, kek_id = self.keyring.seal(totp.new_secret().encode(), _aad(factor_id))
            s.add(
                MfaFactor(
                    id=factor_id,
                    user_id=user_id,
                    kind=TOTP,
                    label=TOTP_LABEL,
                    secret=sealed,
                    kek_id=kek_id,
                    created_at=now,
                )
            )

    def confirm_totp(self, user: User, code: str, ip: str) -> list[str]:
        """Activates the waiting TOTP factor when ``code`` is its current code, and
        returns fresh recovery codes (shown once: only their hashes are kept). Raises
        FactorError otherwise."""
        now = self.clock.now()
        with self.db.transaction() as s:
            factor = s.scalar(
                select(MfaFactor)
                .where(
                    MfaFactor.user_id == user.id,
                    MfaFactor.kind == TOTP,
                    MfaFactor.confirmed_at.is_(None),
                )
                .with_for_update()
            )
            if factor is None:
                raise FactorError("There is no authenticator app waiting to be confirmed.")
            step = totp.matching_step(self._open(factor), code, now)
            if step is None:
                raise FactorError("That code is not right; check the time on your device.")
            factor.confirmed_at = now
            factor.last_used_step = step
            factor.last_used_at = now
            codes = self._replace_recovery_codes(s, user.id)
            self.signals.credential_change(
                s,
                now,
                user.id,
                credential_type=CREDENTIAL_TYPE,
                change_type="create",
                initiating_entity="user",
                reason="authenticator app added by the user",
                friendly_name=factor.label,
            )
            record(
                s,
                at=now,
                actor=user.username,
                action="mfa.enrol",
                target=user.id,
                ip=ip,
                kind=TOTP,
                factor=factor.id,
            )
        self.kick()
        return codes

    def _replace_recovery_codes(self, s: Session, user_id: str) -> list[str]:
        now = self.clock.now()
        s.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
        codes = [_new_recovery_code() for _ in range(RECOVERY_CODES)]
        for code in codes:
            s.add(
                RecoveryCode(
                    user_id=user_id,
                    code_hash=recovery_hash(normal_recovery_code(code)),
                    created_at=now,
                )
            )
        return codes

    def remove(self, user: User, factor_id: str, ip: str) -> bool:
        """Removes one of the user's factors (the caller has checked a fresh password);
        the recovery codes go with the last one. False when the user has no such
        factor."""
        now = self.clock.now()
        with self.db.transaction() as s:
            factor = s.get(MfaFactor, factor_id[:32])
            if factor is None or factor.user_id != user.id:
                return False
            s.delete(factor)
            s.flush()
            if _confirmed(s, user.id).first() is None:
                s.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
            if factor.confirmed_at is not None:
                self.signals.credential_change(
                    s,
                    now,
                    user.id,
                    credential_type=CREDENTIAL_TYPE,
                    change_type="delete",
                    initiating_entity="user",
                    reason="authenticator app removed by the user",
                    friendly_name=factor.label,
                )
            record(
                s,
                at=now,
                actor=user.username,
                action="mfa.remove",
                target=user.id,
                ip=ip,
                kind=factor.kind,
                factor=factor.id,
            )
        self.kick()
        return True

    def reset_in(self, s: Session, user_id: str) -> int:
        """Removes every factor and recovery code of a user in the caller's transaction
        (which records who did it); emits credential-change ``delete`` when there was
        anything to remove. Returns the confirmed factors removed."""
        factors = s.scalars(select(MfaFactor).where(MfaFactor.user_id == user_id)).all()
        confirmed = [f for f in factors if f.confirmed_at is not None]
        s.execute(delete(MfaFactor).where(MfaFactor.user_id == user_id))
        s.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
        passkeys = delete_passkeys(s, user_id)
        if passkeys:
            self.signals.credential_change(
                s,
                self.clock.now(),
                user_id,
                credential_type=PASSKEY_CREDENTIAL,
                change_type="delete",
                initiating_entity="admin",
                reason="passkeys reset by an operator",
            )
        if confirmed:
            self.signals.credential_change(
                s,
                self.clock.now(),
                user_id,
                credential_type=CREDENTIAL_TYPE,
                change_type="delete",
                initiating_entity="admin",
                reason="second factors reset by an operator",
            )
        return len(confirmed) + passkeys

    # --- the login's second step ----------------------------------------------------
    def verify(self, user_id: str, username: str, code: str, ip: str) -> str | None:
        """The RFC 8176 method proven (``otp``) when ``code`` is a current TOTP code not
        used before or an unused recovery code (either is then spent); None otherwise.
        Throttled like passwords: raises TooManyAttempts while the account or the
        network is locked, before looking at the code."""
        wait = self.throttle.attempt(username, ip)
        if wait:
            self.throttle.failed(ip)
            raise TooManyAttempts(wait)
        code = code.strip()
        ok = self._use_totp(user_id, code) if totp.CODE_RE.fullmatch(code) else False
        if not ok:
            ok = self._use_recovery_code(user_id, normal_recovery_code(code))
        if not ok:
            self.throttle.failed(ip)
            return None
        self.throttle.succeeded(username, ip)
        return OTP

    def _use_totp(self, user_id: str, code: str) -> bool:
        now = self.clock.now()
        with self.db.transaction() as s:
            for factor in _confirmed(s, user_id).all():
                if factor.kind != TOTP or factor.secret is None:
                    continue
                step = totp.matching_step(self._open(factor), code, now)
                if step is None:
                    continue
                # Atomically: only a step later than the last one used (no replay, even
                # by two requests at once).
                result: Any = s.execute(
                    update(MfaFactor)
                    .where(
                        MfaFactor.id == factor.id,
                        or_(MfaFactor.last_used_step.is_(None), MfaFactor.last_used_step < step),
                    )
                    .values(last_used_step=step, last_used_at=now)
                )
                return bool(result.rowcount == 1)
        return False

    def _use_recovery_code(self, user_id: str, code: str) -> bool:
        if not RECOVERY_RE.fullmatch(code):
            return False
        with self.db.transaction() as s:
            result: Any = s.execute(
                update(RecoveryCode)
                .where(
                    RecoveryCode.user_id == user_id,
                    RecoveryCode.code_hash == recovery_hash(code),
                    RecoveryCode.used_at.is_(None),
                )
                .values(used_at=self.clock.now())
            )
            return bool(result.rowcount == 1)


# One statement built once (idp.db.RawStatement): has_factor runs in every password login.
HAS_FACTOR = RawStatement(
    select(
        or_(
            exists().where(
                MfaFactor.user_id == bindparam("user_id"), MfaFactor.confirmed_at.is_not(None)
            ),
            exists().where(WebAuthnCredential.user_id == bindparam("user_id")),
        ).label("found")
    )
)


def _confirmed_query(user_id: str) -> Any:
    return select(MfaFactor).where(
        MfaFactor.user_id == user_id, MfaFactor.confirmed_at.is_not(None)
    )


def _confirmed(s: Session, user_id: str) -> Any:
    return s.scalars(_confirmed_query(user_id).order_by(MfaFactor.created_at))
