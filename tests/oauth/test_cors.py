"""CORS for browser apps (issue 11 item 6): the token endpoints answer the origins of
registered redirect URIs, the JWKS and metadata any origin, and never with credentials."""

from __future__ import annotations

from typing import Any

import pytest

from idp.clients.models import Client
from idp.cors import web_origin
from tests.support.auth import AuthActions

SPA = "https://spa.example.test"


@pytest.fixture
def spa(auth: AuthActions) -> Any:
    return auth.oauth_client("spa", public=True, redirect_uri=SPA + "/callback")


def preflight(client: Any, path: str, origin: str) -> Any:
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "dpop, content-type",
        },
    )


@pytest.mark.parametrize("path", ["/token", "/userinfo", "/revoke"])
def test_a_registered_origin_may_call_the_token_endpoints(client: Any, spa: Any, path: str) -> None:
    resp = preflight(client, path, SPA)
    assert resp.status_code == 204
    assert resp.headers["Access-Control-Allow-Origin"] == SPA
    assert "DPoP" in resp.headers["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Credentials" not in resp.headers
    answer = client.post(path, data={}, headers={"Origin": SPA})
    assert answer.headers["Access-Control-Allow-Origin"] == SPA
    assert "DPoP-Nonce" in answer.headers["Access-Control-Expose-Headers"]
    assert "Origin" in answer.headers.getlist("Vary")


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "null", SPA + ":8443", "http://spa.example.test"]
)
def test_another_origin_gets_no_cors_headers(client: Any, spa: Any, origin: str) -> None:
    resp = preflight(client, "/token", origin)
    assert "Access-Control-Allow-Origin" not in resp.headers
    answer = client.post(
        "/token", data={"grant_type": "client_credentials"}, headers={"Origin": origin}
    )
    assert "Access-Control-Allow-Origin" not in answer.headers


def test_a_disabled_clients_origin_is_dropped_at_once(client: Any, spa: Any, svc: Any) -> None:
    assert preflight(client, "/token", SPA).headers.get("Access-Control-Allow-Origin") == SPA
    with svc.db.transaction() as s:
        row = s.get(Client, "spa")
        assert row is not None
        row.disabled = True
    assert "Access-Control-Allow-Origin" not in preflight(client, "/token", SPA).headers


@pytest.mark.parametrize("path", ["/jwks.json", "/.well-known/openid-configuration"])
def test_public_documents_answer_any_origin(client: Any, path: str) -> None:
    resp = client.get(path, headers={"Origin": "https://anyone.example"})
    assert resp.status_code == 200 and resp.headers["Access-Control-Allow-Origin"] == "*"


def test_pages_are_not_cross_origin(client: Any, spa: Any) -> None:
    for path in ("/authorize", "/login", "/account"):
        resp = client.get(path, headers={"Origin": SPA})
        assert "Access-Control-Allow-Origin" not in resp.headers, path


def test_web_origins() -> None:
    assert web_origin("https://a.example/cb?x=1") == "https://a.example"
    assert web_origin("https://a.example:443/cb") == "https://a.example"
    assert web_origin("http://127.0.0.1:8080/cb") == "http://127.0.0.1:8080"
    assert web_origin("http://[::1]:80/cb") == "http://[::1]"
    assert web_origin("com.example.app:/cb") is None
