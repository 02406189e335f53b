"""The Shared Signals transmitter's HTTP side (SSF 1.0 §7 and §8, RFC 8936 poll).

Receivers authenticate with a client_credentials access token carrying the ``ssf``
scope (SSF 1.0 §9: ``authorization_schemes`` is OAuth 2.0) and see only their own
streams; another receiver's stream is answered as absent (404).
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, request
from werkzeug.wrappers import Response

from idp.ext import Services, services
from idp.http import ProtocolRequest, error, json_response
from idp.oauth.handlers import TwoTokens, presented
from idp.ssf import delivery, streams
from idp.ssf.events import VERIFICATION
from idp.ssf.models import SsfStream

bp = Blueprint("ssf", __name__)
SCOPE = "ssf"
# CAEP Interoperability Profile 1.0 §2.7.2: management takes ``ssf.manage``, reading
# ``ssf.read`` (or ``ssf.manage``), polling may take ``ssf.manage.poll``; idp's own
# ``ssf`` allows all of it.
MANAGE = frozenset({SCOPE, "ssf.manage"})
READ = MANAGE | {"ssf.read"}
POLL = MANAGE | {"ssf.manage.poll"}
CONFIG_PATH = "/.well-known/ssf-configuration"
MAX_POLL_EVENTS = 100


class Refusal(Exception):
    def __init__(self, status: int, code: str, description: str, headers: Any = ()) -> None:
        super().__init__(description)
        self.response = error(status, code, description, headers)


def configuration(issuer: str) -> dict[str, Any]:
    """Transmitter configuration metadata (SSF 1.0 §7.1)."""
    base = issuer.rstrip("/")
    return {
        "spec_version": "1_0",
        "issuer": issuer,
        "jwks_uri": f"{base}/jwks.json",
        "delivery_methods_supported": [streams.PUSH, streams.POLL],
        "configuration_endpoint": f"{base}/ssf/stream",
        "status_endpoint": f"{base}/ssf/status",
        "add_subject_endpoint": f"{base}/ssf/subjects:add",
        "remove_subject_endpoint": f"{base}/ssf/subjects:remove",
        "verification_endpoint": f"{base}/ssf/verify",
        "authorization_schemes": [{"spec_urn": "urn:ietf:rfc:6749"}],
        "default_subjects": "ALL",
    }


def _receiver(svc: Services, allowed: frozenset[str] = MANAGE) -> str:
    """The client_id behind the request's client_credentials token, which must carry
    one of the ``allowed`` scopes (RFC 6750 §3.1 errors otherwise)."""
    try:
        found = presented(ProtocolRequest.from_flask(request))
    except TwoTokens:
        raise Refusal(400, "invalid_request", "Send the access token one way only.") from None
    challenge = [("WWW-Authenticate", 'Bearer error="invalid_token"')]
    if found is None or found[0] != "bearer":
        raise Refusal(401, "invalid_token", "A Bearer access token is required.", challenge)
    claims = svc.access_tokens.active(found[1])
    if claims is None or claims.get("sub") != claims.get("client_id"):
        raise Refusal(401, "invalid_token", "The access token is not valid.", challenge)
    if allowed.isdisjoint(str(claims.get("scope", "")).split()):
        needed = " ".join(sorted(allowed))
        raise Refusal(
            403,
            "insufficient_scope",
            f"The token needs one of the scopes {needed}.",
            [("WWW-Authenticate", f'Bearer error="insufficient_scope", scope="{needed}"')],
        )
    return str(claims["client_id"])


def _body() -> dict[str, Any]:
    if request.mimetype != "application/json":
        raise Refusal(415, "invalid_request", "Send application/json.")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Refusal(400, "invalid_request", "The body must be a JSON object.")
    return body


def _stream(s: Any, client_id: str, stream_id: Any) -> SsfStream:
    stream = streams.owned(s, client_id, stream_id)
    if stream is None:
        raise Refusal(404, "not_found", "There is no such stream.")
    return stream


def _answer(view: Any) -> Any:
    def wrapped(*args: Any, **kwargs: Any) -> Response:
        try:
            result: Response = view(*args, **kwargs)
            return result
        except Refusal as refused:
            return refused.response.to_flask()
        except streams.StreamError as exc:
            return error(400, "invalid_request", str(exc)).to_flask()

    wrapped.__name__ = view.__name__
    return wrapped


@bp.get(CONFIG_PATH)
def ssf_configuration() -> Response:
    resp = json_response(200, configuration(services().config.server.issuer))
    resp.set_header("Cache-Control", "public, max-age=3600")
    return resp.to_flask()


@bp.route("/ssf/stream", methods=["GET", "POST", "PATCH", "PUT", "DELETE"])
@_answer
def stream_config() -> Response:
    """SSF 1.0 §8.1.1: create (POST), read (GET), update (PATCH), replace (PUT),
    delete (DELETE)."""
    svc = services()
    client_id = _receiver(svc, READ if request.method == "GET" else MANAGE)
    issuer = svc.config.server.issuer
    outbound = svc.pusher.outbound
    now = svc.clock.now()
    if request.method == "GET":
        with svc.db.read() as s:
            if "stream_id" in request.args:
                stream = _stream(s, client_id, request.args["stream_id"])
                return json_response(200, streams.config_of(stream, issuer)).to_flask()
            mine = s.query(SsfStream).filter(SsfStream.client_id == client_id)
            listed = [streams.config_of(x, issuer) for x in mine.order_by(SsfStream.created_at)]
        return json_response(200, listed).to_flask()
    if request.method == "DELETE":
        with svc.db.transaction() as s:
            s.delete(_stream(s, client_id, request.args.get("stream_id")))
        return Response(status=204)
    body = _body()
    with svc.db.transaction() as s:
        if request.method == "POST":
            stream = streams.create(s, now, client_id, body, outbound)
            status = 201
        else:
            stream = _stream(s, client_id, body.get("stream_id"))
            streams.update(stream, now, body, outbound, replace=request.method == "PUT")
            status = 200
        out = streams.config_of(stream, issuer)
    return json_response(status, out).to_flask()


@bp.route("/ssf/status", methods=["GET", "POST"])
@_answer
def stream_status() -> Response:
    """SSF 1.0 §8.1.2: read or set a stream's status."""
    svc = services()
    client_id = _receiver(svc, READ if request.method == "GET" else MANAGE)
    if request.method == "GET":
        with svc.db.read() as s:
            stream = _stream(s, client_id, request.args.get("stream_id"))
            out = {"stream_id": stream.id, "status": stream.status}
        return json_response(200, out).to_flask()
    body = _body()
    with svc.db.transaction() as s:
        stream = _stream(s, client_id, body.get("stream_id"))
        streams.set_status(
            s, stream, svc.clock.now(), body.get("status"), body.get("reason"), svc.killer.signals
        )
        out = {"stream_id": stream.id, "status": stream.status}
        if stream.status_reason:
            out["reason"] = stream.status_reason
    svc.pusher.kick()  # an enabled stream may have held events
    return json_response(200, out).to_flask()


