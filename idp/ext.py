"""The per-app container of idp's services, reachable from views as ``services()``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from flask import current_app

from idp.accounts.cache import UserView
from idp.accounts.services import Throttle
from idp.changes.cache import ViewCache
from idp.changes.watch import Generations
from idp.clients.cache import ClientView
from idp.clock import Clock
from idp.config import Config
from idp.db import Database
from idp.keys.services import KeyService
from idp.sessions.services import SessionPolicy
from idp.state.store import StateStore

if TYPE_CHECKING:
    from idp.oauth.server import IdpAuthorizationServer
    from idp.revocations.denylist import DenyList
    from idp.revocations.service import Revocations
    from idp.sessions.backchannel import Notifier


@dataclass
class Services:
    config: Config
    db: Database
    clock: Clock
    keys: KeyService
    state: StateStore
    throttle: Throttle
    session_policy: SessionPolicy
    revocations: Revocations
    generations: Generations
    clients: ViewCache[ClientView]
    users: ViewCache[UserView]
    deny: DenyList
    kill_hooks: list[Any] = field(default_factory=list)
    # Built by create_app right after this container, because they need it.
    oauth: IdpAuthorizationServer = field(init=False)
    notifier: Notifier = field(init=False)

    def algs_in_use(self) -> set[str]:
        t = self.config.tokens
        # RS256 is always supported for ID tokens (OIDC Core §15.1).
        return {t.access_token_alg, t.id_token_alg, "RS256"}


def services() -> Services:
    return cast(Services, current_app.extensions["idp"])
