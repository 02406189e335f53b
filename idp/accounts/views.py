"""Browser pages: login, signup, logout, account."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, abort, g, redirect, render_template, request
from sqlalchemy import select
from werkzeug.wrappers import Response

from idp.accounts import services as accounts
from idp.accounts.models import User
from idp.audit.services import record
from idp.ext import services
from idp.sessions import cookie
from idp.sessions import services as sessions
from idp.sessions.agents import describe_agent
from idp.sessions.models import BrowserSession
from idp.web import client_ip, form_text

bp = Blueprint("accounts", __name__)

GENERIC_LOGIN_ERROR = "Wrong username or password."


def safe_next(target: str | None) -> str:
    """Only same-site relative paths; anything else would be an open redirect."""
    if not target or len(target) > 4000 or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return "/account"
    parts = urlsplit(target)
    if (
        parts.scheme
        or parts.netloc
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
    ):
        return "/account"
    return target


def _login_response(user_id: str, next_url: str, amr: tuple[str, ...] = ("pwd",)) -> Response:
    """A new browser session for ``user_id``, authenticated by ``amr`` (RFC 8176)."""
    svc = services()
    old = cookie.current()
    if old is not None:
        # A new session id at every login (no session fixation, ASVS 7.2.4). The old one is
        # killed, not just ended: what was issued in it must stop working too.
        svc.killer.kill_session(
            old.id,
            actor="idp",
            action="session.kill",
            reason="replaced by a new login",
            ip=client_ip(),
            initiator="user",
        )
    with svc.db.transaction() as s:
        user = s.get(User, user_id)
        assert user is not None
        new, token = sessions.start(
            s, svc.clock, svc.session_policy, user, client_ip(), request.user_agent.string or ""
        )
        record(
            s,
            at=svc.clock.now(),
            actor=user.username,
            action="login",
            target=new.id,
            ip=client_ip(),
            amr=list(amr),
        )
    g.idp_session = new
    resp = redirect(next_url, code=303)
    cookie.set_cookie(resp, token)
    return resp


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str:
    next_url = safe_next(request.values.get("next"))
    svc = services()
    signup_on = svc.config.server.signup_enabled
    if request.method == "GET":
        return render_template(
            "login.html", next=next_url, error=None, username="", signup=signup_on
        )
    username = form_text("username", 200)
    password = form_text("password", 2000)
    try:
        user_id = accounts.authenticate(svc.db, svc.throttle, username, password, client_ip())
    except accounts.TooManyAttempts as locked:
        body = render_template(
            "login.html", next=next_url, error=locked.message, username=username, signup=signup_on
        )
        resp = Response(body, status=429, mimetype="text/html")
        resp.headers["Retry-After"] = str(locked.retry_after)
        return resp
    if user_id is None:
        body = render_template(
            "login.html",
            next=next_url,
            error=GENERIC_LOGIN_ERROR,
            username=username,
            signup=signup_on,
        )
        return Response(body, status=401, mimetype="text/html")
    return _login_response(user_id, next_url)


@bp.route("/signup", methods=["GET", "POST"])
def signup() -> Response | str:
    svc = services()
    if not svc.config.server.signup_enabled:
        abort(404)
    next_url = safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("signup.html", next=next_url, error=None, username="", email="")
    username = form_text("username", 200)
    email = form_text("email", 400) or None
    password = form_text("password", 2000)
    if not svc.throttle.signup_allowed(client_ip()):
        body = render_template(
            "signup.html",
            next=next_url,
            error="Too many sign-ups from your network; try again later.",
            username=username,
            email=email or "",
        )
        return Response(body, status=429, mimetype="text/html")
    try:
        with svc.db.transaction() as s:
            user = accounts.create_user(s, svc.clock, username, password, email=email)
            record(
                s,
                at=svc.clock.now(),
                actor=username,
                action="signup",
                target=user.id,
                ip=client_ip(),
            )
    except accounts.AccountError as exc:
        body = render_template(
            "signup.html", next=next_url, error=str(exc), username=username, email=email or ""
        )
        return Response(body, status=400, mimetype="text/html")
    return _login_response(user.id, next_url)


@bp.route("/account")
def account() -> Response | str:
    current = cookie.current()
    if current is None:
        return redirect("/login?next=/account", code=303)
    svc = services()
    now = svc.clock.now()
    with svc.db.read() as s:
        own = list(
            s.scalars(
                select(BrowserSession)
                .where(
                    BrowserSession.user_id == current.user_id,
                    BrowserSession.live(now, svc.config.sessions.idle_timeout),
                )
                .order_by(BrowserSession.last_seen_at.desc())
            )
        )
    devices = [(x, *describe_agent(x.user_agent)) for x in own]
    return render_template("account.html", user=current.user, session=current, devices=devices)


@bp.route("/account/sessions/<sid>/end", methods=["POST"])
def end_other_session(sid: str) -> Response:
    """ASVS 7.4.3: users can end their other sessions (a lost phone, a shared computer)."""
    current = cookie.current()
    if current is None:
        return redirect("/login?next=/account", code=303)
    svc = services()
    with svc.db.read() as s:
        target = s.get(BrowserSession, sid[:64])
        owned = target is not None and target.user_id == current.user_id
    if not owned:
        abort(404)
    svc.killer.kill_session(
        sid,
        actor=current.user.username,
        action="session.end_other",
        reason="signed out by the user from another device",
        ip=client_ip(),
    )
    return redirect("/account", code=303)
