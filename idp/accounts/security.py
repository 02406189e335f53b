"""/account/security: change the password (with the current one) and the email address
(re-verified). Other sections (second factors) come from ``_security_factors.html``."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request
from werkzeug.wrappers import Response

from idp.accounts.credentials import PasswordError
from idp.accounts.models import User
from idp.accounts.services import AccountError, TooManyAttempts
from idp.ext import services
from idp.sessions import cookie
from idp.sessions.models import BrowserSession
from idp.web import client_ip, form_text

bp = Blueprint("security", __name__)

PAGE = "/account/security"
# What a finished action says; the query names one, and nothing from it is echoed.
NOTICES = {
    "password": "Your password was changed. Every other device was signed out.",
    "email": "We sent a link to your new address: follow it to verify it.",
    "resent": "We sent you a new verification link.",
    "verified": "Your email address is already verified.",
}


def _page(session: BrowserSession, status: int = 200, **errors: str | None) -> Response:
    svc = services()
    with svc.db.read() as s:
        user = s.get(User, session.user_id)
    body = render_template(
        "account_security.html",
        user=user,
        session=session,
        notice=NOTICES.get(request.args.get("done", "")),
        password_error=errors.get("password_error"),
        email_error=errors.get("email_error"),
        email_value=errors.get("email_value") or "",
    )
    return Response(body, status=status, mimetype="text/html")


def _locked(session: BrowserSession, locked: TooManyAttempts, field: str) -> Response:
    resp = _page(session, 429, **{field: locked.message})
    resp.headers["Retry-After"] = str(locked.retry_after)
    return resp


@bp.route(PAGE)
def security() -> Response:
    current = cookie.current()
    if current is None:
        return redirect(f"/login?next={PAGE}", code=303)
    return _page(current)


@bp.route(f"{PAGE}/password", methods=["POST"])
def change_password() -> Response:
    current = cookie.current()
    if current is None:
        return redirect(f"/login?next={PAGE}", code=303)
    svc = services()
    try:
        svc.password_changes.change(
            current,
            form_text("current_password", 2000),
            form_text("new_password", 2000),
            client_ip(),
        )
    except TooManyAttempts as locked:
        return _locked(current, locked, "password_error")
    except PasswordError as exc:
        return _page(current, 400, password_error=str(exc))
    return redirect(f"{PAGE}?done=password", code=303)


@bp.route(f"{PAGE}/email", methods=["POST"])
def change_email() -> Response:
    current = cookie.current()
    if current is None:
        return redirect(f"/login?next={PAGE}", code=303)
    svc = services()
    email = form_text("email", 400)
    try:
        svc.verification.change(current, form_text("password", 2000), email, client_ip())
    except TooManyAttempts as locked:
        return _locked(current, locked, "email_error")
    except AccountError as exc:
        return _page(current, 400, email_error=str(exc), email_value=email[:320])
    return redirect(f"{PAGE}?done=email", code=303)


@bp.route(f"{PAGE}/email/resend", methods=["POST"])
def resend_verification() -> Response:
    current = cookie.current()
    if current is None:
        return redirect(f"/login?next={PAGE}", code=303)
    if current.user.email_verified:
        return redirect(f"{PAGE}?done=verified", code=303)
    # The same answer when the account was sent enough mail for now (no mail bombing).
    services().verification.resend(current.user_id)
    return redirect(f"{PAGE}?done=resent", code=303)
