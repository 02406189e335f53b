"""Security events (what attackers did or tried) and the audit log (what operators did)."""

from __future__ import annotations

from flask import Blueprint, render_template

from idp.admin import queries
from idp.admin.auth import admin_required
from idp.admin.views.common import arg
from idp.ext import services

bp = Blueprint("events", __name__)


@bp.route("/events")
@admin_required
def security() -> str:
    kind = arg("kind", 50)
    return render_template(
        "security_events.html", kind=kind, **queries.security_page(services(), kind)
    )


@bp.route("/audit")
@admin_required
def audit_log() -> str:
    filters = {
        "action": arg("action", 100),
        "actor": arg("actor", 200),
        "target": arg("target", 200),
    }
    rows = queries.events(
        services(), kind=filters["action"], actor=filters["actor"], target=filters["target"]
    )
    return render_template("audit.html", rows=rows, filters=filters)
