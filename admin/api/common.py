"""The API's plumbing: the blueprint, the Bearer-token check, input checked against the
OpenAPI document, JSON replies, and JSON errors for everything under the API's prefix."""

from __future__ import annotations

import datetime as dt
import functools
import inspect
import json
import logging
import re
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from flask import Blueprint, current_app, g, jsonify, request
from sqlalchemy.exc import DataError, OperationalError
from werkzeug.exceptions import HTTPException, default_exceptions
from werkzeug.wrappers import Response

from idp.admin.api.checks import problem, resolve
from idp.admin.openapi import DOCUMENT
from idp.clients.models import ADMIN_SCOPE, Client
from idp.ext import services
from idp.http import ERROR_CODES
from idp.operator import Actor
from idp.outage import DATABASE, REDIS
from idp.web import client_ip

bp = Blueprint("api", __name__)
log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])
PREFIX_KEY = "admin.api.prefix"
NOUNS = {"sid": "session", "user_id": "user", "client_id": "client", "stream_id": "stream"}


class Refused(Exception):
    """A request the API turns down; answered as JSON ``{error, error_description}``."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


def api_error(status: int, error: str, description: str) -> Response:
    resp = jsonify(error=error, error_description=description)
    resp.status_code = status
    if status == 401:
        # RFC 6750 §3.1: no error code when the request carried no credentials at all.
        resp.headers["WWW-Authenticate"] = (
            f'Bearer error="{error}"' if request.headers.get("Authorization") else "Bearer"
        )
    elif status == 403:
        resp.headers["WWW-Authenticate"] = (
            f'Bearer error="insufficient_scope", scope="{ADMIN_SCOPE}"'
        )
    return resp


def admin_token_required(view: F) -> F:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return api_error(401, "invalid_token", "A Bearer access token is required.")
        svc = services()
        claims = svc.access_tokens.active(token.strip())
        if claims is None:
            return api_error(401, "invalid_token", "The access token is not valid.")
        if ADMIN_SCOPE not in str(claims.get("scope", "")).split():
            return api_error(403, "insufficient_scope", f"The token lacks {ADMIN_SCOPE}.")
        with svc.db.read() as s:
            client = s.get(Client, str(claims.get("client_id")))
            allowed = client is not None and client.is_admin_client and not client.disabled
        if not allowed:
            return api_error(403, "insufficient_scope", "The client is not an admin client.")
        g.api_actor = f"client:{claims['client_id']}"
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def actor() -> str:
    return str(g.api_actor)


def operator() -> Actor:
    """The API caller, as idp.operator's actions name them."""
    return Actor(actor(), client_ip())


# --- inputs -----------------------------------------------------------------------------


def validated(view: F) -> F:
    """Checks the request against its operation in the OpenAPI document: a malformed path
    id is a 404, an unknown, repeated or malformed query parameter a 400, a body that is not
    a JSON object matching the request schema a 400 (415 when it is not JSON at all).
    Passes ``query`` and ``body`` to the view when it takes them."""
    wants = inspect.signature(view).parameters

    @functools.wraps(view)
    def wrapper(**kwargs: Any) -> Any:
        op = operation()
        for param in op.get("parameters", []):
            if param["in"] == "path" and problem(param["schema"], kwargs[param["name"]], ""):
                raise not_found(param["name"])
        query = _query(op)
        body = _body(op)
        if "query" in wants:
            kwargs["query"] = query
        if "body" in wants:
            kwargs["body"] = body
        return view(**kwargs)

    return wrapper  # type: ignore[return-value]


def not_found(param: str) -> Refused:
    return Refused(404, "not_found", f"No such {NOUNS.get(param, 'object')}.")


def prefix() -> str:
    return str(current_app.extensions.get(PREFIX_KEY, "/api"))


@functools.cache
def _operation(rule: str, method: str) -> dict[str, Any]:
    path = re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule)
    return dict(DOCUMENT["paths"][path][method.lower()])


def operation() -> dict[str, Any]:
    """The current request's operation object in the OpenAPI document."""
    assert request.url_rule is not None
    method = "GET" if request.method == "HEAD" else request.method  # Flask runs GET for HEAD
    return _operation(request.url_rule.rule.removeprefix(prefix()), method)


