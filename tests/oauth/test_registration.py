"""Dynamic client registration (RFC 7591) and its management (RFC 7592): initial access
tokens, the client information response, read, full replacement and deletion with the
registration access token, and clients so registered using the token endpoint."""

from __future__ import annotations

import hashlib
import re
import threading
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select

from idp import create_app
from idp.audit.models import AuditEvent
from idp.clients.models import Client, InitialAccessToken
from tests.conftest import ISSUER, make_config
from tests.support.auth import AuthActions, RegisteredClient, csrf_from, query_of
from tests.support.client_jwt import ASSERTION_TYPE, ClientKey

REDIRECT = "https://client.example.org/callback"
OPEN = {"oauth": {"registration": "open"}}
CLOSED = {"oauth": {"registration": "closed"}}

# RFC 7591 §3.1's example request, as sent (less its jwks_uri: idp would fetch it).
RFC_EXAMPLE = {
    "redirect_uris": [
        "https://client.example.org/callback",
        "https://client.example.org/callback2",
    ],
    "client_name": "My Example Client",
    "client_name#ja-Jpan-JP": "\u30af\u30e9\u30a4\u30a2\u30f3\u30c8\u540d",
    "token_endpoint_auth_method": "client_secret_basic",
    "logo_uri": "https://client.example.org/logo.png",
    "example_extension_parameter": "example_value",
}


def initial_token(svc: Any, ttl: int = 3600, reusable: bool = False) -> str:
    return str(svc.registrations.issue_initial_token(ttl, reusable, "cli"))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def register(client: Any, svc: Any, body: dict[str, Any], token: str | None = None) -> Any:
    """POST /register with a fresh initial access token (or ``token``)."""
    token = token if token is not None else initial_token(svc)
    return client.post("/register", json=body, headers=bearer(token) if token else {})


def registered(client: Any, svc: Any, body: dict[str, Any]) -> dict[str, Any]:
    resp = register(client, svc, body)
    assert resp.status_code == 201, resp.get_json()
    return dict(resp.get_json())


def path_of(info: dict[str, Any]) -> str:
    uri = str(info["registration_client_uri"])
    assert uri.startswith(ISSUER + "/register/")
    return uri.removeprefix(ISSUER)


def manage(client: Any, info: dict[str, Any], method: str = "GET", **kw: Any) -> Any:
    token = kw.pop("token", info["registration_access_token"])
    return client.open(path_of(info), method=method, headers=bearer(token), **kw)


def audit(svc: Any, action: str) -> list[AuditEvent]:
    with svc.db.read() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def count_clients(svc: Any) -> int:
    with svc.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(Client)) or 0)


def assert_invalid_token(resp: Any) -> None:
    assert resp.status_code == 401, resp.get_data(as_text=True)
    assert resp.get_json()["error"] == "invalid_token"
    assert resp.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def as_rp(info: dict[str, Any], redirect_uri: str = REDIRECT) -> RegisteredClient:
    return RegisteredClient(info["client_id"], info.get("client_secret"), redirect_uri)


# --- discovery and configuration ------------------------------------------------------


def test_discovery_names_the_registration_endpoint(client: Any) -> None:
    for path in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"):
        assert client.get(path).get_json()["registration_endpoint"] == ISSUER + "/register"


@pytest.mark.parametrize("config_overrides", [CLOSED])
def test_closed_registration_has_no_endpoint(client: Any, svc: Any) -> None:
    meta = client.get("/.well-known/openid-configuration").get_json()
    assert "registration_endpoint" not in meta
    resp = register(client, svc, {"redirect_uris": [REDIRECT]})
    assert resp.status_code == 404 and resp.get_json()["error"] == "not_found"
    assert count_clients(svc) == 0


def test_clients_registered_before_registration_closed_still_manage_themselves(
    app: Any, client: Any, svc: Any, backend: dict[str, Any], tmp_path: Any
) -> None:
    info = registered(client, svc, {"redirect_uris": [REDIRECT]})
    closed = create_app(make_config(backend, tmp_path, **CLOSED), clock=svc.clock)
    try:
        with closed.test_client() as other:
            assert manage(other, info).status_code == 200
            assert other.post("/register", json={}).status_code == 404
    finally:
        closed.extensions["idp"].close()


