"""Cross-cutting HTTP concerns: client IP, security headers, error pages, limits."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify, render_template, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

log = logging.getLogger(__name__)

PROTOCOL_PREFIXES = (
    "/token",
    "/userinfo",
    "/revoke",
    "/introspect",
    "/jwks.json",
    "/.well-known/",
    "/revocations",
    "/admin/api/",
    "/healthz",
    "/readyz",
    "/metrics",
)
MAX_QUERY_BYTES = 8192
# No form-action: after login or consent the browser is redirected on to the
# client's redirect URI, which Chromium checks against form-action.
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def client_ip() -> str:
    return request.remote_addr or "unknown"


def wants_json() -> bool:
    return request.path.startswith(PROTOCOL_PREFIXES)


def error_response(status: int, error: str, description: str) -> Response:
    if wants_json():
        resp = jsonify(error=error, error_description=description)
        resp.status_code = status
        resp.headers["Cache-Control"] = "no-store"
        return resp
    body = render_template("error.html", status=status, error=error, description=description)
    return Response(body, status=status, mimetype="text/html")


ERROR_CODES = {
    400: "invalid_request",
    401: "invalid_client",
    403: "access_denied",
    404: "not_found",
    405: "invalid_request",
    413: "invalid_request",
    414: "invalid_request",
    415: "invalid_request",
    429: "slow_down",
    431: "invalid_request",
    503: "temporarily_unavailable",
}


def install(app: Flask) -> None:
    @app.before_request
    def _limits() -> Response | None:
        if len(request.query_string) > MAX_QUERY_BYTES:
            return error_response(414, "invalid_request", "The query string is too long.")
        return None

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
        return error_response(status, ERROR_CODES.get(status, "invalid_request"), description)

    @app.errorhandler(OperationalError)
    def _db_down(exc: OperationalError) -> Response:
        # Fail closed: without the store we cannot tell a live session from a killed one.
        log.error("database unavailable: %s", exc, exc_info=exc)
        return error_response(503, "temporarily_unavailable", "Storage is unavailable.")

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        import redis

        if isinstance(exc, redis.RedisError):
            log.error("redis unavailable: %s", exc.__class__.__name__)
            return error_response(503, "temporarily_unavailable", "Storage is unavailable.")
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "server_error", "Something went wrong on our side.")


def form_text(name: str, limit: int = 1000) -> str:
    """A form field as text, cut at ``limit`` characters (bad input never 500s)."""
    value: Any = request.form.get(name, "")
    return str(value)[:limit]
