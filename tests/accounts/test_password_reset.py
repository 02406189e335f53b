"""Forgotten passwords: /password/forgot mails a single-use, short-lived link bound to
the current password; /password/reset sets a new one and ends everything else (issue 13
items 2 and 8). Mail goes through a real SMTP server on loopback."""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from sqlalchemy import func, select

from idp.accounts.credentials import LinkInvalid
from idp.accounts.models import AccountToken, User
from idp.audit.models import AuditEvent
from idp.operator import Actor
from idp.sessions.models import BrowserSession
from idp.ssf.models import SsfEvent
from tests.ssf.test_transmitter import Receiver
from tests.support.auth import PASSWORD, AuthActions, csrf_from
from tests.support.smtp import Sink

NEW_PASSWORD = "a brand new passphrase"
CREDENTIAL_CHANGE = "https://schemas.openid.net/secevent/caep/event-type/credential-change"


@pytest.fixture
def config_overrides(mail_config: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return mail_config


def ask(client: Any, identifier: str) -> Any:
    page = client.get("/password/forgot")
    assert page.status_code == 200
    token = csrf_from(page.get_data(as_text=True))
    return client.post("/password/forgot", data={"email": identifier, "csrf_token": token})


def reset_link(auth: AuthActions, mailbox: Sink, identifier: str = "alice@example.test") -> str:
    assert ask(auth.client, identifier).status_code == 200
    auth.svc.mailer.deliver_due()
    mails = [m for m in mailbox.messages if m["Subject"] == "Reset your password"]
    assert mails, "no reset mail"
    return mailbox.link(mails[-1])


def token_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]


def set_password(client: Any, link: str, password: str = NEW_PASSWORD) -> Any:
    page = client.get(link)
    assert page.status_code == 200, page.get_data(as_text=True)
    return client.post(
        "/password/reset",
        data={
            "token": token_of(link),
            "password": password,
            "csrf_token": csrf_from(page.get_data(as_text=True)),
        },
    )


def post_with_csrf(client: Any, page: str, action: str, data: dict[str, str]) -> Any:
    token = csrf_from(client.get(page).get_data(as_text=True))
    return client.post(action, data={**data, "csrf_token": token})


def password_hash(svc: Any, username: str = "alice") -> str:
    with svc.db.read() as s:
        return str(s.scalar(select(User.password_hash).where(User.username == username)))


