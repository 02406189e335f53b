"""Bad input anywhere gets a clear error, never a 500, never a trace, never a stored change.

SPEC §5-6 and SECURITY-CHECKLIST: every endpoint is fed malformed, oversized and hostile
input. Protocol endpoints (/token, /userinfo, /jwks.json, /.well-known/*, /healthz) answer
RFC 6749 §5.2 JSON (``error``, ``error_description``); browser pages answer a clean HTML
page that never echoes markup unescaped. Row counts of every table (except
``state_entries``, which counts login throttling) are the same before and after.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import re
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt as pyjwt
import pytest
from joserfc.jwk import ECKey
from sqlalchemy import func, select

from idp.models import Base
from tests.conftest import ISSUER
from tests.support.auth import REDIRECT, csrf_from, pkce_pair, query_of

MARKUP = "<script>alert(1)</script>"
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
PG_NUL = "PostgreSQL rejects NUL in text; the DataError escapes as a 500"


# --- helpers --------------------------------------------------------------------------


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
    resp: Any, *, json_body: bool, status: int | set[int] | None = None, description: bool = True
) -> dict[str, Any] | None:
    """A 4xx, no trace, the right shape, no unescaped markup, no redirect. ``description``
    False skips only the ``error_description`` check."""
    text = text_of(resp)
    assert resp.status_code != 500, text[:500]
    assert 400 <= resp.status_code < 500, (resp.status_code, text[:500])
    if status is not None:
        allowed = {status} if isinstance(status, int) else status
        assert resp.status_code in allowed, (resp.status_code, text[:500])
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
        if description:
            assert isinstance(data.get("error_description"), str), data
            assert data["error_description"], data
        return data  # type: ignore[no-any-return]
    assert resp.mimetype == "text/html", (resp.mimetype, text[:300])
    assert "<script" not in text.lower(), "markup reflected unescaped"
    assert "<img" not in text.lower(), "markup reflected unescaped"
    return None


def assert_error_for(path: str, resp: Any, status: int | set[int] | None = None) -> None:
    assert_clean_error(resp, json_body=is_json_path(path), status=status)


def assert_refused(resp: Any, errors: set[str] | None = None) -> None:
    """An /authorize refusal: a 400 page, or an error redirect to the registered URI only."""
    if resp.status_code in (302, 303):
        location = resp.headers["Location"]
        assert location.startswith(REDIRECT + "?"), location
        q = query_of(location)
        assert "code" not in q and "access_token" not in q and "id_token" not in q, q
        assert not urlsplit(location).fragment, location
        assert q.get("iss") == ISSUER, q
        assert q.get("error"), q
        if errors is not None:
            assert q["error"] in errors, q
        return
    assert_clean_error(resp, json_body=False, status=400)


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


# --- fixtures -------------------------------------------------------------------------


@pytest.fixture
def rp(auth: Any) -> Any:
    """A confidential, first-party client."""
    return auth.oauth_client(
        "rp", grant_types=["authorization_code", "refresh_token", "client_credentials"]
    )


@pytest.fixture
def spa(auth: Any) -> Any:
    """A public client (PKCE is mandatory for it)."""
    return auth.oauth_client("spa", public=True)


@pytest.fixture
def alice(auth: Any) -> Any:
    return auth.user()


@pytest.fixture
def logged_in(auth: Any, alice: Any) -> Any:
    resp = auth.login()
    assert resp.status_code == 303
    return alice


@pytest.fixture
def tokens(auth: Any, rp: Any, logged_in: Any) -> dict[str, Any]:
    return auth.tokens(rp)


ALL_ENDPOINTS = [
    ("GET", "/authorize"),
    ("POST", "/authorize"),
    ("POST", "/token"),
    ("GET", "/userinfo"),
    ("POST", "/userinfo"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("GET", "/signup"),
    ("POST", "/signup"),
    ("GET", "/logout"),
    ("POST", "/logout"),
    ("GET", "/account"),
    ("GET", "/jwks.json"),
    ("GET", "/.well-known/openid-configuration"),
    ("GET", "/.well-known/oauth-authorization-server"),
    ("GET", "/healthz"),
]
POST_ENDPOINTS = [path for method, path in ALL_ENDPOINTS if method == "POST"]


# --- limits ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [(m, p) for m, p in ALL_ENDPOINTS],
)
def test_query_string_over_8kb_is_414(client: Any, svc: Any, method: str, path: str) -> None:
    before = row_counts(svc)
    resp = client.open(path + "?state=" + "a" * 9000, method=method)
    assert_error_for(path, resp, status=414)
    assert row_counts(svc) == before


def test_query_string_over_8kb_with_valid_csrf_is_414(client: Any, svc: Any, alice: Any) -> None:
    token = csrf_from(text_of(client.get("/login")))
    before = row_counts(svc)
    resp = client.post(
        "/login?next=/" + "a" * 9000,
        data={"csrf_token": token, "username": "alice", "password": "correct horse battery"},
    )
    assert_clean_error(resp, json_body=False, status=414)
    assert row_counts(svc) == before


@pytest.mark.parametrize("path", POST_ENDPOINTS)
def test_form_body_over_max_body_bytes_is_413(client: Any, svc: Any, path: str) -> None:
    before = row_counts(svc)
    limit = svc.config.server.max_body_bytes
    resp = client.post(path, data={"grant_type": "client_credentials", "pad": "x" * (limit + 1)})
    assert_error_for(path, resp, status=413)
    assert row_counts(svc) == before


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/octet-stream", "multipart/form-data; boundary=xyz"],
)
def test_token_other_body_over_max_is_413_json(client: Any, svc: Any, content_type: str) -> None:
    limit = svc.config.server.max_body_bytes
    body = b'{"grant_type": "' + b"x" * (limit + 1) + b'"}'
    resp = client.post("/token", data=body, content_type=content_type)
    assert_clean_error(resp, json_body=True, status=413)


def test_token_body_over_max_with_valid_client_is_413(client: Any, svc: Any, rp: Any) -> None:
    before = row_counts(svc)
    limit = svc.config.server.max_body_bytes
    resp = client.post(
        "/token",
        headers=rp.basic(),
        data={"grant_type": "client_credentials", "scope": "a" * (limit + 1)},
    )
    assert_clean_error(resp, json_body=True, status=413)
    assert row_counts(svc) == before


# --- unknown paths and wrong methods --------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/nope",
        "/",
        "/.well-known/nope",
        "/.well-known/openid-configuration/extra",
        "/token/extra",
        "/jwks.json.bak",
        "/" + MARKUP,
        "/%3Cscript%3Ealert(1)%3C/script%3E",
        "/%00",
        "/%ff%fe",
        "/..%2f..%2fetc%2fpasswd",
        "/static/..%2f..%2fconfig.toml",
        "/static/../../config.toml",
        "/a" * 2000,
    ],
)
def test_unknown_path_is_404(client: Any, svc: Any, path: str) -> None:
    before = row_counts(svc)
    resp = client.get(path)
    assert_error_for(path, resp, status=404)
    assert row_counts(svc) == before


WRONG_METHODS = [
    ("GET", "/token"),
    ("PUT", "/token"),
    ("DELETE", "/token"),
    ("PUT", "/userinfo"),
    ("DELETE", "/userinfo"),
    ("POST", "/jwks.json"),
    ("DELETE", "/jwks.json"),
    ("POST", "/.well-known/openid-configuration"),
    ("PUT", "/.well-known/oauth-authorization-server"),
    ("POST", "/healthz"),
    ("PUT", "/authorize"),
    ("DELETE", "/authorize"),
    ("PATCH", "/login"),
    ("DELETE", "/signup"),
    ("PUT", "/logout"),
    ("POST", "/account"),
    ("DELETE", "/account"),
]


@pytest.mark.parametrize(("method", "path"), WRONG_METHODS)
def test_wrong_method_is_405(client: Any, svc: Any, method: str, path: str) -> None:
    before = row_counts(svc)
    resp = client.open(path, method=method, data={"x": MARKUP})
    assert_error_for(path, resp, status=405)
    assert row_counts(svc) == before


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/token"), ("POST", "/jwks.json"), ("POST", "/account")]
)
def test_wrong_method_405_lists_allowed_methods(client: Any, method: str, path: str) -> None:
    resp = client.open(path, method=method)
    assert resp.status_code == 405
    assert "Allow" in resp.headers


# --- metadata endpoints: junk is ignored, never a 500 ---------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/jwks.json",
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
        "/healthz",
    ],
)
@pytest.mark.parametrize("query", ["%ff%fe=%zz", "x=" + MARKUP, "a=1&a=2&a=%00", "%", "=&&=="])
def test_metadata_ignores_junk_query(client: Any, svc: Any, path: str, query: str) -> None:
    before = row_counts(svc)
    resp = client.get(path + "?" + query)
    if "%00" in query:
        assert_error_for(path, resp, 400)  # NUL is refused in any parameter
    else:
        assert resp.status_code == 200
    assert isinstance(resp.get_json(force=True), dict)
    assert MARKUP not in text_of(resp)
    assert row_counts(svc) == before


@pytest.mark.parametrize("etag", ["garbage", '"' + "x" * 8000 + '"', MARKUP, ",,,", '*, W/"a"'])
def test_jwks_garbage_if_none_match_gets_the_document(client: Any, etag: str) -> None:
    resp = client.get("/jwks.json", headers={"If-None-Match": etag})
    assert resp.status_code == 200
    assert "keys" in json.loads(resp.get_data())


# --- /authorize: who may be redirected to ---------------------------------------------


def authorize_query(**params: Any) -> str:
    return "/authorize?" + urlencode(params)


@pytest.mark.parametrize(
    "client_id",
    [
        None,
        "",
        "nope",
        MARKUP,
        "x" * 5000,
        "rp ",
        " rp",
        "RP",
        "rp\n",
        "\u0433p",
        "../rp",
    ],
)
@pytest.mark.parametrize("with_session", [False, True])
def test_authorize_unknown_client_is_html_400_without_redirect(
    auth: Any, svc: Any, rp: Any, alice: Any, client_id: str | None, with_session: bool
) -> None:
    if with_session:
        auth.login()
    params = auth.authorize_params(rp, client_id=client_id, state=MARKUP)  # None: left out
    before = row_counts(svc)
    resp = auth.client.get("/authorize?" + urlencode(params))
    assert_clean_error(resp, json_body=False, status=400)
    assert row_counts(svc) == before


@pytest.mark.parametrize("client_id", ["\x00", "rp\x00"])
def test_authorize_nul_in_client_id_is_html_400(
    auth: Any,
    svc: Any,
    rp: Any,
    client_id: str,
) -> None:
    before = row_counts(svc)
    resp = auth.client.get(
        "/authorize?" + urlencode(auth.authorize_params(rp, client_id=client_id))
    )
    assert_clean_error(resp, json_body=False, status=400)
    assert row_counts(svc) == before


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.example/callback",
        REDIRECT + "#frag",
        REDIRECT + "#",
        "javascript:alert(1)",
        "javascript://rp.example.test/callback%0aalert(1)",
        "data:text/html," + MARKUP,
        "http://rp.example.test/callback",
        "HTTPS://rp.example.test/callback",
        REDIRECT + "/",
        REDIRECT + "?x=1",
        REDIRECT + "/../evil",
        REDIRECT + "%00",
        "https://rp.example.test.evil.example/callback",
        "https://rp.example.test@evil.example/callback",
        "//evil.example/callback",
        "/callback",
        MARKUP,
        REDIRECT + "x" * 4000,
    ],
)
@pytest.mark.parametrize("with_session", [False, True])
def test_authorize_unregistered_redirect_uri_is_html_400_without_redirect(
    auth: Any, svc: Any, rp: Any, alice: Any, redirect_uri: str, with_session: bool
) -> None:
    if with_session:
        auth.login()
    before = row_counts(svc)
    resp = auth.authorize(rp, redirect_uri=redirect_uri, state=MARKUP)
    assert_clean_error(resp, json_body=False, status=400)
    assert row_counts(svc) == before


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.example\\@rp.example.test/callback",
        'https://evil.example/"callback',
        "https://evil.example/caf\u00e9",
    ],
)
def test_authorize_redirect_uri_outside_error_charset_is_html_400(
    auth: Any, svc: Any, rp: Any, redirect_uri: str
) -> None:
    before = row_counts(svc)
    resp = auth.authorize(rp, redirect_uri=redirect_uri)
    assert_clean_error(resp, json_body=False, status=400)
    assert row_counts(svc) == before


@pytest.mark.parametrize(
    "raw",
    [
        "client_id=%ff%fe%fd&response_type=code",
        "client_id=rp&redirect_uri=%zz%&response_type=code",
        "client_id=rp&redirect_uri=https%3A%2F%2Frp.example.test%2Fcallback%ff&response_type=code",
        "%&%%&client_id=%",
        "client_id=rp&&&&response_type=code&=&==&redirect_uri",
        "client_id=%C0%AFrp&response_type=code",
    ],
)
def test_authorize_encoding_garbage_is_refused(
    auth: Any, svc: Any, rp: Any, logged_in: Any, raw: str
) -> None:
    before = row_counts(svc)
    resp = auth.client.get("/authorize?" + raw)
    assert_refused(resp)
    assert row_counts(svc) == before


# --- /authorize: what is asked ------------------------------------------------------


@pytest.mark.parametrize(
    "response_type",
    [
        "token",
        "id_token",
        "code token",
        "code id_token",
        "id_token token",
        "code id_token token",
        "none",
        "CODE",
        "code code",
        MARKUP,
        "",
    ],
)
def test_authorize_other_response_types_are_refused(
    auth: Any, svc: Any, rp: Any, logged_in: Any, response_type: str
) -> None:
    before = row_counts(svc)
    resp = auth.authorize(rp, response_type=response_type)
    assert_refused(resp, {"unsupported_response_type", "invalid_request", "unauthorized_client"})
    assert row_counts(svc) == before


@pytest.mark.parametrize("response_type", ['code"', "t\u00f6ken", "code\\"])
def test_authorize_response_type_outside_error_charset_is_refused(
    auth: Any, svc: Any, rp: Any, logged_in: Any, response_type: str
) -> None:
    before = row_counts(svc)
    resp = auth.authorize(rp, response_type=response_type)
    assert_refused(resp, {"unsupported_response_type", "invalid_request"})
    assert row_counts(svc) == before


def test_authorize_implicit_with_unknown_client_is_html_400(
    auth: Any, svc: Any, logged_in: Any
) -> None:
    before = row_counts(svc)
    resp = auth.client.get(
        authorize_query(
            response_type="token",
            client_id="nope",
            redirect_uri="https://evil.example/cb",
            state="s",
        )
    )
    assert_clean_error(resp, json_body=False, status=400)
    assert row_counts(svc) == before


_, CHALLENGE = pkce_pair()
PKCE_CASES = {
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


@pytest.mark.parametrize("case", list(PKCE_CASES))
@pytest.mark.parametrize("public", [False, True])
def test_authorize_bad_pkce_is_refused(
    auth: Any, svc: Any, rp: Any, spa: Any, logged_in: Any, case: str, public: bool
) -> None:
    before = row_counts(svc)
    resp = auth.authorize(spa if public else rp, **PKCE_CASES[case])
    assert_refused(resp, {"invalid_request"})
    assert row_counts(svc) == before


def test_authorize_public_client_without_pkce_is_refused(
    auth: Any, svc: Any, spa: Any, logged_in: Any
) -> None:
    before = row_counts(svc)
    resp = auth.authorize(spa, code_challenge=None, code_challenge_method=None)
    assert_refused(resp, {"invalid_request"})
    assert row_counts(svc) == before


@pytest.mark.parametrize(
    "extra",
    [
        {"max_age": "-1"},
        {"max_age": "abc"},
        {"max_age": "1.5"},
        {"max_age": "99999999999"},
        {"max_age": "0x10"},
        {"max_age": " 10"},
        {"max_age": MARKUP},
        {"prompt": "bogus"},
        {"prompt": MARKUP},
        {"prompt": "none login bogus"},
    ],
)
def test_authorize_bad_optional_parameters_are_refused(
    auth: Any, svc: Any, rp: Any, logged_in: Any, extra: dict[str, str]
) -> None:
    before = row_counts(svc)
    resp = auth.authorize(rp, **extra)
    assert_refused(resp, {"invalid_request"})
    assert row_counts(svc) == before


@pytest.mark.parametrize("max_age", ["\u00b2", "\u2460", "\u00b9\u00b2"])
def test_authorize_unicode_digit_max_age_is_refused(
    auth: Any, svc: Any, rp: Any, logged_in: Any, max_age: str
) -> None:
    before = row_counts(svc)
    resp = auth.authorize(rp, max_age=max_age)
    assert_refused(resp, {"invalid_request"})
    assert row_counts(svc) == before


@pytest.mark.parametrize("nonce", ["n" * 600, "n" * 5000])
def test_authorize_oversized_nonce_never_500s(
    backend: dict[str, Any],
    auth: Any,
    svc: Any,
    rp: Any,
    logged_in: Any,
    nonce: str,
) -> None:
    """A nonce longer than the stored column: refused, or accepted the same on every backend."""
    resp = auth.authorize(rp, nonce=nonce)
    assert resp.status_code != 500, text_of(resp)[:300]
    assert resp.status_code in (302, 400)


REPEATED_AUTHORIZE = {
    "client_id": ("client_id", "rp", "nope"),
    "client_id-same": ("client_id", "rp", "rp"),
    "redirect_uri": ("redirect_uri", REDIRECT, "https://evil.example/cb"),
    "redirect_uri-same": ("redirect_uri", REDIRECT, REDIRECT),
    "response_type": ("response_type", "code", "token"),
    "scope": ("scope", "openid", "openid email"),
    "state": ("state", "one", "two"),
    "code_challenge": ("code_challenge", CHALLENGE, "b" * 43),
    "code_challenge_method": ("code_challenge_method", "S256", "plain"),
    "nonce": ("nonce", "one", "two"),
}


@pytest.mark.parametrize(
    "case",
    [c for c in REPEATED_AUTHORIZE],
)
def test_authorize_repeated_parameter_is_refused(
    auth: Any, svc: Any, rp: Any, logged_in: Any, case: str
) -> None:
    name, first, second = REPEATED_AUTHORIZE[case]
    params = list(auth.authorize_params(rp).items())
    params = [(k, v) for k, v in params if k != name] + [(name, first), (name, second)]
    before = row_counts(svc)
    resp = auth.client.get("/authorize?" + urlencode(params))
    if name in ("client_id", "redirect_uri"):
        # Which one would the error go to? Neither: an HTML page.
        assert_clean_error(resp, json_body=False, status=400)
    else:
        assert_refused(resp, {"invalid_request"})
    assert row_counts(svc) == before


@pytest.mark.parametrize(
    "form",
    [
        {"decision": "allow"},
        {"decision": "allow", "csrf_token": "garbage"},
        {"decision": "allow", "csrf_token": MARKUP},
        {"decision": "allow", "csrf_token": "x" * 5000},
    ],
)
def test_authorize_post_without_valid_csrf_is_400(
    auth: Any, svc: Any, rp: Any, logged_in: Any, form: dict[str, str]
) -> None:
    before = row_counts(svc)
    resp = auth.client.post("/authorize?" + urlencode(auth.authorize_params(rp)), data=form)
    assert_clean_error(resp, json_body=False, status=400)
    assert row_counts(svc) == before


def test_authorize_post_with_hostile_decision_never_500s(auth: Any, svc: Any, alice: Any) -> None:
    third = auth.oauth_client("third", first_party=False)
    auth.login()
    page = auth.client.get("/authorize?" + urlencode(auth.authorize_params(third)))
    assert page.status_code == 200
    token = csrf_from(text_of(page))
    before = row_counts(svc)
    resp = auth.client.post(
        "/authorize?" + urlencode(auth.authorize_params(third)),
        data={"decision": MARKUP, "csrf_token": token},
    )
    assert resp.status_code == 200  # the consent page again, nothing decided
    assert "<script" not in text_of(resp).lower()
    assert row_counts(svc) == before


# --- /token ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "grant_type",
    [
        None,
        "",
        "password",
        "implicit",
        "token",
        "refresh_token",
        "CLIENT_CREDENTIALS",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "urn:ietf:params:oauth:grant-type:device_code",
        MARKUP,
        "x" * 5000,
    ],
)
def test_token_missing_or_unknown_grant_type(
    client: Any, svc: Any, rp: Any, grant_type: str | None
) -> None:
    data = {"scope": ""} if grant_type is None else {"grant_type": grant_type}
    before = row_counts(svc)
    resp = client.post("/token", data=data, headers=rp.basic())
    body = assert_clean_error(resp, json_body=True, status=400, description=False)
    assert body and body["error"] in {"unsupported_grant_type", "invalid_request"}
    assert row_counts(svc) == before


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("", "application/x-www-form-urlencoded"),
        ("grant_type=password", "application/x-www-form-urlencoded"),
        (json.dumps({"grant_type": "client_credentials"}), "application/json"),
    ],
)
def test_token_unsupported_grant_type_has_error_description(
    client: Any, rp: Any, body: str, content_type: str
) -> None:
    resp = client.post("/token", data=body, content_type=content_type, headers=rp.basic())
    assert_clean_error(resp, json_body=True, status=400)


@pytest.mark.parametrize("grant_type", ['pass"word', "p\u00e4ssword", "back\\slash"])
def test_token_grant_type_outside_error_charset(
    client: Any, svc: Any, rp: Any, grant_type: str
) -> None:
    before = row_counts(svc)
    resp = client.post("/token", data={"grant_type": grant_type}, headers=rp.basic())
    assert_clean_error(resp, json_body=True, status=400, description=False)
    assert row_counts(svc) == before


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (json.dumps({"grant_type": "client_credentials"}), "application/json"),
        ("grant_type=client_credentials", "text/plain"),
        ("grant_type=client_credentials", "application/xml"),
        (b"grant_type=client_credentials&scope=\xff\xfe", "application/x-www-form-urlencoded"),
        (b"\xff\xfe\x00\x01", "application/x-www-form-urlencoded"),
        ("grant_type=%zz%&code=%&%%", "application/x-www-form-urlencoded"),
        ("", "application/x-www-form-urlencoded"),
        ("&&&===&", "application/x-www-form-urlencoded"),
        ("{not json", "application/json"),
    ],
)
def test_token_body_garbage(client: Any, svc: Any, rp: Any, body: Any, content_type: str) -> None:
    before = row_counts(svc)
    resp = client.post("/token", data=body, content_type=content_type, headers=rp.basic())
    assert_clean_error(resp, json_body=True, status={400, 401, 415})
    assert row_counts(svc) == before


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic",
        "Basic ",
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"no-colon-here").decode(),
        basic("rp"),
        basic("rp", ""),
        basic("", "secret"),
        basic(":"),
        basic("rp", "wrong"),
        basic("rp", "wrong:with:colons"),
        basic("nope", "secret"),
        basic(MARKUP, MARKUP),
        basic("%ZZ", "%"),
        "Basic " + "A" * 20000,
        basic("rp", "x" * 10000),
        "Basic " + base64.b64encode(b"rp:secret").decode() + "====",
        "Basic\trp:secret",
        "Bearer something",
        "Digest username=rp",
        "basic",
        MARKUP,
    ],
)
def test_token_basic_auth_garbage_is_401(
    client: Any, svc: Any, rp: Any, authorization: str
) -> None:
    before = row_counts(svc)
    resp = client.post(
        "/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": authorization},
    )
    body = assert_clean_error(resp, json_body=True, status={400, 401})
    assert body and body["error"] in {"invalid_client", "invalid_request"}
    if resp.status_code == 401:
        assert "WWW-Authenticate" in resp.headers
    assert row_counts(svc) == before


@pytest.mark.parametrize("raw", [b"\xff\xfe:\xff", b"rp:\xff\xfe", b"\xc0\xaf"])
def test_token_basic_auth_invalid_utf8_is_401(client: Any, svc: Any, rp: Any, raw: bytes) -> None:
    before = row_counts(svc)
    resp = client.post(
        "/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": "Basic " + base64.b64encode(raw).decode()},
    )
    body = assert_clean_error(resp, json_body=True, status={400, 401})
    assert body and body["error"] in {"invalid_client", "invalid_request"}
    assert row_counts(svc) == before


@pytest.mark.parametrize("how", ["basic", "basic-escaped", "post"])
def test_token_nul_in_client_id_is_401(
    request: pytest.FixtureRequest,
    client: Any,
    svc: Any,
    rp: Any,
    how: str,
) -> None:
    data = {"grant_type": "client_credentials"}
    headers = {}
    if how == "basic":
        headers["Authorization"] = basic("rp\x00", "secret")
    elif how == "basic-escaped":
        headers["Authorization"] = basic("rp%00", "secret")
    else:
        data.update(client_id="rp\x00", client_secret="secret")
    before = row_counts(svc)
    resp = client.post("/token", data=data, headers=headers)
    body = assert_clean_error(resp, json_body=True, status={400, 401})
    assert body and body["error"] in {"invalid_client", "invalid_request"}
    assert row_counts(svc) == before


def test_token_two_client_auth_methods_are_refused(client: Any, svc: Any, rp: Any) -> None:
    before = row_counts(svc)
    resp = client.post(
        "/token",
        headers=rp.basic(),
        data={
            "grant_type": "client_credentials",
            "client_id": rp.client_id,
            "client_secret": rp.secret,
        },
    )
    body = assert_clean_error(resp, json_body=True, status={400, 401})
    assert body and body["error"] in {"invalid_request", "invalid_client"}
    assert row_counts(svc) == before


def test_token_credentials_in_query_string_are_refused(client: Any, svc: Any, rp: Any) -> None:
    """RFC 6749 §2.3.1: client credentials MUST NOT be included in the request URI."""
    before = row_counts(svc)
    resp = client.post(
        "/token?"
        + urlencode(
            {
                "grant_type": "client_credentials",
                "client_id": rp.client_id,
                "client_secret": rp.secret,
            }
        ),
        data={},
    )
    assert_clean_error(resp, json_body=True, status={400, 401})
    assert row_counts(svc) == before


@pytest.mark.parametrize("scope", ['a"b', "\u00e9", "back\\slash"])
def test_token_client_credentials_scope_outside_error_charset(
    client: Any, svc: Any, rp: Any, scope: str
) -> None:
    before = row_counts(svc)
    resp = client.post(
        "/token", headers=rp.basic(), data={"grant_type": "client_credentials", "scope": scope}
    )
    body = assert_clean_error(resp, json_body=True, status=400)
    assert body and body["error"] in {"invalid_scope", "invalid_request"}
    assert row_counts(svc) == before


@pytest.mark.parametrize(
    "scope",
    [
        MARKUP,
        "openid",
        "x" * 5000,
        "a\x00b",
    ],
)
def test_token_client_credentials_bad_scope(client: Any, svc: Any, rp: Any, scope: str) -> None:
    before = row_counts(svc)
    resp = client.post(
        "/token", headers=rp.basic(), data={"grant_type": "client_credentials", "scope": scope}
    )
    body = assert_clean_error(resp, json_body=True, status=400)
    assert body and body["error"] in {"invalid_scope", "invalid_request"}
    assert row_counts(svc) == before


@pytest.mark.parametrize(
    "code", [None, "", "x" * 20000, MARKUP, "\x00", "%ff", "\u00e9" * 50, "a b c"]
)
def test_token_bad_code_is_invalid_grant(auth: Any, svc: Any, rp: Any, code: str | None) -> None:
    data = {
        "grant_type": "authorization_code",
        "redirect_uri": rp.redirect_uri,
        "code_verifier": "v" * 50,
    }
    if code is not None:
        data["code"] = code
    before = row_counts(svc)
    resp = auth.token(rp, data)
    body = assert_clean_error(resp, json_body=True, status=400)
    assert body and body["error"] in {"invalid_grant", "invalid_request"}
    assert row_counts(svc) == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("code_verifier", None),
        ("code_verifier", ""),
        ("code_verifier", "wrong-" + "v" * 50),
        ("code_verifier", "short"),
        ("code_verifier", MARKUP + "v" * 50),
        ("code_verifier", "v" * 10000),
        ("redirect_uri", "https://evil.example/callback"),
        ("redirect_uri", REDIRECT + "#x"),
        ("redirect_uri", None),
        ("redirect_uri", MARKUP),
    ],
)
def test_token_code_exchange_with_bad_binding_is_refused(
    auth: Any, svc: Any, rp: Any, logged_in: Any, field: str, value: str | None
) -> None:
    code, verifier, _ = auth.code_for(rp)
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": rp.redirect_uri,
        "code_verifier": verifier,
    }
    if value is None:
        data.pop(field)
    else:
        data[field] = value
    before = row_counts(svc)
    resp = auth.token(rp, data)
    body = assert_clean_error(resp, json_body=True, status=400)
    assert body and body["error"] in {"invalid_grant", "invalid_request"}
    assert row_counts(svc) == before


REPEATED_TOKEN = {
    "grant_type": ("grant_type", "authorization_code", "client_credentials"),
    "grant_type-same": ("grant_type", "authorization_code", "authorization_code"),
    "code-valid-first": ("code", "{code}", "garbage"),
    "code-valid-second": ("code", "garbage", "{code}"),
    "code-same": ("code", "{code}", "{code}"),
    "client_id": ("client_id", "spa", "rp"),
    "redirect_uri": ("redirect_uri", REDIRECT, "https://evil.example/cb"),
    "code_verifier": ("code_verifier", "{verifier}", "w" * 50),
}


@pytest.mark.parametrize(
    "case",
    [c for c in REPEATED_TOKEN],
)
def test_token_repeated_parameter_is_refused(
    auth: Any, svc: Any, spa: Any, logged_in: Any, case: str
) -> None:
    """RFC 6749 §3.2: request parameters MUST NOT be included more than once; the refused
    request must not burn the code."""
    code, verifier, _ = auth.code_for(spa)
    fields = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": spa.redirect_uri,
        "client_id": spa.client_id,
        "code_verifier": verifier,
    }
    name, first, second = REPEATED_TOKEN[case]
    pairs = [(k, v) for k, v in fields.items() if k != name]
    pairs += [(name, v.format(code=code, verifier=verifier)) for v in (first, second)]
    before = row_counts(svc)
    resp = auth.client.post(
        "/token", data=urlencode(pairs), content_type="application/x-www-form-urlencoded"
    )
    body = assert_clean_error(resp, json_body=True, status={400, 401})
    assert body and body["error"] in {"invalid_request", "invalid_client", "invalid_grant"}
    assert row_counts(svc) == before
    # The client retries without the mistake, and the code still works.
    retry = auth.exchange(spa, code, verifier)
    assert retry.status_code == 200, retry.get_json()


class TestPkceOptionalForConfidentialClients:
    """With [oauth] pkce_required = false a confidential client may skip PKCE; the
    downgrade (a code_verifier for a code issued without a challenge) is still refused."""

    @pytest.fixture
    def config_overrides(self) -> dict[str, dict[str, Any]]:
        return {"oauth": {"pkce_required": False}}

    def test_code_verifier_without_challenge_is_refused(
        self, auth: Any, svc: Any, rp: Any, logged_in: Any
    ) -> None:
        code, _, _ = auth.code_for(rp, code_challenge=None, code_challenge_method=None)
        before = row_counts(svc)
        resp = auth.exchange(rp, code, "v" * 50)
        body = assert_clean_error(resp, json_body=True, status=400)
        assert body and body["error"] == "invalid_request"
        assert row_counts(svc) == before
        # Control: the same flow without a verifier is fine.
        code, _, _ = auth.code_for(rp, code_challenge=None, code_challenge_method=None)
        assert auth.exchange(rp, code, None).status_code == 200

    @pytest.mark.parametrize("case", ["plain", "challenge-without-method", "unknown-method"])
    def test_bad_pkce_is_still_refused(
        self, auth: Any, svc: Any, rp: Any, logged_in: Any, case: str
    ) -> None:
        before = row_counts(svc)
        resp = auth.authorize(rp, **PKCE_CASES[case])
        assert_refused(resp, {"invalid_request"})
        assert row_counts(svc) == before

    def test_public_client_without_pkce_is_still_refused(
        self, auth: Any, svc: Any, spa: Any, logged_in: Any
    ) -> None:
        before = row_counts(svc)
        resp = auth.authorize(spa, code_challenge=None, code_challenge_method=None)
        assert_refused(resp, {"invalid_request"})
        assert row_counts(svc) == before


# --- /userinfo ------------------------------------------------------------------------


def assert_bearer_refused(resp: Any, status: int | set[int] = 401) -> None:
    assert_clean_error(resp, json_body=True, status=status)
    assert resp.headers.get("WWW-Authenticate", "").startswith("Bearer")


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer x",
        "Bearer a.b.c",
        "Bearer ...",
        "Bearer " + "A" * 10000,
        "Bearer " + ".".join(["A" * 3000] * 3),
        "Bearer " + MARKUP,
        "Bearer \u00e9\u00e9",
        "Bearer eyJhbGciOiJub25lIn0",
        "Basic " + base64.b64encode(b"rp:secret").decode(),
        "Token abc",
        MARKUP,
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_userinfo_garbage_bearer_is_401(
    client: Any, svc: Any, authorization: str | None, method: str
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    before = row_counts(svc)
    resp = client.open("/userinfo", method=method, headers=headers)
    assert_bearer_refused(resp)
    assert row_counts(svc) == before


@pytest.fixture
def forge(svc: Any, alice: Any, rp: Any) -> Any:
    """Builds access-token lookalikes: unsigned, signed by an attacker, or signed by idp's
    own key but failing one of the checks of RFC 9068 §4."""
    now = int(svc.clock.now().timestamp())  # the app's frozen clock, not time.time()
    idp_key = svc.keys.signer("ES256")
    rsa_key = svc.keys.signer("RS256")
    attacker_key = ECKey.generate_key("P-256")

    class Forge:
        kid = idp_key.kid
        issued_at = now
        rsa_public_jwk = {**rsa_key.key.as_dict(private=False), "kid": rsa_key.kid}

        @staticmethod
        def claims(**extra: Any) -> dict[str, Any]:
            base = {
                "iss": ISSUER,
                "sub": alice.id,
                "aud": rp.client_id,
                "client_id": rp.client_id,
                "scope": "openid profile email",
                "iat": now,
                "nbf": now,
                "exp": now + 300,
                "jti": "forged",
            }
            base.update(extra)
            return {k: v for k, v in base.items() if v is not None}

        @staticmethod
        def real(header: dict[str, Any], claims: dict[str, Any]) -> str:
            """Signed with idp's active ES256 key (PyJWT: it writes any header)."""
            return pyjwt.encode(
                claims,
                idp_key.key.as_pem(private=True),
                algorithm="ES256",
                headers={"kid": idp_key.kid, **header},
            )

        @staticmethod
        def attacker(header: dict[str, Any], claims: dict[str, Any]) -> str:
            return pyjwt.encode(
                claims, attacker_key.as_pem(private=True), algorithm="ES256", headers=header
            )

        attacker_jwk = attacker_key.as_dict(private=False)

    return Forge


