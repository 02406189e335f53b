"""The client registration endpoint (RFC 7591 §3) and the client configuration endpoint
(RFC 7592 §2): JSON in, JSON out, over :class:`idp.clients.registration.Registrations`."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, abort, request
from werkzeug.wrappers import Response

from idp.clients.rfc7591 import InvalidRequest, RegistrationError, UnsupportedMediaType
from idp.ext import services
from idp.http import error, json_response
from idp.web import client_ip

bp = Blueprint("registration", __name__)
JSON = "application/json"
NO_CACHE = (("Pragma", "no-cache"),)  # RFC 7591 §3.2.1's examples, for HTTP/1.0 caches


def _refused(err: RegistrationError) -> Response:
    headers: tuple[tuple[str, str], ...] = NO_CACHE
    if err.status == 401:
        # RFC 6750 §3: the Bearer challenge, as at any protected resource.
        headers += (("WWW-Authenticate", 'Bearer error="invalid_token"'),)
    return error(err.status, err.error, err.description, headers).to_flask()


def _bearer() -> str | None:
    """The token of an RFC 6750 §2.1 ``Authorization: Bearer`` header."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        # Two values for one member: which one a reader takes is anyone's guess.
        raise InvalidRequest("The JSON object names a member twice.")
    return dict(pairs)


def _document() -> dict[str, Any]:
    """The request's JSON object (RFC 7591 §3.1). Flask answers 413 for a body over
    ``[server] max_body_bytes``."""
    if request.mimetype != JSON:
        raise UnsupportedMediaType("The request body must be application/json.")
    raw = request.get_data(cache=False)
    try:
        document = json.loads(raw.decode("utf-8"), object_pairs_hook=_unique)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidRequest("The request body is not valid JSON.") from None
    if not isinstance(document, dict):
        raise InvalidRequest("The request body must be a JSON object of client metadata.")
    return document


@bp.post("/register")
def register() -> Response:
    """RFC 7591 §3: registers a client; 201 with its client information."""
    registrations = services().registrations
    if registrations.mode == "closed":
        abort(404)
    try:
        token = _bearer()
        registrations.admit(token)
        out = registrations.register(_document(), token, client_ip())
    except RegistrationError as err:
        return _refused(err)
    resp = json_response(201, out, NO_CACHE).to_flask()
    resp.headers["Location"] = out["registration_client_uri"]
    return resp


@bp.route("/register/<client_id>", methods=["GET", "PUT", "DELETE"])
def configuration(client_id: str) -> Response:
    """RFC 7592 §2: read, replace or delete a registration with its registration access
    token."""
    registrations = services().registrations
    token = _bearer()
    try:
        if request.method == "DELETE":
            registrations.delete(client_id, token, client_ip())
            return Response(status=204, headers={"Cache-Control": "no-store", **dict(NO_CACHE)})
        if request.method == "PUT":
            registrations.authenticate(client_id, token)  # a stranger learns nothing more
            out = registrations.replace(client_id, token, _document(), client_ip())
        else:
            out = registrations.read(client_id, token)
    except RegistrationError as err:
        return _refused(err)
    return json_response(200, out, NO_CACHE).to_flask()


# Bearer-token JSON endpoints: no cookies, so no CSRF token (idp/__init__.py exempts them).
VIEWS = (register, configuration)
