"""Signing keys: list and rotate (SPEC §6 "Keys")."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Response

from admin import queries
from admin.api.common import actor, admin_token_required, bp, reason, reply, validated
from idp.audit.services import record
from idp.ext import services
from idp.web import client_ip


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
    # As `idp keys rotate`: every algorithm in use has a next key to promote, and keys of
    # algorithms no longer configured rotate too.
    svc.keys.ensure(svc.algs_in_use())
    kids = svc.keys.rotate(svc.algs_in_use() | svc.keys.algs())
    with svc.db.transaction() as s:
        record(
            s,
            at=svc.clock.now(),
            actor=actor(),
            action="keys.rotate",
            target=",".join(kids),
            reason=why,
            ip=client_ip(),
        )
    return reply({"active": kids, "keys": queries.keys_list(svc)})
