"""Imports every model so that Base.metadata knows all tables (alembic, tests)."""

from idp.accounts.models import Consent, User
from idp.accounts.passkey_models import WebAuthnCredential
from idp.audit.models import AuditEvent, SecurityEvent
from idp.changes.models import Generation
from idp.clients.models import Client, InitialAccessToken
from idp.db import Base
from idp.keys.models import SigningKey
from idp.oauth.models import AuthorizationCode, PushedRequest
from idp.refresh.models import FamilyAccessToken, RefreshFamily, RefreshToken
from idp.revocations.models import RevocationEntry
from idp.sessions.models import BrowserSession, SessionClient
from idp.ssf.models import SsfEvent, SsfStream
from idp.state.models import StateEntry

__all__ = [
    "AuditEvent",
    "AuthorizationCode",
    "Base",
    "BrowserSession",
    "Client",
    "Consent",
    "FamilyAccessToken",
    "Generation",
    "InitialAccessToken",
    "PushedRequest",
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
