"""Passkeys: WebAuthn Level 2 registration and authentication, through py_webauthn.

Three ceremonies, each a pair of calls (options, then verification):

- **registration** (§7.1) by a signed-in user: a discoverable credential with user
  verification, so the same passkey also signs in without a password;
- **passwordless sign-in** (§7.2) with a discoverable credential: no username is
  asked, the credential names its user (``userHandle``); user verification required;
- **second factor** (§7.2) after a password: the user's own credentials only.

Challenges (§13.4.3) are random, single-use and short-lived. They are kept in the
short-lived state store (idp.state) under the SHA-256 of the challenge, the ceremony
and what it is bound to (the user, or the caller's pending login): issuing one
``add_once``-s its key; verifying takes it atomically (the first ``hit`` after the
issue is the only one that sees 2), whatever the verification then decides. A
challenge is therefore never accepted twice, for another ceremony, for another user
or after ``[webauthn] timeout_seconds``.

RP ID and origin come from the issuer (§5.1.4.1, §7.1 steps 9-13): the RP ID is the
issuer's host, the only origin accepted is the issuer's scheme://host[:port].

Passkey sign-ins are recorded with ``amr`` ``["hwk", "mfa"]`` (RFC 8176): ``hwk`` for
proof of possession of a key held by an authenticator, and ``mfa`` because user
verification (a PIN or biometric checked by the authenticator, required here) is a
second factor on top of that possession.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    base64url_to_bytes,
    bytes_to_base64url,
    parse_authentication_credential_json,
    parse_client_data_json,
    parse_registration_credential_json,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from idp.accounts.models import User
from idp.accounts.passkey_models import CREDENTIAL_ID_CHARS, WebAuthnCredential
from idp.audit.services import record, security_event
from idp.clock import Clock
from idp.db import Database
from idp.ssf.events import Emitter
from idp.state.store import StateStore

# RFC 8176 method references of a sign-in with a user-verified passkey (see above).
PASSKEY_AMR = ("hwk", "mfa")
# CAEP 1.0 §3.3.1 credential_type of a passkey (a FIDO2 credential, whatever holds it).
CREDENTIAL_TYPE = "fido2-platform"
# Largest credential JSON accepted from a browser; real ones are a few kilobytes.
MAX_RESPONSE_CHARS = 16_000
MAX_LABEL_CHARS = 100
MAX_PASSKEYS_PER_USER = 20

REGISTER, LOGIN, SECOND_FACTOR = "register", "login", "2fa"


class PasskeyError(ValueError):
    """A response that does not verify: malformed, replayed, expired, for another RP or
    user, or with a bad signature. The message is safe to show."""


@dataclass(frozen=True)
class RelyingParty:
    """Who idp is to authenticators: the RP ID and the one origin (from the issuer)."""

    id: str
    origin: str
    name: str

    @classmethod
    def from_issuer(cls, issuer: str, name: str) -> RelyingParty:
        parts = urlsplit(issuer)
        return cls(parts.hostname or "", f"{parts.scheme}://{parts.netloc}", name)

    def problem(self) -> str | None:
        """Why browsers will refuse passkeys here, if they will: an RP ID must be a
        domain (WebAuthn L2 §5.1.4.1), never an IP address."""
        try:
            ipaddress.ip_address(self.id)
        except ValueError:
            return None
        return (
            f"browsers need a domain name as the issuer's host, not {self.id}; "
            "in development, set IDP_SERVER__ISSUER=http://localhost:PORT"
        )


@dataclass(frozen=True)
class Verified:
    """A verified passkey sign-in: whose it was and which credential."""

    user_id: str
    credential_id: str


def parse_response(raw: str | bytes | None) -> dict[str, Any]:
    """The credential JSON a browser posted (PublicKeyCredential.toJSON() shape), as a
    dict; PasskeyError when it is missing, too large or not a JSON object."""
    if raw is None or len(raw) == 0:
        raise PasskeyError("No passkey response was sent.")
    if len(raw) > MAX_RESPONSE_CHARS:
        raise PasskeyError("The passkey response is too large.")
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise PasskeyError("The passkey response is not valid JSON.") from None
    if not isinstance(value, dict):
        raise PasskeyError("The passkey response is not a JSON object.")
    return value


def _user_handle(user_id: str) -> bytes:
    """The WebAuthn user.id (§5.4.3): idp's opaque user id, no personal data."""
    return user_id.encode("ascii")