def _query(op: dict[str, Any]) -> dict[str, Any]:
    documented = {p["name"]: p["schema"] for p in op.get("parameters", []) if p["in"] == "query"}
    if set(request.args) - set(documented):
        raise Refused(400, "invalid_request", "The request has an unknown query parameter.")
    values: dict[str, Any] = {}
    for name, schema in documented.items():
        given = request.args.getlist(name)
        if len(given) > 1:
            raise Refused(400, "invalid_request", f"{name} is repeated.")
        if not given:
            if "default" in schema:
                values[name] = schema["default"]
            continue
        value: Any = given[0]
        if schema.get("type") == "integer":
            if not re.fullmatch(r"-?[0-9]{1,9}", value):
                raise Refused(400, "invalid_request", f"{name} must be an integer.")
            value = int(value)
        if why := problem(schema, value, name):
            raise Refused(400, "invalid_request", why)
        values[name] = value
    return values


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _body(op: dict[str, Any]) -> dict[str, Any]:
    spec = op.get("requestBody")
    if spec is None:
        return {}
    raw = request.get_data(cache=True)  # raises RequestEntityTooLarge (413) past the limit
    if not raw.strip():
        if spec.get("required"):
            raise Refused(400, "invalid_request", "A JSON body is required.")
        return {}
    if not request.is_json:
        raise Refused(415, "invalid_request", "The body must be application/json.")
    try:
        data = json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):  # bad JSON, bad UTF-8, absurd nesting or numbers
        raise Refused(400, "invalid_request", "The body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise Refused(400, "invalid_request", "The body must be a JSON object.")
    schema = resolve(spec["content"]["application/json"]["schema"])
    if why := problem(schema, data, ""):
        raise Refused(400, "invalid_request", why)
    return data


def reason(body: dict[str, Any], default: str = "") -> str:
    """The body's reason, stripped; ``default`` when absent or blank. Where a reason is
    required the document's pattern (``openapi.SOME_TEXT``) has already refused a blank
    one, so a valid body never ends up with an empty reason."""
    return str(body.get("reason") or "").strip() or default


# --- outputs ----------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """``value`` with every datetime as an ISO 8601 UTC string ("...Z")."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def reply(value: Any, status: int = 200) -> Response:
    resp = jsonify(plain(value))
    resp.status_code = status
    return resp


# --- errors -----------------------------------------------------------------------------


@bp.record
def _remember_prefix(state: Any) -> None:
    state.app.extensions[PREFIX_KEY] = state.url_prefix or ""


def _code(status: int) -> str:
    if status >= 500:
        return ERROR_CODES.get(status, "server_error")
    return ERROR_CODES.get(status, "invalid_request")


def _describe(status: int) -> str:
    if status == 413:
        return "The request body is too large."
    exc = default_exceptions.get(status)
    return str(exc.description) if exc and exc.description else "The request failed."


@bp.errorhandler(Exception)
def _error(exc: Exception) -> Response:
    if isinstance(exc, Refused):
        return api_error(exc.status, exc.error, exc.description)
    if isinstance(exc, HTTPException):
        status = exc.code or 500
        return api_error(status, _code(status), _describe(status))
    if isinstance(exc, DataError):
        # A value the database refused, which input checking should have caught first.
        log.warning("database refused a value on %s %s", request.method, request.path)
        return api_error(400, "invalid_request", "A value is not valid.")
    if isinstance(exc, OperationalError):
        DATABASE.failed(exc)
        return api_error(503, "temporarily_unavailable", "Storage is unavailable.")
    if isinstance(exc, redis.RedisError):
        # Fail closed, as idp.web does: without storage nothing can be checked or changed.
        REDIS.failed(exc)
        return api_error(503, "temporarily_unavailable", "Storage is unavailable.")
    log.exception("unhandled error on %s %s", request.method, request.path)
    return api_error(500, "server_error", "Something went wrong on our side.")


def _allowed_methods() -> set[str]:
    try:
        return set(current_app.url_map.bind_to_environ(request.environ).allowed_methods())
    except HTTPException:
        return set()


@bp.after_app_request
def _json_errors_only(resp: Response) -> Response:
    """Errors raised before a view runs (no such route, wrong method, query string too
    long) come from the admin app's HTML error pages; under the API they become JSON."""
    path, api = request.path, prefix()
    under_api = bool(api) and (path == api or path.startswith(api + "/"))
    if under_api and resp.status_code >= 400 and resp.mimetype != "application/json":
        status = resp.status_code
        resp.set_data(
            json.dumps(
                {
                    "error": _code(status),
                    "error_description": _describe(status),
                }
            )
        )
        resp.mimetype = "application/json"
        if status == 405 and "Allow" not in resp.headers:
            # RFC 9110 §15.5.6; the admin app's HTML error page leaves it out.
            resp.headers["Allow"] = ", ".join(sorted(_allowed_methods()))
        for html_only in ("Content-Security-Policy", "X-Frame-Options"):
            resp.headers.pop(html_only, None)
    return resp
