"""Stream management (SSF 1.0 §8.1): receivers create, read, update, replace and delete
their streams, and read and set their status. A receiver is a client whose
client_credentials token carries the ``ssf`` scope; it sees only its own streams, and
each stream's ``aud`` is that client."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from idp.outbound import Outbound
from idp.ssf.events import STREAM_UPDATED, SUPPORTED, Emitter, delivered
from idp.ssf.models import SsfEvent, SsfStream

PUSH = "urn:ietf:rfc:8935"
POLL = "urn:ietf:rfc:8936"
STATUSES = ("enabled", "paused", "disabled")
MAX_STREAMS = 10  # per receiver
MIN_VERIFICATION_INTERVAL = 15
FIELDS = frozenset({"stream_id", "events_requested", "delivery", "description"})
READ_ONLY = frozenset(
    {
        "iss",
        "aud",
        "events_supported",
        "events_delivered",
        "min_verification_interval",
        "inactivity_timeout",
    }
)


class StreamError(ValueError):
    """A request the stream API refuses with 400 (``str()`` says why)."""


def config_of(stream: SsfStream, issuer: str) -> dict[str, Any]:
    """The stream's configuration as SSF 1.0 §8.1.1 shows it."""
    base = issuer.rstrip("/")
    endpoint = stream.endpoint_url if stream.method == PUSH else f"{base}/ssf/poll/{stream.id}"
    out: dict[str, Any] = {
        "stream_id": stream.id,
        "iss": issuer,
        "aud": stream.client_id,
        "events_supported": list(SUPPORTED),
        "events_requested": list(stream.events_requested),
        "events_delivered": delivered(stream.events_requested),
        "delivery": {"method": stream.method, "endpoint_url": endpoint},
        "min_verification_interval": MIN_VERIFICATION_INTERVAL,
    }
    if stream.description:
        out["description"] = stream.description
    return out


def _text(value: Any, name: str, most: int) -> str:
    if not isinstance(value, str) or len(value) > most or any(ord(c) < 0x20 for c in value):
        raise StreamError(f"{name} must be a string of at most {most} printable characters")
    return value


def _events(value: Any) -> list[str]:
    if not isinstance(value, list) or len(value) > 20:
        raise StreamError("events_requested must be a list of at most 20 event type URIs")
    return [_text(v, "events_requested", 200) for v in dict.fromkeys(value)]


def _delivery(value: Any, outbound: Outbound) -> tuple[str, str | None, str | None]:
    """(method, push endpoint, authorization header) of a ``delivery`` object."""
    if not isinstance(value, dict) or set(value) - {
        "method",
        "endpoint_url",
        "authorization_header",
    }:
        raise StreamError("delivery must be an object with method (and endpoint_url)")
    method = value.get("method")
    if method == POLL:
        if value.get("endpoint_url") is not None or value.get("authorization_header"):
            raise StreamError("a poll stream's endpoint_url is chosen by idp")
        return POLL, None, None
    if method != PUSH:
        raise StreamError(f"delivery method must be {PUSH} or {POLL}")
    url = _text(value.get("endpoint_url"), "delivery.endpoint_url", 2000)
    if why := outbound.problem(url, resolve=False):
        raise StreamError(f"delivery.endpoint_url: {why}")
    header = value.get("authorization_header")
    if header is not None:
        header = _text(header, "delivery.authorization_header", 2000)
    return PUSH, url, header


def _apply(stream: SsfStream, body: dict[str, Any], outbound: Outbound, replace: bool) -> None:
    if not isinstance(body, dict):
        raise StreamError("the body must be a JSON object")
    unknown = set(body) - FIELDS - READ_ONLY
    if unknown:
        raise StreamError(f"unknown stream fields: {', '.join(sorted(unknown))}")
    if replace or "events_requested" in body:
        stream.events_requested = _events(body.get("events_requested", []))
    if replace or "delivery" in body:
        delivery = body.get("delivery", {"method": POLL})
        stream.method, stream.endpoint_url, stream.authorization_header = _delivery(
            delivery, outbound
        )
    if replace or "description" in body:
        description = body.get("description")
        stream.description = None if description is None else _text(description, "description", 500)


def create(
    s: Session, now: dt.datetime, client_id: str, body: Any, outbound: Outbound
) -> SsfStream:
    if not isinstance(body, dict):
        raise StreamError("the body must be a JSON object")
    if "stream_id" in body:
        raise StreamError("stream_id is chosen by idp")
    count = s.scalar(select(func.count()).where(SsfStream.client_id == client_id))
    if (count or 0) >= MAX_STREAMS:
        raise StreamError(f"a receiver may have at most {MAX_STREAMS} streams")
    stream = SsfStream(client_id=client_id, status="enabled", created_at=now, updated_at=now)
    _apply(stream, body, outbound, replace=True)
    s.add(stream)
    s.flush()
    return stream


def update(
    stream: SsfStream, now: dt.datetime, body: Any, outbound: Outbound, *, replace: bool
) -> None:
    _apply(stream, body, outbound, replace=replace)
    stream.updated_at = now


def set_status(
    s: Session,
    stream: SsfStream,
    now: dt.datetime,
    status: Any,
    reason: Any,
    signals: Emitter,
) -> None:
    """enabled, paused (events are kept) or disabled (owed events are dropped). A
    change is told to the receiver by a stream-updated event (SSF 1.0 §8.1.5), which
    reaches it even while the stream holds or drops the others: it is how a receiver
    learns that it may be missing events."""
    if status not in STATUSES:
        raise StreamError(f"status must be one of {', '.join(STATUSES)}")
    why = None if reason is None else _text(reason, "reason", 500)
    changed = stream.status != status
    stream.status = status
    stream.status_reason = why
    stream.updated_at = now
    if status == "disabled":
        for event in s.scalars(
            select(SsfEvent).where(SsfEvent.stream_id == stream.id, SsfEvent.status == "pending")
        ):
            event.status, event.last_error = "dropped", "the stream was disabled"
    if changed:
        news = {"status": status, **({"reason": why} if why else {})}
        subject = {"format": "opaque", "id": stream.id}
        signals.emit(s, now, STREAM_UPDATED, subject, news, streams=[stream])


def owned(s: Session, client_id: str, stream_id: Any) -> SsfStream | None:
    """The receiver's stream (another receiver's is as good as absent)."""
    if not isinstance(stream_id, str) or len(stream_id) > 64:
        return None
    stream = s.get(SsfStream, stream_id)
    return stream if stream is not None and stream.client_id == client_id else None
