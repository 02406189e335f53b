"""A passkey as the login's second step (``/login/code/passkey``): after a right password,
a user with a passkey signs in with it; the session is ``amr`` pwd+hwk+mfa, ``acr`` 2.
Driven by the software authenticator of tests/support/webauthn.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

from idp.ssf.events import CREDENTIAL_CHANGE
from tests.bad_input.helpers import row_counts
from tests.conftest import ISSUER
from tests.ssf.test_transmitter import Receiver
from tests.support.auth import PASSWORD, AuthActions, csrf_from
from tests.support.jwt import claims_unverified
from tests.support.webauthn import SoftAuthenticator

OPTIONS = "/login/code/passkey/options"
STEP = "/login/code/passkey"


@pytest.fixture
def alice(auth: AuthActions) -> Any:
    return auth.user("alice")


@pytest.fixture
def authn(auth: AuthActions, alice: Any) -> SoftAuthenticator:
    """alice with one passkey (registered on the security page), signed out again."""
    authn = SoftAuthenticator(origin=ISSUER)
    auth.login()
    page = auth.client.get("/account/security").get_data(as_text=True)
    options = auth.client.post(
        "/account/security/passkeys/options", headers={"X-CSRFToken": csrf_from(page)}
    ).get_json()
    added = auth.client.post(
        "/account/security/passkeys",
        data={
            "csrf_token": csrf_from(page),
            "credential": json.dumps(authn.create(options)),
            "label": "Laptop",
            "password": PASSWORD,
        },
    )
    assert added.status_code == 303, added.get_data(as_text=True)
    auth.client.delete_cookie("idp_session")
    return authn


def password_step(auth: AuthActions) -> str:
    """The password, then the second step's page; returns its CSRF token."""
    resp = auth.login()
    assert resp.status_code == 303 and resp.headers["Location"] == "/login/code"
    page = auth.client.get("/login/code")
    assert page.status_code == 200 and 'action="/login/code/passkey"' in page.get_data(True)
    return csrf_from(page.get_data(as_text=True))


def options_for(auth: AuthActions, token: str) -> dict[str, Any]:
    resp = auth.client.post(OPTIONS, headers={"X-CSRFToken": token})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.headers["Cache-Control"] == "no-store"
    return dict(resp.get_json())


def send(auth: AuthActions, token: str, assertion: Any) -> Any:
    body = assertion if isinstance(assertion, str) else json.dumps(assertion)
    return auth.client.post(STEP, data={"csrf_token": token, "credential": body})


def test_a_passkey_after_the_password_signs_in_as_mfa(
    auth: AuthActions, authn: SoftAuthenticator
) -> None:
    token = password_step(auth)
    assert auth.client.get("/account").status_code == 303  # no session yet
    done = send(auth, token, authn.get(options_for(auth, token)))
    assert done.status_code == 303 and done.headers["Location"] == "/account"
    claims = claims_unverified(auth.tokens(auth.oauth_client())["id_token"])
    assert claims["amr"] == ["pwd", "hwk", "mfa"] and claims["acr"] == "2"


def test_an_assertion_is_good_for_one_pending_login_once(
    auth: AuthActions, authn: SoftAuthenticator
) -> None:
    token = password_step(auth)
    assertion = authn.get(options_for(auth, token))
    assert send(auth, token, assertion).status_code == 303
    auth.client.delete_cookie("idp_session")
    # A new pending login: the old assertion answers another challenge.
    token = password_step(auth)
    refused = send(auth, token, assertion)
    assert refused.status_code == 401
    assert "did not sign in" in refused.get_data(as_text=True)


@pytest.mark.parametrize(
    "credential", ["", "not json", "{}", '{"id": 1}', "x" * 30_000, "<script>alert(1)</script>"]
)
def test_a_bad_assertion_is_a_clean_401_and_no_session(
    auth: AuthActions, svc: Any, authn: SoftAuthenticator, credential: str
) -> None:
    token = password_step(auth)
    before = row_counts(svc)
    resp = send(auth, token, credential)
    assert resp.status_code == 401
    assert "<script>alert" not in resp.get_data(as_text=True)
    assert row_counts(svc) == before


def test_the_passkey_step_needs_a_pending_login_and_csrf(
    auth: AuthActions, authn: SoftAuthenticator
) -> None:
    page = auth.client.get("/login").get_data(as_text=True)
    assert auth.client.post(OPTIONS, headers={"X-CSRFToken": csrf_from(page)}).status_code == 401
    no_pending = send(auth, csrf_from(page), "{}")
    assert no_pending.status_code == 303 and no_pending.headers["Location"] == "/login"
    token = password_step(auth)
    assert auth.client.post(OPTIONS).status_code == 400  # no CSRF token
    assertion = authn.get(options_for(auth, token))
    assert send(auth, "forged", assertion).status_code == 400


def test_removing_a_passkey_is_a_credential_change_event(
    auth: AuthActions, alice: Any, authn: SoftAuthenticator
) -> None:
    receiver = Receiver(auth)
    stream = receiver.create(events_requested=[CREDENTIAL_CHANGE])
    token = password_step(auth)
    assert send(auth, token, authn.get(options_for(auth, token))).status_code == 303
    [passkey_id] = [p.id for p in auth.svc.passkeys.of_user(alice.id)]
    page = auth.client.get("/account/security").get_data(as_text=True)
    removed = auth.client.post(
        f"/account/security/passkeys/{passkey_id}/delete",
        data={"csrf_token": csrf_from(page), "password": PASSWORD},
    )
    assert removed.status_code == 303
    [set_token] = receiver.poll(stream)["sets"].values()
    event = claims_unverified(set_token)["events"][CREDENTIAL_CHANGE]
    assert event["credential_type"] == "fido2-platform" and event["change_type"] == "delete"
    assert event["reason_admin"]["en"]