def test_a_reset_link_sets_a_new_password_and_ends_every_session(
    app: Flask, auth: AuthActions, svc: Any, mailbox: Sink
) -> None:
    alice = auth.user()
    rp = auth.oauth_client()
    assert auth.login().status_code == 303
    tokens = auth.tokens(rp, scope="openid offline_access")
    rx = Receiver(auth)
    rx.create(events_requested=[CREDENTIAL_CHANGE])
    stranger = app.test_client()  # the person who forgot, on another device
    link = reset_link(AuthActions(app, stranger), mailbox)
    assert link.startswith("/password/reset?token=")
    resp = set_password(stranger, link)
    assert resp.status_code == 303 and resp.headers["Location"] == "/password/reset/done"
    # The old password is gone, the new one works.
    assert auth.login(password=PASSWORD).status_code == 401
    assert AuthActions(app, app.test_client()).login(password=NEW_PASSWORD).status_code == 303
    # The session on the first device ended, and its refresh family with it.
    with svc.db.read() as s:
        ended = s.scalars(select(BrowserSession).where(BrowserSession.user_id == alice.id)).all()
        assert [x.end_reason for x in ended if x.ended_at is not None] == ["password reset"]
    refreshed = auth.token(
        rp, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    assert refreshed.status_code == 400 and refreshed.get_json()["error"] == "invalid_grant"
    introspected = auth.client.post(
        "/introspect", data={"token": tokens["access_token"]}, headers=rp.basic()
    )
    assert introspected.get_json() == {"active": False}
    # CAEP credential-change for the receivers, in the same transaction.
    with svc.db.read() as s:
        [event] = s.scalars(select(SsfEvent).where(SsfEvent.event_type == CREDENTIAL_CHANGE))
    subject = {"format": "iss_sub", "iss": svc.issuer.issuer, "sub": alice.id}
    assert event.claims["sub_id"] == subject
    body = event.claims["events"][CREDENTIAL_CHANGE]
    assert body["credential_type"] == "password" and body["change_type"] == "update"
    # Audited, and the user is told by mail.
    with svc.db.read() as s:
        actions = list(s.scalars(select(AuditEvent.action).where(AuditEvent.target == alice.id)))
    assert "password.reset_requested" in actions and "password.reset" in actions
    svc.mailer.deliver_due()
    assert mailbox.messages[-1]["Subject"] == "Your password was changed"
    assert "with a reset link" in Sink.text(mailbox.messages[-1])
    done = stranger.get("/password/reset/done")
    assert done.status_code == 200 and "Your password was changed" in done.get_data(as_text=True)


def test_the_answer_is_the_same_whether_or_not_the_account_exists(
    auth: AuthActions, svc: Any, mailbox: Sink
) -> None:
    auth.user()
    auth.user("nomail", email=None)
    known = ask(auth.client, "alice@example.test")
    by_name = ask(auth.client, "alice")
    unknown = ask(auth.client, "nobody@example.test")
    no_address = ask(auth.client, "nomail")
    bodies = {r.get_data(as_text=True) for r in (known, by_name, unknown, no_address)}
    assert {r.status_code for r in (known, by_name, unknown, no_address)} == {200}
    assert len(bodies) == 1
    svc.mailer.deliver_due()
    assert [m["To"] for m in mailbox.messages] == ["alice@example.test"] * 2


def test_a_reset_link_works_once(app: Flask, auth: AuthActions, mailbox: Sink) -> None:
    auth.user()
    link = reset_link(auth, mailbox)
    page = auth.client.get(link)
    assert set_password(auth.client, link).status_code == 303
    replay = auth.client.post(
        "/password/reset",
        data={
            "token": token_of(link),
            "password": "yet another passphrase",
            "csrf_token": csrf_from(page.get_data(as_text=True)),
        },
    )
    assert replay.status_code == 400
    assert "not valid any more" in replay.get_data(as_text=True)
    assert auth.client.get(link).status_code == 400
    assert AuthActions(app, app.test_client()).login(password=NEW_PASSWORD).status_code == 303


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
        lambda t: t[:-2],
        lambda t: t + "x",
        lambda t: "",
        lambda t: "x" * 5000,
        lambda t: t + "\x00",
        lambda t: "../../etc/passwd",
    ],
)
def test_a_tampered_link_is_refused_and_changes_nothing(
    auth: AuthActions, svc: Any, mailbox: Sink, tamper: Any
) -> None:
    auth.user()
    link = reset_link(auth, mailbox)
    before = password_hash(svc)
    page = auth.client.get(link)
    bad = tamper(token_of(link))
    assert auth.client.get("/password/reset", query_string={"token": bad}).status_code == 400
    resp = auth.client.post(
        "/password/reset",
        data={
            "token": bad,
            "password": NEW_PASSWORD,
            "csrf_token": csrf_from(page.get_data(as_text=True)),
        },
    )
    assert resp.status_code == 400
    assert password_hash(svc) == before
    # The real link still works.
    assert set_password(auth.client, link).status_code == 303


def test_the_link_also_works_as_a_path(auth: AuthActions, mailbox: Sink) -> None:
    auth.user()
    link = reset_link(auth, mailbox)
    page = auth.client.get(f"/password/reset/{token_of(link)}")
    assert page.status_code == 200 and 'name="token"' in page.get_data(as_text=True)


def test_an_expired_link_is_refused(auth: AuthActions, svc: Any, clock: Any, mailbox: Sink) -> None:
    auth.user()
    link = reset_link(auth, mailbox)
    page = auth.client.get(link)
    clock.advance(svc.config.accounts.reset_link_ttl_seconds + 1)
    assert auth.client.get(link).status_code == 400
    resp = auth.client.post(
        "/password/reset",
        data={
            "token": token_of(link),
            "password": NEW_PASSWORD,
            "csrf_token": csrf_from(page.get_data(as_text=True)),
        },
    )
    assert resp.status_code == 400