class Passkeys:
    def __init__(
        self,
        db: Database,
        state: StateStore,
        clock: Clock,
        rp: RelyingParty,
        timeout_seconds: int,
        signals: Emitter,
    ) -> None:
        self.db = db
        self.state = state
        self.clock = clock
        self.rp = rp
        self.timeout = timeout_seconds
        self.signals = signals

    def _changed(self, s: Session, user_id: str, change_type: str, label: str | None) -> None:
        """CAEP 1.0 §3.3 credential-change: receivers hear of a passkey added or removed
        (issue 12), in the transaction that made the change."""
        self.signals.credential_change(
            s,
            self.clock.now(),
            user_id,
            credential_type=CREDENTIAL_TYPE,
            change_type=change_type,
            initiating_entity="user",
            reason=f"passkey {'added' if change_type == 'create' else 'removed'} by the user",
            friendly_name=label,
        )

    # --- challenges -------------------------------------------------------------------
    def _key(self, ceremony: str, binding: str, challenge: bytes) -> str:
        digest = hashlib.sha256(challenge).hexdigest()
        bound = hashlib.sha256(binding.encode()).hexdigest()[:32]
        return f"webauthn:{ceremony}:{bound}:{digest}"

    def _issue(self, ceremony: str, binding: str) -> bytes:
        challenge = secrets.token_bytes(32)
        if not self.state.add_once(self._key(ceremony, binding, challenge), self.timeout):
            raise RuntimeError("a fresh 256-bit challenge collided")  # never, short of a bad RNG
        return challenge

    def _take(self, ceremony: str, binding: str, client_data_json: bytes) -> bytes:
        """The challenge the response signed, once: issued by us for this ceremony and
        binding, not expired, never taken before (a replay is refused, §13.4.3)."""
        try:
            challenge = parse_client_data_json(client_data_json).challenge
        except (WebAuthnException, ValueError, TypeError):
            raise PasskeyError("The passkey response is malformed.") from None
        key = self._key(ceremony, binding, challenge)
        # count first: an unknown challenge leaves no entry behind.
        if self.state.count(key) != 1 or self.state.hit(key, self.timeout) != 2:
            raise PasskeyError("The passkey request expired or was already used; try again.")
        return challenge

    # --- what users have ---------------------------------------------------------------
    def of_user(self, user_id: str) -> list[WebAuthnCredential]:
        with self.db.read() as s:
            return list(
                s.scalars(
                    select(WebAuthnCredential)
                    .where(WebAuthnCredential.user_id == user_id)
                    .order_by(WebAuthnCredential.created_at)
                )
            )

    def has_passkey(self, user_id: str) -> bool:
        return bool(self.of_user(user_id))

    @staticmethod
    def _descriptors(creds: list[WebAuthnCredential]) -> list[PublicKeyCredentialDescriptor]:
        out = []
        for c in creds:
            transports = []
            for t in c.transports or []:
                try:
                    transports.append(AuthenticatorTransport(t))
                except ValueError:
                    continue
            out.append(
                PublicKeyCredentialDescriptor(
                    id=base64url_to_bytes(c.credential_id), transports=transports or None
                )
            )
        return out

    # --- registration (§7.1) -----------------------------------------------------------
    def registration_options(self, user: User) -> dict[str, Any]:
        """PublicKeyCredentialCreationOptions as JSON for the browser; the user's own
        passkeys are excluded so one authenticator is not registered twice."""
        options = generate_registration_options(
            rp_id=self.rp.id,
            rp_name=self.rp.name,
            user_id=_user_handle(user.id),
            user_name=user.username,
            user_display_name=user.name or user.username,
            challenge=self._issue(REGISTER, user.id),
            timeout=self.timeout * 1000,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.REQUIRED,
                user_verification=UserVerificationRequirement.REQUIRED,
            ),
            exclude_credentials=self._descriptors(self.of_user(user.id)),
        )
        return dict(json.loads(options_to_json(options)))

    def register(
        self, user_id: str, response: Mapping[str, Any], label: str, *, ip: str, actor: str
    ) -> WebAuthnCredential:
        """Verifies an attestation response (§7.1; "none" and self attestation are
        accepted: idp does not restrict authenticator models) and stores the passkey,
        with its audit record, in one transaction."""
        label = " ".join(label.split())[:MAX_LABEL_CHARS] or "Passkey"
        try:
            credential = parse_registration_credential_json(dict(response))
        except (WebAuthnException, ValueError, TypeError):
            raise PasskeyError("The passkey response is malformed.") from None
        challenge = self._take(REGISTER, user_id, credential.response.client_data_json)
        try:
            verified = verify_registration_response(
                credential=credential,
                expected_challenge=challenge,
                expected_rp_id=self.rp.id,
                expected_origin=self.rp.origin,
                require_user_verification=True,
            )
        except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
            raise PasskeyError(f"The passkey was refused: {_reason(exc)}") from None
        credential_id = bytes_to_base64url(verified.credential_id)
        if len(credential_id) > CREDENTIAL_ID_CHARS:
            raise PasskeyError("The passkey's credential id is too long.")
        now = self.clock.now()
        try:
            with self.db.transaction() as s:
                taken = s.scalar(
                    select(WebAuthnCredential.id).where(
                        WebAuthnCredential.credential_id == credential_id
                    )
                )
                if taken is not None:
                    raise PasskeyError("This passkey is already registered.")
                count = len(
                    s.scalars(
                        select(WebAuthnCredential.id).where(WebAuthnCredential.user_id == user_id)
                    ).all()
                )
                if count >= MAX_PASSKEYS_PER_USER:
                    raise PasskeyError(f"At most {MAX_PASSKEYS_PER_USER} passkeys per account.")
                row = WebAuthnCredential(
                    user_id=user_id,
                    credential_id=credential_id,
                    public_key=verified.credential_public_key,
                    sign_count=verified.sign_count,
                    transports=[t.value for t in credential.response.transports or []][:8],
                    label=label,
                    aaguid=verified.aaguid,
                    backup_eligible=(
                        verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE
                    ),
                    backed_up=verified.credential_backed_up,
                    created_at=now,
                    last_used_at=None,
                )
                s.add(row)
                s.flush()
                record(s, at=now, actor=actor, action="passkey.add", target=row.id, ip=ip)
                self._changed(s, row.user_id, "create", row.label)
        except IntegrityError:  # the same passkey, registered at the same moment elsewhere
            raise PasskeyError("This passkey is already registered.") from None
        return row

    def remove(self, user_id: str, passkey_id: str, *, ip: str, actor: str) -> bool:
        """Deletes one of the user's passkeys (audited); False when they have none by
        that id (another user's passkey is not theirs to remove)."""
        with self.db.transaction() as s:
            gone = s.execute(
                delete(WebAuthnCredential).where(
                    WebAuthnCredential.id == passkey_id[:32],
                    WebAuthnCredential.user_id == user_id,
                )
            )
            if not getattr(gone, "rowcount", 0):
                return False
            record(s, at=self.clock.now(), actor=actor, action="passkey.remove",
                   target=passkey_id[:32], ip=ip)  # fmt: skip
            self._changed(s, user_id, "delete", None)
        return True

    # --- authentication (§7.2) ---------------------------------------------------------
    def login_options(self) -> dict[str, Any]:
        """Options for a passwordless sign-in: any discoverable credential for this RP
        (no allowCredentials, so nothing tells whether an account exists)."""
        options = generate_authentication_options(
            rp_id=self.rp.id,
            challenge=self._issue(LOGIN, ""),
            timeout=self.timeout * 1000,
            user_verification=UserVerificationRequirement.REQUIRED,
        )
        return dict(json.loads(options_to_json(options)))

    def login(self, response: Mapping[str, Any]) -> Verified:
        """Verifies a passwordless assertion: user verification required, the credential
        must belong to the user its userHandle names, and the account must be enabled."""
        return self._authenticate(response, LOGIN, "", None, require_uv=True)

    def second_factor_options(self, user_id: str, challenge_key: str) -> dict[str, Any]:
        """Options for the step after a password: the user's own credentials only. The
        challenge is bound to ``challenge_key`` (the caller's pending login), so it
        cannot be used for another login attempt."""
        options = generate_authentication_options(
            rp_id=self.rp.id,
            challenge=self._issue(SECOND_FACTOR, f"{user_id}|{challenge_key}"),
            timeout=self.timeout * 1000,
            allow_credentials=self._descriptors(self.of_user(user_id)),
            user_verification=UserVerificationRequirement.PREFERRED,
        )
        return dict(json.loads(options_to_json(options)))

    def verify_second_factor(
        self, user_id: str, response: Mapping[str, Any] | str, challenge_key: str
    ) -> bool:
        """True when ``response`` is a valid assertion by one of ``user_id``'s passkeys
        for a challenge from :meth:`second_factor_options` with the same
        ``challenge_key``; False otherwise (malformed, replayed, another user's...)."""
        try:
            parsed = parse_response(response) if isinstance(response, str) else response
            self._authenticate(
                parsed, SECOND_FACTOR, f"{user_id}|{challenge_key}", user_id, require_uv=False
            )
        except PasskeyError:
            return False
        return True

    def _authenticate(
        self,
        response: Mapping[str, Any],
        ceremony: str,
        binding: str,
        expected_user: str | None,
        *,
        require_uv: bool,
    ) -> Verified:
        try:
            credential = parse_authentication_credential_json(dict(response))
        except (WebAuthnException, ValueError, TypeError):
            raise PasskeyError("The passkey response is malformed.") from None
        challenge = self._take(ceremony, binding, credential.response.client_data_json)
        credential_id = bytes_to_base64url(credential.raw_id)
        with self.db.read() as s:
            found = s.scalar(
                select(WebAuthnCredential).where(
                    WebAuthnCredential.credential_id == credential_id[:CREDENTIAL_ID_CHARS]
                )
            )
            user = s.get(User, found.user_id) if found is not None else None
        refused = PasskeyError("This passkey is not registered here.")
        if found is None or user is None or user.disabled:
            raise refused
        if expected_user is not None and found.user_id != expected_user:
            raise refused  # another user's passkey is no factor of this one
        handle = credential.response.user_handle
        if handle is not None and handle != _user_handle(found.user_id):
            raise refused  # §7.2 step 6: the credential must be the named user's
        if expected_user is None and handle is None:
            raise refused  # a passwordless sign-in needs a discoverable credential
        try:
            verified = verify_authentication_response(
                credential=credential,
                expected_challenge=challenge,
                expected_rp_id=self.rp.id,
                expected_origin=self.rp.origin,
                credential_public_key=found.public_key,
                credential_current_sign_count=found.sign_count,
                require_user_verification=require_uv,
            )
        except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
            if "sign count" in str(exc):
                # §6.1.1: a counter that went backwards may be a cloned authenticator.
                security_event(
                    self.db, self.clock, "passkey_counter_regressed", user_id=found.user_id,
                    credential=found.id,
                )  # fmt: skip
            raise PasskeyError(f"The passkey was refused: {_reason(exc)}") from None
        with self.db.transaction() as s:
            row = s.get(WebAuthnCredential, found.id)
            if row is not None:
                row.sign_count = verified.new_sign_count
                row.backed_up = verified.credential_backed_up
                row.last_used_at = self.clock.now()
        return Verified(found.user_id, found.id)


def delete_for_user(s: Session, user_id: str) -> int:
    """Deletes every passkey of ``user_id`` inside the caller's transaction (a factor
    reset or an account deletion records its own audit); how many there were."""
    gone = s.execute(delete(WebAuthnCredential).where(WebAuthnCredential.user_id == user_id))
    return int(getattr(gone, "rowcount", 0) or 0)


def _reason(exc: Exception) -> str:
    text = str(exc).split("\n")[0][:200]
    return text if isinstance(exc, WebAuthnException) and text else "invalid response"