def forged_token(forge: Any, client: Any, case: str) -> str:
    c = forge.claims
    at = {"typ": "at+jwt"}
    if case.startswith("alg-"):
        alg = "NONE" if case == "alg-NONE" else "none"
        token = unsigned_jwt({"alg": alg, "typ": "at+jwt", "kid": forge.kid}, c())
        return token[:-1] if case == "alg-none-no-signature" else token
    if case == "hs256-with-public-key":
        # The classic confusion: the published RSA key used as an HMAC secret.
        jwk = forge.rsa_public_jwk
        header = {"alg": "HS256", "typ": "at+jwt", "kid": jwk["kid"]}
        signing_input = ".".join(
            [b64url(json.dumps(header).encode()), b64url(json.dumps(c()).encode())]
        )
        sig = hmac.new(json.dumps(jwk).encode(), signing_input.encode(), hashlib.sha256).digest()
        return signing_input + "." + b64url(sig)
    real_key_cases: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
        "wrong-typ": ({"typ": "JWT"}, c()),
        "logout-typ": ({"typ": "logout+jwt"}, c()),
        "no-typ": ({}, c()),
        "crit-header": ({**at, "crit": ["exp"]}, c()),
        "wrong-issuer": (at, c(iss="https://evil.example")),
        "issuer-trailing-slash": (at, c(iss=ISSUER + "/")),
        "expired": (at, c(exp=forge.issued_at - 3600)),
        "just-expired": (at, c(exp=forge.issued_at)),
        "not-yet-valid": (at, c(nbf=forge.issued_at + 3600)),
        "no-exp": (at, c(exp=None)),
        "string-exp": (at, c(exp="soon")),
        "no-scope-openid": (at, c(scope="profile")),
        "unknown-sub": (at, c(sub="nobody")),
        "markup-sub": (at, c(sub=MARKUP)),
    }
    if case in real_key_cases:
        return str(forge.real(*real_key_cases[case]))
    if case == "attacker-key-same-kid":
        return str(forge.attacker({**at, "kid": forge.kid}, c()))
    if case == "attacker-key-embedded-jwk":
        return str(forge.attacker({**at, "kid": forge.kid, "jwk": forge.attacker_jwk}, c()))
    if case == "attacker-key-jku":
        return str(forge.attacker({**at, "kid": "evil", "jku": "https://evil.example/jwks"}, c()))
    if case == "unknown-kid":
        token = str(forge.real(at, c()))
        head = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
        head["kid"] = "nope"
        return ".".join([b64url(json.dumps(head).encode()), *token.split(".")[1:]])
    if case == "signature-stripped":
        return str(forge.real(at, c())).rsplit(".", 1)[0] + "."
    if case == "five-parts-jwe-shape":
        return "a.b.c.d.e"
    raise AssertionError(case)


