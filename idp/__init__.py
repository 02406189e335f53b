"""idp: an OAuth 2.0 / OpenID Connect identity provider."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.middleware.proxy_fix import ProxyFix

from idp import config as config_mod
from idp.clock import Clock, SystemClock

__all__ = ["configure_process", "create_app"]


def _secret_key(cfg: config_mod.Config) -> str:
    if cfg.server.secret_key:
        return cfg.server.secret_key
    path = Path(cfg.server.instance_path) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def load_config(config: config_mod.Config | Mapping[str, Any] | None) -> config_mod.Config:
    if config is None:
        return config_mod.load()
    if isinstance(config, config_mod.Config):
        return config
    return config_mod.from_mapping(config, env={})


def create_app(
    config: config_mod.Config | Mapping[str, Any] | None = None, *, clock: Clock | None = None
) -> Flask:
    """Build the idp app. ``config`` is a Config, a plain mapping shaped like config.toml
    (tests), or None to read config.toml and the environment."""
    from idp import health, logs, metrics, web
    from idp.accounts import passkey_views
    from idp.accounts import recovery as recovery_views
    from idp.accounts import security as security_views
    from idp.accounts import views as account_views
    from idp.clients import views as registration_views
    from idp.cors import Cors, origin_cache
    from idp.front import Front
    from idp.janitor import Janitor
    from idp.keys import views as key_views
    from idp.mfa import views as mfa_views
    from idp.oauth import discovery
    from idp.oauth import views as oauth_views
    from idp.revocations import views as revocation_views
    from idp.sessions import views as session_views
    from idp.ssf import views as ssf_views
    from idp.wiring import build_services

    cfg = load_config(config)
    clock = clock or SystemClock()
    app = Flask("idp", instance_path=str(Path(cfg.server.instance_path).resolve()))
    cookie_prefix = "" if cfg.insecure_http else "__Host-"
    app.config.update(
        SECRET_KEY=_secret_key(cfg),
        MAX_CONTENT_LENGTH=cfg.server.max_body_bytes,
        MAX_FORM_MEMORY_SIZE=cfg.server.max_body_bytes,
        # Flask's own cookie carries only the CSRF token of the forms.
        SESSION_COOKIE_NAME=f"{cookie_prefix}idp_csrf",
        SESSION_COOKIE_SECURE=not cfg.insecure_http,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_PATH="/",
        WTF_CSRF_TIME_LIMIT=None,
        IDP_HTTPS=not cfg.insecure_http,
    )
    svc = build_services(cfg, clock)
    app.extensions["idp"] = svc
    janitor = Janitor(svc)
    app.before_request(janitor.maybe_run)

    csrf = CSRFProtect(app)
    for bp in (
        account_views.bp,
        security_views.bp,
        mfa_views.bp,
        recovery_views.bp,
        passkey_views.bp,
        session_views.bp,
        oauth_views.bp,
        registration_views.bp,
        discovery.bp,
        key_views.bp,
        revocation_views.bp,
        ssf_views.bp,
        health.bp,
    ):
        app.register_blueprint(bp)
    if not cfg.admin.port:
        app.register_blueprint(health.metrics_bp)
    for view in (
        oauth_views.authorize,  # checks the CSRF token of consent decisions itself
        oauth_views.token,
        oauth_views.userinfo,
        oauth_views.revoke,
        oauth_views.introspect,
        oauth_views.par,
        *registration_views.VIEWS,
    ):
        csrf.exempt(view)
    csrf.exempt(ssf_views.bp)  # a bearer-token API for receivers
    web.install(app)
    metrics.install(app)
    if not cfg.admin.port:
        # The dashboard under /admin of the public app; with [admin] port set it is served
        # only on that internal port (see `idp serve` and idp.admin.wsgi).
        from idp import admin

        admin_app = admin.create_app(app)
        app.extensions["idp.admin"] = admin_app
        app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/admin": admin_app})  # type: ignore
    # The hot endpoints are answered in front of Flask (idp.front); the proxy headers are
    # read before anything else, so both see the client's address and scheme.
    front = Front(app.wsgi_app, svc, svc.documents, not cfg.insecure_http, janitor.maybe_run)
    # Browser apps call the token endpoints cross-origin (idp.cors).
    app.wsgi_app = Cors(front, origin_cache(svc.db, svc.generations))  # type: ignore[method-assign]
    # Every request is timed, the dashboard's under /admin too (idp.metrics).
    app.wsgi_app = metrics.Timing(app.wsgi_app)  # type: ignore[method-assign]
    if cfg.server.trusted_proxies:
        n = cfg.server.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore
    # A request id for every line logged while handling it, an access line.
    app.wsgi_app = logs.install(app.wsgi_app)  # type: ignore[method-assign,assignment]
    if cfg.tracing.enabled:
        from idp import tracing

        # Outermost: the access line and the request id are inside the request's span.
        app.wsgi_app = tracing.Traced(app.wsgi_app)  # type: ignore[method-assign]
    return app


def configure_process(cfg: config_mod.Config) -> None:
    """What a process that serves does first, in each worker after the fork (idp.wsgi,
    idp.admin.wsgi) and in the development server: its logging, how many password hashes it
    runs at once, and its tracer when ``[tracing]`` is on (threads and connections never
    cross a fork)."""
    from idp import logs, serve
    from idp.accounts import passwords

    logs.configure(cfg.log, traced=cfg.tracing.enabled)
    passwords.set_slots(serve.hash_slots(cfg))
    if cfg.tracing.enabled:
        from idp import tracing

        tracing.start(cfg.tracing)
