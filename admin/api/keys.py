"""Signing keys: list and rotate (SPEC §6 "Keys")."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Response

from idp.admin import queries
from idp.admin.api.common import admin_token_required, bp, operator, reason, reply, validated
from idp.ext import services


@bp.get("/keys")
@admin_token_required
@validated
def list_keys() -> Response:
    return reply({"keys": queries.keys_list(services())})


@bp.post("/keys/rotate")
@admin_token_required
@validated
def rotate(body: dict[str, Any]) -> Response:
    why = reason(body, "rotated by operator")
    svc = services()
    kids = svc.actions.rotate_keys(operator(), why)
    return reply({"active": kids, "keys": queries.keys_list(svc)})
