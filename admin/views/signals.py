"""Shared Signals streams for the operator: who receives what, how far behind, the last
error; pause, disable or enable one (SPEC issue 12 item 5)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, request, url_for
from werkzeug.wrappers import Response

from idp.admin import queries
from idp.admin.auth import admin_required, fresh_auth_required
from idp.admin.views.common import FormError, not_found, operator, page, reason
from idp.ext import services
from idp.ssf.streams import STATUSES

bp = Blueprint("signals", __name__)


def _signals(status: int = 200, error: str | None = None) -> Response:
    return page("signals.html", status, streams=queries.streams_list(services()), form_error=error)


@bp.route("/signals")
@admin_required
def index() -> Response:
    return _signals()


@bp.post("/signals/<stream_id>/status")
@fresh_auth_required
def set_status(stream_id: str) -> Response:
    status = request.form.get("status", "")
    if status not in STATUSES:
        return _signals(400, "Choose enabled, paused or disabled.")
    try:
        why = reason()
    except FormError as exc:
        return _signals(400, str(exc))
    if not services().actions.set_stream_status(stream_id[:64], status, operator(), why):
        not_found("There is no such stream.")
    flash(f"Stream {stream_id} is {status}.", "ok")
    return redirect(url_for("signals.index"), code=303)
