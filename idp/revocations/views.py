"""``GET /revocations``: the revocation feed for resource servers (idp's own API).

    GET /revocations?after=CURSOR&wait=SECONDS
    Authorization: Basic client_id:client_secret   (any confidential client)

    200 {"revocations": [{"id": 7, "type": "sid", "value": "...", "exp": 1767225600},
                         {"id": 8, "type": "client", "value": "shop", "exp": 1767225600,
                          "issued_before": 1767225300}],
         "cursor": "8"}

Entries are revoked session ids (``sid``) and token ids (``jti``), each until the last
token it could name expires (``exp``), and "every token of this ``client`` or ``user``
with ``iat`` below ``issued_before``" (an operator revoked all of them). Entries come in
commit order, so a cursor never skips one. Poll with the returned cursor; with ``wait`` (at
most 30 s) the request is held open until a new entry arrives. Start with ``after=0``
to get every live entry. Waiting polls are capped per server process and per client
(idp.revocations.waiting): beyond a cap the answer is ``429`` with ``Retry-After``.
"""

from __future__ import annotations

import time

from authlib.oauth2 import OAuth2Error
from flask import Blueprint, jsonify, request
from werkzeug.wrappers import Response

from idp.ext import services
from idp.revocations.waiting import RETRY_AFTER, Busy
from idp.web import error_response

bp = Blueprint("revocations", __name__)
MAX_WAIT = 30.0


@bp.route("/revocations")
def feed() -> Response:
    svc = services()
    server = svc.oauth
    try:
        client = server.authenticate_client(
            server.create_oauth2_request(None),
            ["client_secret_basic", "client_secret_post"],
            endpoint="revocations",
        )
    except OAuth2Error as err:
        resp = error_response(
            401, "invalid_client", err.description or "Client authentication failed."
        )
        resp.headers["WWW-Authenticate"] = 'Basic realm="idp"'
        return resp
    try:
        after = int(request.args.get("after", "0") or 0)
        wait = float(request.args.get("wait", "0") or 0)
        if not 0 <= after < 2**63 or not 0 <= wait <= MAX_WAIT:
            raise ValueError
    except ValueError:
        return error_response(
            400, "invalid_request", f"after must be a cursor and wait between 0 and {MAX_WAIT:g}."
        )
    deadline = time.monotonic() + wait
    entries = svc.revocations.since(after)
    if not entries and wait > 0:
        try:
            with svc.feed_waits.slot(client.client_id):
                seen: int | None = after
                while not entries and seen is not None:
                    # Wakes when the log moves past what was seen; the new rows may all
                    # have expired already, so then wait past them.
                    seen = svc.feed_waits.wait_past(seen, deadline)
                    if seen is not None:
                        entries = svc.revocations.since(after)
        except Busy as busy:
            resp = error_response(429, "slow_down", f"{busy.what}; retry later.")
            resp.headers["Retry-After"] = str(RETRY_AFTER)
            return resp
    cursor = entries[-1].id if entries else max(after, 0)
    resp = jsonify(revocations=[e.as_json() for e in entries], cursor=str(cursor))
    resp.headers["Cache-Control"] = "no-store"
    return resp
