"""Erasing a deleted user's personal data (issue 13 item 7; GDPR art. 17).

Rows that exist only for the user go: the account, consents, browser sessions (IP, user
agent), authorization codes and refresh families. Rows that must stay for the integrity
of the record (the audit trail, security events) keep a pseudonym in place of every
mention of the user: ``deleted-user-`` and 16 hex digits of an HMAC of the user id under
a key derived from the KEK. The same user always gets the same pseudonym, so their
records still read as one story; without the KEK nobody can tell whose it was.

What stays by design, each until it expires: the user id (the ``sub`` relying apps
know) in the revocation log and in the Shared Signals and back-channel logout messages
owed to receivers, which need it to act on the deletion; and login-throttle counters,
which are keyed by the name someone typed whether or not an account has it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, cast, delete, func, or_, select
from sqlalchemy.orm import Session

from idp.accounts.models import Consent, User
from idp.accounts.passkey_models import WebAuthnCredential
from idp.audit.models import AuditEvent, SecurityEvent
from idp.mfa.models import MfaFactor, PendingLogin, RecoveryCode
from idp.oauth.models import AuthorizationCode
from idp.sessions.models import BrowserSession, SessionClient

PREFIX = "deleted-user-"


def pseudonym_key(kek: bytes) -> bytes:
    """The pseudonyms' HMAC key, derived from the KEK (never the KEK itself)."""
    return hmac.new(kek, b"idp user pseudonym v1", hashlib.sha256).digest()


def pseudonym(key: bytes, user_id: str) -> str:
    """Fits the 32 characters of security_events.user_id."""
    return PREFIX + hmac.new(key, user_id.encode(), hashlib.sha256).hexdigest()[:16]


@dataclass(frozen=True)
class Identity:
    """Everything that names the user, and the pseudonym that replaces it."""

    user_id: str
    username: str
    email: str | None
    name: str | None
    alias: str

    @classmethod
    def of(cls, user: User, key: bytes) -> Identity:
        return cls(user.id, user.username, user.email, user.name, pseudonym(key, user.id))

    def terms(self) -> list[str]:
        """What a record may mention the user by, longest first (an email holds the
        username: it goes as a whole)."""
        found = {t for t in (self.user_id, self.username, self.email, self.name) if t}
        return sorted(found, key=len, reverse=True)

    def _pattern(self) -> re.Pattern[str]:
        # Whole words only: "al" must not eat the middle of "disabled".
        words = "|".join(re.escape(t) for t in self.terms())
        return re.compile(rf"(?<![\w.@-])(?:{words})(?![\w.@-])", re.IGNORECASE)

    def scrub(self, value: Any) -> Any:
        """``value`` (text, or JSON made of dicts and lists) with every mention of the
        user replaced by the pseudonym."""
        if isinstance(value, str):
            return self._pattern().sub(self.alias, value)
        if isinstance(value, dict):
            return {k: self.scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.scrub(v) for v in value]
        return value

    def _needles(self) -> list[str]:
        """What to look for in stored text, lower-cased: each term as typed and as JSON
        writes it (non-ASCII escaped). The name is left out: the other terms find every
        record about the user, and a short name would match half the table."""
        found: set[str] = set()
        for term in (self.user_id, self.username, self.email):
            if term:
                found |= {term.lower(), json.dumps(term)[1:-1].lower()}
        return sorted(found)

    def mentioned_in(self, *columns: Any) -> Any:
        """SQL: any of ``columns`` (text or JSON) may mention the user."""
        return or_(
            *(
                func.lower(cast(column, String)).contains(needle, autoescape=True)
                for column in columns
                for needle in self._needles()
            )
        )


def purge_rows(s: Session, user: User) -> None:
    """Deletes the rows that exist only for ``user``, then the user, in the caller's
    transaction. Refresh families go first, through the refresh store (the caller)."""
    sessions = select(BrowserSession.id).where(BrowserSession.user_id == user.id)
    s.execute(delete(SessionClient).where(SessionClient.session_id.in_(sessions)))
    s.execute(delete(AuthorizationCode).where(AuthorizationCode.user_id == user.id))
    s.execute(delete(BrowserSession).where(BrowserSession.user_id == user.id))
    s.execute(delete(Consent).where(Consent.user_id == user.id))
    for factor_table in (RecoveryCode, MfaFactor, PendingLogin, WebAuthnCredential):
        s.execute(delete(factor_table).where(factor_table.user_id == user.id))
    s.delete(user)  # through the ORM: the flush bumps the users generation (caches)
    s.flush()


def pseudonymize_records(s: Session, who: Identity) -> int:
    """Replaces every mention of the user in the audit trail and in security events with
    the pseudonym; returns the rows changed."""
    changed = 0
    audit = select(AuditEvent).where(
        or_(
            AuditEvent.actor.in_([who.user_id, who.username]),
            AuditEvent.target.in_([who.user_id, who.username]),
            who.mentioned_in(AuditEvent.actor, AuditEvent.reason, AuditEvent.details),
        )
    )
    for event in s.scalars(audit):
        before = (event.actor, event.target, event.reason, event.details)
        event.actor = who.scrub(event.actor)[:200]
        event.target = who.scrub(event.target)
        event.reason = who.scrub(event.reason)
        event.details = who.scrub(event.details)
        changed += before != (event.actor, event.target, event.reason, event.details)
    security = select(SecurityEvent).where(
        or_(SecurityEvent.user_id == who.user_id, who.mentioned_in(SecurityEvent.details))
    )
    for row in s.scalars(security):
        before_s = (row.user_id, row.details)
        if row.user_id == who.user_id:
            row.user_id = who.alias
        row.details = who.scrub(row.details)
        changed += before_s != (row.user_id, row.details)
    return changed
