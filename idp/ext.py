"""The per-app container of idp's services, reachable from views as ``services()``.

Built whole, once, by idp.wiring.build_services (STYLE rule 13): every part is
constructed with the parts it needs, nothing is filled in later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from flask import current_app

if TYPE_CHECKING:
    from idp.accounts.cache import UserView
    from idp.accounts.credentials import PasswordChanges
    from idp.accounts.passkeys import Passkeys
    from idp.accounts.services import Throttle
    from idp.accounts.verification import EmailVerification
    from idp.changes.cache import ViewCache
    from idp.changes.watch import Generations
    from idp.clients.cache import ClientView
    from idp.clients.registration import Registrations
    from idp.clock import Clock
    from idp.config import Config
    from idp.db import Database
    from idp.documents import Documents
    from idp.keys.services import KeyService
    from idp.mail.outbox import Outbox
    from idp.mail.sender import Mailer
    from idp.mfa.services import Factors
    from idp.oauth.access_tokens import AccessTokens
    from idp.oauth.dpop import DPoP
    from idp.oauth.server import IdpAuthorizationServer
    from idp.oauth.tokens import TokenIssuer
    from idp.operator import OperatorActions
    from idp.refresh.types import RefreshStore
    from idp.revocations.denylist import DenyList
    from idp.revocations.service import Revocations
    from idp.revocations.waiting import FeedWaits
    from idp.sessions.backchannel import Notifier
    from idp.sessions.kill import SessionKiller
    from idp.sessions.services import SessionPolicy
    from idp.ssf.delivery import Pusher
    from idp.state.store import StateStore


@dataclass(frozen=True)
class Services:
    config: Config
    db: Database
    clock: Clock
    generations: Generations
    state: StateStore
    keys: KeyService
    documents: Documents
    clients: ViewCache[ClientView]
    users: ViewCache[UserView]
    throttle: Throttle
    session_policy: SessionPolicy
    revocations: Revocations
    deny: DenyList
    feed_waits: FeedWaits
    access_tokens: AccessTokens
    dpop: DPoP
    pusher: Pusher
    issuer: TokenIssuer
    refresh: RefreshStore
    notifier: Notifier
    killer: SessionKiller
    actions: OperatorActions
    oauth: IdpAuthorizationServer
    registrations: Registrations
    factors: Factors
    outbox: Outbox
    mailer: Mailer
    password_changes: PasswordChanges
    verification: EmailVerification
    passkeys: Passkeys

    def algs_in_use(self) -> set[str]:
        return algs_in_use(self.config)

    def close(self) -> None:
        """Stops the threads that read the database (deliveries, the feed's watcher),
        then closes its connections: an app torn down (tests, a command that is done)
        leaves nothing that could use them."""
        for worker in (self.notifier, self.pusher, self.mailer):
            worker.stop()
        self.feed_waits.stop()
        self.db.dispose()


def algs_in_use(cfg: Config) -> set[str]:
    """The signing algorithms the configuration uses; RS256 is always supported for ID
    tokens (OIDC Core §15.1)."""
    t = cfg.tokens
    return {t.access_token_alg, t.id_token_alg, "RS256"}


def services() -> Services:
    return cast(Services, current_app.extensions["idp"])
