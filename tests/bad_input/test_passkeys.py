"""The passkey endpoints fed hostile input: a clear 4xx, no trace, nothing stored; CSRF
required on every one of them."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.bad_input.helpers import INLINE_SCRIPT, MARKUP, assert_clean_error, row_counts, text_of
from tests.conftest import ISSUER
from tests.support.auth import PASSWORD, csrf_from
from tests.support.webauthn import SoftAuthenticator


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def credential(response: Any, **top: Any) -> str:
    body = {"id": "AAAA", "rawId": "AAAA", "type": "public-key", "response": response}
    body.update(top)
    return json.dumps(body)


CLIENT_DATA = b64(json.dumps({"type": "webauthn.get", "challenge": "AAAA", "origin": ISSUER}))
HOSTILE = [
    "",
    "{",
    "[]",
    '"a string"',
    "null",
    "12",
    MARKUP,
    "x" * 20_000,
    json.dumps({"id": 5}),
    json.dumps({"id": "AAAA", "rawId": "AAAA", "response": "nope"}),
    credential({"clientDataJSON": 5}),
    credential({"clientDataJSON": "!!!", "attestationObject": "!!!"}),
    credential({"clientDataJSON": b64("not json"), "attestationObject": "AA"}),
    credential({"clientDataJSON": b64("[1]"), "authenticatorData": "AA", "signature": "AA"}),
    credential({"clientDataJSON": CLIENT_DATA, "attestationObject": "AA"}),
    credential({"clientDataJSON": CLIENT_DATA, "authenticatorData": "AA", "signature": "AA"}),
    credential(
        {"clientDataJSON": CLIENT_DATA, "authenticatorData": MARKUP, "signature": "AA"},
        type=MARKUP,
    ),
    credential({"clientDataJSON": CLIENT_DATA}, rawId="*" * 3000),
]


def token(client: Any, path: str = "/login") -> str:
    return csrf_from(text_of(client.get(path)))


# --- CSRF -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/account/security/passkeys/options",
        "/account/security/passkeys",
        "/account/security/passkeys/abc/delete",
        "/login/passkey/options",
        "/login/passkey",
    ],
)
@pytest.mark.parametrize("csrf", [None, "garbage", MARKUP])
def test_every_passkey_endpoint_needs_the_csrf_token(
    auth: Any, svc: Any, logged_in: Any, path: str, csrf: str | None
) -> None:
    before = row_counts(svc)
    data = {"password": PASSWORD, "credential": "{}", "next": "/account"}
    headers = {}
    if csrf is not None:
        data["csrf_token"] = csrf
        headers["X-CSRFToken"] = csrf
    resp = auth.client.post(path, data=data, headers=headers)
    assert_clean_error(resp, json_body=False, status=400)
    assert row_counts(svc) == before


# --- registration ---------------------------------------------------------------------


def test_registration_options_need_a_session(client: Any) -> None:
    resp = client.post("/account/security/passkeys/options", headers={"X-CSRFToken": token(client)})
    assert_clean_error(resp, json_body=True, status=401, error="login_required")


def test_registration_needs_a_session(client: Any, svc: Any) -> None:
    before = row_counts(svc)
    resp = client.post(
        "/account/security/passkeys", data={"csrf_token": token(client), "credential": "{}"}
    )
    assert_clean_error(resp, json_body=True, status=401, error="login_required")
    assert row_counts(svc) == before


@pytest.mark.parametrize("bad", HOSTILE)
def test_registration_with_a_hostile_credential_is_400(
    auth: Any, svc: Any, logged_in: Any, bad: str
) -> None:
    csrf = token(auth.client, "/account/security")
    auth.client.post("/account/security/passkeys/options", headers={"X-CSRFToken": csrf})
    before = row_counts(svc)
    resp = auth.client.post(
        "/account/security/passkeys",
        data={"csrf_token": csrf, "credential": bad, "password": PASSWORD, "label": MARKUP},
    )
    assert_clean_error(resp, json_body=False, status=400)
    assert row_counts(svc) == before


def test_registration_refuses_repeated_or_oversized_bodies(
    auth: Any, svc: Any, logged_in: Any
) -> None:
    csrf = token(auth.client, "/account/security")
    before = row_counts(svc)
    resp = auth.client.post(
        "/account/security/passkeys",
        data={"csrf_token": csrf, "credential": "x" * 70_000, "password": PASSWORD},
    )
    assert_clean_error(resp, json_body=False, status=413)
    assert row_counts(svc) == before


def test_a_hostile_label_is_shown_escaped(auth: Any, svc: Any, logged_in: Any) -> None:
    csrf = token(auth.client, "/account/security")
    options = auth.client.post(
        "/account/security/passkeys/options", headers={"X-CSRFToken": csrf}
    ).get_json()
    made = SoftAuthenticator(origin=ISSUER).create(options)
    resp = auth.client.post(
        "/account/security/passkeys",
        data={
            "csrf_token": csrf,
            "credential": json.dumps(made),
            "password": PASSWORD,
            "label": MARKUP + "\x07" + "y" * 500,
        },
    )
    assert resp.status_code == 303
    page = text_of(auth.client.get("/account/security"))
    assert not INLINE_SCRIPT.search(page)
    assert "&lt;script&gt;" in page


# --- removal --------------------------------------------------------------------------


@pytest.mark.parametrize("passkey_id", ["x" * 5000, MARKUP, "..%2F..%2Faccount", "0" * 32])
def test_removing_a_passkey_that_is_not_there_is_404(
    auth: Any, svc: Any, logged_in: Any, passkey_id: str
) -> None:
    csrf = token(auth.client, "/account/security")
    before = row_counts(svc)
    resp = auth.client.post(
        f"/account/security/passkeys/{passkey_id}/delete",
        data={"csrf_token": csrf, "password": PASSWORD},
    )
    assert_clean_error(resp, json_body=False, status=404)
    assert row_counts(svc) == before


@pytest.mark.parametrize("password", ["", "wrong", MARKUP, "x" * 5000])
def test_removing_a_passkey_with_a_wrong_password_is_403(
    auth: Any, svc: Any, logged_in: Any, password: str
) -> None:
    csrf = token(auth.client, "/account/security")
    before = row_counts(svc)
    resp = auth.client.post(
        "/account/security/passkeys/abc/delete", data={"csrf_token": csrf, "password": password}
    )
    assert_clean_error(resp, json_body=False, status=403)
    assert row_counts(svc) == before


# --- passwordless sign-in -------------------------------------------------------------


@pytest.mark.parametrize("bad", HOSTILE)
def test_passkey_sign_in_with_a_hostile_credential_is_401(
    client: Any, svc: Any, alice: Any, bad: str
) -> None:
    csrf = token(client)
    client.post("/login/passkey/options", headers={"X-CSRFToken": csrf})
    before = row_counts(svc)
    resp = client.post(
        "/login/passkey", data={"csrf_token": csrf, "credential": bad, "next": MARKUP}
    )
    assert_clean_error(resp, json_body=False, status=401)
    assert row_counts(svc) == before
    assert client.get("/account").status_code == 303


def test_passkey_sign_in_keeps_next_on_site(app: Any, auth: Any, svc: Any, logged_in: Any) -> None:
    authn = SoftAuthenticator(origin=ISSUER)
    csrf = token(auth.client, "/account/security")
    options = auth.client.post(
        "/account/security/passkeys/options", headers={"X-CSRFToken": csrf}
    ).get_json()
    made = auth.client.post(
        "/account/security/passkeys",
        data={"csrf_token": csrf, "credential": json.dumps(authn.create(options)),
              "password": PASSWORD},
    )  # fmt: skip
    assert made.status_code == 303
    browser = app.test_client()
    csrf = token(browser)
    options = browser.post("/login/passkey/options", headers={"X-CSRFToken": csrf}).get_json()
    resp = browser.post(
        "/login/passkey",
        data={
            "csrf_token": csrf,
            "credential": json.dumps(authn.get(options)),
            "next": "https://evil.example/",
        },
    )
    assert resp.status_code == 303
    assert resp.headers["Location"] == "/account"


@pytest.mark.parametrize("config_overrides", [{"login": {"max_failures_per_ip": 2}}])
def test_passkey_options_are_rate_limited_per_network(client: Any, svc: Any) -> None:
    csrf = token(client)
    limit = 4 * svc.config.login.max_failures_per_ip
    for _ in range(limit):
        assert (
            client.post("/login/passkey/options", headers={"X-CSRFToken": csrf}).status_code == 200
        )
    resp = client.post("/login/passkey/options", headers={"X-CSRFToken": csrf})
    assert_clean_error(resp, json_body=True, status=429, error="too_many_requests")
    assert "Retry-After" in resp.headers
