"""Imports every model so that Base.metadata knows all tables (alembic, tests)."""

from idp.accounts.models import Consent, User
from idp.audit.models import AuditEvent
from idp.clients.models import Client
from idp.db import Base
from idp.keys.models import SigningKey
from idp.oauth.models import AuthorizationCode
from idp.sessions.models import BrowserSession, SessionClient
from idp.state.models import StateEntry

__all__ = [
    "AuditEvent",
    "AuthorizationCode",
    "Base",
    "BrowserSession",
    "Client",
    "Consent",
    "SessionClient",
    "SigningKey",
    "StateEntry",
    "User",
]