FORGED = [
    "alg-none",
    "alg-none-no-signature",
    "alg-NONE",
    "hs256-with-public-key",
    "wrong-typ",
    "logout-typ",
    "no-typ",
    "crit-header",
    "wrong-issuer",
    "issuer-trailing-slash",
    "expired",
    "just-expired",
    "not-yet-valid",
    "no-exp",
    "string-exp",
    "unknown-sub",
    "markup-sub",
    "attacker-key-same-kid",
    "attacker-key-embedded-jwk",
    "attacker-key-jku",
    "unknown-kid",
    "signature-stripped",
    "five-parts-jwe-shape",
]


def test_userinfo_forge_control_well_formed_token_is_accepted(client: Any, forge: Any) -> None:
    """The forger is sound: without a defect its token passes, so each 401 below is the
    check it targets, not a broken fixture."""
    token = forge.real({"typ": "at+jwt"}, forge.claims())
    assert client.get("/userinfo", headers={"Authorization": "Bearer " + token}).status_code == 200


@pytest.mark.parametrize("case", FORGED)
def test_userinfo_forged_access_token_is_401(client: Any, svc: Any, forge: Any, case: str) -> None:
    token = forged_token(forge, client, case)
    before = row_counts(svc)
    for method in ("GET", "POST"):
        resp = client.open("/userinfo", method=method, headers={"Authorization": "Bearer " + token})
        assert_bearer_refused(resp)
    assert row_counts(svc) == before


