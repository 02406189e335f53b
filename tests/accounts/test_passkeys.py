"""Passkeys (issue 13 item 5): registration, passwordless sign-in and second factor,
driven with a software authenticator written from the WebAuthn spec
(tests/support/webauthn.py) against the real app."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import delete, func, select

from idp.accounts.models import User
from idp.accounts.passkey_models import WebAuthnCredential
from idp.accounts.passkeys import delete_for_user
from idp.audit.models import AuditEvent, SecurityEvent
from idp.sessions.models import BrowserSession
from tests.conftest import ISSUER
from tests.support.auth import PASSWORD, AuthActions, csrf_from
from tests.support.webauthn import SoftAuthenticator, b64url

OPTIONS = "/account/security/passkeys/options"
REGISTER = "/account/security/passkeys"
LOGIN_OPTIONS = "/login/passkey/options"
LOGIN = "/login/passkey"


@pytest.fixture
def alice(auth: AuthActions) -> Any:
    return auth.user("alice")


@pytest.fixture
def authn() -> SoftAuthenticator:
    return SoftAuthenticator(origin=ISSUER)


def token_of(client: Any, path: str = "/account/security") -> str:
    return csrf_from(client.get(path).get_data(as_text=True))


def creation_options(client: Any) -> dict[str, Any]:
    resp = client.post(OPTIONS, headers={"X-CSRFToken": token_of(client)})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.headers["Cache-Control"] == "no-store"
    return dict(resp.get_json())


def post_registration(
    client: Any, credential: Any, *, password: str = PASSWORD, label: str = "Laptop"
) -> Any:
    return client.post(
        REGISTER,
        data={
            "csrf_token": token_of(client),
            "credential": credential if isinstance(credential, str) else json.dumps(credential),
            "label": label,
            "password": password,
        },
    )


def register(client: Any, authn: SoftAuthenticator, **kw: Any) -> Any:
    resp = post_registration(client, authn.create(creation_options(client)), **kw)
    assert resp.status_code == 303, resp.get_data(as_text=True)
    return resp


def request_options(client: Any) -> dict[str, Any]:
    resp = client.post(LOGIN_OPTIONS, headers={"X-CSRFToken": token_of(client, "/login")})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return dict(resp.get_json())


def post_login(client: Any, credential: Any, next: str = "/account") -> Any:
    return client.post(
        LOGIN,
        data={
            "csrf_token": token_of(client, "/login"),
            "credential": credential if isinstance(credential, str) else json.dumps(credential),
            "next": next,
        },
    )


def passkeys(svc: Any) -> list[WebAuthnCredential]:
    with svc.db.read() as s:
        return list(s.scalars(select(WebAuthnCredential)))


def live_sessions(svc: Any) -> int:
    with svc.db.read() as s:
        query = select(func.count()).select_from(BrowserSession)
        return int(s.scalar(query.where(BrowserSession.ended_at.is_(None))) or 0)


@pytest.fixture
def enrolled(auth: AuthActions, alice: Any, authn: SoftAuthenticator) -> SoftAuthenticator:
    """alice, signed in on ``auth.client``, with one passkey in ``authn``."""
    auth.login()
    register(auth.client, authn)
    return authn


# --- registration ---------------------------------------------------------------------


def test_registration_options_ask_for_a_discoverable_user_verified_passkey(
    auth: AuthActions, alice: Any
) -> None:
    auth.login()
    options = creation_options(auth.client)
    assert options["rp"] == {"id": "127.0.0.1", "name": "idp"}
    assert options["user"]["name"] == "alice"
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert options["attestation"] == "none"
    assert options["timeout"] == 300_000


def test_a_registered_passkey_is_stored_listed_and_audited(
    app: Any, svc: Any, auth: AuthActions, alice: Any, enrolled: SoftAuthenticator
) -> None:
    [row] = passkeys(svc)
    assert row.user_id == alice.id
    assert row.label == "Laptop"
    assert row.transports == ["internal"]
    assert row.aaguid == "00010203-0405-0607-0809-0a0b0c0d0e0f"
    assert row.sign_count == 0 and row.last_used_at is None
    page = auth.client.get("/account/security").get_data(as_text=True)
    assert "Laptop" in page and "never used" in page
    with svc.db.read() as s:
        assert s.scalar(select(AuditEvent).where(AuditEvent.action == "passkey.add"))
    again = creation_options(auth.client)
    assert [c["id"] for c in again["excludeCredentials"]] == [row.credential_id]


def test_registration_needs_the_current_password(
    svc: Any, auth: AuthActions, alice: Any, authn: SoftAuthenticator
) -> None:
    auth.login()
    resp = post_registration(
        auth.client, authn.create(creation_options(auth.client)), password="wrong"
    )
    assert resp.status_code == 403
    assert passkeys(svc) == []


def test_registration_without_user_verification_is_refused(
    svc: Any, auth: AuthActions, alice: Any, authn: SoftAuthenticator
) -> None:
    auth.login()
    credential = authn.create(creation_options(auth.client), user_verified=False)
    assert post_registration(auth.client, credential).status_code == 400
    assert passkeys(svc) == []


@pytest.mark.parametrize(
    "where",
    [
        {"origin": "https://idp.example.test"},
        {"origin": "http://127.0.0.1:5001"},
        {"rp_id": "evil.test"},
    ],
)
def test_registration_for_another_origin_or_rp_id_is_refused(
    svc: Any, auth: AuthActions, alice: Any, authn: SoftAuthenticator, where: dict[str, Any]
) -> None:
    auth.login()
    credential = authn.create(creation_options(auth.client), **where)
    assert post_registration(auth.client, credential).status_code == 400
    assert passkeys(svc) == []


def test_a_registration_challenge_is_used_once_even_when_refused(
    svc: Any, auth: AuthActions, alice: Any, authn: SoftAuthenticator
) -> None:
    auth.login()
    options = creation_options(auth.client)
    phished = authn.create(options, origin="https://evil.test")
    assert post_registration(auth.client, phished).status_code == 400
    honest = authn.create(options)
    resp = post_registration(auth.client, honest)
    assert resp.status_code == 400
    assert "already used" in resp.get_data(as_text=True)
    assert passkeys(svc) == []


def test_a_registration_challenge_is_bound_to_its_user(
    app: Any, svc: Any, auth: AuthActions, alice: Any, authn: SoftAuthenticator
) -> None:
    auth.user("bob")
    auth.login()
    alices_options = creation_options(auth.client)
    bob = AuthActions(app, app.test_client())
    bob.login("bob")
    assert post_registration(bob.client, authn.create(alices_options)).status_code == 400
    assert passkeys(svc) == []


# --- passwordless sign-in ------------------------------------------------------------


def test_passwordless_sign_in_with_a_passkey(
    app: Any, svc: Any, alice: Any, enrolled: SoftAuthenticator
) -> None:
    browser = app.test_client()
    options = request_options(browser)
    assert options["userVerification"] == "required"
    assert options["rpId"] == "127.0.0.1"
    assert options.get("allowCredentials", []) == [], "nothing tells which accounts exist"
    resp = post_login(browser, enrolled.get(options), next="/account/security")
    assert resp.status_code == 303
    assert resp.headers["Location"] == "/account/security"
    assert browser.get("/account").status_code == 200
    [row] = passkeys(svc)
    assert row.sign_count == 1 and row.last_used_at == svc.clock.now()
    with svc.db.read() as s:
        logins = list(s.scalars(select(AuditEvent).where(AuditEvent.action == "login")))
    assert logins[-1].details["amr"] == ["hwk", "mfa"]


def test_a_sign_in_challenge_is_single_use(
    app: Any, svc: Any, alice: Any, enrolled: SoftAuthenticator
) -> None:
    browser = app.test_client()
    assertion = enrolled.get(request_options(browser))
    assert post_login(browser, assertion).status_code == 303
    before = live_sessions(svc)
    attacker = app.test_client()
    resp = post_login(attacker, assertion)
    assert resp.status_code == 401
    assert "already used" in resp.get_data(as_text=True)
    assert live_sessions(svc) == before
    assert attacker.get("/account").status_code == 303


def test_an_expired_sign_in_challenge_is_refused(
    app: Any, svc: Any, backend: dict[str, Any], clock: Any, alice: Any, enrolled: SoftAuthenticator
) -> None:
    if backend["redis"].get("url"):
        pytest.skip("Redis expires keys on its own clock")
    browser = app.test_client()
    options = request_options(browser)
    clock.advance(svc.config.webauthn.timeout_seconds + 1)
    assert post_login(browser, enrolled.get(options)).status_code == 401


@pytest.mark.parametrize("where", [{"origin": "https://evil.test"}, {"rp_id": "evil.test"}])
def test_an_assertion_for_another_origin_or_rp_id_is_refused(
    app: Any, svc: Any, alice: Any, enrolled: SoftAuthenticator, where: dict[str, Any]
) -> None:
    browser = app.test_client()
    before = live_sessions(svc)
    assert post_login(browser, enrolled.get(request_options(browser), **where)).status_code == 401
    assert live_sessions(svc) == before


def test_passwordless_sign_in_needs_user_verification(
    app: Any, alice: Any, enrolled: SoftAuthenticator
) -> None:
    browser = app.test_client()
    assertion = enrolled.get(request_options(browser), user_verified=False)
    assert post_login(browser, assertion).status_code == 401


def test_a_sign_count_that_goes_back_is_refused_and_recorded(
    app: Any, svc: Any, alice: Any, enrolled: SoftAuthenticator
) -> None:
    browser = app.test_client()
    assert (
        post_login(browser, enrolled.get(request_options(browser), sign_count=5)).status_code == 303
    )
    clone = app.test_client()
    resp = post_login(clone, enrolled.get(request_options(clone), sign_count=3))
    assert resp.status_code == 401
    [row] = passkeys(svc)
    assert row.sign_count == 5
    with svc.db.read() as s:
        event = s.scalar(
            select(SecurityEvent).where(SecurityEvent.kind == "passkey_counter_regressed")
        )
    assert event is not None and event.user_id == alice.id


def test_a_user_handle_naming_another_user_is_refused(
    app: Any, auth: AuthActions, alice: Any, enrolled: SoftAuthenticator
) -> None:
    bob = auth.user("bob")
    browser = app.test_client()
    assertion = enrolled.get(request_options(browser))
    assertion["response"]["userHandle"] = b64url(bob.id.encode())
    assert post_login(browser, assertion).status_code == 401
    assert browser.get("/account").status_code == 303


def test_a_disabled_user_cannot_sign_in_with_a_passkey(
    app: Any, svc: Any, alice: Any, enrolled: SoftAuthenticator
) -> None:
    with svc.db.transaction() as s:
        user = s.get(User, alice.id)
        assert user is not None
        user.disabled = True
    browser = app.test_client()
    assert post_login(browser, enrolled.get(request_options(browser))).status_code == 401


def test_an_unknown_passkey_is_refused(app: Any, alice: Any, enrolled: SoftAuthenticator) -> None:
    stranger = SoftAuthenticator(origin=ISSUER, seed=99)
    browser = app.test_client()
    options = request_options(browser)
    stranger.create({"rp": {"id": "127.0.0.1"}, "user": {"id": "eA"}, "challenge": "AA"})
    assert post_login(browser, stranger.get(options)).status_code == 401


# --- second factor --------------------------------------------------------------------


def test_a_passkey_as_second_factor_is_bound_to_user_and_pending_login(
    app: Any, svc: Any, auth: AuthActions, alice: Any, enrolled: SoftAuthenticator
) -> None:
    bob = auth.user("bob")
    with svc.db.read() as s:
        alice_user = s.get(User, alice.id)
    options = svc.passkeys.second_factor_options(alice.id, "pending-1")
    assert [c["id"] for c in options["allowCredentials"]] == [passkeys(svc)[0].credential_id]
    # Another pending login's challenge, or another user, does not pass.
    assert not svc.passkeys.verify_second_factor(alice.id, enrolled.get(options), "pending-2")
    options = svc.passkeys.second_factor_options(bob.id, "pending-3")
    assert not svc.passkeys.verify_second_factor(bob.id, enrolled.get(options), "pending-3")
    # The right one passes, once.
    options = svc.passkeys.second_factor_options(alice.id, "pending-4")
    assertion = enrolled.get(options)
    assert svc.passkeys.verify_second_factor(alice.id, assertion, "pending-4")
    assert not svc.passkeys.verify_second_factor(alice.id, assertion, "pending-4")
    assert alice_user is not None
    assert svc.passkeys.verify_second_factor(alice.id, "not json", "pending-4") is False


# --- removal --------------------------------------------------------------------------


def test_removing_a_passkey_needs_the_password_and_ownership(
    app: Any, svc: Any, auth: AuthActions, alice: Any, enrolled: SoftAuthenticator
) -> None:
    [row] = passkeys(svc)
    path = f"{REGISTER}/{row.id}/delete"
    wrong = auth.client.post(path, data={"csrf_token": token_of(auth.client), "password": "x"})
    assert wrong.status_code == 403
    auth.user("mallory")
    mallory = AuthActions(app, app.test_client())
    mallory.login("mallory")
    stolen = mallory.client.post(
        path, data={"csrf_token": token_of(mallory.client), "password": PASSWORD}
    )
    assert stolen.status_code == 404
    assert len(passkeys(svc)) == 1
    ok = auth.client.post(path, data={"csrf_token": token_of(auth.client), "password": PASSWORD})
    assert ok.status_code == 303 and ok.headers["Location"] == "/account/security"
    assert passkeys(svc) == []
    browser = app.test_client()
    assert post_login(browser, enrolled.get(request_options(browser))).status_code == 401


def test_a_factor_reset_deletes_every_passkey_of_the_user(
    app: Any, svc: Any, auth: AuthActions, alice: Any, enrolled: SoftAuthenticator
) -> None:
    register(auth.client, enrolled, label="Phone")
    with svc.db.transaction() as s:
        assert delete_for_user(s, alice.id) == 2
    assert passkeys(svc) == []


def test_deleting_a_user_deletes_their_passkeys(
    svc: Any, alice: Any, enrolled: SoftAuthenticator
) -> None:
    with svc.db.transaction() as s:
        s.execute(delete(BrowserSession))
        s.execute(delete(User).where(User.id == alice.id))
    assert passkeys(svc) == []


# --- pages ----------------------------------------------------------------------------


def test_login_page_offers_passkeys_without_inline_script(client: Any) -> None:
    resp = client.get("/login")
    page = resp.get_data(as_text=True)
    assert "Sign in with a passkey" in page
    assert '<script src="/static/passkeys.js" defer></script>' in page
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    with client.get("/static/passkeys.js") as script:
        assert script.status_code == 200


def test_security_page_needs_a_session(client: Any) -> None:
    resp = client.get("/account/security")
    assert resp.status_code == 303
    assert resp.headers["Location"] == "/login?next=/account/security"


def test_a_passkey_belongs_to_one_account_only(
    app: Any, svc: Any, auth: AuthActions, alice: Any, enrolled: SoftAuthenticator
) -> None:
    auth.user("bob")
    bob = AuthActions(app, app.test_client())
    bob.login("bob")
    same_device = SoftAuthenticator(origin=ISSUER)  # same seed: the same credential id
    resp = post_registration(bob.client, same_device.create(creation_options(bob.client)))
    assert resp.status_code == 400
    assert "already registered" in resp.get_data(as_text=True)
    assert [p.user_id for p in passkeys(svc)] == [alice.id]


def test_an_ip_address_issuer_is_warned_about_and_localhost_is_not() -> None:
    from idp.accounts.passkeys import RelyingParty

    problem = RelyingParty.from_issuer("http://127.0.0.1:5000", "idp").problem()
    assert problem is not None and "localhost" in problem
    assert RelyingParty.from_issuer("http://[::1]:5000", "idp").problem() is not None
    rp = RelyingParty.from_issuer("http://localhost:5000", "idp")
    assert (rp.id, rp.origin, rp.problem()) == ("localhost", "http://localhost:5000", None)
    rp = RelyingParty.from_issuer("https://login.example.com", "idp")
    assert (rp.id, rp.origin) == ("login.example.com", "https://login.example.com")
