"""idp.front answers the protocol endpoints without Flask; Flask's routes answer what it
leaves to them (here: a multipart body). Both must say the same."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.auth import AuthActions, RegisteredClient


@pytest.fixture
def svc_client(auth: AuthActions) -> RegisteredClient:
    return auth.oauth_client(
        "svc", grant_types=["client_credentials"], scope="api", redirect_uri="https://x.test/cb"
    )


def both(client: Any, rp: RegisteredClient, data: dict[str, str], path: str = "/token") -> Any:
    """The same form, once urlencoded (idp.front) and once multipart (Flask)."""
    fast = client.post(path, data=data, headers=rp.basic())
    slow = client.post(path, data=data, headers=rp.basic(), content_type="multipart/form-data")
    return fast, slow


@pytest.mark.parametrize(
    "data",
    [
        {"grant_type": "client_credentials", "scope": "api"},
        {"grant_type": "client_credentials", "scope": "nope"},
        {"grant_type": "password", "username": "x", "password": "y"},
        {"scope": "api"},
        {"grant_type": "client_credentials", "scope": "api", "client_secret": "extra"},
    ],
)
def test_token_answers_are_the_same_in_front_of_flask_and_through_it(client, svc_client, data):
    fast, slow = both(client, svc_client, data)
    assert fast.status_code == slow.status_code
    fast_json, slow_json = fast.get_json(), slow.get_json()
    assert set(fast_json) == set(slow_json)
    assert fast_json.get("error") == slow_json.get("error")
    for name in ("Content-Type", "Cache-Control", "X-Content-Type-Options", "Referrer-Policy"):
        assert fast.headers.get(name) == slow.headers.get(name), name
    assert fast.headers["Cache-Control"] == "no-store"


def test_introspection_answers_are_the_same(client, svc_client):
    token = client.post(
        "/token", data={"grant_type": "client_credentials"}, headers=svc_client.basic()
    ).get_json()["access_token"]
    fast, slow = both(client, svc_client, {"token": token}, "/introspect")
    assert fast.status_code == slow.status_code == 200
    assert fast.get_json() == slow.get_json() and fast.get_json()["active"] is True


def test_parameters_in_the_query_are_not_read_by_the_token_endpoint(client, svc_client):
    """RFC 6749 §3.2: the token request is the POST body; a grant_type in the URL (where
    it lands in logs) counts for nothing."""
    resp = client.post("/token?grant_type=client_credentials", data={}, headers=svc_client.basic())
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_request"


def test_a_body_that_is_not_utf8_is_refused(client, svc_client):
    resp = client.post(
        "/token",
        data=b"grant_type=client_credentials&scope=\xff\xfe",
        headers={**svc_client.basic(), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_request"


def test_our_authlib_request_sets_what_authlibs_constructor_sets():
    """IdpOAuth2Request skips authlib's constructor (its per-request https check is
    decided at startup); an authlib upgrade that adds a field must show up here."""
    from authlib.oauth2.rfc6749 import OAuth2Request
    from werkzeug.datastructures import MultiDict

    from idp.http import ProtocolRequest
    from idp.oauth.server import IdpOAuth2Request

    theirs = OAuth2Request("POST", "https://idp.example/token", headers={})
    req = ProtocolRequest("POST", "/token", MultiDict(), MultiDict(), {}, "127.0.0.1")
    ours = IdpOAuth2Request(req, "https://idp.example", req.form)
    assert set(vars(theirs)) | {"protocol"} == set(vars(ours))


@pytest.mark.parametrize(
    "issuer",
    [
        "https://login.example.com",
        "https://idp.example/tenant",
        "http://127.0.0.1:5000",
        "http://localhost:8080",
        "http://[::1]:5000",
    ],
)
def test_every_issuer_idp_accepts_passes_authlibs_transport_check(issuer):
    from authlib.common.security import is_secure_transport

    from idp import config

    secrets = {"IDP_KEYS__KEK": "k" * 43, "IDP_SERVER__SECRET_KEY": "s" * 32}
    config.from_mapping({"server": {"issuer": issuer}}, secrets)
    assert is_secure_transport(issuer + "/token")
