"""Login, signup, sessions and cookies (SPEC §6 "Sessions", ASVS 3.3 and 7.2)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import func, select

from idp.accounts import passwords
from idp.audit.models import AuditEvent
from idp.clients.models import Client
from idp.sessions.models import BrowserSession
from tests.support.auth import PASSWORD, csrf_from


def session_cookie(resp, name="idp_session"):
    return next(h for h in resp.headers.getlist("Set-Cookie") if h.startswith(name + "="))


def live_sessions(svc):
    with svc.db.transaction() as s:
        return s.scalars(select(BrowserSession).where(BrowserSession.ended_at.is_(None))).all()


@pytest.mark.production_hashing
def test_passwords_use_argon2id_with_owasp_parameters(auth, svc):
    user = auth.user()
    assert user.password_hash.startswith("$argon2id$")
    assert "m=19456,t=2,p=1" in user.password_hash
    assert passwords.HASHER.parallelism == 1
    assert auth.login().status_code == 303


def test_login_redirects_303_and_sets_an_opaque_httponly_samesite_cookie(auth, svc):
    auth.user()
    resp = auth.login(next="/account")
    assert resp.status_code == 303
    assert resp.headers["Location"] == "/account"
    cookie = session_cookie(resp)
    value = cookie.split(";")[0].split("=", 1)[1]
    assert len(value) >= 43  # 256 random bits, base64url
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    [session] = live_sessions(svc)
    assert session.token_hash != value and value not in session.token_hash
    assert session.user.username == "alice"


@pytest.mark.parametrize("config_overrides", [{"server": {"issuer": "https://idp.example.test"}}])
def test_https_issuer_uses_host_prefixed_secure_cookie(auth, config_overrides):
    auth.user()
    page = auth.client.get("/login", base_url="https://idp.example.test")
    resp = auth.client.post(
        "/login",
        base_url="https://idp.example.test",
        data={
            "username": "alice",
            "password": PASSWORD,
            "csrf_token": csrf_from(page.get_data(as_text=True)),
        },
        headers={"Referer": "https://idp.example.test/login"},
    )
    assert resp.status_code == 303, resp.get_data(as_text=True)
    cookie = session_cookie(resp, "__Host-idp_session")
    assert "Secure" in cookie and "HttpOnly" in cookie and "Domain" not in cookie
    assert "Strict-Transport-Security" in resp.headers


def test_session_id_changes_at_every_login_and_the_old_one_ends(auth, svc):
    auth.user()
    first = session_cookie(auth.login())
    second = session_cookie(auth.login())
    assert first.split(";")[0] != second.split(";")[0]
    assert len(live_sessions(svc)) == 1


def test_unknown_user_and_wrong_password_get_the_same_answer(auth):
    auth.user()
    wrong = auth.login(password="not the password")
    unknown = auth.login(username="nobody")
    assert wrong.status_code == unknown.status_code == 401
    strip = lambda r: r.get_data(as_text=True).replace("nobody", "").replace("alice", "")  # noqa: E731
    assert strip(wrong).split("<form")[0] == strip(unknown).split("<form")[0]
    assert "Wrong username or password." in wrong.get_data(as_text=True)


def test_login_is_throttled_per_account(auth, svc):
    auth.user()
    for _ in range(svc.config.login.max_failures_per_account_network):
        auth.login(password="wrong password!")
    locked = auth.login()
    assert locked.status_code == 429, "even the right password is refused while locked"
    assert "Too many attempts. Try again in 1 minute." in locked.get_data(as_text=True)
    assert locked.headers["Retry-After"] == str(svc.config.login.first_delay_seconds)
    # The same answer for a username that does not exist: it tells nothing.
    for _ in range(svc.config.login.max_failures_per_account_network):
        auth.login("nobody-at-all", password="wrong password!")
    nobody = auth.login("nobody-at-all", password="wrong password!")
    assert nobody.status_code == 429

    def page(resp):  # the form's CSRF token differs between any two pages
        return re.sub(r'name="csrf_token" value="[^"]*"', "", resp.get_data(as_text=True))

    assert page(nobody).replace("nobody-at-all", "alice") == page(locked)


@pytest.mark.parametrize("config_overrides", [{"sessions": {"idle_timeout": 600}}])
def test_idle_session_expires(auth, clock, config_overrides):
    auth.user()
    auth.login()
    assert auth.client.get("/account").status_code == 200
    clock.advance(601)
    resp = auth.client.get("/account")
    assert resp.status_code == 303 and resp.headers["Location"].startswith("/login")


@pytest.mark.parametrize("config_overrides", [{"sessions": {"idle_timeout": 600}}])
def test_activity_keeps_a_session_alive_and_is_written_at_most_once_a_minute(
    auth, clock, svc, config_overrides
):
    """The cookie's lookup is a read; last_seen_at (what the idle timeout counts from)
    is written when a page comes a minute or more after the last write."""
    auth.user()
    auth.login()

    def last_seen():
        with svc.db.read() as s:
            return s.scalars(select(BrowserSession.last_seen_at)).one()

    for _ in range(4):  # 2,000 s in all, never 600 s idle
        clock.advance(500)
        assert auth.client.get("/account").status_code == 200
    assert last_seen() == clock.now()
    clock.advance(30)
    assert auth.client.get("/account").status_code == 200
    assert last_seen() == clock.now() - dt.timedelta(seconds=30)  # not written again yet
    clock.advance(30)
    assert auth.client.get("/account").status_code == 200
    assert last_seen() == clock.now()


@pytest.mark.parametrize("config_overrides", [{"sessions": {"absolute_timeout": 3600}}])
def test_absolute_session_timeout_holds_even_when_active(auth, clock, config_overrides):
    auth.user()
    auth.login()
    for _ in range(5):  # active every 700 s, up to 3500 s after login: still signed in
        clock.advance(700)
        assert auth.client.get("/account").status_code == 200
    clock.advance(700)
    assert auth.client.get("/account").status_code == 303


def test_login_form_requires_csrf_token(auth):
    auth.user()
    resp = auth.client.post("/login", data={"username": "alice", "password": PASSWORD})
    assert resp.status_code == 400


@pytest.mark.parametrize(
    "target",
    ["//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"],
)
def test_login_never_redirects_off_site(auth, target):
    auth.user()
    resp = auth.login(next=target)
    assert resp.status_code == 303
    assert resp.headers["Location"] == "/account"


@pytest.mark.parametrize("config_overrides", [{"server": {"signup_enabled": True}}])
def test_signup_creates_account_and_logs_in(client, svc):
    page = client.get("/signup")
    resp = client.post(
        "/signup",
        data={
            "username": "bob",
            "password": "long enough pw",
            "email": "bob@example.test",
            "csrf_token": csrf_from(page.get_data(as_text=True)),
        },
    )
    assert resp.status_code == 303
    assert client.get("/account").status_code == 200
    with svc.db.transaction() as s:
        assert (
            s.scalar(
                select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "signup")
            )
            == 1
        )


def test_signup_is_off_by_default(client):
    """Anyone may create an account only where the operator says so (issue 10)."""
    assert client.get("/signup").status_code == 404
    login_page = client.get("/login").get_data(as_text=True)
    assert "/signup" not in login_page
    form = {"username": "x", "password": "long enough pw", "csrf_token": csrf_from(login_page)}
    assert client.post("/signup", data=form).status_code == 404


def test_pages_carry_security_headers(client):
    resp = client.get("/login")
    csp = resp.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["Referrer-Policy"] == "no-referrer"


def test_logout_without_hint_asks_for_confirmation_then_ends_session(auth, svc):
    auth.user()
    auth.login()
    page = auth.client.get("/logout")
    assert page.status_code == 200 and b"Sign out of idp?" in page.data
    assert len(live_sessions(svc)) == 1
    resp = auth.client.post(
        "/logout", data={"confirm": "yes", "csrf_token": csrf_from(page.get_data(as_text=True))}
    )
    assert resp.status_code == 200
    assert live_sessions(svc) == []
    assert auth.client.get("/account").status_code == 303


def test_logout_with_valid_id_token_hint_redirects_to_registered_uri(auth, svc):
    auth.user()
    rp = auth.oauth_client(post_logout_redirect_uris=["https://rp.example.test/bye"])
    auth.login()
    tokens = auth.tokens(rp)
    resp = auth.client.get(
        "/logout",
        query_string={
            "id_token_hint": tokens["id_token"],
            "state": "s1",
            "post_logout_redirect_uri": "https://rp.example.test/bye",
        },
    )
    assert resp.status_code == 303
    assert resp.headers["Location"] == "https://rp.example.test/bye?state=s1"
    assert live_sessions(svc) == []
    info = auth.client.get(
        "/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]}
    )
    assert info.status_code == 401, "the session's access tokens die with it"


def test_logout_refuses_unregistered_post_logout_redirect(auth, svc):
    auth.user()
    rp = auth.oauth_client(post_logout_redirect_uris=["https://rp.example.test/bye"])
    auth.login()
    tokens = auth.tokens(rp)
    resp = auth.client.get(
        "/logout",
        query_string={
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": "https://evil.example/",
        },
    )
    assert resp.status_code == 400
    assert len(live_sessions(svc)) == 1


def test_a_logout_token_is_not_an_id_token_hint(auth, svc):
    """A logout token (typ logout+jwt) is signed by the same keys; it must not log a
    user out without confirmation, nor pick a redirect (issue 10 item 9)."""
    auth.user()
    rp = auth.oauth_client(post_logout_redirect_uris=["https://rp.example.test/bye"])
    auth.login()
    with svc.db.read() as s:
        client = s.get(Client, rp.client_id)
        [session] = live_sessions(svc)
    token = svc.notifier.logout_token(client, session.id, session.user_id)
    resp = auth.client.get(
        "/logout",
        query_string={
            "id_token_hint": token,
            "post_logout_redirect_uri": "https://rp.example.test/bye",
        },
    )
    assert resp.status_code == 400  # no valid hint names the client
    resp = auth.client.get("/logout", query_string={"id_token_hint": token})
    assert resp.status_code == 200 and "confirm" in resp.get_data(as_text=True)
    assert len(live_sessions(svc)) == 1


def test_a_hint_for_one_client_cannot_redirect_to_another(auth, svc):
    auth.user()
    rp = auth.oauth_client(post_logout_redirect_uris=["https://rp.example.test/bye"])
    auth.oauth_client("other", post_logout_redirect_uris=["https://other.example.test/bye"])
    auth.login()
    tokens = auth.tokens(rp)
    resp = auth.client.get(
        "/logout",
        query_string={
            "id_token_hint": tokens["id_token"],
            "client_id": "other",
            "post_logout_redirect_uri": "https://other.example.test/bye",
        },
    )
    assert resp.status_code == 400
    assert len(live_sessions(svc)) == 1
