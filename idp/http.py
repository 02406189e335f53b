"""What the protocol endpoints read and answer, without Flask (issue 8).

The token, introspection, revocation and userinfo endpoints are what every relying app
and resource server calls, many times a second. They are written against these small
types: :class:`ProtocolRequest` and :class:`ProtocolResponse`. idp.front answers them
straight from the WSGI environ (Flask's request, session and response objects cost more
than the rest of a token request); for anything it will not take (a wrong method, an
odd content type, a body too large) Flask's routes answer, calling the same handlers.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

from werkzeug.datastructures import Headers, MultiDict
from werkzeug.wrappers import Response

MAX_QUERY_BYTES = 8192
FORM = "application/x-www-form-urlencoded"
# RFC 6749 §3.1 and §3.2: request parameters must not be included more than once.
AUTHORIZE_PARAMS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "login_hint",
    "id_token_hint",
    "dpop_jkt",
    "acr_values",
)
TOKEN_PARAMS = (
    "grant_type",
    "code",
    "client_id",
    "client_secret",
    "redirect_uri",
    "code_verifier",
    "refresh_token",
    "scope",
    "token",
    "token_type_hint",
    "client_assertion",
    "client_assertion_type",
)
CLIENT_AUTH_PATHS = ("/token", "/revoke", "/introspect", "/revocations", "/par")
ERROR_CODES = {
    400: "invalid_request",
    401: "invalid_client",
    403: "access_denied",
    404: "not_found",
    405: "invalid_request",
    413: "invalid_request",
    414: "invalid_request",
    415: "invalid_request",
    429: "slow_down",
    431: "invalid_request",
    503: "temporarily_unavailable",
}
STATUS_TEXT = {
    200: "200 OK",
    400: "400 BAD REQUEST",
    401: "401 UNAUTHORIZED",
    403: "403 FORBIDDEN",
    404: "404 NOT FOUND",
    500: "500 INTERNAL SERVER ERROR",
    503: "503 SERVICE UNAVAILABLE",
}


def parse_form(raw: bytes) -> MultiDict[str, str]:
    """An urlencoded body, strictly: invalid UTF-8 raises UnicodeDecodeError."""
    return MultiDict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True, errors="strict"))


@dataclass
class ProtocolRequest:
    """A request to a protocol endpoint, as the handlers see it."""

    method: str
    path: str
    args: MultiDict[str, str]
    form: MultiDict[str, str]
    headers: Any  # case-insensitive .get(): werkzeug's Headers or EnvironHeaders
    remote_addr: str
    query_bytes: int = 0
    mimetype: str = FORM
    user_agent: str = field(default="")
    dpop: Any = None  # the request's checked DPoP proof (idp.oauth.dpop.Proof), if any

    @classmethod
    def from_flask(cls, request: Any) -> ProtocolRequest:
        return cls(
            method=request.method,
            path=request.path,
            args=request.args,
            form=request.form if request.method == "POST" else MultiDict(),
            headers=request.headers,
            remote_addr=request.remote_addr or "unknown",
            query_bytes=len(request.query_string),
            mimetype=request.mimetype,
            user_agent=request.user_agent.string or "",
        )


@dataclass
class ProtocolResponse:
    status: int
    body: bytes
    headers: list[tuple[str, str]]

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)

    def set_header(self, name: str, value: str) -> None:
        lowered = name.lower()
        self.headers = [(k, v) for k, v in self.headers if k.lower() != lowered]
        self.headers.append((name, value))

    @property
    def location(self) -> str | None:
        """The Location header (authlib's RFC 9207 extension adds ``iss`` to it)."""
        return self.header("Location")

    @location.setter
    def location(self, value: str) -> None:
        self.set_header("Location", value)

    def to_flask(self) -> Response:
        return Response(self.body, status=self.status, headers=Headers(self.headers))


def json_response(
    status: int, data: Any, headers: Iterable[tuple[str, str]] = ()
) -> ProtocolResponse:
    body = json.dumps(data, separators=(",", ":")).encode()
    return ProtocolResponse(
        status,
        body,
        [("Content-Type", "application/json"), ("Cache-Control", "no-store"), *headers],
    )


def error(
    status: int, code: str, description: str, headers: Iterable[tuple[str, str]] = ()
) -> ProtocolResponse:
    """RFC 6749 §5.2 JSON, never cached."""
    return json_response(status, {"error": code, "error_description": description}, headers)


def _has_nul(values: MultiDict[str, str]) -> bool:
    return any("\x00" in v for _, v in values.items(multi=True))


def _repeated(values: MultiDict[str, str], names: tuple[str, ...]) -> str | None:
    # One pass over the few names present, not a lookup of every name that could be.
    return next((k for k, vs in values.lists() if len(vs) > 1 and k in names), None)


def basic_credentials_malformed(authorization: str) -> bool:
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return True
    return ":" not in decoded or "\x00" in unquote(decoded)


@dataclass(frozen=True)
class Refusal:
    """Why a request is turned away before any endpoint sees it."""

    status: int
    code: str
    description: str
    headers: tuple[tuple[str, str], ...] = ()

    def response(self) -> ProtocolResponse:
        return error(self.status, self.code, self.description, self.headers)


def refusal(req: ProtocolRequest) -> Refusal | None:
    """Input no endpoint can accept, refused before anything else runs. (Form decoding
    errors are the caller's: they happen while the form is read.)"""
    if req.query_bytes > MAX_QUERY_BYTES:
        return Refusal(414, "invalid_request", "The query string is too long.")
    # NUL is valid in no parameter, and PostgreSQL refuses it in text.
    if _has_nul(req.args) or _has_nul(req.form):
        return Refusal(400, "invalid_request", "Parameters must not contain NUL.")
    if req.path in CLIENT_AUTH_PATHS:
        authorization = req.headers.get("Authorization", "")
        if basic_credentials_malformed(authorization):
            return Refusal(
                401,
                "invalid_client",
                "Malformed Basic credentials.",
                (("WWW-Authenticate", 'Basic realm="idp"'),),
            )
        methods = (
            bool(authorization and authorization.lower().startswith("basic ")),
            "client_secret" in req.form,
            "client_assertion" in req.form,
        )
        if sum(methods) > 1 or (authorization and "client_secret" in req.form):
            return Refusal(400, "invalid_request", "Use one client authentication method, not two.")
        if name := _repeated(req.form, TOKEN_PARAMS) or _repeated(req.args, TOKEN_PARAMS):
            return Refusal(400, "invalid_request", f"Parameter {name} is repeated.")
    return None
