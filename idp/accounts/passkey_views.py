"""Passkey pages and endpoints (idp.accounts.passkeys does the WebAuthn work).

The options endpoints answer JSON to idp/static/passkeys.js (CSRF token in the
``X-CSRFToken`` header); the browser's response then comes back as an ordinary form
post (hidden ``credential`` field plus the form's CSRF token), so success is a 303 like
every other form of idp. Adding or removing a passkey asks for the current password
(ASVS 7.5.1): a stolen session cookie alone cannot plant a passkey of its own.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template, request
from werkzeug.wrappers import Response

from idp.accounts import services as accounts
from idp.accounts.passkey_models import WebAuthnCredential
from idp.accounts.passkeys import PASSKEY_AMR, PasskeyError, parse_response
from idp.accounts.services import network_of
from idp.accounts.views import login_response, safe_next
from idp.ext import services
from idp.sessions import cookie
from idp.sessions.models import BrowserSession
from idp.web import client_ip, error_response, form_text

bp = Blueprint("passkeys", __name__)

SECURITY_PAGE = "/account/security"


@bp.app_template_global()
def passkeys_of(user_id: str) -> list[WebAuthnCredential]:
    """The user's passkeys, for the _passkeys.html partial wherever it is included."""
    return services().passkeys.of_user(user_id)


def _json_error(status: int, error: str, description: str) -> Response:
    resp = jsonify(error=error, error_description=description)
    resp.status_code = status
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _options(body: dict[str, object]) -> Response:
    resp = jsonify(body)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _signed_in() -> BrowserSession | None:
    return cookie.current()


def _password_refused(current: BrowserSession) -> Response | None:
    """None when the form carries the signed-in user's current password (throttled
    like a login); otherwise the answer to send."""
    svc = services()
    try:
        ok = accounts.authenticate(
            svc.db, svc.throttle, current.user.username, form_text("password", 2000), client_ip()
        )
    except accounts.TooManyAttempts as locked:
        resp = error_response(429, "too_many_requests", locked.message)
        resp.headers["Retry-After"] = str(locked.retry_after)
        return resp
    if ok != current.user_id:
        return error_response(403, "access_denied", "The current password is wrong.")
    return None


@bp.route("/account/security/passkeys/options", methods=["POST"])
def registration_options() -> Response:
    current = _signed_in()
    if current is None:
        return _json_error(401, "login_required", "Sign in first.")
    return _options(services().passkeys.registration_options(current.user))


@bp.route("/account/security/passkeys", methods=["POST"])
def register() -> Response:
    current = _signed_in()
    if current is None:
        return _json_error(401, "login_required", "Sign in first.")
    svc = services()
    try:
        response = parse_response(request.form.get("credential"))
    except PasskeyError as exc:
        return error_response(400, "invalid_request", str(exc))
    if refused := _password_refused(current):
        return refused
    try:
        svc.passkeys.register(
            current.user_id,
            response,
            form_text("label", 200),
            ip=client_ip(),
            actor=current.user.username,
        )
    except PasskeyError as exc:
        return error_response(400, "invalid_request", str(exc))
    svc.notifier.kick()  # a push stream is owed the credential-change
    return Response(status=303, headers={"Location": SECURITY_PAGE})


@bp.route("/account/security/passkeys/<passkey_id>/delete", methods=["POST"])
def remove(passkey_id: str) -> Response:
    current = _signed_in()
    if current is None:
        return Response(status=303, headers={"Location": f"/login?next={SECURITY_PAGE}"})
    if refused := _password_refused(current):
        return refused
    removed = services().passkeys.remove(
        current.user_id, passkey_id, ip=client_ip(), actor=current.user.username
    )
    if not removed:
        return error_response(404, "not_found", "No such passkey.")
    services().notifier.kick()  # a push stream is owed the credential-change
    return Response(status=303, headers={"Location": SECURITY_PAGE})


@bp.route("/login/passkey/options", methods=["POST"])
def login_options() -> Response:
    svc = services()
    # Every options call leaves a challenge in the state store until it expires.
    window = svc.config.login.window_seconds
    issued = svc.state.hit(f"passkey:options:{network_of(client_ip())}", window)
    if issued > 4 * svc.config.login.max_failures_per_ip or svc.throttle.network_locked(
        client_ip()
    ):
        resp = _json_error(429, "too_many_requests", "Too many attempts; try again later.")
        resp.headers["Retry-After"] = str(window)
        return resp
    return _options(svc.passkeys.login_options())


@bp.route("/login/passkey", methods=["POST"])
def login() -> Response:
    """Passwordless sign-in: the session's ``amr`` is PASSKEY_AMR (see passkeys.py)."""
    svc = services()
    next_url = safe_next(request.form.get("next"))
    ip = client_ip()

    def refuse(status: int, message: str) -> Response:
        body = render_template(
            "login.html",
            next=next_url,
            error=message,
            username="",
            signup=svc.config.server.signup_enabled,
        )
        return Response(body, status=status, mimetype="text/html")

    if svc.throttle.network_locked(ip):
        return refuse(429, "Too many attempts. Try again later.")
    try:
        verified = svc.passkeys.login(parse_response(request.form.get("credential")))
    except PasskeyError as exc:
        svc.throttle.failed(ip)
        return refuse(401, str(exc))
    return login_response(verified.user_id, next_url, list(PASSKEY_AMR))
