"""The admin REST API under /admin/api (JSON), for automation (SPEC §5).

Authorized by a Bearer access token carrying the ``idp:admin`` scope, which only clients
registered as admin clients can obtain (client_credentials). It offers what the dashboard
pages offer; views hand off to admin.queries for reads and to idp's operator services for
actions, and every action is audited with the client as the actor. admin.openapi
describes every endpoint, and requests are checked against that description.
"""

from __future__ import annotations

from flask import request
from werkzeug.wrappers import Response

from idp.admin import openapi
from idp.admin.api import clients, events, keys, sessions, signals, users  # noqa: F401 - routes
from idp.admin.api.common import admin_token_required, api_error, bp, prefix, reply

__all__ = ["admin_token_required", "api_error", "bp"]


@bp.get("/openapi.json")
def openapi_document() -> Response:
    """The OpenAPI 3.1 document; public, like any API description."""
    return reply(openapi.document(request.script_root + prefix()))