# --- registration (RFC 7591 §3) --------------------------------------------------------


def test_the_rfc_example_registers_a_confidential_client(client: Any, svc: Any) -> None:
    token = initial_token(svc)
    resp = client.post(
        "/register", json=RFC_EXAMPLE, headers={**bearer(token), "Accept": "application/json"}
    )
    assert resp.status_code == 201, resp.get_json()
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["Pragma"] == "no-cache"
    info = resp.get_json()
    assert re.fullmatch(r"[0-9a-f]{32}", info["client_id"])
    assert len(info["client_secret"]) >= 43 and info["client_secret_expires_at"] == 0
    assert info["client_id_issued_at"] == int(svc.clock.now().timestamp())
    assert info["registration_client_uri"] == f"{ISSUER}/register/{info['client_id']}"
    assert resp.headers["Location"] == info["registration_client_uri"]
    assert len(info["registration_access_token"]) >= 43
    # §3.2.1: all registered metadata, the server's defaults included...
    assert info["redirect_uris"] == RFC_EXAMPLE["redirect_uris"]
    assert info["client_name"] == "My Example Client"
    assert info["token_endpoint_auth_method"] == "client_secret_basic"
    assert info["grant_types"] == ["authorization_code"]
    assert info["response_types"] == ["code"]
    assert info["scope"] == "openid profile email offline_access"
    assert info["first_party"] is False
    # ...and nothing it did not register (§2: unknown metadata is ignored).
    for ignored in ("logo_uri", "example_extension_parameter", "client_name#ja-Jpan-JP"):
        assert ignored not in info
    with svc.db.read() as s:
        row = s.get(Client, info["client_id"])
        assert row is not None and not row.first_party and not row.is_admin_client
        # Only hashes are kept, of the secret and of the registration access token.
        assert row.secret_hash == hashlib.sha256(info["client_secret"].encode()).hexdigest()
        assert (
            row.registration_token_hash
            == hashlib.sha256(info["registration_access_token"].encode()).hexdigest()
        )
        stored = s.get(InitialAccessToken, hashlib.sha256(token.encode()).hexdigest())
        assert stored is not None and stored.registrations == 1
    [event] = audit(svc, "client.register")
    assert event.target == info["client_id"]
    assert event.actor == "initial-token:" + hashlib.sha256(token.encode()).hexdigest()[:12]
    assert event.details["metadata"]["redirect_uris"] == RFC_EXAMPLE["redirect_uris"]


def test_every_registration_gets_its_own_id_and_credentials(client: Any, svc: Any) -> None:
    a = registered(client, svc, {"redirect_uris": [REDIRECT]})
    b = registered(client, svc, {"redirect_uris": [REDIRECT]})
    for field in ("client_id", "client_secret", "registration_access_token"):
        assert a[field] != b[field]


def test_a_registered_confidential_client_uses_its_secret_at_the_token_endpoint(
    client: Any, svc: Any
) -> None:
    info = registered(
        client,
        svc,
        {"grant_types": ["client_credentials"], "token_endpoint_auth_method": "client_secret_post"},
    )
    assert info["response_types"] == [] and "redirect_uris" in info
    resp = client.post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "client_id": info["client_id"],
            "client_secret": info["client_secret"],
        },
    )
    assert resp.status_code == 200, resp.get_json()
    assert (
        svc.access_tokens.decode(resp.get_json()["access_token"])["client_id"] == info["client_id"]
    )


def test_a_registered_private_key_jwt_client_signs_its_way_to_a_token(
    client: Any, svc: Any
) -> None:
    key = ClientKey("ES256")
    info = registered(
        client,
        svc,
        {
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": key.jwks(),
        },
    )
    assert "client_secret" not in info and "client_secret_expires_at" not in info
    assert info["jwks"] == key.jwks()
    resp = client.post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": key.assertion(info["client_id"], ISSUER + "/token"),
        },
    )
    assert resp.status_code == 200, resp.get_json()
    # Another key cannot speak for it.
    forged = ClientKey("ES256").assertion(info["client_id"], ISSUER + "/token")
    resp = client.post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": forged,
        },
    )
    assert resp.status_code in (400, 401) and resp.get_json()["error"] == "invalid_client"