def test_userinfo_token_without_openid_scope_is_403(client: Any, forge: Any) -> None:
    resp = client.get(
        "/userinfo",
        headers={"Authorization": "Bearer " + forged_token(forge, client, "no-scope-openid")},
    )
    body = assert_clean_error(resp, json_body=True, status=403)
    assert body and body["error"] == "insufficient_scope"


def test_userinfo_id_token_is_not_an_access_token(
    client: Any, svc: Any, tokens: dict[str, Any]
) -> None:
    before = row_counts(svc)
    for method in ("GET", "POST"):
        resp = client.open(
            "/userinfo", method=method, headers={"Authorization": "Bearer " + tokens["id_token"]}
        )
        assert_bearer_refused(resp)
    assert row_counts(svc) == before


def test_userinfo_token_in_two_places_is_400(client: Any, svc: Any, tokens: dict[str, Any]) -> None:
    """RFC 6750 §2/§3.1: more than one method of sending the token is invalid_request."""
    resp = client.post(
        "/userinfo",
        headers={"Authorization": "Bearer " + tokens["access_token"]},
        data={"access_token": tokens["access_token"]},
    )
    body = assert_clean_error(resp, json_body=True, status=400)
    assert body and body["error"] == "invalid_request"


@pytest.mark.parametrize("where", ["query", "json-body", "cookie"])
def test_userinfo_token_outside_header_or_form_is_401(
    client: Any, tokens: dict[str, Any], where: str
) -> None:
    token = tokens["access_token"]
    if where == "query":
        resp = client.get("/userinfo?" + urlencode({"access_token": token}))
    elif where == "json-body":
        resp = client.post("/userinfo", json={"access_token": token})
    else:
        resp = client.get("/userinfo", headers={"Cookie": f"access_token={token}"})
    assert_bearer_refused(resp)


