"""Signed authorization requests (JAR, RFC 9101): taken only signed by the client's
registered key, at /authorize or pushed; their parameters alone count; a bad one is an
error page, never a redirect to a URI nobody validated."""

from __future__ import annotations

import base64
import json
import time
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select

from idp.oauth.models import AuthorizationCode, PushedRequest
from tests.conftest import ISSUER
from tests.support.auth import AuthActions, RegisteredClient, pkce_pair, query_of
from tests.support.client_jwt import ClientKey, hs256


@pytest.fixture
def signer(auth: AuthActions) -> tuple[RegisteredClient, ClientKey]:
    auth.user()
    auth.login()
    key = ClientKey()
    return auth.oauth_client("signer", jwks=key.jwks()), key


def request_claims(rp: RegisteredClient, **changes: Any) -> dict[str, Any]:
    _, challenge = pkce_pair()
    claims = {
        "iss": rp.client_id,
        "aud": ISSUER,
        "exp": int(time.time()) + 300,
        "response_type": "code",
        "client_id": rp.client_id,
        "redirect_uri": rp.redirect_uri,
        "scope": "openid profile",
        "state": "signed-state",
        "nonce": "n",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **changes,
    }
    return {k: v for k, v in claims.items() if v is not None}


def follow(auth: AuthActions, resp: Any) -> Any:
    """The redirect idp sends the browser on with (to the request_uri it made)."""
    assert resp.status_code in (302, 303), resp.get_data(as_text=True)[:500]
    location = resp.headers["Location"]
    assert location.startswith("/authorize?") and "request_uri=" in location
    return auth.client.get(location)


def test_a_signed_request_object_is_honoured(auth: AuthActions, signer: Any) -> None:
    rp, key = signer
    query = {"client_id": rp.client_id, "request": key.sign(request_claims(rp))}
    # Query parameters beside the object do not count (RFC 9101 §6.3).
    query["state"] = "from-the-browser"
    answer = follow(auth, auth.client.get("/authorize?" + urlencode(query)))
    q = query_of(answer.headers["Location"])
    assert answer.headers["Location"].startswith(rp.redirect_uri)
    assert q["state"] == "signed-state" and "code" in q


def _unsigned(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none'})}.{part(claims)}."


HOSTILE: dict[str, Any] = {
    "alg none": lambda rp, key: _unsigned(request_claims(rp)),
    "HS256": lambda rp, key: hs256(request_claims(rp)),
    "another key": lambda rp, key: ClientKey().sign(request_claims(rp)),
    "iss another client": lambda rp, key: key.sign(request_claims(rp, iss="other")),
    "aud elsewhere": lambda rp, key: key.sign(request_claims(rp, aud="https://evil.example")),
    "no aud": lambda rp, key: key.sign(request_claims(rp, aud=None)),
    "expired": lambda rp, key: key.sign(request_claims(rp, exp=int(time.time()) - 600)),
    "exp in a week": lambda rp, key: key.sign(request_claims(rp, exp=int(time.time()) + 7 * 86400)),
    "nbf in an hour": lambda rp, key: key.sign(request_claims(rp, nbf=int(time.time()) + 3600)),
    "client_id of another": lambda rp, key: key.sign(request_claims(rp, client_id="other")),
    "nested request_uri": lambda rp, key: key.sign(request_claims(rp, request_uri="https://x/r")),
    "an object value": lambda rp, key: key.sign(request_claims(rp, claims={"x": 1})),
    "garbage": lambda rp, key: "not-a-jwt",
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_bad_request_object_is_an_error_page_and_nothing_is_kept(
    auth: AuthActions, signer: Any, svc: Any, case: str
) -> None:
    rp, key = signer
    auth.oauth_client("other")
    request_object = HOSTILE[case](rp, key)
    resp = auth.client.get(
        "/authorize?" + urlencode({"client_id": rp.client_id, "request": request_object})
    )
    assert resp.status_code == 400, resp.headers.get("Location")
    assert "invalid_request_object" in resp.get_data(as_text=True)
    with svc.db.read() as s:
        assert s.scalar(select(func.count()).select_from(PushedRequest)) == 0
        assert s.scalar(select(func.count()).select_from(AuthorizationCode)) == 0


def test_a_client_without_keys_cannot_send_request_objects(auth: AuthActions) -> None:
    auth.user()
    auth.login()
    rp = auth.oauth_client()
    request_object = ClientKey().sign(request_claims(rp))
    resp = auth.client.get(
        "/authorize?" + urlencode({"client_id": rp.client_id, "request": request_object})
    )
    assert resp.status_code == 400 and "no keys" in resp.get_data(as_text=True)


def test_a_request_object_can_be_pushed(auth: AuthActions, signer: Any) -> None:
    rp, key = signer
    other = ClientKey()
    # A confidential client with keys authenticates with a secret here; the object is
    # checked against its keys all the same.
    pushed = auth.client.post(
        "/par",
        data={"client_id": rp.client_id, "request": key.sign(request_claims(rp))},
        headers=rp.basic(),
    )
    assert pushed.status_code == 201, pushed.get_json()
    uri = pushed.get_json()["request_uri"]
    answer = auth.client.get(
        "/authorize?" + urlencode({"client_id": rp.client_id, "request_uri": uri})
    )
    assert query_of(answer.headers["Location"])["state"] == "signed-state"
    bad = auth.client.post(
        "/par",
        data={"client_id": rp.client_id, "request": other.sign(request_claims(rp))},
        headers=rp.basic(),
    )
    assert bad.status_code == 400 and bad.get_json()["error"] == "invalid_request_object"


def test_a_request_object_does_not_get_around_required_par(auth: AuthActions) -> None:
    auth.user()
    auth.login()
    key = ClientKey()
    rp = auth.oauth_client(jwks=key.jwks(), require_pushed_authorization_requests=True)
    resp = auth.client.get(
        "/authorize?"
        + urlencode({"client_id": rp.client_id, "request": key.sign(request_claims(rp))})
    )
    assert resp.status_code == 400


def test_discovery_says_request_objects_are_taken_by_value_only(client: Any) -> None:
    meta = client.get("/.well-known/openid-configuration").get_json()
    assert meta["request_parameter_supported"] is True
    assert meta["request_uri_parameter_supported"] is False
    assert "none" not in meta["request_object_signing_alg_values_supported"]
