"""Dashboard pages. Views are a few lines: queries live in admin.queries, actions in idp's
services (idp.sessions.kill, idp.accounts.services, idp.clients.services)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from admin import queries
from admin.auth import admin_required, audit, fresh_auth_required
from idp.ext import services
from idp.sessions.kill import kill_session
from idp.web import client_ip, form_text

bp = Blueprint("pages", __name__)


@bp.route("/")
@admin_required
def overview() -> str:
    return render_template("overview.html", stats=queries.overview(services()))


@bp.route("/sessions")
@admin_required
def sessions() -> str:
    page = queries.sessions_page(
        services(),
        user=request.args.get("user", "")[:150],
        client=request.args.get("client", "")[:100],
        ip=request.args.get("ip", "")[:64],
        after=request.args.get("after", "")[:80],
    )
    return render_template("sessions.html", page=page, args=request.args)


@bp.route("/sessions/<sid>")
@admin_required
def session_detail(sid: str) -> str:
    detail = queries.session_detail(services(), sid[:64])
    if detail is None:
        abort(404)
    return render_template("session.html", d=detail)


@bp.route("/sessions/<sid>/kill", methods=["POST"])
@fresh_auth_required
def session_kill(sid: str) -> Response:
    reason = form_text("reason", 500).strip()
    if not reason:
        flash("A reason is required to kill a session.", "error")
        return redirect(url_for("pages.session_detail", sid=sid), code=303)
    killed = kill_session(
        services(), sid[:64], actor=_actor(), action="session.kill", reason=reason, ip=client_ip()
    )
    if killed is None:
        abort(404)
    flash("Session killed: its refresh tokens are revoked and its access tokens denied.", "ok")
    return redirect(url_for("pages.session_detail", sid=sid), code=303)


def _actor() -> str:
    from flask import g

    return str(g.admin_user.username)


__all__ = ["bp", "audit"]
