"""Unknown paths, wrong methods, and junk sent to the metadata endpoints."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.bad_input.helpers import (
    MARKUP,
    assert_error_for,
    row_counts,
    text_of,
)

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


ALLOWED = {
    "/token": {"POST", "OPTIONS"},
    "/jwks.json": {"GET", "HEAD", "OPTIONS"},
    "/account": {"GET", "HEAD", "OPTIONS"},
}


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/token"), ("POST", "/jwks.json"), ("POST", "/account")]
)
def test_wrong_method_405_lists_allowed_methods(client: Any, method: str, path: str) -> None:
    resp = client.open(path, method=method)
    assert resp.status_code == 405
    assert {m.strip() for m in resp.headers["Allow"].split(",")} == ALLOWED[path]


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
