"""Builds idp's services from a configuration, each part from the parts it needs."""

from __future__ import annotations

import dataclasses

from idp.accounts.cache import user_cache
from idp.accounts.credentials import PasswordChanges
from idp.accounts.erasure import pseudonym_key
from idp.accounts.models import User
from idp.accounts.passkeys import Passkeys, RelyingParty
from idp.accounts.services import Throttle
from idp.accounts.verification import EmailVerification
from idp.changes.models import CLIENTS, USERS
from idp.changes.watch import Generations, signal_for
from idp.clients.cache import client_cache
from idp.clients.models import Client
from idp.clients.registration import Registrations
from idp.clock import Clock
from idp.config import Config
from idp.db import Database, Limits
from idp.documents import Documents
from idp.ext import Services, algs_in_use
from idp.keys import crypto
from idp.keys.services import KeyService
from idp.mail.outbox import Outbox
from idp.mail.sender import Mailer, transport_for
from idp.mfa.services import Factors
from idp.oauth.access_tokens import AccessTokens
from idp.oauth.client_keys import ClientKeys
from idp.oauth.code_store import SqlCodeStore
from idp.oauth.discovery import metadata
from idp.oauth.dpop import DPoP
from idp.oauth.registry import TokenRegistry
from idp.oauth.server import IdpAuthorizationServer
from idp.oauth.tokens import TokenIssuer
from idp.operator import OperatorActions
from idp.outbound import Outbound
from idp.refresh.store import SqlRefreshStore
from idp.revocations.denylist import DenyList
from idp.revocations.service import Revocations
from idp.revocations.waiting import FeedWaits
from idp.sessions.backchannel import Notifier
from idp.sessions.kill import SessionKiller
from idp.sessions.services import SessionPolicy
from idp.ssf.delivery import Pusher
from idp.ssf.events import Emitter
from idp.state.fallback import FallbackStateStore
from idp.state.store import RedisStateStore, SqlStateStore, StateStore


def build_services(cfg: Config, clock: Clock) -> Services:
    t = cfg.tokens
    d = cfg.database
    limits = Limits(
        d.connect_timeout, d.statement_timeout, d.pool_size, d.pool_overflow, d.pool_timeout
    )
    db = Database(d.url, d.echo, limits, traced=cfg.tracing.enabled)
    generations = Generations(db, signal_for(cfg.database.url, cfg.redis.url, cfg.redis.prefix))
    generations.bump_on_flush(Client, CLIENTS)
    generations.bump_on_flush(User, USERS)
    state: StateStore = (
        FallbackStateStore(
            RedisStateStore(cfg.redis.url, cfg.redis.prefix, clock), SqlStateStore(db, clock)
        )
        if cfg.redis.url
        else SqlStateStore(db, clock)
    )
    keyring = crypto.load_keyring(cfg.keys.kek, cfg.keys.kek_previous, cfg.server.instance_path)
    kek = keyring.current
    # A retired key stays published until the last thing it signed expired (with a
    # minute for clocks that disagree).
    keys = KeyService(
        db,
        clock,
        keyring,
        cfg.longest_signed_ttl + 60,
        generations,
        rotate_every=cfg.keys.rotate_every,
        max_age=cfg.jwks_max_age,
    )
    clients = client_cache(db, generations)
    users = user_cache(db, generations)
    revocations = Revocations(db, clock)
    deny = DenyList(db, clock, generations)
    access_tokens = AccessTokens(keys, cfg.server.issuer, clock, deny, generations)
    dpop = DPoP(
        cfg.server.issuer,
        state,
        clock,
        kek,
        require_nonce=cfg.oauth.dpop_nonce,
        previous=keyring.previous,
    )
    issuer = TokenIssuer(cfg.server.issuer, keys, clock, t)
    refresh = SqlRefreshStore(
        db,
        clock,
        t.refresh_token_idle_ttl,
        t.refresh_token_absolute_ttl,
        t.refresh_reuse_grace_seconds,
        state,
    )
    notifier = Notifier(db, clock, issuer, Outbound(cfg.outbound.allow_loopback))
    signals = Emitter(cfg.server.issuer, cfg.ssf.event_ttl_seconds)
    pusher = Pusher(db, clock, issuer, Outbound(cfg.outbound.allow_loopback))
    notifier.followers.append(pusher.kick)
    killer = SessionKiller(
        db, clock, revocations, refresh, notifier, cfg.longest_token_ttl, signals
    )
    registry = TokenRegistry(access_tokens, users, revocations, refresh)
    codes = SqlCodeStore(db, clock, state, revocations, refresh, t.authorization_code_ttl)
    outbound = Outbound(cfg.outbound.allow_loopback)
    login = cfg.login
    throttle = Throttle(
        state,
        login.max_failures_per_account,
        login.max_failures_per_ip,
        login.window_seconds,
        clock,
        login.max_failures_per_account_network,
        login.first_delay_seconds,
    )
    # Second-factor codes: counted apart from passwords, under the same policy.
    code_throttle = dataclasses.replace(throttle, prefix="mfa")
    factors = Factors(
        db, clock, keyring, signals, code_throttle, cfg.mfa.issuer_label, lambda: notifier.kick()
    )
    oauth = IdpAuthorizationServer(
        cfg,
        db,
        clock,
        clients,
        issuer,
        refresh,
        registry,
        codes,
        revocations,
        killer,
        ClientKeys(outbound),
        state,
    )
    oauth.install()
    actions = OperatorActions(
        db,
        clock,
        revocations,
        refresh,
        killer,
        notifier,
        keys,
        cfg.longest_token_ttl,
        lambda: algs_in_use(cfg),
        pseudonym_key(kek),
        factors,
    )
    throttle = Throttle(
        state,
        cfg.login.max_failures_per_account,
        cfg.login.max_failures_per_ip,
        cfg.login.window_seconds,
        clock,
        cfg.login.max_failures_per_account_network,
        cfg.login.first_delay_seconds,
    )
    outbox = Outbox(cfg.server.issuer)
    mailer = Mailer(db, clock, cfg.mail, transport_for(cfg.mail))
    window = cfg.login.window_seconds
    return Services(
        config=cfg,
        db=db,
        clock=clock,
        generations=generations,
        state=state,
        keys=keys,
        documents=Documents(cfg, keys, metadata(cfg)),
        clients=clients,
        users=users,
        throttle=throttle,
        session_policy=SessionPolicy(cfg.sessions.idle_timeout, cfg.sessions.absolute_timeout),
        revocations=revocations,
        deny=deny,
        feed_waits=FeedWaits(deny.latest, cfg.server.feed_waits, cfg.server.feed_waits_per_client),
        access_tokens=access_tokens,
        dpop=dpop,
        pusher=pusher,
        issuer=issuer,
        refresh=refresh,
        notifier=notifier,
        killer=killer,
        actions=actions,
        oauth=oauth,
        registrations=Registrations(db, clock, cfg, actions, keys),
        factors=factors,
        outbox=outbox,
        mailer=mailer,
        password_changes=PasswordChanges(
            killer, refresh, revocations, throttle, outbox, mailer, cfg.accounts, window
        ),
        verification=EmailVerification(db, throttle, outbox, mailer, cfg.accounts, window),
        passkeys=Passkeys(
            db,
            state,
            clock,
            RelyingParty.from_issuer(cfg.server.issuer, cfg.webauthn.rp_name),
            cfg.webauthn.timeout_seconds,
            signals,
        ),
    )