@bp.post("/ssf/verify")
@_answer
def verify() -> Response:
    """SSF 1.0 §8.1.4: a verification event, echoing ``state``, at most once per
    min_verification_interval."""
    svc = services()
    client_id = _receiver(svc)
    body = _body()
    state = body.get("state")
    if state is not None and (not isinstance(state, str) or len(state) > 256):
        raise Refusal(400, "invalid_request", "state must be a string of at most 256 characters.")
    with svc.db.read() as s:
        stream = _stream(s, client_id, body.get("stream_id"))
        if stream.status != "enabled":
            raise Refusal(409, "invalid_request", "The stream is not enabled.")
    if not svc.state.add_once(f"ssf:verify:{stream.id}", streams.MIN_VERIFICATION_INTERVAL):
        raise Refusal(429, "slow_down", "Verification is limited to one per 15 seconds.")
    with svc.db.transaction() as s:
        stream = _stream(s, client_id, stream.id)
        event = {"state": state} if state is not None else {}
        subject = {"format": "opaque", "id": stream.id}
        svc.killer.signals.emit(s, svc.clock.now(), VERIFICATION, subject, event, streams=[stream])
    svc.pusher.kick()
    return Response(status=204)


@bp.post("/ssf/subjects:add")
@bp.post("/ssf/subjects:remove")
@_answer
def subjects() -> Response:
    """SSF 1.0 §8.1.3: idp's streams carry events for every subject (default_subjects
    ALL), so adding one changes nothing and removing one is refused as not
    supported."""
    svc = services()
    client_id = _receiver(svc)
    body = _body()
    with svc.db.read() as s:
        _stream(s, client_id, body.get("stream_id"))
    if not isinstance(body.get("subject"), dict):
        raise Refusal(400, "invalid_request", "subject must be a subject identifier object.")
    if request.path.endswith(":remove"):
        raise Refusal(400, "invalid_request", "Streams carry every subject (default_subjects ALL).")
    return Response(status=200)


