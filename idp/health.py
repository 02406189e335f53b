"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy import func, select, text
from werkzeug.wrappers import Response

from idp.ext import services

bp = Blueprint("health", __name__)


@bp.route("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


@bp.route("/readyz")
def readyz() -> Response:
    svc = services()
    checks = {}
    try:
        with svc.db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception:  # noqa: BLE001 - any failure means not ready
        checks["database"] = "unavailable"
    try:
        svc.state.ping()
        checks["state"] = "ok"
    except Exception:  # noqa: BLE001
        checks["state"] = "unavailable"
    ok = all(v == "ok" for v in checks.values())
    resp = jsonify(status="ok" if ok else "unavailable", checks=checks)
    resp.status_code = 200 if ok else 503
    return resp


@bp.route("/metrics")
def metrics() -> Response:
    from idp.sessions.models import BrowserSession

    svc = services()
    with svc.db.read() as s:
        live = s.scalar(
            select(func.count())
            .select_from(BrowserSession)
            .where(BrowserSession.ended_at.is_(None), BrowserSession.expires_at > svc.clock.now())
        )
    lines = [
        "# HELP idp_live_sessions Browser sessions not ended or expired.",
        "# TYPE idp_live_sessions gauge",
        f"idp_live_sessions {live}",
    ]
    return Response("\n".join(lines) + "\n", mimetype="text/plain; version=0.0.4")
