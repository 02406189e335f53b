"""Browser pages of second factors: the login's second step (``/login/code``) and the
TOTP section of ``/account/security`` (enrol, confirm, remove)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, jsonify, redirect, render_template, request
from werkzeug.wrappers import Response

from idp.accounts import services as accounts
from idp.accounts.models import User
from idp.accounts.views import login_response
from idp.ext import services
from idp.mfa import pending
from idp.mfa.acr import HWK, with_second_factor
from idp.mfa.services import FactorError
from idp.sessions import cookie
from idp.web import client_ip, error_response, form_text

bp = Blueprint("mfa", __name__)

SECURITY = "/account/security"
WRONG_CODE = "That code is not right."


def _page(template: str, status: int, **context: Any) -> Response:
    resp = Response(render_template(template, **context), status=status, mimetype="text/html")
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _back(message: str, status: int = 400) -> Response:
    """A refused change on the security page: the reason, and the way back."""
    return _page("mfa_message.html", status, message=message)


# --- the login's second step -------------------------------------------------------------
Pending = tuple[str, str, str, list[str], str]  # (id, user id, next URL, amr, username)


def _pending() -> Pending | None:
    """The browser's pending login (a right password, no second factor yet), if any."""
    svc = services()
    with svc.db.read() as s:
        row = pending.find(s, svc.clock, pending.cookie_value())
        user = s.get(User, row.user_id) if row is not None else None
        if row is None or user is None or user.disabled:
            return None
        return (row.id, row.user_id, row.next_url, list(row.amr), user.username)


def _start_again() -> Response:
    resp = redirect("/login", code=303)
    pending.clear_cookie(resp)
    return resp


def _code_page(status: int, user_id: str, error: str | None) -> Response:
    svc = services()
    return _page(
        "login_code.html",
        status,
        error=error,
        totp=svc.factors.has_totp(user_id),
        passkey=svc.passkeys.has_passkey(user_id),
    )


def _finish(found: Pending, method: str) -> Response:
    pending_id, user_id, next_url, amr, _ = found
    with services().db.transaction() as s:
        pending.finish(s, pending_id)
    resp = login_response(user_id, next_url, with_second_factor(amr, method))
    pending.clear_cookie(resp)
    return resp


@bp.route("/login/code", methods=["GET", "POST"])
def login_code() -> Response:
    """After a right password for a user with a second factor (idp.mfa.pending): a TOTP
    code, a recovery code or a passkey (``/login/code/passkey``), and only then a
    session."""
    svc = services()
    found = _pending()
    if found is None:
        return _start_again()
    user_id, username = found[1], found[4]
    if request.method == "GET":
        return _code_page(200, user_id, None)
    code = form_text("code", 64)
    try:
        method = svc.factors.verify(user_id, username, code, client_ip())
    except accounts.TooManyAttempts as locked:
        resp = _code_page(429, user_id, locked.message)
        resp.headers["Retry-After"] = str(locked.retry_after)
        return resp
    if method is None:
        return _code_page(401, user_id, WRONG_CODE)
    return _finish(found, method)


@bp.route("/login/code/passkey/options", methods=["POST"])
def login_code_passkey_options() -> Response:
    """WebAuthn options for the second step: the user's own passkeys, a challenge bound
    to this pending login (idp/static/passkeys.js asks, CSRF in X-CSRFToken)."""
    found = _pending()
    if found is None:
        return error_response(401, "login_required", "Sign in with your password first.")
    options = services().passkeys.second_factor_options(found[1], found[0])
    resp = jsonify(options)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.route("/login/code/passkey", methods=["POST"])
def login_code_passkey() -> Response:
    """The second step by passkey: its assertion for the challenge of this pending
    login (single use); ``amr`` gains ``hwk`` and ``mfa``."""
    svc = services()
    found = _pending()
    if found is None:
        return _start_again()
    ip = client_ip()
    if svc.throttle.network_locked(ip):
        return _code_page(429, found[1], "Too many attempts. Try again later.")
    credential = form_text("credential", 20_000)
    if not svc.passkeys.verify_second_factor(found[1], credential, found[0]):
        svc.throttle.failed(ip)
        return _code_page(401, found[1], "That passkey did not sign in. Try again.")
    return _finish(found, HWK)


# --- /account/security: the TOTP section --------------------------------------------------
@bp.app_template_global()
def mfa_section() -> dict[str, Any]:
    """What ``_security_factors.html`` shows for the signed-in user."""
    current = cookie.current()
    if current is None:
        return {"factors": [], "enrolment": None, "recovery_left": 0}
    factors = services().factors
    return {
        "factors": factors.of_user(current.user_id),
        "enrolment": factors.enrolment(current.user),
        "recovery_left": factors.recovery_codes_left(current.user_id),
    }


def _signed_in() -> Any:
    current = cookie.current()
    if current is None:
        abort(redirect(f"/login?next={SECURITY}", code=303))
    return current


@bp.route("/account/security/totp/start", methods=["POST"])
def totp_start() -> Response:
    current = _signed_in()
    try:
        services().factors.start_totp(current.user_id)
    except FactorError as exc:
        return _back(str(exc), 409)
    return redirect(SECURITY, code=303)


@bp.route("/account/security/totp/confirm", methods=["POST"])
def totp_confirm() -> Response:
    current = _signed_in()
    code = form_text("code", 64).strip()
    try:
        codes = services().factors.confirm_totp(current.user, code, client_ip())
    except FactorError as exc:
        return _back(str(exc))
    return _page("mfa_recovery_codes.html", 200, codes=codes)


@bp.route("/account/security/factors/<factor_id>/remove", methods=["POST"])
def factor_remove(factor_id: str) -> Response:
    """ASVS 7.5.1: a second factor is removed only after the current password is
    entered again (a session left open is not enough)."""
    current = _signed_in()
    svc = services()
    password = form_text("password", 2000)
    try:
        proven = accounts.authenticate(
            svc.db, svc.throttle, current.user.username, password, client_ip()
        )
    except accounts.TooManyAttempts as locked:
        resp = _back(locked.message, 429)
        resp.headers["Retry-After"] = str(locked.retry_after)
        return resp
    if proven != current.user_id:
        return _back("Your current password is needed to remove a second factor.", 401)
    if not svc.factors.remove(current.user, factor_id, client_ip()):
        abort(404)
    return redirect(SECURITY, code=303)
