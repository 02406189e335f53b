"""CORS for browser apps (issue 11 item 6): a single-page app calls /token, /userinfo
and /revoke itself (with PKCE and DPoP), so those answer cross-origin requests from the
origins of registered redirect URIs; the JWKS and the metadata are public documents and
answer any origin. Never with credentials: these endpoints take no cookies, so
``Access-Control-Allow-Credentials`` is never sent and ``*`` is used only where nothing
is private.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.changes.cache import ViewCache
from idp.changes.models import CLIENTS
from idp.changes.watch import Generations
from idp.clients.models import Client
from idp.db import Database
from idp.documents import JWKS_PATH, METADATA_PATHS

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

FOR_CLIENTS = frozenset({"/token", "/userinfo", "/revoke"})
PUBLIC = frozenset({JWKS_PATH, *METADATA_PATHS})
ALLOW_HEADERS = "Authorization, Content-Type, DPoP"
EXPOSE_HEADERS = "DPoP-Nonce, WWW-Authenticate"


def web_origin(uri: str) -> str | None:
    """The origin (RFC 6454) of an http(s) URI: scheme, host and a non-default port."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def _load_origins(s: Session, _key: str) -> frozenset[str]:
    origins: set[str] = set()
    for uris in s.scalars(select(Client.redirect_uris).where(Client.disabled.is_(False))):
        origins.update(o for o in map(web_origin, uris or ()) if o)
    return frozenset(origins)


def origin_cache(db: Database, generations: Generations) -> ViewCache[frozenset[str]]:
    """The origins of every enabled client's redirect URIs, read again when a client
    changes anywhere."""
    return ViewCache(db, generations, CLIENTS, _load_origins)


class Cors:
    def __init__(self, app: WSGIApp, origins: ViewCache[frozenset[str]]) -> None:
        self.app = app
        self.origins = origins

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        origin = environ.get("HTTP_ORIGIN")
        if not origin or (path not in FOR_CLIENTS and path not in PUBLIC):
            return self.app(environ, start_response)
        public = path in PUBLIC
        allowed = public or origin in (self.origins.get("*") or frozenset())
        allow_origin = "*" if public else origin
        if environ.get("REQUEST_METHOD") == "OPTIONS" and environ.get(
            "HTTP_ACCESS_CONTROL_REQUEST_METHOD"
        ):
            # A preflight: answered here (an unknown origin gets no CORS headers, so the
            # browser refuses the request it was asking about).
            headers = [("Vary", "Origin"), ("Content-Length", "0")]
            if allowed:
                headers += [
                    ("Access-Control-Allow-Origin", allow_origin),
                    ("Access-Control-Allow-Methods", "GET, POST"),
                    ("Access-Control-Allow-Headers", ALLOW_HEADERS),
                    ("Access-Control-Max-Age", "600"),
                ]
            start_response("204 No Content", headers)
            return [b""]

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            headers = [*headers, ("Vary", "Origin")]
            if allowed:
                headers += [
                    ("Access-Control-Allow-Origin", allow_origin),
                    ("Access-Control-Expose-Headers", EXPOSE_HEADERS),
                ]
            return start_response(status, headers, exc_info)

        return self.app(environ, start)
