"""Prometheus metrics (issue 14 item 1): the metric objects, the request timer, and the
exposition ``/metrics`` answers.

Counters are incremented at the one place each thing happens (the service, not the
view); they cost a lock and an add, never a query. What is cheaper to look up than to
count (delivery backlogs, key ages, the pool, Redis) is read when Prometheus scrapes.

Under ``idp serve`` several worker processes count: ``idp serve`` points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh private directory before any of them starts,
each process writes its counters there, and a scrape adds them up
(:class:`prometheus_client.multiprocess.MultiProcessCollector`). One process (tests,
``--dev``) needs none of that. Under gunicorn, set ``PROMETHEUS_MULTIPROC_DIR`` to an
empty directory yourself.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

if TYPE_CHECKING:
    from flask import Flask
    from werkzeug.wrappers import Response

    from idp.ext import Services

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# The environ key a request's route is written to (by idp.front or by Flask's routing).
ROUTE_KEY = "idp.route"
UNMATCHED = "unmatched"
# Routes whose path holds a secret (a mailed reset link's token): logs and traces show
# the route instead.
SECRET_ROUTES = frozenset({"/password/reset/<token>"})


def shown_path(environ: dict[str, Any], limit: int = 512) -> str:
    """The request's path as the access log and traces show it: never the query string
    (codes, tokens, state), and the route where the path itself holds a secret."""
    route = environ.get(ROUTE_KEY)
    if route in SECRET_ROUTES:
        return str(route)
    path = str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", ""))
    return path[:limit]


METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))


class Counted:
    """The metrics this process counts, built once per mode (see :func:`use_multiprocess`)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        reg = self.registry
        self.request_duration = Histogram(
            "idp_http_request_duration_seconds",
            "Seconds to answer a request, by route (the URL rule, not the path), method and "
            "status class.",
            ["route", "method", "status_class"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=reg,
        )
        self.tokens_issued = Counter(
            "idp_tokens_issued",
            "Token responses issued at /token, by grant type and client.",
            ["grant_type", "client_id"],
            registry=reg,
        )
        self.refresh_rotations = Counter(
            "idp_refresh_rotations",
            "Refresh tokens rotated, by kind: rotation, or grace_replay of the newest child.",
            ["kind"],
            registry=reg,
        )
        self.refresh_reuse = Counter(
            "idp_refresh_reuse_detected",
            "Spent refresh tokens presented again (each revoked its whole family), by client.",
            ["client_id"],
            registry=reg,
        )
        self.sessions_killed = Counter(
            "idp_sessions_killed",
            "Browser sessions killed, by cause (CAEP initiating entity: user, admin, policy, "
            "system) and action.",
            ["cause", "action"],
            registry=reg,
        )
        self.logins = Counter(
            "idp_logins",
            "Logins by result: success (a session started, by any method), failure, "
            "locked (throttled), second_factor (password right, a code asked for).",
            ["result"],
            registry=reg,
        )
        self.throttle_hits = Counter(
            "idp_throttle_hits",
            "Attempts refused by the login throttle, by what was counted (login, mfa).",
            ["kind"],
            registry=reg,
        )
        self.delivery_attempts = Counter(
            "idp_delivery_attempts",
            "Delivery attempts by channel (backchannel, ssf_push, mail) and outcome "
            "(delivered, retry, failed).",
            ["channel", "outcome"],
            registry=reg,
        )


# Every metric has labels, so no value exists before its first count: rebuilding them
# after switching to multiprocess mode leaves nothing counted in memory behind.
COUNTED = Counted()


def use_multiprocess(path: str) -> None:
    """Counts into files under ``path`` from now on (``idp serve``, before it forks its
    workers; prometheus_client otherwise reads the variable once, when imported)."""
    from prometheus_client import values

    global COUNTED
    os.environ[MULTIPROC_ENV] = path
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    COUNTED = Counted()


# --- where things happen call these -----------------------------------------------------
def token_issued(grant_type: str, client_id: str) -> None:
    COUNTED.tokens_issued.labels(grant_type, client_id).inc()


def refresh_rotated(replay: bool) -> None:
    COUNTED.refresh_rotations.labels("grace_replay" if replay else "rotation").inc()


def refresh_reuse(client_id: str) -> None:
    COUNTED.refresh_reuse.labels(client_id).inc()


def session_killed(cause: str, action: str) -> None:
    COUNTED.sessions_killed.labels(cause, action).inc()


def login(result: str) -> None:
    COUNTED.logins.labels(result).inc()


def throttle_hit(kind: str) -> None:
    COUNTED.throttle_hits.labels(kind).inc()


def delivery_attempt(channel: str, outcome: str) -> None:
    COUNTED.delivery_attempts.labels(channel, outcome).inc()


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


# --- requests ---------------------------------------------------------------------------
def mark_route(resp: Response) -> Response:
    """Flask ``after_request`` hook: the URL rule that matched (prefixed with where the
    app is mounted), so the timer labels by route, never by raw path."""
    from flask import request

    if request.url_rule is not None:
        request.environ[ROUTE_KEY] = request.script_root + request.url_rule.rule
    return resp


def install(app: Flask) -> None:
    """Labels ``app``'s requests with their route (the timer is :class:`Timing`)."""
    app.after_request(mark_route)


StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class Timing:
    """WSGI middleware: observes every request's duration, labelled with the route that
    idp.front or Flask wrote to the environ, the method and the status class."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        start = time.perf_counter()
        status = ["5"]

        def start_timed(line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status[0] = line[:1]
            return start_response(line, headers, exc_info)

        try:
            return self.app(environ, start_timed)
        finally:
            method = environ.get("REQUEST_METHOD", "")
            COUNTED.request_duration.labels(
                environ.get(ROUTE_KEY, UNMATCHED),
                method if method in METHODS else "other",
                f"{status[0]}xx",
            ).observe(time.perf_counter() - start)


# --- the scrape -------------------------------------------------------------------------
class ScrapeCollector:
    """Gauges read when Prometheus scrapes, by the process that answers it: cheap,
    indexed queries and in-memory state only."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc

    def collect(self) -> Iterator[Metric]:
        from sqlalchemy.exc import OperationalError

        from idp.outage import DATABASE

        try:
            from_database = [*self._delivery(), *self._keys()]
        except OperationalError as exc:  # idp_database_outage says why; the rest is read
            DATABASE.failed(exc)
            from_database = []
        yield from from_database
        yield from self._pool()
        yield from self._redis()

    def _delivery(self) -> Iterator[Metric]:
        from sqlalchemy import func, select

        from idp.mail.models import MailMessage
        from idp.sessions.models import BackchannelDelivery
        from idp.ssf.models import SsfEvent, SsfStream
        from idp.ssf.streams import PUSH

        owed = GaugeMetricFamily(
            "idp_delivery_owed",
            "Deliveries still pending, by channel.",
            labels=["channel"],
        )
        oldest = GaugeMetricFamily(
            "idp_delivery_oldest_age_seconds",
            "Age of the oldest pending delivery, by channel (0 when none is pending).",
            labels=["channel"],
        )
        now = self.svc.clock.now()
        queries = {
            "backchannel": select(func.count(), func.min(BackchannelDelivery.created_at)).where(
                BackchannelDelivery.status == "pending"
            ),
            "ssf_push": select(func.count(), func.min(SsfEvent.created_at))
            .join(SsfStream, SsfStream.id == SsfEvent.stream_id)
            .where(SsfEvent.status == "pending", SsfStream.method == PUSH),
            "mail": select(func.count(), func.min(MailMessage.created_at)).where(
                MailMessage.status == "pending"
            ),
        }
        with self.svc.db.read() as s:
            for channel, query in queries.items():
                count, first = s.execute(query).one()
                owed.add_metric([channel], count)
                if first is not None and first.tzinfo is None:
                    first = first.replace(tzinfo=now.tzinfo)  # SQLite drops the zone
                age = (now - first).total_seconds() if first is not None else 0.0
                oldest.add_metric([channel], max(0.0, age))
        yield owed
        yield oldest

    def _keys(self) -> Iterator[Metric]:
        from sqlalchemy import func, select

        from idp.keys.models import ACTIVE, SigningKey

        ages = GaugeMetricFamily(
            "idp_signing_key_age_seconds",
            "Age of the active signing key, by algorithm.",
            labels=["alg"],
        )
        now = self.svc.clock.now()
        with self.svc.db.read() as s:
            rows = s.execute(
                select(SigningKey.alg, func.min(SigningKey.created_at))
                .where(SigningKey.state == ACTIVE)
                .group_by(SigningKey.alg)
            ).all()
        for alg, created in rows:
            if created.tzinfo is None:
                created = created.replace(tzinfo=now.tzinfo)
            ages.add_metric([alg], max(0.0, (now - created).total_seconds()))
        yield ages
        if self.svc.keys.rotate_every:
            yield self._rotation_overdue(now)

    def _rotation_overdue(self, now: dt.datetime) -> Metric:
        """With ``[keys] rotate_every``: how late each algorithm's scheduled rotation is
        (0 while on time), for the algorithms in use (the janitor rotates only those). A
        rotation stays late while no janitor runs (``idp janitor``, or the serving
        processes' background round)."""
        late = GaugeMetricFamily(
            "idp_signing_key_rotation_overdue_seconds",
            "How long the scheduled signing-key rotation ([keys] rotate_every) is past due,"
            " by algorithm (0 while on time; absent without a schedule).",
            labels=["alg"],
        )
        in_use = self.svc.algs_in_use()
        with self.svc.db.read() as s:
            planned = self.svc.keys.schedule_of(s)
        for alg, when in sorted(planned.items()):
            if alg in in_use:
                late.add_metric([alg], max(0.0, (now - when).total_seconds()))
        return late

    def _pool(self) -> Iterator[Metric]:
        pool: Any = self.svc.db.engine.pool
        if not hasattr(pool, "checkedout"):
            return  # SQLite's single-connection pools have no size to tell
        suffix = " (the process answering this scrape)."
        yield GaugeMetricFamily(
            "idp_db_pool_checked_out",
            "Database connections in use" + suffix,
            value=pool.checkedout(),
        )
        yield GaugeMetricFamily(
            "idp_db_pool_size", "Database pool size" + suffix, value=pool.size()
        )
        yield GaugeMetricFamily(
            "idp_db_pool_overflow",
            "Connections open beyond the pool size (negative: room left)" + suffix,
            value=pool.overflow(),
        )

    def _redis(self) -> Iterator[Metric]:
        if not self.svc.config.redis.url:
            return
        # The fallback store's view, kept by the requests themselves: no call per scrape.
        degraded = bool(getattr(self.svc.state, "degraded", False))
        yield GaugeMetricFamily(
            "idp_redis_up",
            "1 while Redis answers, as the process answering this scrape last saw it.",
            value=0 if degraded else 1,
        )


def exposition(svc: Services) -> bytes:
    """The counters of every process (or this one), then the scrape-time gauges."""
    counted = CollectorRegistry()
    path = multiprocess_dir()
    if path is not None:
        MultiProcessCollector(counted, path)  # type: ignore[no-untyped-call]
        body = generate_latest(counted)
    else:
        body = generate_latest(COUNTED.registry)
    gauges = CollectorRegistry()
    gauges.register(ScrapeCollector(svc))
    return body + generate_latest(gauges)
