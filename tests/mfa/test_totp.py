"""TOTP second factors (RFC 6238): enrolment, the login's code step, replay, recovery
codes, throttling and removal, driven through the pages with a frozen clock."""

from __future__ import annotations

from typing import Any

import pyotp
import pytest
from sqlalchemy import func, select

from idp.audit.models import AuditEvent
from idp.mfa.models import MfaFactor, PendingLogin, RecoveryCode
from idp.sessions.models import BrowserSession
from idp.ssf.models import SsfEvent
from tests.ssf.test_transmitter import Receiver
from tests.support.auth import PASSWORD, AuthActions, csrf_from
from tests.support.mfa import (
    confirm,
    enrol,
    login_with_code,
    logout,
    page_csrf,
    send_code,
    start_enrolment,
)

CREDENTIAL_CHANGE = "https://schemas.openid.net/secevent/caep/event-type/credential-change"


@pytest.fixture
def alice(auth: AuthActions) -> Any:
    return auth.user("alice")


def rows(svc: Any, model: Any, **where: Any) -> list[Any]:
    with svc.db.read() as s:
        query = select(model).filter_by(**where)
        return list(s.scalars(query))


def sessions_of(svc: Any, user_id: str) -> list[BrowserSession]:
    return rows(svc, BrowserSession, user_id=user_id, ended_at=None)


def audit_actions(svc: Any) -> list[str]:
    with svc.db.read() as s:
        return list(s.scalars(select(AuditEvent.action).order_by(AuditEvent.at)))


# --- enrolment --------------------------------------------------------------------------
def test_enrolment_shows_a_qr_code_and_the_uri_and_counts_only_once_confirmed(
    auth: AuthActions, svc: Any, alice: Any
) -> None:
    auth.login()
    secret = start_enrolment(auth)
    page = auth.client.get("/account/security")
    body = page.get_data(as_text=True)
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in body
    assert "otpauth://totp/idp:alice?secret=" in body
    assert page.headers["Cache-Control"] == "no-store"
    assert not svc.factors.has_factor(alice.id)
    [factor] = rows(svc, MfaFactor, user_id=alice.id)
    assert factor.secret is not None and secret.encode() not in factor.secret  # sealed

    wrong = confirm(auth, "000000" if pyotp.TOTP(secret).now() != "000000" else "111111")
    assert wrong.status_code == 400
    assert not svc.factors.has_factor(alice.id)

    resp = confirm(auth, pyotp.TOTP(secret).at(int(svc.clock.now().timestamp())))
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    assert svc.factors.has_factor(alice.id)
    codes = rows(svc, RecoveryCode, user_id=alice.id)
    assert len(codes) == 10
    shown = resp.get_data(as_text=True)
    assert all(c.code_hash not in shown for c in codes)  # only hashes are stored
    assert "mfa.enrol" in audit_actions(svc)


def test_starting_again_while_enrolled_is_refused(auth: AuthActions, svc: Any, alice: Any) -> None:
    enrolled = enrol(auth)
    assert login_with_code(auth, enrolled.code(auth)).status_code == 303
    resp = auth.client.post("/account/security/totp/start", data={"csrf_token": page_csrf(auth)})
    assert resp.status_code == 409
    assert len(rows(svc, MfaFactor, user_id=alice.id)) == 1


# --- the login's code step --------------------------------------------------------------
def test_a_right_password_starts_no_session_until_the_code(
    auth: AuthActions, svc: Any, alice: Any
) -> None:
    enrolled = enrol(auth)
    resp = auth.login(next="/account/security")
    assert resp.status_code == 303 and resp.headers["Location"] == "/login/code"
    assert sessions_of(svc, alice.id) == []
    assert auth.client.get("/account").status_code == 303  # not signed in
    done = send_code(auth, enrolled.code(auth))
    assert done.status_code == 303 and done.headers["Location"] == "/account/security"
    [session] = sessions_of(svc, alice.id)
    assert session.amr == ["pwd", "otp", "mfa"] and session.acr == "2"
    assert rows(svc, PendingLogin) == []
    assert auth.client.get("/account").status_code == 200


