"""OpenTelemetry tracing (issue 14 item 2), on with ``[tracing] enabled``: imported only
then, so that with tracing off (the default) no OpenTelemetry module is loaded and a
request pays nothing for it.

Each process that serves starts its own tracer (:func:`start`, from
:func:`idp.configure_process`: after the fork, in every worker of ``idp serve`` or
gunicorn) with a batch exporter to the collector over OTLP/HTTP (protobuf), flushed when
the process exits. Spans:

- one server span a request (:class:`Traced`, the outermost WSGI middleware, so the
  endpoints idp.front answers are traced too), continuing the caller's W3C
  ``traceparent``; attributes after the HTTP semantic conventions (method, route, path
  without its query string, status) and ``idp.request_id``;
- one client span a SQL statement run while a request is traced (:func:`instrument`:
  the statement's text, never its parameters; a failure's exception class, never its
  message, which can quote a value).

Log lines written inside a span carry its ``trace_id`` and ``span_id`` (:class:`TraceIds`).

Not opentelemetry-instrumentation-flask: Flask never sees the requests idp.front answers
(``/token`` among them), and it records ``url.query``. Not
opentelemetry-instrumentation-sqlalchemy: it declares ``sqlalchemy < 2.1`` (idp runs
2.1), its failed spans carry the driver's message (PostgreSQL's quotes the values of a
violated key), and the rotation's statements (idp.db.RawCursor) bypass SQLAlchemy's
events anyway.
"""

from __future__ import annotations

import logging
import multiprocessing.util
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import context, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from sqlalchemy import Engine, event

from idp.config import TracingConfig
from idp.metrics import METHODS, ROUTE_KEY, shown_path

# Resolves to the process's provider once start() has set it (a no-op tracer before).
TRACER = trace.get_tracer("idp")
# Only the W3C trace context is taken from a request (no baggage: a caller's key-values
# are not ours to pass on).
PROPAGATOR = TraceContextTextMapPropagator()
MAX_PATH = 512
log = logging.getLogger(__name__)


def start(cfg: TracingConfig) -> TracerProvider:
    """This process's tracer provider: sampled at ``cfg.sample_ratio`` unless the caller
    decided, batched to ``cfg.endpoint``, flushed at exit."""
    try:
        release = version("idp")
    except PackageNotFoundError:
        release = "unknown"
    provider = TracerProvider(
        resource=Resource.create({"service.name": cfg.service_name, "service.version": release}),
        sampler=ParentBased(TraceIdRatioBased(cfg.sample_ratio)),
        shutdown_on_exit=False,
    )
    exporter = OTLPSpanExporter(endpoint=cfg.endpoint, headers=cfg.header_pairs())
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)

    def flush_at_exit() -> None:
        # A worker forked by multiprocessing (granian's) ends with os._exit, past atexit;
        # multiprocessing's finalizers run there, and at a normal interpreter exit too.
        multiprocessing.util.Finalize(None, provider.shutdown, exitpriority=10)

    flush_at_exit()
    # Started before a fork (gunicorn --preload): a finalizer runs only in the process
    # that made it, so each child makes its own (the SDK restarts its batch thread).
    os.register_at_fork(after_in_child=flush_at_exit)
    # Without a query string: a vendor's key may ride there.
    where = urlsplit(cfg.endpoint)._replace(query="", fragment="").geturl()
    log.info("tracing to %s as %s", where, cfg.service_name)
    return provider


class _Environ(Getter[dict[str, Any]]):
    """Reads a header from a WSGI environ (``traceparent`` is ``HTTP_TRACEPARENT``)."""

    def get(self, carrier: dict[str, Any], key: str) -> list[str] | None:
        value = carrier.get("HTTP_" + key.upper().replace("-", "_"))
        return None if value is None else [value]

    def keys(self, carrier: dict[str, Any]) -> list[str]:
        return [k[5:].lower().replace("_", "-") for k in carrier if k.startswith("HTTP_")]