def test_userinfo_tampered_real_token_is_401(client: Any, tokens: dict[str, Any]) -> None:
    head, payload, sig = tokens["access_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = "someone-else"
    forged = ".".join([head, b64url(json.dumps(claims).encode()), sig])
    assert_bearer_refused(client.get("/userinfo", headers={"Authorization": "Bearer " + forged}))


# --- /login ---------------------------------------------------------------------------


def login_post(auth: Any, **form: Any) -> Any:
    page = auth.client.get("/login")
    data = {"csrf_token": csrf_from(text_of(page)), "next": "/account"}
    data.update(form)
    return auth.client.post("/login", data={k: v for k, v in data.items() if v is not None})


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("a" * 10240, "whatever-password"),
        ("alice", "p" * 10240),
        (MARKUP, "whatever-password"),
        ('"><img src=x onerror=alert(1)>', "whatever-password"),
        ("", ""),
        ("alice", ""),
        ("alice\n", "correct horse battery"),
        (" alice", "correct horse battery"),
        ("ALICE\u200b", "correct horse battery"),
        ("alice", "correct horse battery\x00"),
        ("\ufeffalice", "correct horse battery"),
    ],
)
def test_login_bad_credentials_are_a_clean_401_page(
    auth: Any, svc: Any, alice: Any, username: str, password: str
) -> None:
    before = row_counts(svc)
    resp = login_post(auth, username=username, password=password)
    assert_clean_error(resp, json_body=False, status={400, 401})
    assert "<img" not in text_of(resp)
    assert row_counts(svc) == before


