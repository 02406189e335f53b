"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import threading
from typing import Any

from flask import Blueprint, jsonify
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError
from werkzeug.wrappers import Response

from idp.ext import services
from idp.metrics import CONTENT_TYPE, exposition
from idp.outage import DATABASE

bp = Blueprint("health", __name__)
# /metrics is served where the dashboard is (SPEC §5): on the public app while the
# dashboard is mounted under /admin there, only on the admin port once [admin] port is set.
metrics_bp = Blueprint("metrics", __name__)


@bp.route("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


@bp.route("/readyz")
def readyz() -> Response:
    """Ready while tokens can be issued: the database answers (within its connect
    timeout). A Redis outage degrades (idp.state.fallback) and shows in the body; it
    does not take the server out of its load balancer."""
    svc = services()
    checks = {"database": "ok" if database_answers(svc) else "unavailable"}
    if svc.config.redis.url:
        try:
            svc.state.ping()
            checks["redis"] = "ok"
        except Exception:  # noqa: BLE001 - any failure: degraded, still ready
            checks["redis"] = "unavailable"
    if checks["database"] != "ok":
        status, code = "unavailable", 503
    elif any(v != "ok" for v in checks.values()):
        status, code = "degraded", 200
    else:
        status, code = "ok", 200
    resp = jsonify(status=status, checks=checks)
    resp.status_code = code
    resp.headers["Cache-Control"] = "no-store"
    return resp


def database_answers(svc: Any) -> bool:
    """``SELECT 1`` answered within the connect timeout (a database that accepts the
    connection and then never answers must not hang the probe)."""
    done = threading.Event()
    answered: list[bool] = []

    def ask() -> None:
        try:
            with svc.db.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            answered.append(True)
        except Exception:  # noqa: BLE001 - any failure means not ready
            answered.append(False)
        finally:
            done.set()

    threading.Thread(target=ask, name="readyz", daemon=True).start()
    done.wait(svc.db.limits.connect_timeout + 1)
    return answered == [True]


@metrics_bp.route("/metrics")
def metrics() -> Response:
    from idp.sessions.models import BrowserSession

    svc = services()
    lines = []
    try:
        with svc.db.read() as s:
            live = s.scalar(
                select(func.count())
                .select_from(BrowserSession)
                .where(BrowserSession.live(svc.clock.now(), svc.config.sessions.idle_timeout))
            )
        lines += [
            "# HELP idp_live_sessions Browser sessions not ended or expired.",
            "# TYPE idp_live_sessions gauge",
            f"idp_live_sessions {live}",
        ]
    except OperationalError as exc:  # the other metrics say why; they must still be read
        DATABASE.failed(exc)
    lines += [
        "# HELP idp_redis_degraded 1 while Redis is unreachable and short-lived state is kept "
        "in the database (this process).",
        "# TYPE idp_redis_degraded gauge",
        f"idp_redis_degraded {int(bool(getattr(svc.state, 'degraded', False)))}",
        "# HELP idp_database_outage 1 while this process sees the database down.",
        "# TYPE idp_database_outage gauge",
        f"idp_database_outage {int(DATABASE.ongoing)}",
        "# HELP idp_feed_polls_waiting Long polls of /revocations this process holds open.",
        "# TYPE idp_feed_polls_waiting gauge",
        f"idp_feed_polls_waiting {svc.feed_waits.waiting}",
    ]
    body = ("\n".join(lines) + "\n").encode() + exposition(svc)
    return Response(body, content_type=CONTENT_TYPE)
