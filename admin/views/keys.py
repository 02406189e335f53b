"""Signing keys: states, times and the rotation schedule, and rotation on demand (SPEC §6
"Keys")."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, url_for
from werkzeug.wrappers import Response

from idp.admin import queries
from idp.admin.auth import admin_required, fresh_auth_required
from idp.admin.views.common import FormError, operator, page, reason
from idp.ext import services

bp = Blueprint("keys", __name__)


def _keys(status: int = 200, error: str | None = None) -> Response:
    svc = services()
    return page(
        "keys.html",
        status,
        keys=queries.keys_list(svc),
        schedule=queries.key_schedule(svc),
        in_use=sorted(svc.algs_in_use()),
        form_error=error,
    )


@bp.route("/keys")
@admin_required
def index() -> Response:
    return _keys()


@bp.post("/keys/rotate")
@fresh_auth_required
def rotate() -> Response:
    try:
        why = reason()
    except FormError as exc:
        return _keys(400, str(exc))
    services().actions.rotate_keys(operator(), why)
    flash(
        "Rotated: the next keys now sign; the old ones stay published until their tokens expire.",
        "ok",
    )
    return redirect(url_for("keys.index"), code=303)
