"""Imports every model so that Base.metadata knows all tables (alembic, tests)."""

from idp.accounts.models import AccountToken, Consent, User
from idp.accounts.passkey_models import WebAuthnCredential
from idp.audit.models import AuditEvent, SecurityEvent
from idp.changes.models import Generation
from idp.clients.models import Client, InitialAccessToken
from idp.db import Base
from idp.keys.models import SigningKey
from idp.mail.models import MailMessage
from idp.mfa.models import MfaFactor, PendingLogin, RecoveryCode
from idp.oauth.models import AuthorizationCode, PushedRequest
from idp.refresh.models import FamilyAccessToken, RefreshFamily, RefreshToken
from idp.revocations.models import RevocationEntry
from idp.sessions.models import BrowserSession, SessionClient
from idp.ssf.models import SsfEvent, SsfStream
from idp.state.models import StateEntry

__all__ = [
    "AccountToken",
    "AuditEvent",
    "AuthorizationCode",
    "Base",
    "BrowserSession",
    "Client",
    "Consent",
    "FamilyAccessToken",
    "Generation",
    "InitialAccessToken",
    "MfaFactor",
    "PendingLogin",
    "MailMessage",
    "PushedRequest",
    "RecoveryCode",
    "RefreshFamily",
    "RefreshToken",
    "RevocationEntry",
    "SecurityEvent",
    "SessionClient",
    "SigningKey",
    "SsfEvent",
    "SsfStream",
    "StateEntry",
    "User",
    "WebAuthnCredential",
]
