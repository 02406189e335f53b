"""/account/security: changing the password with the current one (issue 13 item 2)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from idp.audit.models import AuditEvent
from idp.sessions.models import BrowserSession
from idp.sessions.services import token_hash
from idp.ssf.models import SsfEvent
from tests.ssf.test_transmitter import Receiver
from tests.support.auth import PASSWORD, AuthActions, csrf_from
from tests.support.smtp import Sink

NEW = "a brand new passphrase"
CREDENTIAL_CHANGE = "https://schemas.openid.net/secevent/caep/event-type/credential-change"


@pytest.fixture
def config_overrides(mail_config: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return mail_config


def change(client: Any, current: str, new: str) -> Any:
    page = client.get("/account/security")
    assert page.status_code == 200
    token = csrf_from(page.get_data(as_text=True))
    return client.post(
        "/account/security/password",
        data={"current_password": current, "new_password": new, "csrf_token": token},
    )


def live_sessions(svc: Any, user_id: str) -> list[str]:
    with svc.db.read() as s:
        return list(
            s.scalars(
                select(BrowserSession.id).where(
                    BrowserSession.user_id == user_id, BrowserSession.ended_at.is_(None)
                )
            )
        )


def test_the_page_needs_a_login_and_is_linked_from_the_account(
    auth: AuthActions, client: Any
) -> None:
    resp = client.get("/account/security")
    assert resp.status_code == 303 and resp.headers["Location"].startswith("/login?next=")
    auth.user()
    auth.login()
    assert 'href="/account/security"' in client.get("/account").get_data(as_text=True)
    page = client.get("/account/security").get_data(as_text=True)
    assert 'action="/account/security/password"' in page
    assert 'action="/account/security/email"' in page


def test_changing_the_password_keeps_this_session_and_ends_the_others(
    app: Flask, auth: AuthActions, svc: Any, mailbox: Sink
) -> None:
    alice = auth.user()
    rp = auth.oauth_client()
    auth.login()
    other = AuthActions(app, app.test_client())
    other.login()
    tokens = auth.tokens(rp, scope="openid offline_access")
    Receiver(auth).create(events_requested=[CREDENTIAL_CHANGE])
    kept = session_of(auth, svc)
    assert len(live_sessions(svc, alice.id)) == 2
    resp = change(auth.client, PASSWORD, NEW)
    assert resp.status_code == 303 and resp.headers["Location"] == "/account/security?done=password"
    assert "Your password was changed" in auth.client.get(resp.headers["Location"]).get_data(
        as_text=True
    )
    assert live_sessions(svc, alice.id) == [kept]
    assert other.client.get("/account").status_code == 303  # signed out
    # Every refresh family ends, this session's too: apps sign in again (silently).
    refreshed = auth.token(
        rp, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    assert refreshed.status_code == 400
    with svc.db.read() as s:
        [event] = s.scalars(select(SsfEvent).where(SsfEvent.event_type == CREDENTIAL_CHANGE))
        audit = s.scalar(select(AuditEvent).where(AuditEvent.action == "password.change"))
    body = event.claims["events"][CREDENTIAL_CHANGE]
    assert body["credential_type"] == "password" and body["initiating_entity"] == "user"
    assert audit is not None and audit.details["sessions_killed"] == 1
    svc.mailer.deliver_due()
    [mail] = mailbox.messages
    assert mail["Subject"] == "Your password was changed" and mail["To"] == alice.email
    assert auth.login(password=NEW).status_code == 303


def session_of(auth: AuthActions, svc: Any) -> str:
    """The id of the session a test browser's cookie names."""
    cookie = auth.client.get_cookie(svc.config.sessions.cookie_name)
    with svc.db.read() as s:
        sid = s.scalar(
            select(BrowserSession.id).where(BrowserSession.token_hash == token_hash(cookie.value))
        )
    return str(sid)


@pytest.mark.parametrize(
    ("current", "new", "message"),
    [
        ("wrong password", NEW, "current password is not right"),
        (PASSWORD, PASSWORD, "must differ"),
        (PASSWORD, "short", "at least 8"),
        (PASSWORD, "qwertyuiop", "most common"),
        (PASSWORD, "Tuesday lilac kettle", None),
        (PASSWORD, "x" * 3000, "at most 1024"),
    ],
)
def test_a_refused_change_says_why_and_changes_nothing(
    auth: AuthActions, svc: Any, mailbox: Sink, current: str, new: str, message: str | None
) -> None:
    alice = auth.user()
    auth.login()
    resp = change(auth.client, current, new)
    if message is None:  # not refused: a control that the cases above are refusals
        assert resp.status_code == 303
        return
    assert resp.status_code == 400
    assert message in resp.get_data(as_text=True)
    assert auth.client.get("/account").status_code == 200
    assert live_sessions(svc, alice.id)
    svc.mailer.deliver_due()
    assert mailbox.messages == []


def test_guessing_the_current_password_is_throttled_like_a_login(
    auth: AuthActions, svc: Any
) -> None:
    auth.user()
    auth.login()
    codes = [change(auth.client, f"guess {n}", NEW).status_code for n in range(8)]
    assert codes[0] == 400 and codes[-1] == 429


def test_the_password_form_needs_its_csrf_token_and_a_session(
    auth: AuthActions, client: Any
) -> None:
    auth.user()
    data = {"current_password": PASSWORD, "new_password": NEW}
    assert client.post("/account/security/password", data=data).status_code == 400
    auth.login()
    assert client.post("/account/security/password", data=data).status_code == 400
    for path in ("/account/security/email", "/account/security/email/resend"):
        assert client.post(path, data={"email": "x@example.test"}).status_code == 400
    assert auth.login(password=PASSWORD).status_code == 303
