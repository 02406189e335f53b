"""What every dashboard page shares: reading forms and query strings safely, the acting
admin, error pages, and the template filters and chart globals."""

from __future__ import annotations

import datetime as dt
from typing import Any, NoReturn

from flask import Flask, abort, g, render_template, request
from werkzeug.wrappers import Response

from idp.admin import charts
from idp.ext import services
from idp.operator import Actor
from idp.web import client_ip

REASON_MAX = 500  # audit_events.reason


class FormError(ValueError):
    """Input the operator must correct; the form is shown again with this message."""


def arg(name: str, limit: int = 200) -> str:
    """A query-string filter: cut at ``limit``; filters never fail, they match nothing."""
    return request.args.get(name, "")[:limit].strip()


def field(name: str, limit: int, *, label: str, required: bool = False) -> str:
    """A form field, stripped; too long, NUL-bearing or (if required) empty is a FormError,
    never silently cut, so what is stored is exactly what the operator typed."""
    value = str(request.form.get(name, ""))
    if "\x00" in value:
        raise FormError(f"{label} must not contain NUL characters.")
    if len(value) > limit:
        raise FormError(f"{label} is too long (at most {limit} characters).")
    value = value.strip()
    if required and not value:
        raise FormError(f"{label} is required.")
    return value


def lines(name: str, *, label: str, each: int, most: int) -> list[str]:
    """A textarea as its non-blank lines, each at most ``each`` characters."""
    text = field(name, each * most + 2 * most, label=label)
    found = [line.strip() for line in text.splitlines() if line.strip()]
    if len(found) > most:
        raise FormError(f"{label}: at most {most} lines.")
    for line in found:
        if len(line) > each:
            raise FormError(f"{label}: a line is too long (at most {each} characters).")
    return found


def reason() -> str:
    """The reason every destructive action must give; it goes to the audit log."""
    return field("reason", REASON_MAX, label="A reason", required=True)


def flag(name: str) -> bool:
    return request.form.get(name) in ("on", "1", "true", "yes")


def actor() -> str:
    return str(g.admin_user.username)


def ip() -> str:
    return client_ip()


def operator() -> Actor:
    """The signed-in operator, as idp.operator's actions name them."""
    return Actor(actor(), ip())


def page(template: str, status: int = 200, **context: Any) -> Response:
    """A page with an explicit status (a form shown again with its error is a 400)."""
    return Response(render_template(template, **context), status=status, mimetype="text/html")


def not_found(what: str = "There is no such thing here.") -> NoReturn:
    abort(404, what)


def _when(value: Any) -> str:
    if not isinstance(value, dt.datetime):
        return "—"
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _ago(value: Any) -> str:
    """``value`` relative to the idp clock: "3 min ago", "in 2 h"."""
    if not isinstance(value, dt.datetime):
        return ""
    seconds = (services().clock.now() - value).total_seconds()
    future, seconds = seconds < 0, abs(seconds)
    if seconds < 60:
        text = f"{int(seconds)} s"
    elif seconds < 3600:
        text = f"{int(seconds // 60)} min"
    elif seconds < 172800:
        text = f"{int(seconds // 3600)} h"
    else:
        text = f"{int(seconds // 86400)} d"
    return f"in {text}" if future else f"{text} ago"


def _duration(seconds: Any) -> str:
    """A number of seconds as the largest whole units: "30 d", "12 h", "1 d 6 h"."""
    if not isinstance(seconds, int) or seconds <= 0:
        return "—"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size} {unit}")
            seconds %= size
    return " ".join(parts[:2])


def _iso(value: Any) -> str:
    return value.astimezone(dt.UTC).isoformat() if isinstance(value, dt.datetime) else ""


def install(app: Flask) -> None:
    app.add_template_filter(_when, "when")
    app.add_template_filter(_ago, "ago")
    app.add_template_filter(_iso, "iso")
    app.add_template_filter(_duration, "duration")
    app.add_template_global(charts.bars, "bar_chart")
    app.add_template_global(charts.sparkline, "sparkline")
