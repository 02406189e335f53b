"""Email verification (issue 13 item 3): a link mailed at signup and at each change of
address; ``email_verified`` in ID tokens and userinfo; clients that require it."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from sqlalchemy import select

from idp.accounts.models import User
from tests.support.auth import PASSWORD, AuthActions, csrf_from, query_of
from tests.support.jwt import claims_unverified
from tests.support.smtp import Sink


@pytest.fixture
def config_overrides(mail_config: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {**mail_config, "server": {"signup_enabled": True}}


def signup(client: Any, username: str = "bob", email: str = "bob@example.test") -> Any:
    page = client.get("/signup")
    return client.post(
        "/signup",
        data={
            "username": username,
            "password": "long enough pw",
            "email": email,
            "csrf_token": csrf_from(page.get_data(as_text=True)),
        },
    )


def verification_link(svc: Any, mailbox: Sink, to: str) -> str:
    svc.mailer.deliver_due()
    mails = [m for m in mailbox.to(to) if m["Subject"] == "Confirm your email address"]
    assert mails, f"no verification mail to {to}"
    return mailbox.link(mails[-1])


def confirm(client: Any, link: str) -> Any:
    page = client.get(link)
    assert page.status_code == 200, page.get_data(as_text=True)
    token = parse_qs(urlsplit(link).query)["token"][0]
    return client.post(
        "/email/verify",
        data={"token": token, "csrf_token": csrf_from(page.get_data(as_text=True))},
    )


def verified(svc: Any, username: str) -> bool:
    with svc.db.read() as s:
        return bool(s.scalar(select(User.email_verified).where(User.username == username)))


def id_token_claims(auth: AuthActions, rp: Any) -> dict[str, Any]:
    tokens = auth.tokens(rp, scope="openid email")
    info = auth.client.get(
        "/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]}
    ).get_json()
    claims = claims_unverified(tokens["id_token"])
    assert claims["email_verified"] == info["email_verified"]
    return claims


def test_signup_mails_a_link_that_verifies_the_address(
    client: Any, svc: Any, mailbox: Sink, auth: AuthActions
) -> None:
    assert signup(client).status_code == 303
    assert "(not verified)" in client.get("/account").get_data(as_text=True)
    rp = auth.oauth_client()
    assert id_token_claims(auth, rp)["email_verified"] is False
    link = verification_link(svc, mailbox, "bob@example.test")
    assert link.startswith("/email/verify?token=")
    # Fetching the link (as a mail scanner would) changes nothing; the button does.
    assert client.get(link).status_code == 200
    assert not verified(svc, "bob")
    resp = confirm(client, link)
    assert resp.status_code == 303 and resp.headers["Location"] == "/email/verify/done"
    assert verified(svc, "bob")
    assert id_token_claims(auth, rp)["email_verified"] is True
    # Single use.
    assert client.get(link).status_code == 400


def test_a_link_works_from_another_browser_and_only_until_it_expires(
    app: Flask, client: Any, svc: Any, clock: Any, mailbox: Sink
) -> None:
    signup(client)
    link = verification_link(svc, mailbox, "bob@example.test")
    clock.advance(svc.config.accounts.verify_link_ttl_seconds + 1)
    assert app.test_client().get(link).status_code == 400
    assert not verified(svc, "bob")


def change_email(client: Any, email: str, password: str = PASSWORD) -> Any:
    page = client.get("/account/security")
    token = csrf_from(page.get_data(as_text=True))
    return client.post(
        "/account/security/email",
        data={"email": email, "password": password, "csrf_token": token},
    )


def test_changing_the_address_needs_verifying_it_again_and_tells_the_old_one(
    auth: AuthActions, svc: Any, mailbox: Sink
) -> None:
    auth.user()
    auth.login()
    first = (change_email(auth.client, "alice@example.test"), None)[0]
    assert first.status_code == 303
    old_link = verification_link(svc, mailbox, "alice@example.test")
    assert confirm(auth.client, old_link).status_code == 303
    assert verified(svc, "alice")
    resp = change_email(auth.client, "alice@new.example")
    assert resp.status_code == 303 and resp.headers["Location"] == "/account/security?done=email"
    assert not verified(svc, "alice")
    svc.mailer.deliver_due()
    [notice] = [m for m in mailbox.to("alice@example.test") if "changed" in m["Subject"]]
    assert "alice@new.example" in Sink.text(notice)
    new_link = verification_link(svc, mailbox, "alice@new.example")
    assert confirm(auth.client, new_link).status_code == 303
    assert verified(svc, "alice")


def test_a_link_for_an_address_the_account_no_longer_has_is_void(
    auth: AuthActions, svc: Any, mailbox: Sink
) -> None:
    auth.user()
    auth.login()
    change_email(auth.client, "first@example.test")
    stale = verification_link(svc, mailbox, "first@example.test")
    change_email(auth.client, "second@example.test")
    assert auth.client.get(stale).status_code == 400
    assert not verified(svc, "alice")


@pytest.mark.parametrize(
    ("email", "password", "message"),
    [
        ("not an address", PASSWORD, "not valid"),
        ("a@b.example", "wrong password", "not right"),
        ("<script>@x.example", PASSWORD, "not valid"),
        ("x" * 400 + "@example.test", PASSWORD, "not valid"),
    ],
)
def test_a_refused_address_change_changes_nothing(
    auth: AuthActions, svc: Any, mailbox: Sink, email: str, password: str, message: str
) -> None:
    auth.user()
    auth.login()
    resp = change_email(auth.client, email, password)
    assert resp.status_code == 400 and message in resp.get_data(as_text=True)
    assert "<script>@" not in resp.get_data(as_text=True)
    with svc.db.read() as s:
        assert s.scalar(select(User.email)) == "alice@example.test"
    svc.mailer.deliver_due()
    assert mailbox.messages == []


def test_the_link_can_be_sent_again_a_few_times(auth: AuthActions, svc: Any, mailbox: Sink) -> None:
    auth.user()
    auth.login()
    for _ in range(5):
        page = auth.client.get("/account/security")
        resp = auth.client.post(
            "/account/security/email/resend",
            data={"csrf_token": csrf_from(page.get_data(as_text=True))},
        )
        assert resp.status_code == 303
    svc.mailer.deliver_due()
    assert len(mailbox.messages) == svc.config.accounts.mails_per_account


def test_a_client_that_requires_a_verified_address_gets_no_code_before_it(
    auth: AuthActions, svc: Any, mailbox: Sink
) -> None:
    auth.user()
    rp = auth.oauth_client(require_verified_email=True)
    auth.login()
    resp = auth.authorize(rp)
    assert resp.status_code == 403
    page = resp.get_data(as_text=True)
    assert "Verify your email address" in page and "code=" not in page
    silent = auth.authorize(rp, prompt="none")
    assert silent.status_code == 302
    assert query_of(silent.headers["Location"])["error"] == "interaction_required"
    page = auth.client.get("/account/security")
    auth.client.post(
        "/account/security/email/resend",
        data={"csrf_token": csrf_from(page.get_data(as_text=True))},
    )
    confirm(auth.client, verification_link(svc, mailbox, "alice@example.test"))
    code, _, _ = auth.code_for(rp)
    assert code
