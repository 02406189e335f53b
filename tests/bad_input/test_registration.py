"""/register and /register/<client_id> (RFC 7591, RFC 7592) fed hostile input: every
refusal is a clear JSON 4xx, and nothing stored changes (no client, no used-up initial
access token, no audit record, no changed registration)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select

from idp.clients.models import Client, InitialAccessToken
from tests.bad_input.helpers import MARKUP, assert_clean_error, row_counts
from tests.support.client_jwt import ClientKey

REDIRECT = "https://client.example.org/cb"
GOOD = {"redirect_uris": [REDIRECT], "client_name": "Good"}


@pytest.fixture
def token(svc: Any) -> str:
    """A single-use initial access token."""
    return str(svc.registrations.issue_initial_token(3600, False, "cli"))


def uses(svc: Any) -> int:
    """Registrations made with any initial access token so far."""
    with svc.db.read() as s:
        return int(s.scalar(select(func.sum(InitialAccessToken.registrations))) or 0)


def post(client: Any, token: str, body: Any, **kw: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}", **kw.pop("headers", {})}
    if "data" in kw:
        return client.post("/register", headers=headers, **kw)
    return client.post("/register", json=body, headers=headers, **kw)


def assert_refused(
    client: Any, svc: Any, token: str, body: Any, error: str, status: int = 400, **kw: Any
) -> None:
    before = row_counts(svc)
    resp = post(client, token, body, **kw)
    assert_clean_error(resp, json_body=True, status=status, error=error)
    assert resp.headers["Cache-Control"] == "no-store"
    assert row_counts(svc) == before
    assert uses(svc) == 0
    # The token was not used up: the same one still registers a client.
    assert post(client, token, GOOD).status_code == 201


# --- the body as a whole ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "content_type", "status"),
    [
        (b'{"redirect_uris": ["https://client.example.org/cb"]', "application/json", 400),
        (b"", "application/json", 400),
        (b"\xff\xfe{}", "application/json", 400),
        (b"[]", "application/json", 400),
        (b'"redirect_uris"', "application/json", 400),
        (b"42", "application/json", 400),
        (b"null", "application/json", 400),
        (b"NaN", "application/json", 400),
        (b"[" * 30_000 + b"]" * 30_000, "application/json", 400),
        (b"1" * 20_000, "application/json", 400),
        (b'{"client_name": "a", "client_name": "b"}', "application/json", 400),
        (b"redirect_uris=https://client.example.org/cb", "application/x-www-form-urlencoded", 415),
        (json.dumps(GOOD).encode(), "text/plain", 415),
        (json.dumps(GOOD).encode(), "application/jsonx", 415),
        (json.dumps(GOOD).encode(), "", 415),
        (json.dumps(GOOD).encode(), "multipart/form-data; boundary=x", 415),
    ],
)
def test_a_body_that_is_not_a_json_object_is_refused(
    client: Any, svc: Any, token: str, data: bytes, content_type: str, status: int
) -> None:
    assert_refused(
        client, svc, token, None, "invalid_request", status, data=data, content_type=content_type
    )


def test_a_body_over_max_body_bytes_is_413(client: Any, svc: Any, token: str) -> None:
    limit = svc.config.server.max_body_bytes
    body = {**GOOD, "pad": "x" * limit}
    assert_refused(client, svc, token, body, "invalid_request", 413)


# --- each member with the wrong JSON type -------------------------------------------------

WRONG_TYPES = [7, 1.5, True, "text", [], {}, [1], [None], ["a", 2], {"a": "b"}]
MEMBERS = {
    "redirect_uris": "strings",
    "post_logout_redirect_uris": "strings",
    "grant_types": "strings",
    "response_types": "strings",
    "token_endpoint_auth_method": "string",
    "client_name": "string",
    "scope": "string",
    "jwks_uri": "string",
    "backchannel_logout_uri": "string",
    "id_token_signed_response_alg": "string",
    "jwks": "object",
    "dpop_bound_access_tokens": "boolean",
    "require_pushed_authorization_requests": "boolean",
}


def _fits(kind: str, value: Any) -> bool:
    if kind == "strings":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return {
        "string": isinstance(value, str),
        "object": isinstance(value, dict),
        "boolean": isinstance(value, bool),
    }[kind]


@pytest.mark.parametrize(
    ("member", "value"),
    [
        (member, value)
        for member, kind in MEMBERS.items()
        for value in WRONG_TYPES
        if not _fits(kind, value)
    ],
)
def test_a_member_of_the_wrong_type_is_refused(
    client: Any, svc: Any, token: str, member: str, value: Any
) -> None:
    error = "invalid_redirect_uri" if member == "redirect_uris" else "invalid_client_metadata"
    assert_refused(client, svc, token, {**GOOD, member: value}, error)


@pytest.mark.parametrize("member", ["redirect_uris", "post_logout_redirect_uris"])
def test_too_many_uris_are_refused(client: Any, svc: Any, token: str, member: str) -> None:
    uris = [f"https://client.example.org/cb{i}" for i in range(51)]
    error = "invalid_redirect_uri" if member == "redirect_uris" else "invalid_client_metadata"
    assert_refused(client, svc, token, {**GOOD, member: uris}, error)


# --- hostile values -----------------------------------------------------------------------

HOSTILE_URIS = [
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "file:///etc/passwd",
    "https://client.example.org/cb#fragment",
    "http://client.example.org/cb",
    "http://10.0.0.1/cb",
    "https://user:pass@client.example.org/cb",
    "https://client.example.org/" + MARKUP,
    "https://client.example.org/cb\x00",
    "https://client.example.org/c b",
    "https://client.example.org/cb\r\nSet-Cookie: x=1",
    "//client.example.org/cb",
    "/cb",
    "",
    "https:",
    "https://client.example.org:99999/cb",
    "https://client.example.org/" + "a" * 2001,
    "myapp:/cb",
]


@pytest.mark.parametrize("uri", HOSTILE_URIS)
def test_a_hostile_redirect_uri_is_invalid_redirect_uri(
    client: Any, svc: Any, token: str, uri: str
) -> None:
    body = {"redirect_uris": [REDIRECT, uri]}
    assert_refused(client, svc, token, body, "invalid_redirect_uri")


@pytest.mark.parametrize("uri", HOSTILE_URIS)
def test_a_hostile_post_logout_redirect_uri_is_refused(
    client: Any, svc: Any, token: str, uri: str
) -> None:
    body = {**GOOD, "post_logout_redirect_uris": [uri]}
    assert_refused(client, svc, token, body, "invalid_client_metadata")


@pytest.mark.parametrize(
    "uri",
    [
        *(uri for uri in HOSTILE_URIS if uri),  # an empty one is no URI: as if left out
        "https://169.254.169.254/latest/meta-data",
        "https://[::ffff:10.0.0.1]/keys",
        "http://keys.example.org/jwks",
        "ftp://keys.example.org/jwks",
        "com.example.app:/jwks",
    ],
)
@pytest.mark.parametrize("member", ["jwks_uri", "backchannel_logout_uri"])
def test_a_hostile_outbound_uri_is_refused(
    client: Any, svc: Any, token: str, member: str, uri: str
) -> None:
    """idp calls these itself (SPEC §6 Outbound requests): https, or loopback http where
    tests allow it; never a private address."""
    body = {**GOOD, member: uri}
    assert_refused(client, svc, token, body, "invalid_client_metadata")


def _private_jwk() -> dict[str, Any]:
    return {**ClientKey().key.as_dict(private=True), "kid": "k"}


@pytest.mark.parametrize(
    "jwks",
    [
        {"keys": [_private_jwk()]},
        {"keys": [{"kty": "oct", "k": "c2VjcmV0c2VjcmV0c2VjcmV0"}]},
        {"keys": []},
        {"keys": [ClientKey().jwk()] * 11},
        {"keys": "nope"},
        {"keys": [{"kty": "EC", "crv": "P-256", "x": "bad", "y": "bad"}]},
        {"keys": [{"kty": "RSA"}]},
        {"keys": [ClientKey().jwk(), "x"]},
        {"nokeys": []},
    ],
)
def test_bad_keys_are_refused(client: Any, svc: Any, token: str, jwks: dict[str, Any]) -> None:
    body = {
        "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": jwks,
    }
    assert_refused(client, svc, token, body, "invalid_client_metadata")


@pytest.mark.parametrize(
    "change",
    [
        {"token_endpoint_auth_method": value}
        for value in (
            "client_secret_jwt",
            "tls_client_auth",
            "self_signed_tls_client_auth",
            "NONE",
            "",
            MARKUP,
            "x" * 5000,
        )
    ]
    + [
        {"token_endpoint_auth_method": "private_key_jwt"},  # no keys
        {"jwks": ClientKey().jwks(), "jwks_uri": "https://client.example.org/jwks"},
        {"grant_types": ["password"]},
        {"grant_types": ["implicit"]},
        {"grant_types": ["urn:ietf:params:oauth:grant-type:device_code"]},
        {"grant_types": [MARKUP]},
        {"grant_types": ["authorization_code"] * 11},
        {"response_types": ["code id_token"]},
        {"response_types": ["none"]},
        {"token_endpoint_auth_method": "none", "grant_types": ["client_credentials"]},
        {"id_token_signed_response_alg": "none"},
        {"id_token_signed_response_alg": "HS256"},
        {"id_token_signed_response_alg": MARKUP},
        {"scope": "openid caf\u00e9"},
        {"scope": "openid \x7f"},
        {"scope": 'openid "quoted"'},
        {"scope": "openid\\x"},
        {"scope": "s " * 600},
        {"scope": "idp:admin"},
        {"client_name": ""},
        {"client_name": "   "},
        {"client_name": "x" * 201},
        {"client_name": "line\nbreak"},
        {"client_name": "nul\x00"},
    ],
    ids=repr,
)
def test_unsupported_or_invalid_metadata_is_invalid_client_metadata(
    client: Any, svc: Any, token: str, change: dict[str, Any]
) -> None:
    assert_refused(client, svc, token, {**GOOD, **change}, "invalid_client_metadata")


def test_a_client_cannot_register_itself_first_party_or_admin(
    client: Any, svc: Any, token: str
) -> None:
    body = {
        **GOOD,
        "first_party": True,
        "is_admin_client": True,
        "admin_client": True,
        "claims": {"role": "admin"},
        "client_id": "chosen",
        "client_secret": "chosen-secret-chosen-secret-chosen-secret",
    }
    resp = post(client, token, body)
    assert resp.status_code == 201, resp.get_json()
    info = resp.get_json()
    assert info["client_id"] != "chosen" and info["client_secret"] != body["client_secret"]
    assert info["first_party"] is False and info["claims"] == {}
    with svc.db.read() as s:
        row = s.get(Client, info["client_id"])
        assert row is not None and not row.first_party and not row.is_admin_client


# --- the configuration endpoint -----------------------------------------------------------


@pytest.fixture
def registered(client: Any, token: str) -> dict[str, Any]:
    resp = post(client, token, GOOD)
    assert resp.status_code == 201
    return dict(resp.get_json())


def put(client: Any, info: dict[str, Any], **kw: Any) -> Any:
    path = info["registration_client_uri"].split("127.0.0.1:5000", 1)[1]
    headers = {"Authorization": f"Bearer {info['registration_access_token']}"}
    return client.put(path, headers=headers, **kw)


@pytest.mark.parametrize(
    ("kw", "status", "error"),
    [
        ({"data": b"{", "content_type": "application/json"}, 400, "invalid_request"),
        ({"data": b"[]", "content_type": "application/json"}, 400, "invalid_request"),
        ({"data": b"\xff", "content_type": "application/json"}, 400, "invalid_request"),
        ({"data": b"client_id=x", "content_type": "application/x-www-form-urlencoded"}, 415, None),
        ({"json": {"redirect_uris": [REDIRECT]}}, 400, "invalid_request"),  # no client_id
        ({"json": {"client_id": "x", "redirect_uris": [REDIRECT]}}, 400, "invalid_request"),
        ({"json": {"client_id": None, "redirect_uris": MARKUP}}, 400, "invalid_request"),
    ],
)
def test_a_bad_update_body_changes_nothing(
    client: Any, svc: Any, registered: dict[str, Any], kw: dict[str, Any], status: int, error: Any
) -> None:
    before = row_counts(svc)
    resp = put(client, registered, **kw)
    assert_clean_error(resp, json_body=True, status=status, error=error or "invalid_request")
    assert row_counts(svc) == before
    path = registered["registration_client_uri"].split("127.0.0.1:5000", 1)[1]
    read = client.get(
        path, headers={"Authorization": f"Bearer {registered['registration_access_token']}"}
    )
    assert read.get_json() == {k: v for k, v in registered.items() if k != "client_secret"}


@pytest.mark.parametrize(
    ("member", "value"),
    [
        (member, value)
        for member, kind in MEMBERS.items()
        for value in (7, "text", [1])
        if not _fits(kind, value)
    ],
)
def test_an_update_with_a_member_of_the_wrong_type_changes_nothing(
    client: Any, svc: Any, registered: dict[str, Any], member: str, value: Any
) -> None:
    before = row_counts(svc)
    body = {"client_id": registered["client_id"], "redirect_uris": [REDIRECT], member: value}
    resp = put(client, registered, json=body)
    error = "invalid_redirect_uri" if member == "redirect_uris" else "invalid_client_metadata"
    assert_clean_error(resp, json_body=True, status=400, error=error)
    assert row_counts(svc) == before


def test_an_update_body_over_max_body_bytes_is_413(
    client: Any, svc: Any, registered: dict[str, Any]
) -> None:
    before = row_counts(svc)
    body = {"client_id": registered["client_id"], "pad": "x" * svc.config.server.max_body_bytes}
    resp = put(client, registered, json=body)
    assert_clean_error(resp, json_body=True, status=413, error="invalid_request")
    assert row_counts(svc) == before


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/register"),
        ("PUT", "/register"),
        ("DELETE", "/register"),
        ("POST", "/register/someone"),
        ("PATCH", "/register/someone"),
    ],
)
def test_wrong_methods_are_405_json(client: Any, svc: Any, method: str, path: str) -> None:
    before = row_counts(svc)
    resp = client.open(path, method=method, json=GOOD)
    assert_clean_error(resp, json_body=True, status=405)
    assert row_counts(svc) == before
