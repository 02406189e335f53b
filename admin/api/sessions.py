"""Browser sessions: list, inspect, kill (SPEC §6 "Sessions")."""

from __future__ import annotations

import base64
import datetime as dt
import re
from typing import Any

from werkzeug.wrappers import Response

from idp.admin import queries
from idp.admin.api.common import (
    Refused,
    admin_token_required,
    bp,
    not_found,
    operator,
    reason,
    reply,
    validated,
)
from idp.ext import services
from idp.sessions.kill import AlreadyEnded
from idp.sessions.models import BrowserSession

SID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


@bp.get("/sessions")
@admin_token_required
@validated
def list_sessions(query: dict[str, Any]) -> Response:
    after = _unwrap(query["after"]) if "after" in query else ""
    page = queries.sessions_page(
        services(),
        user=query.get("user", ""),
        client=query.get("client", ""),
        ip=query.get("ip", ""),
        after=after,
        limit=query["limit"],
    )
    cursor = page.next_cursor and base64.urlsafe_b64encode(page.next_cursor.encode()).decode()
    return reply({"sessions": page.rows, "next_cursor": cursor})


@bp.get("/sessions/<sid>")
@admin_token_required
@validated
def get_session(sid: str) -> Response:
    detail = queries.session_detail(services(), sid)
    if detail is None:
        raise not_found("sid")
    return reply(detail)


@bp.post("/sessions/<sid>/kill")
@admin_token_required
@validated
def kill(sid: str, body: dict[str, Any]) -> Response:
    why = reason(body)
    svc = services()
    # Checked first: killing an unknown sid would still put it on the deny list.
    if not _session_exists(sid):
        raise not_found("sid")
    result = svc.actions.kill_session(sid, operator(), why)
    if result is None:
        raise not_found("sid")
    session = result.session
    if isinstance(result, AlreadyEnded):
        # Nothing was done, so nothing claims a kill with a reason that was not stored.
        raise Refused(
            409, "invalid_request", f"The session had already ended ({session.end_reason})."
        )
    return reply({"sid": session.id, "killed": True, "reason": why, "ended_at": session.ended_at})


def _unwrap(cursor: str) -> str:
    """The read model's keyset cursor ("created_at|sid") from the opaque, URL-safe one."""
    try:
        raw = base64.urlsafe_b64decode(cursor.encode()).decode()
        moment, bar, sid = raw.partition("|")
        dt.datetime.fromisoformat(moment)
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
        raw, bar, sid = "", "", ""
    if not bar or not SID_RE.fullmatch(sid):
        raise Refused(400, "invalid_request", "after is not a cursor this API returned.")
    return raw


def _session_exists(sid: str) -> bool:
    with services().db.read() as s:
        return s.get(BrowserSession, sid) is not None