@pytest.mark.parametrize("username", ["\x00", "alice\x00", "\x00" * 300])
def test_login_nul_in_username_is_a_clean_401_page(
    auth: Any,
    svc: Any,
    alice: Any,
    username: str,
) -> None:
    before = row_counts(svc)
    resp = login_post(auth, username=username, password="whatever-password")
    assert_clean_error(resp, json_body=False, status={400, 401})
    assert row_counts(svc) == before


def test_login_form_encoding_garbage(auth: Any, svc: Any, alice: Any) -> None:
    page = auth.client.get("/login")
    token = csrf_from(text_of(page))
    before = row_counts(svc)
    body = b"csrf_token=" + token.encode() + b"&username=%ff%fe\xff&password=%zz%&next=%"
    resp = auth.client.post("/login", data=body, content_type="application/x-www-form-urlencoded")
    assert_clean_error(resp, json_body=False, status={400, 401})
    assert row_counts(svc) == before


@pytest.mark.parametrize("csrf", [None, "", "garbage", MARKUP, "x" * 5000, "other-session"])
def test_login_without_valid_csrf_is_400(
    auth: Any, app: Any, svc: Any, alice: Any, csrf: str | None
) -> None:
    if csrf == "other-session":
        other = app.test_client()
        csrf = csrf_from(text_of(other.get("/login")))
    auth.client.get("/login")
    before = row_counts(svc)
    form = {"username": "alice", "password": "correct horse battery", "next": "/account"}
    if csrf is not None:
        form["csrf_token"] = csrf
    resp = auth.client.post("/login", data=form)
    assert_clean_error(resp, json_body=False, status=400)
    assert row_counts(svc) == before
    assert auth.client.get("/account").status_code == 303  # still not logged in