def test_a_registered_public_client_completes_a_code_flow_after_consent(
    auth: AuthActions, client: Any, svc: Any
) -> None:
    """Dynamically registered clients are never first-party: the user is asked."""
    info = registered(
        client,
        svc,
        {
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "client_name": "Field notes",
        },
    )
    assert "client_secret" not in info and info["token_endpoint_auth_method"] == "none"
    rp = as_rp(info)
    auth.user()
    auth.login()
    params = auth.authorize_params(rp, scope="openid profile offline_access")
    page = client.get("/authorize?" + urlencode(params))
    assert page.status_code == 200 and "Field notes" in page.get_data(as_text=True)
    allowed = client.post(
        "/authorize?" + urlencode(params),
        data={"decision": "allow", "csrf_token": csrf_from(page.get_data(as_text=True))},
    )
    assert allowed.status_code == 303, allowed.get_data(as_text=True)
    code = query_of(allowed.headers["Location"])["code"]
    resp = auth.exchange(rp, code, auth.verifier)
    assert resp.status_code == 200, resp.get_json()
    tokens = resp.get_json()
    assert tokens["id_token"] and tokens["refresh_token"]
    refreshed = auth.token(
        rp, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.get_json()


def test_an_id_token_algorithm_registered_gets_a_published_key(client: Any, svc: Any) -> None:
    info = registered(
        client, svc, {"redirect_uris": [REDIRECT], "id_token_signed_response_alg": "EdDSA"}
    )
    assert info["id_token_signed_response_alg"] == "EdDSA"
    algs = {k["alg"] for k in client.get("/jwks.json").get_json()["keys"]}
    assert "EdDSA" in algs


def test_registration_records_every_supported_member(client: Any, svc: Any) -> None:
    key = ClientKey("RS256")
    body = {
        "redirect_uris": [REDIRECT, "http://127.0.0.1/cb", "com.example.app:/cb"],
        "token_endpoint_auth_method": "client_secret_basic",
        "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
        "response_types": ["code"],
        "client_name": "Everything",
        "scope": "openid email",
        "jwks": key.jwks(),
        "post_logout_redirect_uris": ["https://client.example.org/bye"],
        "backchannel_logout_uri": "https://client.example.org/bcl",
        "id_token_signed_response_alg": "ES256",
        "dpop_bound_access_tokens": True,
        "require_pushed_authorization_requests": True,
        "require_verified_email": True,
    }
    info = registered(client, svc, body)
    for name, value in body.items():
        assert info[name] == value, name


# --- initial access tokens --------------------------------------------------------------


def test_an_initial_access_token_registers_one_client(client: Any, svc: Any) -> None:
    token = initial_token(svc)
    assert register(client, svc, {"redirect_uris": [REDIRECT]}, token).status_code == 201
    again = register(client, svc, {"redirect_uris": [REDIRECT]}, token)
    assert_invalid_token(again)
    assert count_clients(svc) == 1


def test_racing_registrations_with_one_token_register_one_client(app: Any, svc: Any) -> None:
    token = initial_token(svc)
    barrier = threading.Barrier(6)
    statuses: list[int] = []

    def attempt() -> None:
        with app.test_client() as own:
            barrier.wait()
            statuses.append(register(own, svc, {"redirect_uris": [REDIRECT]}, token).status_code)

    threads = [threading.Thread(target=attempt) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(statuses) == [201] + [401] * 5
    assert count_clients(svc) == 1


def test_a_reusable_initial_access_token_registers_until_it_expires(
    client: Any, svc: Any, clock: Any
) -> None:
    token = initial_token(svc, ttl=600, reusable=True)
    for _ in range(3):
        assert register(client, svc, {"redirect_uris": [REDIRECT]}, token).status_code == 201
    clock.advance(601)
    assert_invalid_token(register(client, svc, {"redirect_uris": [REDIRECT]}, token))
    assert count_clients(svc) == 3


def test_an_expired_initial_access_token_registers_nothing(
    client: Any, svc: Any, clock: Any
) -> None:
    token = initial_token(svc, ttl=60)
    clock.advance(61)
    assert_invalid_token(register(client, svc, {"redirect_uris": [REDIRECT]}, token))
    assert count_clients(svc) == 0


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "bearer " + "x" * 5000},
    ],
)
def test_registration_without_a_good_initial_token_is_401(
    client: Any, svc: Any, headers: dict[str, str]
) -> None:
    initial_token(svc)  # one exists, but it is not the one sent
    resp = client.post("/register", json={"redirect_uris": [REDIRECT]}, headers=headers)
    assert_invalid_token(resp)
    assert count_clients(svc) == 0


