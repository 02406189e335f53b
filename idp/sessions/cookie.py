"""The session cookie (SPEC §6): only a random id; __Host-, Secure, HttpOnly, SameSite=Lax."""

from __future__ import annotations

from flask import g, request
from werkzeug.wrappers import Response

from idp.ext import services
from idp.sessions import services as sessions
from idp.sessions.models import BrowserSession


def cookie_name() -> str:
    cfg = services().config
    # Plain http only on loopback in development; the __Host- prefix needs Secure.
    return cfg.sessions.cookie_name if cfg.insecure_http else "__Host-" + cfg.sessions.cookie_name


def current() -> BrowserSession | None:
    """The request's live browser session (cached on ``g``)."""
    if "idp_session" not in g:
        svc = services()
        g.idp_session = sessions.from_cookie(
            svc.db, svc.clock, svc.session_policy, request.cookies.get(cookie_name())
        )
    session: BrowserSession | None = g.idp_session
    return session


def set_cookie(resp: Response, token: str) -> None:
    cfg = services().config
    resp.set_cookie(
        cookie_name(),
        token,
        max_age=cfg.sessions.absolute_timeout,
        path="/",
        secure=not cfg.insecure_http,
        httponly=True,
        samesite="Lax",
    )


def clear_cookie(resp: Response) -> None:
    cfg = services().config
    resp.delete_cookie(
        cookie_name(), path="/", secure=not cfg.insecure_http, httponly=True, samesite="Lax"
    )
