"""Browser pages: login, signup, logout, account."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from flask import Blueprint, abort, g, redirect, render_template, request
from sqlalchemy import bindparam, select
from werkzeug.wrappers import Response

from idp.accounts import services as accounts
from idp.accounts.models import Consent, User
from idp.audit.services import record
from idp.clients.models import Client
from idp.db import RawStatement
from idp.ext import services
from idp.mfa.pending import second_factor_response
from idp.operator import Actor
from idp.sessions import cookie
from idp.sessions import services as sessions
from idp.sessions.agents import describe_agent
from idp.sessions.models import BrowserSession
from idp.web import client_ip, form_text

bp = Blueprint("accounts", __name__)

GENERIC_LOGIN_ERROR = "Wrong username or password."
USERNAME = RawStatement(select(User.username).where(User.id == bindparam("id")))


CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def safe_next(target: str | None) -> str:
    """Only same-site relative paths; anything else would be an open redirect."""
    if not target or len(target) > 4000 or CONTROL.search(target):
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


def login_response(user_id: str, next_url: str, amr: list[str] | None = None) -> Response:
    """Starts the user's session (``amr``: how they authenticated, RFC 8176; a password
    when not said) and sends the browser on to ``next_url``."""
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
    with svc.db.raw_transaction() as cur:
        user = cur.one_or_none(USERNAME, {"id": user_id})
        assert user is not None
        new, token = sessions.start(
            cur,
            svc.clock,
            svc.session_policy,
            user_id,
            client_ip(),
            request.user_agent.string or "",
            amr,
        )
        record(
            cur,
            at=svc.clock.now(),
            actor=user.username,
            action="login",
            target=new.id,
            ip=client_ip(),
            amr=new.amr,
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
    if svc.factors.has_factor(user_id):
        # Not logged in yet: the second factor is asked for first (idp.mfa.views).
        return second_factor_response(user_id, next_url)
    return login_response(user_id, next_url)


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
            # The address counts once its owner follows the mailed link (issue 13).
            verifying = svc.verification.queue(s, svc.clock.now(), user)
    except accounts.AccountError as exc:
        body = render_template(
            "signup.html", next=next_url, error=str(exc), username=username, email=email or ""
        )
        return Response(body, status=400, mimetype="text/html")
    if verifying:
        svc.mailer.kick()
    return login_response(user.id, next_url)


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
        consents = s.execute(
            select(Consent.client_id, Client.name, Consent.scope, Consent.granted_at)
            .join(Client, Client.client_id == Consent.client_id)
            .where(Consent.user_id == current.user_id)
            .order_by(Client.name, Consent.client_id)
        ).all()
    devices = [(x, *describe_agent(x.user_agent)) for x in own]
    return render_template(
        "account.html", user=current.user, session=current, devices=devices, consents=consents
    )


@bp.route("/account/consents/<client_id>/withdraw", methods=["POST"])
def withdraw_consent(client_id: str) -> Response:
    """ASVS 10.7: consent is reviewable and revocable by the user. The consent goes and
    so does every refresh token the client holds for the user; the next authorization
    asks again."""
    current = cookie.current()
    if current is None:
        return redirect("/login?next=/account", code=303)
    unusable = len(client_id) > 100 or "\x00" in client_id  # PostgreSQL refuses NUL
    if unusable or not services().actions.withdraw_consent(
        current.user_id, client_id, Actor(current.user.username, client_ip())
    ):
        abort(404)
    return redirect("/account", code=303)


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