def test_login_with_garbage_csrf_cookie_is_400(app: Any, svc: Any, alice: Any) -> None:
    client = app.test_client()
    token = csrf_from(text_of(client.get("/login")))
    fresh = app.test_client()
    before = row_counts(svc)
    resp = fresh.post(
        "/login",
        headers={"Cookie": "idp_csrf=" + "A" * 3000},
        data={"username": "alice", "password": "correct horse battery", "csrf_token": token},
    )
    assert_clean_error(resp, json_body=False, status=400)
    assert row_counts(svc) == before


OPEN_REDIRECTS = [
    "//evil.example",
    "//evil.example/path",
    "///evil.example",
    "////evil.example",
    "https://evil.example",
    "http://evil.example/account",
    "HTTPS://evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "\\/evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
    "/ /evil.example",
    " //evil.example",
    "\x00//evil.example",
    "https:evil.example",
    "https:/evil.example",
    "https:\\\\evil.example",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "data:text/html," + MARKUP,
    "/%2F%2Fevil.example",
    "/%5Cevil.example",
    "/.//evil.example",
    "/..//evil.example",
    "//evil.example@127.0.0.1",
    "/" + "a" * 5000,
]


@pytest.mark.parametrize("target", OPEN_REDIRECTS)
def test_login_next_never_leaves_the_site(auth: Any, alice: Any, target: str) -> None:
    page = auth.client.get("/login?" + urlencode({"next": target}))
    if "\x00" in target:
        assert page.status_code == 400, "NUL is refused in any parameter"
        return
    assert page.status_code == 200
    assert same_site(hidden_next(text_of(page))), hidden_next(text_of(page))
    resp = auth.client.post(
        "/login",
        data={
            "username": "alice",
            "password": "correct horse battery",
            "next": target,
            "csrf_token": csrf_from(text_of(page)),
        },
    )
    assert resp.status_code == 303
    location = resp.headers["Location"]
    assert same_site(location), location


@pytest.mark.parametrize("page", ["/login", "/signup"])
@pytest.mark.parametrize(
    "target", ["/account\r\nLocation: https://evil.example", "/account\nSet-Cookie: x=1", "/\r"]
)
def test_next_with_newline_is_not_followed(
    auth: Any, svc: Any, alice: Any, page: str, target: str
) -> None:
    form_page = auth.client.get(page + "?" + urlencode({"next": target}))
    assert form_page.status_code == 200
    resp = auth.client.post(
        page,
        data={
            "username": "alice" if page == "/login" else "bob",
            "password": "correct horse battery",
            "email": "bob@example.test",
            "next": target,
            "csrf_token": csrf_from(text_of(form_page)),
        },
    )
    assert resp.status_code == 303, text_of(resp)[:300]
    assert same_site(resp.headers["Location"]), resp.headers["Location"]


@pytest.mark.parametrize(
    "target", ["//evil.example", "https://evil.example", "/\\evil.example", "/\t/evil.example"]
)
def test_signup_next_never_leaves_the_site(auth: Any, svc: Any, target: str) -> None:
    page = auth.client.get("/signup?" + urlencode({"next": target}))
    assert page.status_code == 200
    assert same_site(hidden_next(text_of(page))), hidden_next(text_of(page))
    resp = auth.client.post(
        "/signup",
        data={
            "username": "bob",
            "password": "correct horse battery",
            "email": "bob@example.test",
            "next": target,
            "csrf_token": csrf_from(text_of(page)),
        },
    )
    assert resp.status_code == 303
    assert same_site(resp.headers["Location"]), resp.headers["Location"]


@pytest.mark.parametrize("hint", [MARKUP, '"><script>alert(1)</script>', "x" * 5000])
def test_login_page_never_reflects_login_hint_markup(client: Any, hint: str) -> None:
    resp = client.get("/login?" + urlencode({"login_hint": hint, "next": MARKUP}))
    assert resp.status_code == 200
    assert "<script" not in text_of(resp).lower()


# --- /signup --------------------------------------------------------------------------


def signup_post(auth: Any, **form: Any) -> Any:
    page = auth.client.get("/signup")
    data = {
        "csrf_token": csrf_from(text_of(page)),
        "username": "bob",
        "password": "correct horse battery",
        "email": "bob@example.test",
    }
    data.update(form)
    return auth.client.post("/signup", data={k: v for k, v in data.items() if v is not None})