def test_a_wrong_code_starts_no_session(auth: AuthActions, svc: Any, alice: Any) -> None:
    enrolled = enrol(auth)
    right = enrolled.code(auth)
    resp = login_with_code(auth, "123456" if right != "123456" else "654321")
    assert resp.status_code == 401
    assert "That code is not right." in resp.get_data(as_text=True)
    assert sessions_of(svc, alice.id) == []


def test_codes_of_the_neighbouring_steps_are_accepted_but_not_further(
    auth: AuthActions, svc: Any, alice: Any
) -> None:
    enrolled = enrol(auth)
    assert login_with_code(auth, enrolled.code(auth, offset_steps=-3)).status_code == 401
    assert send_code(auth, enrolled.code(auth, offset_steps=1)).status_code == 303


def test_a_used_code_is_refused_within_its_window(auth: AuthActions, svc: Any, alice: Any) -> None:
    enrolled = enrol(auth)
    code = enrolled.code(auth)
    assert login_with_code(auth, code).status_code == 303
    logout(auth)
    svc.clock.advance(10)  # same step: the code is still "current"
    assert login_with_code(auth, code).status_code == 401
    # and an older step's code, after a newer one was used, is no better
    svc.clock.advance(30)
    assert send_code(auth, enrolled.code(auth, offset_steps=-1)).status_code == 401
    assert send_code(auth, enrolled.code(auth)).status_code == 303


def test_the_confirmation_code_cannot_sign_in(auth: AuthActions, svc: Any, alice: Any) -> None:
    auth.login()
    secret = start_enrolment(auth)
    code = pyotp.TOTP(secret).at(int(svc.clock.now().timestamp()))
    assert confirm(auth, code).status_code == 200
    logout(auth)
    assert login_with_code(auth, code).status_code == 401


def test_a_recovery_code_signs_in_once(auth: AuthActions, svc: Any, alice: Any) -> None:
    enrolled = enrol(auth)
    code = enrolled.recovery_codes[3]
    assert login_with_code(auth, code.upper()).status_code == 303  # typed as it comes
    [session] = sessions_of(svc, alice.id)
    assert session.acr == "2"
    logout(auth)
    assert login_with_code(auth, code).status_code == 401
    assert svc.factors.recovery_codes_left(alice.id) == 9


def test_code_guessing_is_throttled_like_passwords(auth: AuthActions, svc: Any, alice: Any) -> None:
    enrolled = enrol(auth)
    right = enrolled.code(auth)
    wrong = [f"{n:06d}" for n in range(20) if f"{n:06d}" != right]
    statuses = [login_with_code(auth, wrong[0]).status_code]
    for guess in wrong[1:8]:
        statuses.append(send_code(auth, guess).status_code)
    limit = svc.config.login.max_failures_per_account_network
    assert statuses[: limit - 1] == [401] * (limit - 1)
    assert 429 in statuses
    locked = send_code(auth, right)
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
    assert sessions_of(svc, alice.id) == []
    # Passwords are counted apart: the lock is on codes only.
    assert auth.login().status_code == 303


def test_the_code_step_expires(auth: AuthActions, svc: Any, alice: Any) -> None:
    enrolled = enrol(auth)
    assert auth.login().headers["Location"] == "/login/code"
    svc.clock.advance(svc.config.mfa.code_seconds + 1)
    page = auth.client.get("/login/code")
    assert page.status_code == 303 and page.headers["Location"] == "/login"
    resp = auth.client.post("/login/code", data={"code": enrolled.code(auth)})
    assert resp.status_code in (303, 400)  # expired (or the CSRF token is refused first)
    assert sessions_of(svc, alice.id) == []


def test_the_code_step_without_a_pending_login_sends_to_login(auth: AuthActions) -> None:
    page = auth.client.get("/login/code")
    assert page.status_code == 303 and page.headers["Location"] == "/login"
    auth.client.set_cookie("idp_pending_login", "x" * 43)
    assert auth.client.get("/login/code").status_code == 303


