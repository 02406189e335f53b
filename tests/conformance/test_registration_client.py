"""Dynamic client registration over real HTTP, as a client written from the RFCs would
do it: ``requests`` sends RFC 7591 §3.1's and RFC 7592 §2's example requests to the
endpoint discovery names, and authlib's OAuth client (its own client authentication,
private_key_jwt signing included) then uses the credentials idp handed out."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT

from tests.oauth.test_registration import RFC_EXAMPLE
from tests.support.client_jwt import ClientKey

pytestmark = pytest.mark.slow

TIMEOUT = 10


@pytest.fixture
def endpoints(live: Any) -> dict[str, Any]:
    meta = requests.get(f"{live.url}/.well-known/oauth-authorization-server", timeout=TIMEOUT)
    assert meta.status_code == 200
    return dict(meta.json())


def initial_token(live: Any) -> str:
    """What the operator runs `idp clients initial-token` for."""
    return str(live.svc.registrations.issue_initial_token(600, False, "cli"))


def register(endpoints: dict[str, Any], token: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = requests.post(
        endpoints["registration_endpoint"],
        json=body,
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        timeout=TIMEOUT,
    )
    assert resp.status_code == 201, resp.text
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.headers["Cache-Control"] == "no-store"
    return dict(resp.json())


def client_credentials(
    endpoints: dict[str, Any], client_id: str, secret: Any, method: Any
) -> dict[str, Any]:
    with OAuth2Session(
        client_id, secret, token_endpoint_auth_method=method, default_timeout=TIMEOUT
    ) as session:
        if isinstance(method, PrivateKeyJWT):
            session.register_client_auth_method(method)
        return dict(
            session.fetch_token(endpoints["token_endpoint"], grant_type="client_credentials")
        )


def test_register_read_update_use_and_delete_as_the_rfcs_show(
    live: Any, endpoints: dict[str, Any]
) -> None:
    assert endpoints["registration_endpoint"] == f"{live.url}/register"
    info = register(
        endpoints,
        initial_token(live),
        RFC_EXAMPLE,
    )
    assert info["client_secret_expires_at"] == 0
    auth = {"Authorization": f"Bearer {info['registration_access_token']}"}
    config_uri = info["registration_client_uri"]

    # RFC 7592 §2.1: read.
    read = requests.get(config_uri, headers=auth, timeout=TIMEOUT)
    assert read.status_code == 200 and read.json()["client_name"] == "My Example Client"

    # RFC 7592 §2.2: the whole registration sent back, changed, with the current secret.
    update = {
        "client_id": info["client_id"],
        "client_secret": info["client_secret"],
        "redirect_uris": ["https://client.example.org/callback"],
        "grant_types": ["authorization_code", "client_credentials"],
        "token_endpoint_auth_method": "client_secret_basic",
        "client_name": "My New Example",
        "scope": "orders",
    }
    changed = requests.put(config_uri, json=update, headers=auth, timeout=TIMEOUT)
    assert changed.status_code == 200, changed.text
    assert changed.json()["grant_types"] == ["authorization_code", "client_credentials"]

    # The credentials work with a client library that knows nothing of idp.
    token = client_credentials(
        endpoints, info["client_id"], info["client_secret"], "client_secret_basic"
    )
    assert token["scope"] == "orders" and token["token_type"].lower() == "bearer"

    # RFC 7592 §2.3: delete; the credentials stop working.
    gone = requests.delete(config_uri, headers=auth, timeout=TIMEOUT)
    assert gone.status_code == 204 and gone.content == b""
    again = requests.get(config_uri, headers=auth, timeout=TIMEOUT)
    assert again.status_code == 401
    assert again.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    with pytest.raises(OAuthError) as refused:
        client_credentials(
            endpoints, info["client_id"], info["client_secret"], "client_secret_basic"
        )
    assert refused.value.error == "invalid_client"


def test_a_registered_private_key_jwt_client_signs_with_authlib(
    live: Any, endpoints: dict[str, Any]
) -> None:
    key = ClientKey("RS256")
    info = register(
        endpoints,
        initial_token(live),
        {
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": key.jwks(),
            "scope": "reports",
        },
    )
    assert "client_secret" not in info

    def signer() -> PrivateKeyJWT:
        # authlib's default lifetime is an hour; idp takes assertions that expire soon.
        claims = {"exp": int(time.time()) + 60}
        return PrivateKeyJWT(endpoints["token_endpoint"], claims=claims, headers={"kid": key.kid})

    token = client_credentials(endpoints, info["client_id"], key.key, signer())
    assert token["scope"] == "reports"
    with pytest.raises(OAuthError) as refused:
        client_credentials(endpoints, info["client_id"], ClientKey("RS256").key, signer())
    assert refused.value.error == "invalid_client"