def test_a_refused_registration_does_not_use_up_the_initial_token(client: Any, svc: Any) -> None:
    token = initial_token(svc)
    bad = register(client, svc, {"redirect_uris": ["http://evil.example/cb"]}, token)
    assert bad.status_code == 400 and bad.get_json()["error"] == "invalid_redirect_uri"
    assert register(client, svc, {"redirect_uris": [REDIRECT]}, token).status_code == 201


def test_initial_tokens_are_stored_hashed_and_their_issue_audited(svc: Any) -> None:
    token = initial_token(svc, ttl=120)
    digest = hashlib.sha256(token.encode()).hexdigest()
    with svc.db.read() as s:
        [row] = s.scalars(select(InitialAccessToken)).all()
    assert row.token_hash == digest and not row.reusable
    assert (row.expires_at - row.created_at).total_seconds() == 120
    [event] = audit(svc, "initial_token.issue")
    assert event.actor == "cli" and event.target == digest[:12]
    assert token not in str(event.details)


@pytest.mark.parametrize("config_overrides", [OPEN])
def test_open_registration_needs_no_token_but_only_user_scopes(client: Any, svc: Any) -> None:
    resp = client.post("/register", json={"redirect_uris": [REDIRECT], "scope": "openid email"})
    assert resp.status_code == 201, resp.get_json()
    assert audit(svc, "client.register")[0].actor == "open-registration"
    wider = client.post("/register", json={"grant_types": ["client_credentials"], "scope": "api"})
    assert wider.status_code == 400 and wider.get_json()["error"] == "invalid_client_metadata"
    assert count_clients(svc) == 1


def test_with_an_initial_token_any_scope_but_the_admin_one(client: Any, svc: Any) -> None:
    info = registered(client, svc, {"grant_types": ["client_credentials"], "scope": "api"})
    assert info["scope"] == "api"
    admin = register(client, svc, {"grant_types": ["client_credentials"], "scope": "idp:admin"})
    assert admin.status_code == 400 and admin.get_json()["error"] == "invalid_client_metadata"


# --- response_types and grant_types (RFC 7591 §2.1) -------------------------------------


@pytest.mark.parametrize(
    ("body", "grants", "responses"),
    [
        ({}, ["authorization_code"], ["code"]),
        ({"response_types": ["code"]}, ["authorization_code"], ["code"]),
        ({"grant_types": ["authorization_code", "refresh_token"]}, None, ["code"]),
        ({"grant_types": ["client_credentials"]}, None, []),
        ({"grant_types": ["client_credentials"], "response_types": []}, None, []),
    ],
)
def test_response_types_follow_the_grant_types(
    client: Any, svc: Any, body: dict[str, Any], grants: list[str] | None, responses: list[str]
) -> None:
    info = registered(client, svc, {"redirect_uris": [REDIRECT], **body})
    assert info["grant_types"] == (grants or body["grant_types"])
    assert info["response_types"] == responses