def test_a_user_without_a_factor_logs_in_with_the_password_alone(
    auth: AuthActions, svc: Any, alice: Any
) -> None:
    resp = auth.login()
    assert resp.status_code == 303 and resp.headers["Location"] == "/account"
    [session] = sessions_of(svc, alice.id)
    assert session.amr == ["pwd"] and session.acr == "1"


# --- removal ------------------------------------------------------------------------------
def remove(auth: AuthActions, factor_id: str, password: str) -> Any:
    return auth.client.post(
        f"/account/security/factors/{factor_id}/remove",
        data={"password": password, "csrf_token": page_csrf(auth)},
    )


def test_removal_needs_the_current_password(auth: AuthActions, svc: Any, alice: Any) -> None:
    enrolled = enrol(auth)
    assert login_with_code(auth, enrolled.code(auth)).status_code == 303
    [factor] = rows(svc, MfaFactor, user_id=alice.id)
    assert remove(auth, factor.id, "not my password").status_code == 401
    assert svc.factors.has_factor(alice.id)
    assert remove(auth, factor.id, PASSWORD).status_code == 303
    assert not svc.factors.has_factor(alice.id)
    assert rows(svc, RecoveryCode, user_id=alice.id) == []
    assert "mfa.remove" in audit_actions(svc)
    logout(auth)
    assert auth.login().headers["Location"] == "/account"  # no code asked any more


def test_another_users_factor_cannot_be_removed(auth: AuthActions, svc: Any, alice: Any) -> None:
    enrol(auth)
    [factor] = rows(svc, MfaFactor, user_id=alice.id)
    auth.user("bob")
    auth.login("bob")
    assert remove(auth, factor.id, PASSWORD).status_code == 404
    assert svc.factors.has_factor(alice.id)


def test_enrolment_and_removal_are_credential_change_events(
    auth: AuthActions, svc: Any, alice: Any
) -> None:
    rx = Receiver(auth)
    rx.create(events_requested=[CREDENTIAL_CHANGE])
    enrolled = enrol(auth)
    login_with_code(auth, enrolled.code(auth))
    [factor] = rows(svc, MfaFactor, user_id=alice.id)
    remove(auth, factor.id, PASSWORD)
    events = rows(svc, SsfEvent, user_id=alice.id)
    changes = [e.claims["events"][CREDENTIAL_CHANGE] for e in events]
    assert [(c["credential_type"], c["change_type"]) for c in changes] == [
        ("app", "create"),
        ("app", "delete"),
    ]
    assert all(e.claims["sub_id"]["sub"] == alice.id for e in events)


# --- operator reset -------------------------------------------------------------------------
def test_an_operator_resets_a_users_factors(auth: AuthActions, svc: Any, alice: Any) -> None:
    from idp.operator import Actor

    rx = Receiver(auth)
    rx.create(events_requested=[CREDENTIAL_CHANGE])
    enrol(auth)
    assert svc.actions.reset_factors(alice.id, Actor("cli"), "lost phone") == 1
    assert not svc.factors.has_factor(alice.id)
    assert rows(svc, RecoveryCode, user_id=alice.id) == []
    [event] = rows(svc, AuditEvent, action="user.mfa_reset")
    assert event.target == alice.id and event.reason == "lost phone"
    last = rows(svc, SsfEvent, user_id=alice.id)[-1].claims["events"][CREDENTIAL_CHANGE]
    assert last["change_type"] == "delete" and last["initiating_entity"] == "admin"
    assert auth.login().headers["Location"] == "/account"
    assert svc.actions.reset_factors("no-such-user", Actor("cli"), "x") is None


# --- CSRF and bad input ---------------------------------------------------------------------
def count_rows(svc: Any) -> dict[str, int]:
    with svc.db.read() as s:
        return {
            m.__tablename__: int(s.scalar(select(func.count()).select_from(m)) or 0)
            for m in (MfaFactor, RecoveryCode, PendingLogin, BrowserSession)
        }


