"""Pages behind mailed links: /password/forgot and /password/reset (a forgotten password),
/email/verify (an address). The links themselves are idp.accounts.links."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request
from werkzeug.wrappers import Response

from idp.accounts.credentials import LinkInvalid, PasswordError
from idp.accounts.services import TooManyAttempts
from idp.ext import services
from idp.sessions import cookie
from idp.web import client_ip, form_text

bp = Blueprint("recovery", __name__)


def _html(template: str, status: int = 200, **context: object) -> Response:
    return Response(render_template(template, **context), status=status, mimetype="text/html")


@bp.route("/password/forgot", methods=["GET", "POST"])
def forgot() -> Response:
    svc = services()
    minutes = svc.config.accounts.reset_link_ttl_seconds // 60
    if request.method == "GET":
        return _html("password_forgot.html", sent=False, minutes=minutes)
    identifier = form_text("email", 400).strip() or form_text("username", 400).strip()
    if not identifier:
        return _html(
            "password_forgot.html",
            400,
            sent=False,
            minutes=minutes,
            error="Enter your username or email address.",
        )
    try:
        svc.password_changes.request_reset(identifier, client_ip())
    except TooManyAttempts as locked:
        resp = _html("password_forgot.html", 429, sent=False, minutes=minutes, error=locked.message)
        resp.headers["Retry-After"] = str(locked.retry_after)
        return resp
    # The same page whether or not an account matched (no enumeration).
    return _html("password_forgot.html", sent=True, minutes=minutes)


@bp.route("/password/reset", methods=["GET"])
@bp.route("/password/reset/<token>", methods=["GET"])
def reset_form(token: str | None = None) -> Response:
    token = (token or request.args.get("token", ""))[:200]
    user = services().password_changes.reset_user(token)
    if user is None:
        return _html("password_reset.html", 400, invalid=True)
    return _html("password_reset.html", token=token, username=user.username, error=None)


@bp.route("/password/reset/done", methods=["GET"])
def reset_done() -> Response:
    return _html("password_reset.html", done=True)


@bp.route("/password/reset", methods=["POST"])
def reset() -> Response:
    svc = services()
    token = form_text("token", 200)
    current = cookie.current()
    try:
        # The browser's own session stays when it is the user's (else it is not theirs
        # to keep, and nothing of it is touched).
        svc.password_changes.reset(
            token, form_text("password", 2000), client_ip(), current.id if current else None
        )
    except LinkInvalid:
        return _html("password_reset.html", 400, invalid=True)
    except PasswordError as exc:
        username = getattr(svc.password_changes.reset_user(token), "username", "")
        return _html("password_reset.html", 400, token=token, username=username, error=str(exc))
    return redirect("/password/reset/done", code=303)


@bp.route("/email/verify", methods=["GET"])
def verify_form() -> Response:
    token = request.args.get("token", "")[:200]
    user = services().verification.pending(token)
    if user is None:
        return _html("email_verify.html", 400, invalid=True)
    # A GET changes nothing (mail scanners fetch links): the button posts the token.
    return _html("email_verify.html", token=token, email=user.email, username=user.username)


@bp.route("/email/verify", methods=["POST"])
def verify() -> Response:
    user = services().verification.confirm(form_text("token", 200), client_ip())
    if user is None:
        return _html("email_verify.html", 400, invalid=True)
    return redirect("/email/verify/done", code=303)


@bp.route("/email/verify/done", methods=["GET"])
def verified() -> Response:
    return _html("email_verify.html", done=True)
