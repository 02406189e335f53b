"""/account: a user sees their devices and signs out the others (ASVS 7.4.3)."""

from __future__ import annotations

from tests.support.auth import PASSWORD, AuthActions, csrf_from


def login_as(app, username, user_agent):
    client = app.test_client()
    page = client.get("/login")
    client.post(
        "/login",
        data={
            "username": username,
            "password": PASSWORD,
            "csrf_token": csrf_from(page.get_data(as_text=True)),
        },
        headers={"User-Agent": user_agent},
    )
    return client


PHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
LAPTOP = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)


def test_account_lists_devices_and_ends_another_one(app, auth):
    auth.user()
    laptop = login_as(app, "alice", LAPTOP)
    phone = login_as(app, "alice", PHONE)
    page = laptop.get("/account").get_data(as_text=True)
    assert "Chrome 120 on Linux" in page and "Mobile Safari 17 on iOS 17" in page
    assert "(this device)" in page
    sid = page.split('action="/account/sessions/')[1].split("/end")[0]
    resp = laptop.post(f"/account/sessions/{sid}/end", data={"csrf_token": csrf_from(page)})
    assert resp.status_code == 303
    assert phone.get("/account").status_code == 303, "the phone is signed out"
    assert laptop.get("/account").status_code == 200


def test_a_user_cannot_end_someone_elses_session(app, auth):
    auth.user()
    auth.user("mallory")
    login_as(app, "alice", LAPTOP)
    mallory = login_as(app, "mallory", LAPTOP)
    from sqlalchemy import select

    from idp.sessions.models import BrowserSession

    svc = app.extensions["idp"]
    with svc.db.read() as s:
        alice_sid = s.scalar(
            select(BrowserSession.id)
            .join(BrowserSession.user)
            .where(BrowserSession.user.has(username="alice"))
        )
    page = mallory.get("/account").get_data(as_text=True)
    resp = mallory.post(f"/account/sessions/{alice_sid}/end", data={"csrf_token": csrf_from(page)})
    assert resp.status_code == 404
    with svc.db.read() as s:
        assert s.get(BrowserSession, alice_sid).ended_at is None


def test_ending_a_session_needs_csrf(app, auth):
    auth.user()
    client = AuthActions(app, app.test_client())
    client.login()
    assert client.client.post("/account/sessions/x/end").status_code == 400
