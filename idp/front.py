"""The WSGI application idp serves: the hot endpoints answered here, the rest by Flask.

Relying apps and resource servers call the token, introspection, revocation and
userinfo endpoints and fetch the JWKS and metadata far more often than people open
pages. Issue 8's profile put Flask's request, session and response objects at more
than half of a token request, and werkzeug's form parsing at a tenth. So a well-formed
request to one of those endpoints is answered here, from the WSGI environ, by the same
handlers the Flask routes call (idp.oauth.handlers, idp.documents); Flask answers
everything else, including what this front will not take (a wrong method, another
content type, a body without a length or over the limit), with its usual errors.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from sqlalchemy.exc import DataError, OperationalError
from werkzeug.datastructures import EnvironHeaders, MultiDict

from idp.changes.watch import one_request
from idp.documents import JWKS_PATH, METADATA_PATHS, Documents
from idp.ext import Services
from idp.http import (
    FORM,
    MAX_QUERY_BYTES,
    ProtocolRequest,
    ProtocolResponse,
    error,
    parse_form,
    refusal,
)
from idp.metrics import ROUTE_KEY
from idp.oauth import handlers
from idp.outage import DATABASE, REDIS

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
Handler = Callable[[Services, ProtocolRequest], ProtocolResponse]

HANDLERS: dict[str, tuple[tuple[str, ...], Handler]] = {
    "/token": (("POST",), handlers.token),
    "/introspect": (("POST",), handlers.introspect),
    "/revoke": (("POST",), handlers.revoke),
    "/userinfo": (("GET", "POST"), handlers.userinfo),
}


class Front:
    def __init__(
        self,
        app: WSGIApp,
        svc: Services,
        documents: Documents,
        https: bool,
        each_request: Callable[[], None],
    ) -> None:
        self.app = app
        self.svc = svc
        self.documents = documents
        self.https = https
        self.max_body = svc.config.server.max_body_bytes
        self.each_request = each_request

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        with one_request():
            path = environ.get("PATH_INFO", "")
            method = environ.get("REQUEST_METHOD", "")
            if path == JWKS_PATH or path in METADATA_PATHS:
                answer = self._document(path, method, environ, start_response)
                if answer is not None:
                    environ[ROUTE_KEY] = path  # one of a fixed few (idp.metrics)
                    return answer
            elif path in HANDLERS and method in HANDLERS[path][0]:
                answer = self._protocol(HANDLERS[path][1], environ, start_response)
                if answer is not None:
                    environ[ROUTE_KEY] = path
                    return answer
            return self.app(environ, start_response)

    # --- the JWKS and the metadata -----------------------------------------------------
    def _document(
        self, path: str, method: str, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes] | None:
        if method not in ("GET", "HEAD") or environ.get("QUERY_STRING"):
            return None
        try:
            doc = self.documents.at(path)
        except Exception:  # noqa: BLE001 - Flask's error handling answers properly
            return None
        if doc is None:
            return None
        headers = doc.headers(self._https(environ))
        if doc.matches(environ.get("HTTP_IF_NONE_MATCH", "")):
            start_response("304 Not Modified", headers[1:])
            return [b""]
        headers.append(("Content-Length", str(len(doc.body))))
        start_response("200 OK", headers)
        return [b"" if method == "HEAD" else doc.body]

    # --- token, introspection, revocation, userinfo ------------------------------------
    def _read(self, environ: dict[str, Any]) -> ProtocolRequest | ProtocolResponse | None:
        """The request, an answer that refuses it, or None to leave it to Flask."""
        query = environ.get("QUERY_STRING", "").encode("latin-1")
        if len(query) > MAX_QUERY_BYTES or environ.get("HTTP_TRANSFER_ENCODING"):
            return None
        method = environ["REQUEST_METHOD"]
        length_text = environ.get("CONTENT_LENGTH") or "0"
        if not length_text.isdigit():
            return None
        length = int(length_text)
        mimetype = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
        if length > self.max_body or (length and mimetype != FORM):
            return None
        if method == "POST" and mimetype not in (FORM, ""):
            return None
        try:
            args = parse_form(query) if query else MultiDict()
            form = parse_form(environ["wsgi.input"].read(length)) if length else MultiDict()
        except UnicodeDecodeError:
            return error(400, "invalid_request", "The request is not valid UTF-8.")
        return ProtocolRequest(
            method=method,
            path=environ["PATH_INFO"],
            args=args,
            form=form,
            headers=EnvironHeaders(environ),
            remote_addr=environ.get("REMOTE_ADDR") or "unknown",
            query_bytes=len(query),
            mimetype=mimetype or FORM,
            user_agent=environ.get("HTTP_USER_AGENT", ""),
        )

    def _protocol(
        self, handler: Handler, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes] | None:
        req = self._read(environ)
        if req is None:
            return None
        if isinstance(req, ProtocolResponse):
            return self._send(req, environ, start_response)
        self.each_request()
        refused = refusal(req)
        resp = refused.response() if refused is not None else self._handle(handler, req)
        return self._send(resp, environ, start_response)

    def _handle(self, handler: Handler, req: ProtocolRequest) -> ProtocolResponse:
        try:
            resp = handler(self.svc, req)
        except DataError as exc:
            # A value the database refuses (too long, bad encoding): bad input, not a fault.
            log.info("database refused a value: %s", exc.__class__.__name__)
            return error(400, "invalid_request", "A parameter has an invalid value.")
        except OperationalError as exc:
            # Fail closed: without the store we cannot tell a live token from a killed one.
            DATABASE.failed(exc)
            return error(503, "temporarily_unavailable", "Storage is unavailable.")
        except Exception as exc:
            import redis

            if isinstance(exc, redis.RedisError):
                REDIS.failed(exc)
                return error(503, "temporarily_unavailable", "Storage is unavailable.")
            log.exception("unhandled error on %s", req.path)
            return error(500, "server_error", "Something went wrong on our side.")
        return resp

    def _https(self, environ: dict[str, Any]) -> bool:
        return self.https or environ.get("wsgi.url_scheme") == "https"

    def _send(
        self, resp: ProtocolResponse, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        headers = [
            *resp.headers,
            ("Content-Length", str(len(resp.body))),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
        ]
        if self._https(environ):
            headers.append(("Strict-Transport-Security", "max-age=31536000"))
        start_response(f"{resp.status} {HTTPStatus(resp.status).phrase}", headers)
        return [resp.body]
