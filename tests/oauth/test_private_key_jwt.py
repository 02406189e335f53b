"""private_key_jwt (RFC 7523 §2.2, OIDC Core §9): clients that authenticate with a JWT
signed by their own key, registered as ``jwks`` or behind ``jwks_uri``; the attacks of
RFC 7523 §7 and RFC 8725 refused."""

from __future__ import annotations

import time
from typing import Any

import pytest

from idp.clients.services import ClientError, create_client
from tests.conftest import ISSUER
from tests.support.auth import AuthActions
from tests.support.client_jwt import ASSERTION_TYPE, ClientKey, hs256, jwks_server

TOKEN = ISSUER + "/token"


def register(auth: AuthActions, client_id: str = "signer", **keys: Any) -> None:
    auth.oauth_client(
        client_id,
        grant_types=["client_credentials"],
        scope="api",
        redirect_uri="https://signer.test/cb",
        token_endpoint_auth_method="private_key_jwt",
        **keys,
    )


def token(auth: AuthActions, assertion: str | None, **extra: str) -> Any:
    data = {"grant_type": "client_credentials", **extra}
    if assertion is not None:
        data.update(client_assertion_type=ASSERTION_TYPE, client_assertion=assertion)
    return auth.client.post("/token", data=data)


@pytest.mark.parametrize("alg", ["ES256", "PS256", "RS256"])
@pytest.mark.parametrize("aud", [ISSUER, TOKEN])
def test_a_signed_assertion_authenticates_the_client(auth: AuthActions, alg: str, aud: str) -> None:
    key = ClientKey(alg)
    register(auth, jwks=key.jwks())
    resp = token(auth, key.assertion("signer", aud))
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["access_token"]


def test_the_same_assertion_works_once(auth: AuthActions) -> None:
    key = ClientKey()
    register(auth, jwks=key.jwks())
    assertion = key.assertion("signer", TOKEN)
    assert token(auth, assertion).status_code == 200
    replay = token(auth, assertion)
    assert replay.status_code == 400 and replay.get_json()["error"] == "invalid_client"
    assert "used before" in replay.get_json()["error_description"]


def _forged(key: ClientKey, case: str) -> str:
    now = int(time.time())
    return {
        "another key": lambda: ClientKey().assertion("signer", TOKEN),
        "HS256": lambda: hs256(
            {"iss": "signer", "sub": "signer", "aud": TOKEN, "exp": now + 60, "jti": "j"}
        ),
        "alg none": lambda: _unsigned(
            {"iss": "signer", "sub": "signer", "aud": TOKEN, "exp": now + 60, "jti": "j"}
        ),
        "iss is not sub": lambda: key.assertion("signer", TOKEN, iss="other"),
        "aud elsewhere": lambda: key.assertion("signer", "https://evil.example/token"),
        "no aud": lambda: key.assertion("signer", None),
        "expired": lambda: key.assertion("signer", TOKEN, exp=now - 120),
        "exp in a day": lambda: key.assertion("signer", TOKEN, exp=now + 86400),
        "no exp": lambda: key.assertion("signer", TOKEN, exp=None),
        "no jti": lambda: key.assertion("signer", TOKEN, jti=None),
        "sub not a string": lambda: key.assertion("signer", TOKEN, sub=7, iss=7),
        "unknown client": lambda: key.assertion("nobody", TOKEN),
        "not a JWT": lambda: "not.a.jwt",
    }[case]()


def _unsigned(claims: dict[str, Any]) -> str:
    import base64
    import json

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none'})}.{part(claims)}."


@pytest.mark.parametrize(
    "case",
    [
        "another key",
        "HS256",
        "alg none",
        "iss is not sub",
        "aud elsewhere",
        "no aud",
        "expired",
        "exp in a day",
        "no exp",
        "no jti",
        "sub not a string",
        "unknown client",
        "not a JWT",
    ],
)
def test_a_forged_or_careless_assertion_is_invalid_client(auth: AuthActions, case: str) -> None:
    key = ClientKey()
    register(auth, jwks=key.jwks())
    resp = token(auth, _forged(key, case))
    assert resp.status_code in (400, 401), resp.get_json()
    assert resp.get_json()["error"] == "invalid_client", resp.get_json()