@pytest.mark.parametrize(
    "body",
    [
        {"response_types": []},
        {"grant_types": ["client_credentials"], "response_types": ["code"]},
        {"grant_types": ["authorization_code"], "response_types": []},
        {"response_types": ["token"]},
        {"response_types": ["code", "id_token"]},
        {"grant_types": ["implicit"], "response_types": ["token"]},
        {"grant_types": []},
    ],
)
def test_inconsistent_or_unsupported_types_are_invalid_client_metadata(
    client: Any, svc: Any, body: dict[str, Any]
) -> None:
    resp = register(client, svc, {"redirect_uris": [REDIRECT], **body})
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_client_metadata"
    assert count_clients(svc) == 0


# --- read (RFC 7592 §2.1) -----------------------------------------------------------------


def test_reading_a_registration_returns_what_was_registered(client: Any, svc: Any) -> None:
    info = registered(client, svc, RFC_EXAMPLE)
    resp = manage(client, info)
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    read = resp.get_json()
    assert read == {k: v for k, v in info.items() if k != "client_secret"}


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_a_wrong_registration_access_token_is_401(client: Any, svc: Any, method: str) -> None:
    info = registered(client, svc, {"redirect_uris": [REDIRECT]})
    other = registered(client, svc, {"redirect_uris": [REDIRECT]})
    body = {"client_id": info["client_id"], "redirect_uris": [REDIRECT]}
    for token in ("", "nope", other["registration_access_token"], info["client_secret"]):
        assert_invalid_token(manage(client, info, method, token=token, json=body))
    no_header = client.open(path_of(info), method=method, json=body)
    assert_invalid_token(no_header)
    assert manage(client, info).status_code == 200  # untouched


def test_operator_clients_and_unknown_ids_cannot_be_managed(
    auth: AuthActions, client: Any, svc: Any
) -> None:
    rp = auth.oauth_client("ops-made")
    info = registered(client, svc, {"redirect_uris": [REDIRECT]})
    for client_id in ("ops-made", "nobody", "x" * 300, "%3Cscript%3E", "a:b"):
        resp = client.get(
            f"/register/{client_id}", headers=bearer(info["registration_access_token"])
        )
        assert_invalid_token(resp)
    assert rp.client_id == "ops-made"


# --- update (RFC 7592 §2.2) ---------------------------------------------------------------


def replacement(info: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A read answer turned into an update: the server's own fields left out."""
    body = {
        k: v
        for k, v in info.items()
        if k
        not in (
            "registration_access_token",
            "registration_client_uri",
            "client_secret_expires_at",
            "client_id_issued_at",
        )
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def test_an_update_replaces_the_registration(client: Any, svc: Any) -> None:
    info = registered(
        client,
        svc,
        {
            "redirect_uris": [REDIRECT],
            "client_name": "Before",
            "post_logout_redirect_uris": ["https://client.example.org/bye"],
        },
    )
    body = {
        "client_id": info["client_id"],
        "client_secret": info["client_secret"],
        "redirect_uris": ["https://client.example.org/new"],
        "token_endpoint_auth_method": "client_secret_post",
    }
    resp = manage(client, info, "PUT", json=body)
    assert resp.status_code == 200, resp.get_json()
    updated = resp.get_json()
    assert updated["redirect_uris"] == ["https://client.example.org/new"]
    assert updated["token_endpoint_auth_method"] == "client_secret_post"
    # Left out means back to the default (RFC 7592 §2.2: omitted fields are deleted).
    assert updated["client_name"] == info["client_id"]
    assert updated["post_logout_redirect_uris"] == []
    assert updated["client_id_issued_at"] == info["client_id_issued_at"]
    # The credentials stay: the same secret works, the same access token manages it.
    assert "client_secret" not in updated
    assert updated["registration_access_token"] == info["registration_access_token"]
    assert manage(client, info).get_json()["redirect_uris"] == ["https://client.example.org/new"]
    token = client.post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "client_id": info["client_id"],
            "client_secret": info["client_secret"],
        },
    )
    assert token.get_json()["error"] == "unauthorized_client"  # grant, not secret
    [event] = audit(svc, "client.update")
    assert event.actor == f"registration:{info['client_id']}"
    assert event.details["changed"]["client_name"] == {"from": "Before", "to": info["client_id"]}


