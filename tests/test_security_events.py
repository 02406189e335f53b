"""What an attacker tries shows up as a security event (issue 10 item 8): a replayed
authorization code, a locked login, a failed operator re-authentication."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from idp.audit.models import SecurityEvent
from tests.support.auth import AuthActions


def events(svc: Any) -> list[SecurityEvent]:
    with svc.db.read() as s:
        return list(s.scalars(select(SecurityEvent).order_by(SecurityEvent.at)))


def test_a_replayed_code_is_a_security_event(auth: AuthActions, svc: Any) -> None:
    auth.user()
    rp = auth.oauth_client(scope="openid offline_access")
    auth.login()
    code, verifier, _ = auth.code_for(rp, scope="openid offline_access")
    assert auth.exchange(rp, code, verifier).status_code == 200
    assert auth.exchange(rp, code, verifier).status_code == 400
    [event] = events(svc)
    assert event.kind == "authorization_code_replay" and event.client_id == rp.client_id
    assert event.details["families_revoked"] == 1


@pytest.mark.parametrize("config_overrides", [{"login": {"max_failures_per_account": 2}}])
def test_a_lockout_is_one_security_event(auth: AuthActions, svc: Any) -> None:
    auth.user()
    for _ in range(6):
        auth.login(password="wrong password!")
    [event] = events(svc)
    assert event.kind == "login_locked" and event.details["username"] == "alice"


def test_a_failed_operator_reauthentication_is_a_security_event(
    auth: AuthActions, svc: Any
) -> None:
    from tests.support.auth import csrf_from

    auth.user("root", admin=True)
    auth.login("root")
    page = auth.client.get("/admin/reauth")
    resp = auth.client.post(
        "/admin/reauth",
        data={"password": "not the password", "csrf_token": csrf_from(page.get_data(as_text=True))},
    )
    assert resp.status_code == 401
    [event] = events(svc)
    assert event.kind == "admin_reauth_failed" and event.session_id is not None
