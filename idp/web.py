"""Cross-cutting HTTP concerns: client IP, security headers, error pages, limits."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify, render_template, request
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy.exc import DataError, OperationalError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from idp.http import ERROR_CODES, ProtocolRequest, refusal
from idp.outage import DATABASE, REDIS

log = logging.getLogger(__name__)

PROTOCOL_PREFIXES = (
    "/token",
    "/userinfo",
    "/revoke",
    "/introspect",
    "/jwks.json",
    "/.well-known/",
    "/revocations",
    "/register",
    "/admin/api/",
    "/healthz",
    "/readyz",
    "/metrics",
)
# No form-action: after login or consent the browser is redirected on to the
# client's redirect URI, which Chromium checks against form-action. connect-src 'self':
# passkeys.js fetches its WebAuthn options from idp itself, nowhere else.
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def client_ip() -> str:
    return request.remote_addr or "unknown"


def wants_json() -> bool:
    # script_root: the admin app mounted at /admin sees /api/... as its path.
    return (request.script_root + request.path).startswith(PROTOCOL_PREFIXES)


def error_response(status: int, error: str, description: str) -> Response:
    if wants_json():
        resp = jsonify(error=error, error_description=description)
        resp.status_code = status
        resp.headers["Cache-Control"] = "no-store"
        return resp
    body = render_template("error.html", status=status, error=error, description=description)
    return Response(body, status=status, mimetype="text/html")


def check_request() -> Response | None:
    """Refuses input no endpoint can accept, before anything else (CSRF included) runs
    (the same checks idp.front applies to the requests it answers)."""
    try:
        req = ProtocolRequest.from_flask(request)
    except UnicodeDecodeError:
        return error_response(400, "invalid_request", "The request is not valid UTF-8.")
    refused = refusal(req)
    if refused is None:
        return None
    resp = error_response(refused.status, refused.code, refused.description)
    for name, value in refused.headers:
        resp.headers[name] = value
    return resp


class SessionCookie(SecureCookieSessionInterface):
    """Flask's cookie (it carries only the CSRF token of the forms), with one serializer
    per app: Flask builds a new one for every request, which cost a tenth of a JWKS
    request in issue 8's profile, and the secret never changes."""

    def __init__(self) -> None:
        self._serializer: Any = None

    def get_signing_serializer(self, app: Flask) -> Any:
        if self._serializer is None:
            self._serializer = super().get_signing_serializer(app)
        return self._serializer


def install(app: Flask) -> None:
    app.session_interface = SessionCookie()
    # First of all before-request functions, ahead of CSRF protection.
    app.before_request_funcs.setdefault(None, []).insert(0, check_request)

    @app.after_request
    def _headers(resp: Response) -> Response:
        h = resp.headers
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("Referrer-Policy", "no-referrer")
        if resp.mimetype == "text/html":
            h.setdefault("Content-Security-Policy", CSP)
            h.setdefault("X-Frame-Options", "DENY")
            h.setdefault("Cache-Control", "no-store")
        if request.scheme == "https" or app.config.get("IDP_HTTPS"):
            h.setdefault("Strict-Transport-Security", "max-age=31536000")
        return resp

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        description = exc.description or "Request failed."
        if status == 413:
            description = "The request body is too large."
        resp = error_response(status, ERROR_CODES.get(status, "invalid_request"), description)
        for name, value in exc.get_headers():
            if name.lower() in {"allow", "www-authenticate", "retry-after"}:
                resp.headers[name] = value  # RFC 9110 §15.5.6: a 405 names what is allowed
        return resp

    @app.errorhandler(DataError)
    def _bad_data(exc: DataError) -> Response:
        # A value the database refuses (too long, bad encoding): bad input, not a fault.
        log.info("database refused a value: %s", exc.__class__.__name__)
        return error_response(400, "invalid_request", "A parameter has an invalid value.")

    @app.errorhandler(OperationalError)
    def _db_down(exc: OperationalError) -> Response:
        # Fail closed: without the store we cannot tell a live session from a killed one.
        DATABASE.failed(exc)
        return error_response(503, "temporarily_unavailable", "Storage is unavailable.")

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        import redis

        if isinstance(exc, redis.RedisError):
            REDIS.failed(exc)
            return error_response(503, "temporarily_unavailable", "Storage is unavailable.")
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "server_error", "Something went wrong on our side.")


def form_text(name: str, limit: int = 1000) -> str:
    """A form field as text, cut at ``limit`` characters (bad input never 500s)."""
    value: Any = request.form.get(name, "")
    return str(value)[:limit]