def test_a_read_answer_sent_back_as_an_update_changes_nothing(client: Any, svc: Any) -> None:
    info = registered(client, svc, RFC_EXAMPLE)
    read = manage(client, info).get_json()
    resp = manage(client, info, "PUT", json=replacement(read))
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json() == read


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"client_id": None}, "invalid_request"),
        ({"client_id": "someone-else"}, "invalid_request"),
        ({"client_id": 7}, "invalid_request"),
        ({"client_secret": "chosen-by-the-client"}, "invalid_request"),
        ({"client_secret": 12}, "invalid_request"),
        ({"registration_access_token": "x"}, "invalid_request"),
        ({"registration_client_uri": "https://evil.example/"}, "invalid_request"),
        ({"client_secret_expires_at": 0}, "invalid_request"),
        ({"client_id_issued_at": 1}, "invalid_request"),
        ({"redirect_uris": ["javascript:alert(1)"]}, "invalid_redirect_uri"),
        ({"redirect_uris": []}, "invalid_redirect_uri"),
        ({"token_endpoint_auth_method": "none"}, "invalid_client_metadata"),
        ({"token_endpoint_auth_method": "private_key_jwt", "jwks": ClientKey().jwks()}, None),
        ({"scope": "idp:admin"}, "invalid_client_metadata"),
    ],
)
def test_a_refused_update_changes_nothing(
    client: Any, svc: Any, change: dict[str, Any], error: str | None
) -> None:
    info = registered(client, svc, {"redirect_uris": [REDIRECT], "client_name": "Kept"})
    body = {"client_id": info["client_id"], "redirect_uris": [REDIRECT], "client_name": "New"}
    body.update(change)
    body = {k: v for k, v in body.items() if v is not None}
    resp = manage(client, info, "PUT", json=body)
    assert resp.status_code == 400, resp.get_json()
    assert resp.get_json()["error"] == (error or "invalid_client_metadata")
    assert manage(client, info).get_json()["client_name"] == "Kept"
    assert audit(svc, "client.update") == []


def test_a_public_client_stays_public(client: Any, svc: Any) -> None:
    info = registered(
        client, svc, {"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}
    )
    same = manage(client, info, "PUT", json=replacement(info, client_name="Renamed"))
    assert same.status_code == 200 and same.get_json()["client_name"] == "Renamed"
    # Left out, the method would be client_secret_basic: a new credential, refused.
    body = replacement(info)
    del body["token_endpoint_auth_method"]
    resp = manage(client, info, "PUT", json=body)
    assert resp.status_code == 400 and "cannot change" in resp.get_json()["error_description"]


# --- delete (RFC 7592 §2.3) ---------------------------------------------------------------


def test_deleting_a_registration_ends_the_client_and_its_tokens(
    auth: AuthActions, client: Any, svc: Any
) -> None:
    info = registered(
        client,
        svc,
        {
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
        },
    )
    rp = as_rp(info)
    cc = auth.token(rp, {"grant_type": "client_credentials"}).get_json()["access_token"]
    resp = manage(client, info, "DELETE")
    assert resp.status_code == 204 and resp.get_data() == b""
    assert resp.headers["Cache-Control"] == "no-store"
    # The registration access token, the client id and its secret all stop working...
    assert_invalid_token(manage(client, info))
    assert_invalid_token(manage(client, info, "DELETE"))
    refused = auth.token(rp, {"grant_type": "client_credentials"})
    assert refused.status_code == 401 and refused.get_json()["error"] == "invalid_client"
    # ...and so does what it was issued.
    assert svc.access_tokens.active(cc) is None
    with svc.db.read() as s:
        row = s.get(Client, info["client_id"])
        assert row is not None and row.disabled
        assert row.secret_hash is None and row.registration_token_hash is None
    [event] = audit(svc, "client.delete")
    assert event.actor == f"registration:{info['client_id']}"
    assert event.target == info["client_id"]
