"""Dashboard pages: overview and sessions. Views are a few lines: queries live in
admin.queries, actions in idp's services (idp.sessions.kill, idp.accounts.services,
idp.clients.services)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from werkzeug.wrappers import Response

from idp.admin import queries
from idp.admin.auth import admin_required, audit, fresh_auth_required
from idp.admin.views.common import FormError, arg, not_found, operator, page, reason
from idp.ext import services

bp = Blueprint("pages", __name__)


@bp.route("/")
@admin_required
def overview() -> str:
    return render_template("overview.html", **queries.overview_page(services()))


@bp.route("/sessions")
@admin_required
def sessions() -> str:
    found = queries.sessions_page(
        services(),
        user=arg("user", 150),
        client=arg("client", 100),
        ip=arg("ip", 64),
        after=arg("after", 120),
    )
    filters = {k: v for k, v in found.filters.items() if v}
    return render_template("sessions.html", page=found, filters=filters, first=not arg("after"))


def _session(sid: str, status: int = 200, error: str | None = None) -> Response:
    detail = queries.session_page(services(), sid)
    if detail is None:
        not_found("There is no such session.")
    return page("session.html", status, d=detail, form_error=error)


@bp.route("/sessions/<sid>")
@admin_required
def session_detail(sid: str) -> Response:
    return _session(sid)


@bp.post("/sessions/<sid>/kill")
@fresh_auth_required
def session_kill(sid: str) -> Response:
    svc = services()
    state = queries.session_status(svc, sid)
    if state is None:
        not_found("There is no such session.")
    try:
        why = reason()
    except FormError as exc:
        return _session(sid, 400, str(exc))
    if state == "ended":
        # A second kill would queue the back-channel logout tokens again.
        flash("That session had already ended; nothing was changed.", "ok")
    else:
        svc.actions.kill_session(sid, operator(), why)
        flash("Session killed: its refresh tokens are revoked and its access tokens denied.", "ok")
    return redirect(url_for("pages.session_detail", sid=sid), code=303)


__all__ = ["bp", "audit"]