def _poll_request(body: dict[str, Any]) -> tuple[int, bool, list[str], dict[str, Any]]:
    """RFC 8936 §2.4's members, checked."""
    most = body.get("maxEvents", MAX_POLL_EVENTS)
    immediately = body.get("returnImmediately", False)
    acks = body.get("ack", [])
    errors = body.get("setErrs", {})
    if isinstance(most, bool) or not isinstance(most, int) or not 0 <= most <= MAX_POLL_EVENTS:
        raise Refusal(400, "invalid_request", f"maxEvents must be 0 to {MAX_POLL_EVENTS}.")
    if not isinstance(immediately, bool):
        raise Refusal(400, "invalid_request", "returnImmediately must be true or false.")
    if (
        not isinstance(acks, list)
        or len(acks) > 1000
        or not all(isinstance(a, str) and len(a) <= 64 for a in acks)
    ):
        raise Refusal(400, "invalid_request", "ack must be a list of jti strings.")
    if (
        not isinstance(errors, dict)
        or len(errors) > 1000
        or not all(isinstance(k, str) and isinstance(v, dict) for k, v in errors.items())
    ):
        raise Refusal(400, "invalid_request", "setErrs must map jti to {err, description}.")
    return most, immediately, acks, errors


@bp.post("/ssf/poll/<stream_id>")
@_answer
def poll(stream_id: str) -> Response:
    """RFC 8936: acknowledge what was received, then take what is owed, waiting up to
    [ssf] poll_wait_seconds for it unless returnImmediately (the wait holds a slot of
    the revocation feed's waiting polls, capped per process and per receiver). A
    stream that is not enabled gives only its stream-updated events."""
    svc = services()
    client_id = _receiver(svc, POLL)
    body = _body()
    most, immediately, acks, errors = _poll_request(body)
    with svc.db.read() as s:
        stream = _stream(s, client_id, stream_id)
        if stream.method != streams.POLL:
            raise Refusal(400, "invalid_request", "This stream is delivered by push.")
        held = stream.status != "enabled"
    delivery.acknowledge(svc.db, svc.clock, stream_id, acks, errors)
    if most == 0:
        return json_response(200, {"sets": {}, "moreAvailable": False}).to_flask()
    events, more = delivery.owed(svc.db, svc.clock, stream_id, most, held)
    if not events and not immediately:
        events, more = _wait(svc, client_id, stream_id, most, held)
    sets = {e.jti: delivery.sign(svc.oauth.issuer, e.claims) for e in events}
    return json_response(200, {"sets": sets, "moreAvailable": more}).to_flask()


def _wait(svc: Services, client_id: str, stream_id: str, most: int, held: bool) -> Any:
    """Waits for events: woken by the revocation log (a kill writes to it in the same
    transaction as its events), and looking again every second for the others."""
    from idp.revocations.waiting import Busy

    deadline = time.monotonic() + svc.config.ssf.poll_wait_seconds
    try:
        with svc.feed_waits.slot(f"ssf:{client_id}"):
            while True:
                seen = svc.deny.latest()
                events, more = delivery.owed(svc.db, svc.clock, stream_id, most, held)
                left = deadline - time.monotonic()
                if events or left <= 0:
                    return events, more
                svc.feed_waits.wait_past(seen, time.monotonic() + min(1.0, left))
    except Busy:
        return [], False
