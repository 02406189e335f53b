"""Oversized query strings and bodies: 414 and 413 on every endpoint, nothing stored."""

from __future__ import annotations

from typing import Any

import pytest

from tests.bad_input.helpers import (
    assert_clean_error,
    assert_error_for,
    row_counts,
    text_of,
)
from tests.support.auth import csrf_from

ALL_ENDPOINTS = [
    ("GET", "/authorize"),
    ("POST", "/authorize"),
    ("POST", "/token"),
    ("POST", "/par"),
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