ENVIRON = _Environ()
StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class Traced:
    """WSGI middleware: a server span around each request, current while it is handled
    (outermost: the request id and the access line are inside it)."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "")
        method = method if method in METHODS else "_OTHER"
        span = TRACER.start_span(
            method,
            context=PROPAGATOR.extract(environ, getter=ENVIRON),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method},
        )
        token = context.attach(trace.set_span_in_context(span))
        status = [0]

        def start(line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status[0] = int(line.split(" ", 1)[0])
            return start_response(line, headers, exc_info)

        try:
            return self.app(environ, start)
        except BaseException as exc:
            # The class only: a message can quote what the request sent.
            span.set_attribute("error.type", type(exc).__qualname__)
            span.set_status(Status(StatusCode.ERROR))
            raise
        finally:
            context.detach(token)
            _finish(span, environ, method, status[0])
            span.end()


def _finish(span: Span, environ: dict[str, Any], method: str, status: int) -> None:
    route = environ.get(ROUTE_KEY)
    attributes: dict[str, Any] = {
        # The path only: the query string carries codes, tokens, state and login hints.
        "url.path": shown_path(environ, MAX_PATH),
        "url.scheme": environ.get("wsgi.url_scheme", "http"),
        "network.protocol.version": environ.get("SERVER_PROTOCOL", "").removeprefix("HTTP/"),
    }
    if route:
        attributes["http.route"] = route
        span.update_name(f"{method} {route}")
    if status:
        attributes["http.response.status_code"] = status
        if status >= 500:
            attributes["error.type"] = str(status)
            span.set_status(Status(StatusCode.ERROR))
    if "idp.request_id" in environ:
        attributes["idp.request_id"] = environ["idp.request_id"]
    span.set_attributes(attributes)


# --- SQL ----------------------------------------------------------------------------------
def _operation(statement: str) -> str:
    return statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "SQL"


def _in_request() -> bool:
    """Statements are traced inside a traced request only: the background threads' polls
    (outbox, deliveries, change signals) would each start a trace of their own."""
    return trace.get_current_span().get_span_context().is_valid


def _statement_span(system: str, statement: str) -> Span:
    return TRACER.start_span(
        _operation(statement),
        kind=SpanKind.CLIENT,
        attributes={"db.system.name": system, "db.query.text": statement},
    )


def _failed(span: Span, exc: BaseException) -> None:
    span.set_attribute("error.type", type(exc).__qualname__)
    span.set_status(Status(StatusCode.ERROR))


SPAN_KEY = "idp.span"


def instrument(engine: Engine) -> Callable[[str], Any]:
    """Spans for ``engine``'s statements; returns the same for statements run on its
    DBAPI cursors directly (idp.db.RawCursor), as a context manager factory."""
    system = engine.dialect.name

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn: Any, cursor: Any, statement: str, params: Any, ctx: Any, many: Any) -> None:
        if ctx is not None and _in_request():
            ctx.__dict__[SPAN_KEY] = _statement_span(system, statement)

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn: Any, cursor: Any, statement: str, params: Any, ctx: Any, many: Any) -> None:
        span = ctx.__dict__.pop(SPAN_KEY, None) if ctx is not None else None
        if span is not None:
            span.end()

    @event.listens_for(engine, "handle_error")
    def _error(exception_context: Any) -> None:
        ctx = exception_context.execution_context
        span = ctx.__dict__.pop(SPAN_KEY, None) if ctx is not None else None
        if span is not None:
            _failed(span, exception_context.original_exception)
            span.end()

    @contextmanager
    def raw(statement: str) -> Iterator[None]:
        if not _in_request():
            yield
            return
        span = _statement_span(system, statement)
        try:
            yield
        except BaseException as exc:
            _failed(span, exc)
            raise
        finally:
            span.end()

    return raw


# --- logs ---------------------------------------------------------------------------------
class TraceIds(logging.Filter):
    """Adds ``trace_id`` and ``span_id`` (hex, as W3C traceparent writes them) to a record
    written while a span is current; JSON lines show them as fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            record.trace_id = format(ctx.trace_id, "032x")
            record.span_id = format(ctx.span_id, "016x")
        return True