def test_a_password_change_voids_every_older_link(
    app: Flask, auth: AuthActions, svc: Any, mailbox: Sink
) -> None:
    auth.user()
    first = reset_link(auth, mailbox)
    second = reset_link(auth, mailbox)
    assert set_password(auth.client, second).status_code == 303
    assert auth.client.get(first).status_code == 400
    # Even a link whose row survived is bound to the hash it was issued under.
    third = reset_link(AuthActions(app, app.test_client()), mailbox)
    owner = AuthActions(app, app.test_client())
    assert owner.login(password=NEW_PASSWORD).status_code == 303
    changed = post_with_csrf(
        owner.client,
        "/account/security",
        "/account/security/password",
        {"current_password": NEW_PASSWORD, "new_password": "changed once more"},
    )
    assert changed.status_code == 303
    assert auth.client.get(third).status_code == 400
    with svc.db.read() as s:
        assert s.scalar(select(func.count()).select_from(AccountToken)) == 0


def test_a_weak_new_password_is_refused_and_the_link_stays_usable(
    auth: AuthActions, svc: Any, mailbox: Sink
) -> None:
    auth.user()
    link = reset_link(auth, mailbox)
    before = password_hash(svc)
    for weak in ("short", "password123", "Iloveyou1", "alice", "x" * 1025):
        resp = set_password(auth.client, link, weak)
        assert resp.status_code == 400, weak
        assert 'name="password"' in resp.get_data(as_text=True)
    assert password_hash(svc) == before
    assert set_password(auth.client, link).status_code == 303


@pytest.mark.parametrize(
    "config_overrides",
    [{"accounts": {"reset_requests_per_network": 3}, "mail": {"smtp_url": ""}}],
)
def test_reset_requests_are_limited_per_network(auth: AuthActions, client: Any) -> None:
    for n in range(3):
        assert ask(client, f"user{n}@example.test").status_code == 200
    locked = ask(client, "someone@example.test")
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
    other = client.get("/password/forgot")
    token = csrf_from(other.get_data(as_text=True))
    elsewhere = client.post(
        "/password/forgot",
        data={"email": "someone@example.test", "csrf_token": token},
        environ_base={"REMOTE_ADDR": "203.0.113.9"},
    )
    assert elsewhere.status_code == 200


def test_one_account_gets_a_few_mails_per_window_and_the_same_answer(
    auth: AuthActions, svc: Any, mailbox: Sink
) -> None:
    auth.user()
    answers = {ask(auth.client, "alice").get_data(as_text=True) for _ in range(5)}
    assert len(answers) == 1
    svc.mailer.deliver_due()
    assert len(mailbox.messages) == svc.config.accounts.mails_per_account


def test_a_disabled_account_is_sent_no_link(auth: AuthActions, svc: Any, mailbox: Sink) -> None:
    alice = auth.user()
    svc.actions.set_disabled(alice.id, True, Actor("root"), "left the company")
    assert ask(auth.client, "alice").status_code == 200
    svc.mailer.deliver_due()
    assert mailbox.messages == []


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/password/forgot", {"email": "alice@example.test"}),
        ("/password/reset", {"token": "x", "password": NEW_PASSWORD}),
        ("/email/verify", {"token": "x"}),
    ],
)
def test_every_form_needs_its_csrf_token(
    auth: AuthActions, svc: Any, mailbox: Sink, path: str, data: dict[str, str]
) -> None:
    auth.user()
    resp = auth.client.post(path, data=data)
    assert resp.status_code == 400
    svc.mailer.deliver_due()
    assert mailbox.messages == []


def test_bad_input_to_forgot_is_a_clear_400(auth: AuthActions, client: Any) -> None:
    assert ask(client, "").status_code == 400
    assert ask(client, "   ").status_code == 400
    for hostile in ("x" * 10_000, "<script>alert(1)</script>", "a'; DROP TABLE users;--"):
        resp = ask(client, hostile)
        assert resp.status_code == 200
        assert "<script>" not in resp.get_data(as_text=True)
    # Control characters are refused before any view runs.
    assert ask(client, "a\x00b@example.test").status_code == 400


def test_racing_uses_of_one_link_set_one_password(
    app: Flask, auth: AuthActions, svc: Any, mailbox: Sink
) -> None:
    auth.user()
    token = token_of(reset_link(auth, mailbox))
    barrier = threading.Barrier(4)
    won: list[str] = []

    def attempt(n: int) -> None:
        try:
            barrier.wait()
            svc.password_changes.reset(token, f"racer number {n} passphrase", "127.0.0.1")
            won.append(f"racer number {n} passphrase")
        except LinkInvalid:
            pass

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(won) == 1
    assert AuthActions(app, app.test_client()).login(password=won[0]).status_code == 303