def test_every_new_form_needs_its_csrf_token(auth: AuthActions, svc: Any, alice: Any) -> None:
    enrolled = enrol(auth)
    [factor] = rows(svc, MfaFactor, user_id=alice.id)
    auth.login()
    before = count_rows(svc)
    assert auth.client.post("/login/code", data={"code": enrolled.code(auth)}).status_code == 400
    assert count_rows(svc) == before
    send_code(auth, enrolled.code(auth))
    before = count_rows(svc)
    for path, data in [
        ("/account/security/totp/start", {}),
        ("/account/security/totp/confirm", {"code": "123456"}),
        (f"/account/security/factors/{factor.id}/remove", {"password": PASSWORD}),
    ]:
        assert auth.client.post(path, data=data).status_code == 400, path
        bad = auth.client.post(path, data={**data, "csrf_token": "forged"})
        assert bad.status_code == 400, path
    assert count_rows(svc) == before


HOSTILE_CODES = [
    "",
    "1" * 10_000,
    "<script>alert(1)</script>",
    "12345",
    "1234567",
    "１２３４５６",  # fullwidth digits
    "' OR 1=1 --",
    "\x00\x01",
    "aaaa-bbbb-cccc-dddd",
]


@pytest.mark.parametrize("code", HOSTILE_CODES)
def test_hostile_codes_are_a_clean_401_at_the_code_step(
    auth: AuthActions, svc: Any, alice: Any, code: str
) -> None:
    enrol(auth)
    auth.login()
    before = count_rows(svc)
    resp = send_code(auth, code)
    # Control characters are refused before any view (400); the rest is a wrong code.
    assert resp.status_code == (400 if "\x00" in code else 401)
    body = resp.get_data(as_text=True)
    assert "<script>alert" not in body and "Traceback" not in body
    assert count_rows(svc) == before


@pytest.mark.parametrize("code", HOSTILE_CODES)
def test_hostile_codes_are_a_clean_400_at_confirmation(
    auth: AuthActions, svc: Any, alice: Any, code: str
) -> None:
    auth.login()
    start_enrolment(auth)
    before = count_rows(svc)
    resp = confirm(auth, code)
    assert resp.status_code == 400
    assert "<script>alert" not in resp.get_data(as_text=True)
    assert count_rows(svc) == before
    assert not svc.factors.has_factor(alice.id)


@pytest.mark.parametrize("factor_id", ["nope", "x" * 5000, "<b>", "%00"])
def test_removing_an_unknown_factor_is_a_clean_404(
    auth: AuthActions, svc: Any, alice: Any, factor_id: str
) -> None:
    auth.login()
    before = count_rows(svc)
    resp = auth.client.post(
        f"/account/security/factors/{factor_id}/remove",
        data={"password": PASSWORD, "csrf_token": page_csrf(auth)},
    )
    assert resp.status_code in (404, 400)
    assert "<b>" not in resp.get_data(as_text=True)
    assert count_rows(svc) == before


def test_confirming_without_an_enrolment_is_refused(
    auth: AuthActions, svc: Any, alice: Any
) -> None:
    auth.login()
    assert confirm(auth, "123456").status_code == 400


def test_the_security_pages_need_a_session(auth: AuthActions, alice: Any) -> None:
    page = auth.client.get("/account/security")
    assert page.status_code == 303 and "/login" in page.headers["Location"]
    csrf = csrf_from(auth.client.get("/login").get_data(as_text=True))
    for path in ("/account/security/totp/start", "/account/security/totp/confirm"):
        resp = auth.client.post(path, data={"csrf_token": csrf, "code": "123456"})
        assert resp.status_code == 303 and resp.headers["Location"].startswith("/login")


def test_the_account_page_links_to_the_security_page(auth: AuthActions, alice: Any) -> None:
    auth.login()
    assert 'href="/account/security"' in auth.client.get("/account").get_data(as_text=True)
