"""Who may use the dashboard: admins, through the normal login; destructive actions need a
recent authentication (ASVS 7.5), and every action is audited."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Flask, abort, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from idp.accounts import services as accounts
from idp.audit.services import record, security_event
from idp.ext import services
from idp.sessions import cookie
from idp.sessions.models import BrowserSession
from idp.web import client_ip, form_text

F = TypeVar("F", bound=Callable[..., Any])


def install(app: Flask) -> None:
    @app.before_request
    def _no_store() -> None:
        g.admin_user = None

    @app.after_request
    def _headers(resp: Response) -> Response:
        resp.headers["Cache-Control"] = "no-store"
        return resp

    app.add_url_rule("/reauth", "reauth", reauth, methods=["GET", "POST"])


def login_url() -> str:
    svc = services()
    if svc.config.admin.port:
        # On its own port the dashboard sends people to the public login page.
        return svc.config.server.issuer.rstrip("/") + "/login"
    return "/login?next=" + (request.script_root + request.full_path.rstrip("?"))


def current_admin() -> BrowserSession | None:
    session = cookie.current()
    if session is None:
        return None
    if not session.user.is_admin:
        abort(403, "This page is for administrators.")
    g.admin_user = session.user
    return session


def admin_required(view: F) -> F:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if current_admin() is None:
            return redirect(login_url(), code=303)
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def recently_authenticated(session: BrowserSession) -> bool:
    svc = services()
    age = svc.clock.now() - session.auth_time
    return age <= dt.timedelta(seconds=svc.config.admin.reauth_seconds)


def fresh_auth_required(view: F) -> F:
    """For destructive POSTs: asks for the password again when the login is stale."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        session = current_admin()
        if session is None:
            return redirect(login_url(), code=303)
        if not recently_authenticated(session):
            back = safe_back(request.form.get("back"))
            return Response(
                render_template("reauth.html", back=back, error=None),
                status=401,
                mimetype="text/html",
            )
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def safe_back(target: str | None) -> str:
    """Where to return after re-authentication: a path inside the dashboard (the forms of
    destructive actions carry their page in a hidden ``back`` field), else the overview."""
    root = request.script_root + "/"
    if target:
        parts = urlsplit(target)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        same_site = not parts.netloc or parts.netloc == request.host
        if same_site and path.startswith(root) and not path.startswith("//") and "\\" not in path:
            return path
    return str(url_for("pages.overview"))


def reauth() -> Response | str:
    """Re-authentication: the password again renews the session's auth_time."""
    session = current_admin()
    if session is None:
        return redirect(login_url(), code=303)
    back = safe_back(request.values.get("back"))
    if request.method == "GET":
        return render_template("reauth.html", back=back, error=None)
    svc = services()
    try:
        user_id = accounts.authenticate(
            svc.db, svc.throttle, session.user.username, form_text("password", 2000), client_ip()
        )
    except accounts.TooManyAttempts as locked:
        resp = Response(
            render_template("reauth.html", back=back, error=locked.message),
            status=429,
            mimetype="text/html",
        )
        resp.headers["Retry-After"] = str(locked.retry_after)
        return resp
    if user_id != session.user_id:
        # Someone at an operator's session without the operator's password (issue 10).
        security_event(
            svc.db,
            svc.clock,
            "admin_reauth_failed",
            user_id=session.user_id,
            session_id=session.id,
            ip=client_ip(),
        )
        return Response(
            render_template("reauth.html", back=back, error="Wrong password."),
            status=401,
            mimetype="text/html",
        )
    now = svc.clock.now()
    with svc.db.transaction() as s:
        row = s.get(BrowserSession, session.id)
        assert row is not None
        row.auth_time = now
        audit(s, "admin.reauth", target=session.id)
    return redirect(back, code=303)


def audit(
    db: Any, action: str, *, target: str | None = None, reason: str | None = None, **details: Any
) -> None:
    """An audit event for the current admin's action."""
    user = g.get("admin_user")
    record(
        db,
        at=services().clock.now(),
        actor=user.username if user else "unknown",
        action=action,
        target=target,
        reason=reason,
        ip=client_ip(),
        **details,
    )
