"""The overview, the audit trail and security events."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Response

from idp.admin import queries
from idp.admin.api.common import admin_token_required, bp, reply, validated
from idp.ext import services


@bp.get("/overview")
@admin_token_required
@validated
def overview() -> Response:
    return reply(queries.overview(services()))


@bp.get("/audit")
@admin_token_required
@validated
def audit(query: dict[str, Any]) -> Response:
    found = queries.events(
        services(),
        kind=query.get("action", ""),
        actor=query.get("actor", ""),
        target=query.get("target", ""),
        limit=query["limit"],
    )
    return reply({"events": found})


@bp.get("/security-events")
@admin_token_required
@validated
def security_events(query: dict[str, Any]) -> Response:
    found = queries.events(
        services(), kind=query.get("kind", ""), security=True, limit=query["limit"]
    )
    return reply({"events": found})
