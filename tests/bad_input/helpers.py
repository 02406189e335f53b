"""What every bad-input test checks: no 500, no trace, the right error shape, no stored
change; and small builders of hostile input."""

from __future__ import annotations

import base64
import html
import json
import re
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select

from idp.models import Base
from tests.conftest import ISSUER
from tests.support.auth import REDIRECT, pkce_pair, query_of

MARKUP = "<script>alert(1)</script>"
# A <script> element other than one loading idp's own static file (pages load passkeys.js).
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)", re.IGNORECASE)
JSON_PATHS = ("/token", "/userinfo", "/jwks.json", "/.well-known/", "/healthz")
TRACE_MARKERS = (
    "Traceback",
    'File "',
    "sqlalchemy",
    "psycopg",
    "werkzeug.exceptions",
    "authlib",
    "Exception",
)


def row_counts(svc: Any) -> dict[str, int]:
    """Rows per table; state_entries (login throttling counters) is left out."""
    with svc.db.transaction() as s:
        return {
            t.name: int(s.scalar(select(func.count()).select_from(t)) or 0)
            for t in Base.metadata.sorted_tables
            if t.name != "state_entries"
        }


def text_of(resp: Any) -> str:
    return resp.get_data().decode("utf-8", "replace")


def is_json_path(path: str) -> bool:
    return path.split("?")[0].startswith(JSON_PATHS)


def assert_clean_error(
    resp: Any, *, json_body: bool, status: int, error: str | None = None, description: bool = True
) -> None:
    """Exactly ``status``, no trace, the right shape, no unescaped markup, no redirect. For
    JSON, ``error`` is the RFC 6749 §5.2 code expected (None: any); ``description`` False
    skips only the ``error_description`` check."""
    text = text_of(resp)
    assert resp.status_code == status, (resp.status_code, text[:500])
    for marker in TRACE_MARKERS:
        assert marker not in text, f"{marker!r} leaked: {text[:500]}"
    assert "Location" not in resp.headers
    if json_body:
        assert resp.mimetype == "application/json", (resp.mimetype, text[:300])
        # JSON is never sniffed as HTML, so a reflected string cannot become markup.
        assert resp.headers.get("X-Content-Type-Options") == "nosniff"
        data = resp.get_json()
        assert isinstance(data, dict), text[:300]
        assert isinstance(data.get("error"), str) and data["error"], data
        if error is not None:
            assert data["error"] == error, data
        if description:
            assert isinstance(data.get("error_description"), str), data
            assert data["error_description"], data
        return
    assert error is None, "an HTML page carries no error code"
    assert resp.mimetype == "text/html", (resp.mimetype, text[:300])
    assert not INLINE_SCRIPT.search(text), "markup reflected unescaped"
    assert "<img" not in text.lower(), "markup reflected unescaped"


def assert_error_for(path: str, resp: Any, status: int) -> None:
    assert_clean_error(resp, json_body=is_json_path(path), status=status)


def assert_error_redirect(resp: Any, error: str) -> None:
    """An /authorize refusal reported to the client (RFC 6749 §4.1.2.1): a redirect to the
    registered URI only, carrying ``error`` and ``iss`` (RFC 9207), and nothing issued."""
    assert resp.status_code == 302, (resp.status_code, text_of(resp)[:500])
    location = resp.headers["Location"]
    assert location.startswith(REDIRECT + "?"), location
    q = query_of(location)
    assert "code" not in q and "access_token" not in q and "id_token" not in q, q
    assert not urlsplit(location).fragment, location
    assert q.get("iss") == ISSUER, q
    assert q.get("error") == error, q


def basic(user: bytes | str, secret: bytes | str | None = None) -> str:
    raw = user.encode() if isinstance(user, str) else user
    if secret is not None:
        raw += b":" + (secret.encode() if isinstance(secret, str) else secret)
    return "Basic " + base64.b64encode(raw).decode()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_jwt(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    return ".".join(
        [
            b64url(json.dumps(header).encode()),
            b64url(json.dumps(claims).encode()),
            b64url(signature),
        ]
    )


def same_site(location: str) -> bool:
    """Whether a browser following ``location`` stays on idp (WHATWG URL parsing:
    tabs and newlines vanish, a backslash is a slash, leading spaces are trimmed)."""
    cleaned = location.strip("\x00 ").translate({9: None, 10: None, 13: None})
    cleaned = cleaned.replace("\\", "/")
    parts = urlsplit(cleaned)
    if parts.scheme or parts.netloc:
        return parts.scheme in ("http", "https") and parts.netloc in (
            urlsplit(ISSUER).netloc,
            "localhost",
        )
    return cleaned.startswith("/") and not cleaned.startswith("//")


def hidden_next(page: str) -> str:
    match = re.search(r'name="next" value="([^"]*)"', page)
    assert match, "page has no next field"
    return html.unescape(match.group(1))


_, CHALLENGE = pkce_pair()
PKCE_CASES: dict[str, dict[str, str | None]] = {
    "plain": {"code_challenge": CHALLENGE, "code_challenge_method": "plain"},
    "challenge-without-method": {"code_challenge": CHALLENGE, "code_challenge_method": None},
    "method-without-challenge": {"code_challenge": None, "code_challenge_method": "S256"},
    "lowercase-method": {"code_challenge": CHALLENGE, "code_challenge_method": "s256"},
    "unknown-method": {"code_challenge": CHALLENGE, "code_challenge_method": MARKUP},
    "short-challenge": {"code_challenge": "abc"},
    "long-challenge": {"code_challenge": "a" * 129},
    "bad-chars-challenge": {"code_challenge": (MARKUP + "a" * 43)[:60]},
    "empty-challenge": {"code_challenge": ""},
}
