"""Logs: one stream on standard error, ``[log] format`` text or JSON, a request id on
every line written while a request is handled (issue 14 item 2, SPEC §5).

:func:`configure` sets up the root logger the same way wherever idp runs: the ``idp``
command (idp.cli), the workers of ``idp serve`` and gunicorn (idp.wsgi, idp.admin.wsgi)
and the development server. :class:`RequestLog` wraps the WSGI app: it takes the
request id from a sane ``X-Request-ID`` header or makes one, returns it in the
response's ``X-Request-ID``, and writes one access line per request under
``idp.access`` (method, path without its query string, status, duration).

A JSON line is one object: ``ts`` (RFC 3339, UTC), ``level``, ``logger``, ``msg``,
``request_id`` (null outside requests), ``exc`` (the traceback, when there is one) and
any ``extra`` fields of the record (the access line's ``method``, ``path``, ``status``,
``duration_ms``); with ``[tracing]`` on, ``trace_id`` and ``span_id`` on the lines
written inside a span (idp.tracing).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from idp.config import LogConfig
from idp.metrics import shown_path

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

HEADER = "X-Request-ID"
# An incoming id is kept when it is a short HTTP token (RFC 9110 tchar): nothing that
# could split a log line, smuggle a header or fill a disk.
_SANE_ID = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}")

# The id of the request this thread (or task) is handling; None outside requests.
REQUEST_ID: ContextVar[str | None] = ContextVar("idp_request_id", default=None)

access_log = logging.getLogger("idp.access")

# Attributes every LogRecord has: what is not among them came from ``extra``.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id"}


def request_id(incoming: str | None) -> str:
    """``incoming`` when it is a sane id, else a new random one."""
    if incoming and _SANE_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


def rfc3339(created: float) -> str:
    stamp = dt.datetime.fromtimestamp(created, dt.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": rfc3339(record.created),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``ts LEVEL logger [request id] message``, then the traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", None) or "-"
        text = (
            f"{rfc3339(record.created)} {record.levelname} {record.name} [{rid}] "
            f"{record.getMessage()}"
        )
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            text += "\n" + self.formatStack(record.stack_info)
        return text


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a line is written (as logging's last
    resort does), so a replaced or captured stderr never gets a closed stream."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


def formatter(cfg: LogConfig) -> logging.Formatter:
    return JsonFormatter() if cfg.format == "json" else TextFormatter()


def handler(cfg: LogConfig, stream: Any = None, traced: bool = False) -> logging.Handler:
    """The handler :func:`configure` installs: to ``stream``, or standard error; with
    ``traced`` (``[tracing]`` on), lines written inside a span carry its ids."""
    out: logging.Handler = logging.StreamHandler(stream) if stream else _StderrHandler()
    out.addFilter(_RequestIdFilter())
    if traced:
        from idp.tracing import TraceIds

        out.addFilter(TraceIds())
    out.setFormatter(formatter(cfg))
    out.set_name("idp")
    return out


def configure(cfg: LogConfig, stream: Any = None, traced: bool = False) -> None:
    """Route every logger through one handler in ``cfg.format`` at ``cfg.level``.
    Calling it again replaces the handler it installed (a forked worker configures
    itself again); handlers others installed (pytest's) are left alone."""
    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == "idp":
            root.removeHandler(old)
    root.addHandler(handler(cfg, stream, traced))
    root.setLevel(cfg.level.upper())
    # SQL statements and their parameters never reach the log, whatever the level
    # (SQLAlchemy's own default, made explicit; [database] echo has its own handler).
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)
    # alembic's plugin set-up says nothing an operator needs, at every start.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    # authlib's DEBUG lines print issued tokens and client records: never below INFO.
    logging.getLogger("authlib").setLevel(max(logging.INFO, root.level))
    # The access line is idp.access's; granian's and gunicorn's own go to the root.
    access_log.disabled = not cfg.access


def granian_dictconfig() -> dict[str, Any]:
    """For granian's ``log_dictconfig``: its own loggers write through the root
    handler (so in the same format) instead of their own."""
    return {
        "loggers": {
            "_granian": {"handlers": [], "propagate": True, "level": "INFO"},
            "granian.access": {"handlers": [], "propagate": True, "level": "INFO"},
        }
    }


def gunicorn_logconfig(cfg: LogConfig) -> dict[str, Any]:
    """For gunicorn's ``logconfig_dict`` (deploy/gunicorn.conf.py): the root logger
    writes through idp's handler from the start, gunicorn's error log goes there too,
    its access log is off (idp.access writes one line per request, with its id)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "root": {"level": cfg.level.upper(), "handlers": ["idp"]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": False},
        },
        "handlers": {"idp": {"()": handler, "cfg": cfg}},
        "formatters": {},
    }


def _printable(path: str, limit: int = 512) -> str:
    """``path`` for a log line: control characters escaped, at most ``limit`` long."""
    path = path[:limit]
    if path.isprintable():
        return path
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in path)


class RequestLog:
    """WSGI middleware: the request id and the access line (outermost, so it times and
    counts every request, those answered in front of Flask too)."""

    def __init__(self, app: WSGIApplication, clock: Callable[[], float] = time.perf_counter):
        self.app = app
        self.clock = clock

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        rid = request_id(environ.get("HTTP_X_REQUEST_ID"))
        environ["idp.request_id"] = rid
        token = REQUEST_ID.set(rid)
        started = self.clock()
        status = [500]

        def start(status_line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status[0] = int(status_line.split(" ", 1)[0])
            headers = [(k, v) for k, v in headers if k.lower() != "x-request-id"]
            headers.append((HEADER, rid))
            return start_response(status_line, headers, exc_info)

        def done() -> None:
            if not access_log.disabled and access_log.isEnabledFor(logging.INFO):
                method = _printable(environ.get("REQUEST_METHOD", ""), 32)
                path = _printable(shown_path(environ))
                ms = round((self.clock() - started) * 1000, 1)
                access_log.info(
                    "%s %s %d %.1f ms",
                    method,
                    path,
                    status[0],
                    ms,
                    extra={"method": method, "path": path, "status": status[0], "duration_ms": ms},
                )
            REQUEST_ID.reset(token)

        try:
            return self.app(environ, start)
        finally:
            # idp streams no body: the response is ready, its time is the request's.
            done()


def install(wsgi_app: WSGIApplication) -> WSGIApplication:
    """``wsgi_app`` with request ids and the access line."""
    return RequestLog(wsgi_app)