def test_a_key_client_has_no_secret_and_cannot_use_one(auth: AuthActions) -> None:
    key = ClientKey()
    register(auth, jwks=key.jwks())
    resp = auth.client.post(
        "/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": "Basic c2lnbmVyOng="},  # signer:x
    )
    assert resp.status_code == 401
    both = token(auth, key.assertion("signer", TOKEN), client_id="signer", client_secret="x")
    assert (
        both.status_code == 400
        and "one client authentication" in both.get_json()["error_description"]
    )


def test_introspection_and_revocation_take_assertions(auth: AuthActions) -> None:
    key = ClientKey()
    register(auth, jwks=key.jwks())
    at = token(auth, key.assertion("signer", TOKEN)).get_json()["access_token"]
    seen = auth.client.post(
        "/introspect",
        data={
            "token": at,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": key.assertion("signer", ISSUER + "/introspect"),
        },
    )
    assert seen.status_code == 200 and seen.get_json()["active"] is True
    revoked = auth.client.post(
        "/revoke",
        data={
            "token": at,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": key.assertion("signer", ISSUER),
        },
    )
    assert revoked.status_code == 200


def test_keys_behind_jwks_uri_are_fetched_again_for_a_new_kid_at_most_once_a_minute(
    auth: AuthActions,
) -> None:
    old, new, newer = ClientKey(), ClientKey(), ClientKey()
    with jwks_server(old.jwks()) as server:
        register(auth, jwks_uri=server.url)
        assert token(auth, old.assertion("signer", TOKEN)).status_code == 200
        assert token(auth, old.assertion("signer", TOKEN)).status_code == 200
        assert server.hits == 1, "cached"
        server.document = {"keys": [old.jwk(), new.jwk()]}  # the client rotates
        assert token(auth, new.assertion("signer", TOKEN)).status_code == 200
        assert server.hits == 2, "an unknown kid fetched the keys again"
        server.document = {"keys": [newer.jwk()]}
        # Another unknown kid within the minute: no fetch, refused (forged kids cannot
        # make idp call the client's server for every request).
        for _ in range(3):
            assert token(auth, ClientKey().assertion("signer", TOKEN)).status_code == 400
        assert server.hits == 2


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({}, "private_key_jwt needs jwks or jwks_uri"),
        ({"jwks": {"keys": []}}, "jwks must hold 1 to"),
        ({"jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}}, "RSA, EC or OKP"),
        ({"jwks": "not an object"}, "jwks must be a JSON object"),
        ({"jwks_uri": "http://169.254.169.254/keys"}, "jwks_uri: "),
        ({"jwks_uri": "ftp://keys.example/jwks"}, "jwks_uri: "),
    ],
)
def test_keys_are_checked_at_registration(svc: Any, keys: dict[str, Any], message: str) -> None:
    with svc.db.transaction() as s, pytest.raises(ClientError, match=message):
        create_client(
            s,
            svc.clock,
            "signer",
            redirect_uris=[],
            grant_types=["client_credentials"],
            token_endpoint_auth_method="private_key_jwt",
            **keys,
        )


def test_a_private_key_in_jwks_is_refused(svc: Any) -> None:
    private = {**ClientKey().key.as_dict(private=True), "kid": "k"}
    with svc.db.transaction() as s, pytest.raises(ClientError, match="public keys only"):
        create_client(
            s,
            svc.clock,
            "signer",
            redirect_uris=[],
            grant_types=["client_credentials"],
            token_endpoint_auth_method="private_key_jwt",
            jwks={"keys": [private]},
        )


def test_discovery_lists_private_key_jwt(client: Any) -> None:
    meta = client.get("/.well-known/openid-configuration").get_json()
    for endpoint in ("token", "revocation", "introspection"):
        assert "private_key_jwt" in meta[f"{endpoint}_endpoint_auth_methods_supported"]
        assert "HS256" not in meta[f"{endpoint}_endpoint_auth_signing_alg_values_supported"]
