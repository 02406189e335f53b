"""Who may use the dashboard (SPEC §6 "Admin"; ASVS 7.5)."""

from __future__ import annotations

import pytest

from tests.support.auth import csrf_from


@pytest.fixture
def admin(auth):
    auth.user("root", admin=True)
    auth.login("root")
    return auth


def test_anonymous_is_sent_to_login(client):
    resp = client.get("/admin/sessions")
    assert resp.status_code == 303
    assert resp.headers["Location"].startswith("/login?next=/admin/sessions")


def test_non_admin_gets_403(auth):
    auth.user("bob")
    auth.login("bob")
    assert auth.client.get("/admin/").status_code == 403


def test_admin_sees_live_sessions_with_escaped_user_agent(admin, auth, app):
    victim = app.test_client()
    from tests.support.auth import AuthActions

    auth.user("victim")
    AuthActions(app, victim).client.get("/login")
    page = victim.get("/login")
    victim.post(
        "/login",
        data={
            "username": "victim",
            "password": "correct horse battery",
            "csrf_token": csrf_from(page.get_data(as_text=True)),
        },
        headers={"User-Agent": "<script>alert(1)</script> Firefox/120.0"},
    )
    resp = admin.client.get("/admin/sessions")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    assert "victim" in html
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html


def test_kill_needs_recent_authentication(admin, auth, app, clock, svc):
    auth.user("victim")
    other = app.test_client()
    page = other.get("/login")
    other.post(
        "/login",
        data={
            "username": "victim",
            "password": "correct horse battery",
            "csrf_token": csrf_from(page.get_data(as_text=True)),
        },
    )
    from idp.admin.queries import sessions_page

    sid = sessions_page(svc, user="victim").rows[0]["sid"]
    detail = admin.client.get(f"/admin/sessions/{sid}")
    token = csrf_from(detail.get_data(as_text=True))
    clock.advance(svc.config.admin.reauth_seconds + 1)
    stale = admin.client.post(
        f"/admin/sessions/{sid}/kill", data={"reason": "stolen laptop", "csrf_token": token}
    )
    assert stale.status_code == 401 and b"Confirm it is you" in stale.data
    assert other.get("/account").status_code == 200
    reauth = admin.client.post(
        "/admin/reauth",
        data={
            "password": "correct horse battery",
            "back": f"/admin/sessions/{sid}",
            "csrf_token": csrf_from(stale.get_data(as_text=True)),
        },
    )
    assert reauth.status_code == 303
    killed = admin.client.post(
        f"/admin/sessions/{sid}/kill", data={"reason": "stolen laptop", "csrf_token": token}
    )
    assert killed.status_code == 303
    assert other.get("/account").status_code == 303


def test_kill_needs_csrf_token(admin, svc):
    assert admin.client.post("/admin/sessions/x/kill", data={"reason": "r"}).status_code == 400


@pytest.mark.parametrize("config_overrides", [{"admin": {"port": 8081}}])
def test_admin_on_its_own_port_is_not_mounted_on_the_public_app(app, auth, config_overrides):
    from idp import admin as admin_package

    auth.user("root", admin=True)
    auth.login("root")
    assert auth.client.get("/admin/").status_code == 404
    internal = admin_package.create_app(app).test_client()
    # Same host, other port: the browser sends the same session cookie.
    for cookie in auth.client._cookies.values():
        internal.set_cookie(cookie.key, cookie.value)
    assert internal.get("/").status_code == 200
    anonymous = admin_package.create_app(app).test_client().get("/sessions")
    assert anonymous.status_code == 303
    assert anonymous.headers["Location"] == "http://127.0.0.1:5000/login"
