"""Shared Signals streams: list them with their lag and errors, pause, disable or
enable one (issue 12 item 5; the dashboard's Signals page and `idp ssf` as JSON)."""

from __future__ import annotations

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
from idp.ssf.streams import StreamError

DEFAULT_REASON = "set by operator"


@bp.get("/ssf/streams")
@admin_token_required
@validated
def list_streams() -> Response:
    return reply({"streams": queries.streams_list(services())})


@bp.post("/ssf/streams/<stream_id>/status")
@admin_token_required
@validated
def set_status(stream_id: str, body: dict[str, Any]) -> Response:
    """Paused: events are kept until it is enabled; disabled: owed events are dropped.
    Either way the receiver is told by a stream-updated event (SSF 1.0 §8.1.5)."""
    why = reason(body, DEFAULT_REASON)
    try:
        found = services().actions.set_stream_status(stream_id, body["status"], operator(), why)
    except StreamError as exc:  # the document's patterns should have caught it first
        raise Refused(400, "invalid_request", str(exc)) from None
    if not found:
        raise not_found("stream_id")
    return reply({"stream_id": stream_id, "status": body["status"], "reason": why})