@pytest.mark.parametrize(
    "form",
    [
        {"email": "not-an-email"},
        {"email": "a@b@c.example"},
        {"email": "a b@example.test"},
        {"email": MARKUP + "@example.test"},
        {"email": "bob@" + MARKUP},
        {"email": '"bob"@example.test'},
        {"email": "@example.test"},
        {"email": "bob@"},
        {"email": "x" * 10000 + "@example.test"},
        {"username": MARKUP},
        {"username": '"><img src=x onerror=alert(1)>'},
        {"username": ""},
        {"username": "a" * 10240},
        {"username": "bob\x00"},
        {"username": "b\u00f6b"},
        {"username": "bob bob"},
        {"username": ".bob"},
        {"password": "short"},
        {"password": "p" * 10240},
        {"password": ""},
    ],
)
def test_signup_invalid_input_is_a_clean_400_page(
    auth: Any, svc: Any, form: dict[str, str]
) -> None:
    before = row_counts(svc)
    resp = signup_post(auth, **form)
    assert_clean_error(resp, json_body=False, status=400)
    assert "<img" not in text_of(resp)
    assert row_counts(svc) == before


@pytest.mark.parametrize(
    "form",
    [
        {"username": "bob\n"},
        {"email": "bob@example.test\n"},
    ],
)
def test_signup_trailing_newline_is_refused(auth: Any, svc: Any, form: dict[str, str]) -> None:
    before = row_counts(svc)
    resp = signup_post(auth, **form)
    assert_clean_error(resp, json_body=False, status=400)
    assert row_counts(svc) == before


@pytest.mark.parametrize("email", ["bob\x00@example.test", "bob@example.test\x00"])
def test_signup_nul_in_email_is_refused(auth: Any, svc: Any, email: str) -> None:
    before = row_counts(svc)
    resp = signup_post(auth, email=email)
    assert_clean_error(resp, json_body=False, status=400)
    assert row_counts(svc) == before


def test_signup_taken_username_is_a_clean_400_page(auth: Any, svc: Any, alice: Any) -> None:
    before = row_counts(svc)
    resp = signup_post(auth, username="alice")
    assert_clean_error(resp, json_body=False, status=400)
    assert row_counts(svc) == before


@pytest.mark.parametrize("csrf", [None, "garbage", MARKUP])
def test_signup_without_valid_csrf_is_400(auth: Any, svc: Any, csrf: str | None) -> None:
    auth.client.get("/signup")
    before = row_counts(svc)
    form = {"username": "bob", "password": "correct horse battery"}
    if csrf is not None:
        form["csrf_token"] = csrf
    resp = auth.client.post("/signup", data=form)
    assert_clean_error(resp, json_body=False, status=400)
    assert row_counts(svc) == before


# --- /logout --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"post_logout_redirect_uri": "https://evil.example/bye", "client_id": "rp"},
        {"post_logout_redirect_uri": "javascript:alert(1)", "client_id": "rp"},
        {"post_logout_redirect_uri": MARKUP, "client_id": "rp", "state": MARKUP},
        {"post_logout_redirect_uri": REDIRECT, "client_id": "nope"},
        {"post_logout_redirect_uri": REDIRECT, "client_id": MARKUP},
        {"post_logout_redirect_uri": REDIRECT, "client_id": "x" * 5000},
        {"post_logout_redirect_uri": REDIRECT},
        {"post_logout_redirect_uri": REDIRECT, "id_token_hint": "a.b.c"},
        {"post_logout_redirect_uri": REDIRECT, "id_token_hint": "x" * 7000},
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_logout_unregistered_post_logout_redirect_is_html_400(
    auth: Any, svc: Any, rp: Any, params: dict[str, str], method: str
) -> None:
    before = row_counts(svc)
    if method == "GET":
        resp = auth.client.get("/logout?" + urlencode(params))
    else:
        page = auth.client.get("/login")
        resp = auth.client.post("/logout", data={**params, "csrf_token": csrf_from(text_of(page))})
    assert_clean_error(resp, json_body=False, status=400)
    assert row_counts(svc) == before


def test_logout_nul_in_client_id_is_html_400(auth: Any, svc: Any, rp: Any) -> None:
    before = row_counts(svc)
    resp = auth.client.get(
        "/logout?" + urlencode({"client_id": "rp\x00", "post_logout_redirect_uri": REDIRECT})
    )
    assert_clean_error(resp, json_body=False, status=400)
    assert row_counts(svc) == before


@pytest.mark.parametrize("hint", ["garbage", "a.b.c", "x" * 7000, MARKUP, "alg-none"])
def test_logout_garbage_hint_does_not_log_out(
    auth: Any, svc: Any, client: Any, forge: Any, logged_in: Any, hint: str
) -> None:
    if hint == "alg-none":
        hint = unsigned_jwt({"alg": "none", "typ": "JWT"}, forge.claims())
    before = row_counts(svc)
    resp = client.get("/logout?" + urlencode({"id_token_hint": hint, "state": MARKUP}))
    assert resp.status_code == 200  # the confirmation page, nothing done
    assert "<script" not in text_of(resp).lower()
    assert row_counts(svc) == before
    assert client.get("/account").status_code == 200


def test_logout_access_token_as_hint_does_not_log_out(
    client: Any, svc: Any, tokens: dict[str, Any]
) -> None:
    resp = client.get("/logout?" + urlencode({"id_token_hint": tokens["access_token"]}))
    assert resp.status_code == 200
    assert client.get("/account").status_code == 200


@pytest.mark.parametrize("csrf", [None, "garbage", MARKUP])
def test_logout_post_without_valid_csrf_is_400(
    auth: Any, svc: Any, client: Any, logged_in: Any, csrf: str | None
) -> None:
    before = row_counts(svc)
    form = {"confirm": "yes"}
    if csrf is not None:
        form["csrf_token"] = csrf
    resp = client.post("/logout", data=form)
    assert_clean_error(resp, json_body=False, status=400)
    assert row_counts(svc) == before
    assert client.get("/account").status_code == 200


def test_logout_hostile_confirm_does_not_log_out(client: Any, svc: Any, logged_in: Any) -> None:
    token = csrf_from(text_of(client.get("/logout")))
    resp = client.post("/logout", data={"confirm": MARKUP, "csrf_token": token, "state": MARKUP})
    assert resp.status_code == 200
    assert "<script" not in text_of(resp).lower()
    assert client.get("/account").status_code == 200


# --- /account and cookies -------------------------------------------------------------


@pytest.mark.parametrize(
    "cookie", ["x", "A" * 4000, MARKUP.replace(";", ""), "%00%ff", "\u00e9" * 10, '"quoted"']
)
def test_account_with_garbage_session_cookie_goes_to_login(
    app: Any, svc: Any, alice: Any, cookie: str
) -> None:
    client = app.test_client()
    before = row_counts(svc)
    resp = client.get("/account", headers={"Cookie": "idp_session=" + cookie})
    assert resp.status_code == 303
    assert resp.headers["Location"].startswith("/login")
    assert row_counts(svc) == before


@pytest.mark.parametrize("query", ["x=" + MARKUP, "next=//evil.example", "%ff=%zz"])
def test_account_ignores_junk_query(client: Any, logged_in: Any, query: str) -> None:
    resp = client.get("/account?" + query)
    assert resp.status_code == 200
    assert "<script" not in text_of(resp).lower()
    assert "evil.example" not in text_of(resp)
