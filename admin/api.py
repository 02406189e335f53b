"""The admin REST API under /admin/api (JSON), for automation.

Authorized by a Bearer access token carrying the ``idp:admin`` scope, which only clients
registered as admin clients can obtain (client_credentials). Every action is audited
with the client as the actor.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, g, jsonify, request
from werkzeug.wrappers import Response

from idp.clients.models import ADMIN_SCOPE, Client
from idp.ext import services
from idp.oauth.access_tokens import active_claims

bp = Blueprint("api", __name__)
F = TypeVar("F", bound=Callable[..., Any])


def api_error(status: int, error: str, description: str) -> Response:
    resp = jsonify(error=error, error_description=description)
    resp.status_code = status
    if status == 401:
        resp.headers["WWW-Authenticate"] = f'Bearer error="{error}"'
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
        claims = active_claims(svc, token.strip())
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
