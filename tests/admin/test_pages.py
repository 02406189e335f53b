"""The dashboard's HTML pages (SPEC §6 "Admin"; ASVS 7.4, 7.5; SECURITY-CHECKLIST).

Every page renders for an admin and only for an admin; hostile text is escaped; every action
is a POST with a CSRF field and a reason, asks for a fresh login when the login is stale,
does what it says at /token and /introspect, and is audited; bad input gets a 4xx page and
changes nothing.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from typing import Any

import pytest
from sqlalchemy import func, select, update

from idp.accounts.models import Consent, User
from idp.admin import charts
from idp.admin.queries import PAGE_SIZE, events, keys_list, overview_series, sessions_page
from idp.audit.services import security_event
from idp.clients.models import Client
from idp.refresh.models import RefreshFamily
from idp.sessions.models import BackchannelDelivery, BrowserSession
from tests.support.auth import AuthActions, RegisteredClient, csrf_from
from tests.support.mfa import enrol

MARKUP = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
TRACE_MARKERS = ("Traceback", 'File "', "sqlalchemy", "psycopg", "werkzeug.exceptions")

# Back-channel deliveries are driven by the tests (deliver_due), never by a thread.
pytestmark = pytest.mark.usefixtures("no_background_worker")


# --- helpers ----------------------------------------------------------------------------


@pytest.fixture
def admin(auth):
    auth.user("root", admin=True)
    auth.login("root")
    return auth


@pytest.fixture
def rp(admin):
    return admin.oauth_client("rp", scope="openid profile email offline_access")


class Browser:
    """Someone else's browser: logs in with its own cookies and user agent, then gets tokens
    of ``rp`` (refresh tokens included) like a relying app would."""

    def __init__(self, app: Any, username: str, user_agent: str = FIREFOX, **user: Any) -> None:
        self.client = app.test_client()
        self.client.environ_base["HTTP_USER_AGENT"] = user_agent
        self.auth = AuthActions(app, self.client)
        self.user = self.auth.user(username, **user)
        self.username = username
        assert self.auth.login(username).status_code == 303

    def tokens(self, rp: RegisteredClient) -> dict[str, Any]:
        return self.auth.tokens(rp, scope="openid offline_access")

    def refresh(
        self,
        rp: RegisteredClient,
        token: str,
        user_agent: str | None = None,
        secret: str | None = None,
    ) -> Any:
        creds = RegisteredClient(rp.client_id, secret or rp.secret, rp.redirect_uri)
        headers = {**creds.basic(), "User-Agent": user_agent or FIREFOX}
        return self.client.post(
            "/token", headers=headers, data={"grant_type": "refresh_token", "refresh_token": token}
        )

    def introspect(self, rp: RegisteredClient, token: str) -> dict[str, Any]:
        resp = self.client.post("/introspect", data={"token": token}, headers=rp.basic())
        assert resp.status_code == 200
        return dict(resp.get_json())

    def sid(self, svc: Any) -> str:
        return str(sessions_page(svc, user=self.username).rows[0]["sid"])

    def logged_in(self) -> bool:
        return bool(self.client.get("/account").status_code == 200)


def csrf(admin: AuthActions) -> str:
    return csrf_from(admin.client.get("/admin/keys").get_data(as_text=True))


def post(admin: AuthActions, path: str, **data: Any) -> Any:
    return admin.client.post(path, data={"csrf_token": csrf(admin), **data})


def text(resp: Any) -> str:
    return str(resp.get_data(as_text=True))


def found(pattern: str, body: str) -> re.Match[str]:
    """The first match of ``pattern`` in ``body`` (which must have one)."""
    match = re.search(pattern, body, re.S)
    assert match, f"{pattern!r} not found in {body[:500]!r}"
    return match


USER_ACTIONS = {"login", "signup", "logout", "consent.grant", "admin.reauth"}


def audit_actions(svc: Any) -> list[str]:
    """What operators did, newest first (what users did themselves left out)."""
    return [e["action"] for e in events(svc) if e["action"] not in USER_ACTIONS]


def count(svc: Any, model: Any) -> int:
    with svc.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def live_sessions(svc: Any, username: str) -> int:
    return len(sessions_page(svc, user=username).rows)


def assert_clean_error(resp: Any, status: int) -> None:
    body = text(resp)
    assert resp.status_code == status, (resp.status_code, body[:300])
    assert resp.mimetype == "text/html"
    for marker in TRACE_MARKERS:
        assert marker not in body, marker


@pytest.fixture
def world(app, admin, rp, svc):
    """A victim with a rotated and then reused refresh chain, for pages to show."""
    victim = Browser(app, "victim")
    first = victim.tokens(rp)
    second = victim.refresh(rp, first["refresh_token"]).get_json()
    assert "refresh_token" in second
    assert victim.refresh(rp, first["refresh_token"], user_agent="curl/8.5").status_code == 400
    # the reuse killed the victim's session: it is found among ended ones
    return {"victim": victim, "user_id": victim.user.id, "sid": _any_sid(svc, victim.user.id)}


def _any_sid(svc: Any, user_id: str) -> str:
    """The user's session, live or ended."""
    with svc.db.read() as s:
        return str(s.scalar(select(BrowserSession.id).where(BrowserSession.user_id == user_id)))


def pages_of(world: dict[str, Any]) -> list[str]:
    return [
        "/admin/",
        "/admin/sessions",
        "/admin/sessions?user=victim&client=rp&ip=127.0.0.1",
        f"/admin/sessions/{world['sid']}",
        "/admin/users",
        "/admin/users?q=vic",
        f"/admin/users/{world['user_id']}",
        "/admin/clients",
        "/admin/clients/_new",
        "/admin/clients/rp",
        "/admin/keys",
        "/admin/signals",
        "/admin/events",
        "/admin/events?kind=refresh_token_reuse",
        "/admin/audit",
        "/admin/audit?action=session.kill&actor=root&target=x",
    ]


# --- access -------------------------------------------------------------------------------


def test_every_page_renders_for_an_admin_uncached_and_without_inline_script(admin, world):
    for path in pages_of(world):
        resp = admin.client.get(path)
        body = text(resp)
        assert resp.status_code == 200, (path, body[:500])
        assert resp.headers["Cache-Control"] == "no-store", path
        assert "script-src 'self'" in resp.headers["Content-Security-Policy"], path
        assert resp.headers["X-Frame-Options"] == "DENY", path
        assert not re.search(r"<script(?![^>]*\bsrc=)", body), path
        assert " style=" not in body, path
        for form in re.findall(r"<form[^>]*method=\"post\".*?</form>", body, re.S):
            assert 'name="csrf_token"' in form, (path, form[:200])
            # where re-authentication should lead back to: the page itself
            assert re.search(r'name="back" value="/admin/[^"]*"', form), (path, form[:200])


def test_navigation_links_every_section(admin):
    body = text(admin.client.get("/admin/"))
    for href in (
        "/admin/sessions",
        "/admin/users",
        "/admin/clients",
        "/admin/keys",
        "/admin/events",
        "/admin/audit",
    ):
        assert f'href="{href}"' in body, href


def test_non_admin_gets_403_on_every_page(app, admin, world):
    bob = Browser(app, "bob")
    for path in pages_of(world):
        assert_clean_error(bob.client.get(path), 403)


def test_demoted_admin_cannot_act(admin, world, svc, rp):
    token = csrf(admin)
    with svc.db.transaction() as s:
        s.execute(update(User).where(User.username == "root").values(is_admin=False))
    before = audit_actions(svc)
    for path in (
        f"/admin/sessions/{world['sid']}/kill",
        f"/admin/users/{world['user_id']}/kill-sessions",
        f"/admin/users/{world['user_id']}/disable",
        "/admin/clients/rp/rotate-secret",
        "/admin/clients/rp/revoke-tokens",
        "/admin/clients/rp",
        "/admin/clients/_new",
        "/admin/keys/rotate",
    ):
        resp = admin.client.post(
            path, data={"csrf_token": token, "reason": "r", "name": "x", "client_id": "evil"}
        )
        assert_clean_error(resp, 403)
    assert audit_actions(svc) == before


@pytest.mark.parametrize(
    "path",
    [
        "/admin/sessions/x/kill",
        "/admin/users/x/disable",
        "/admin/users/x/delete",
        "/admin/keys/rotate",
        "/admin/clients/rp/rotate-secret",
    ],
)
def test_actions_are_post_only(admin, path, svc):
    assert admin.client.get(path).status_code == 405
    assert audit_actions(svc) == []


def test_actions_need_the_csrf_token(admin, rp, world, svc):
    before = audit_actions(svc)
    for path in (
        f"/admin/users/{world['user_id']}/disable",
        f"/admin/users/{world['user_id']}/delete",
        "/admin/clients/rp/rotate-secret",
        "/admin/keys/rotate",
        "/admin/clients/_new",
    ):
        assert_clean_error(admin.client.post(path, data={"reason": "r"}), 400)
    assert audit_actions(svc) == before


# --- escaping -------------------------------------------------------------------------------


def test_hostile_text_is_escaped_on_every_page(app, admin, svc):
    rp = admin.oauth_client("rp", name=MARKUP, scope="openid offline_access")
    victim = Browser(app, "victim", user_agent=f"{MARKUP} Firefox/120.0", name=MARKUP)
    first = victim.tokens(rp)
    victim.refresh(rp, first["refresh_token"], user_agent=MARKUP)
    victim.refresh(rp, first["refresh_token"], user_agent=f"curl {MARKUP}")  # reuse
    sid, user_id = _any_sid(svc, victim.user.id), victim.user.id
    killed = Browser(app, "killed", user_agent=MARKUP)
    killed_sid = killed.sid(svc)
    assert (
        post(admin, f"/admin/sessions/{killed_sid}/kill", reason=f"stolen {MARKUP}").status_code
        == 303
    )
    Browser(app, "live", user_agent=MARKUP)
    for path in (
        "/admin/",
        "/admin/sessions",
        f"/admin/sessions/{sid}",
        "/admin/users",
        f"/admin/users/{user_id}",
        "/admin/clients",
        "/admin/clients/rp",
        "/admin/events",
        "/admin/audit",
        f"/admin/sessions/{killed_sid}",
    ):
        body = text(admin.client.get(path))
        assert MARKUP not in body, path
        assert "<script>" not in body, path
        assert ESCAPED in body, path


def test_errors_in_forms_are_escaped(admin, rp):
    resp = post(admin, "/admin/clients/rp", name="rp", redirect_uris=f"https://x/{MARKUP}#f")
    assert resp.status_code == 400
    assert MARKUP not in text(resp) and "&lt;script&gt;" in text(resp)


# --- charts -------------------------------------------------------------------------------


def test_charts_are_built_from_numbers_and_escaped_labels():
    svg = str(charts.bars([0, 3, 1], label=f'logins "{MARKUP}', labels=["a", MARKUP, "c"]))
    assert svg.startswith('<svg class="chart bars"') and svg.endswith("</svg>")
    assert svg.count("<rect") == 3
    assert MARKUP not in svg and ESCAPED in svg and "&#34;" in svg
    line = str(charts.sparkline([5, 0, 2], label=MARKUP))
    assert "<polyline" in line and MARKUP not in line
    assert "<title>" in str(charts.sparkline([], label="empty"))


@pytest.mark.parametrize("bad", [["1"], ['" onload="x'], [1.5], [None], [True]])
def test_charts_refuse_anything_but_ints(bad):
    with pytest.raises(TypeError):
        charts.bars(bad, label="x")
    with pytest.raises(TypeError):
        charts.sparkline(bad, label="x")


def test_overview_shows_counts_and_charts(admin, world, clock):
    body = text(admin.client.get("/admin/"))
    assert body.count('<svg class="chart') == 6
    assert 'class="card alarm"' in body  # a reuse in the last 24 hours
    assert "victim" in body  # the recent reuse names its user
    big = re.findall(r'<p class="big">(\d+)</p>', body)
    # live sessions (root, since the reuse killed the victim's), live families (none),
    # families issued, rotations, logins (root and victim), reuse detections
    assert big == ["1", "0", "1", "1", "2", "1"]
    clock.advance(25 * 3600)
    later = text(admin.client.get("/admin/"))
    assert 'class="card alarm"' not in later


def test_live_series_count_what_was_alive_at_the_end_of_each_hour(admin, svc, clock):
    user = admin.user("carol")
    now, hour = clock.now(), dt.timedelta(hours=1)
    with svc.db.transaction() as s:
        for created, ended in ((now - 5 * hour, now - 2 * hour), (now - 1.5 * hour, None)):
            s.add(
                BrowserSession(
                    id=secrets.token_urlsafe(16),
                    token_hash=secrets.token_hex(32),
                    user_id=user.id,
                    auth_time=created,
                    ip="10.0.0.1",
                    user_agent=FIREFOX,
                    created_at=created,
                    last_seen_at=created,
                    expires_at=now + hour,
                    ended_at=ended,
                )
            )
    series = overview_series(svc)["live_sessions_24h"]
    # oldest first; the last point is now (carol's live session and root's)
    assert series[-6:] == [1, 1, 1, 0, 1, 2] and series[:-6] == [0] * 18


# --- sessions -------------------------------------------------------------------------------


def _add_sessions(svc: Any, user_id: str, n: int, clock: Any) -> None:
    now = clock.now()
    with svc.db.transaction() as s:
        for i in range(n):
            at = now - dt.timedelta(seconds=i // 2)  # pairs share created_at: ties by id
            s.add(
                BrowserSession(
                    id=secrets.token_urlsafe(16),
                    token_hash=secrets.token_hex(32),
                    user_id=user_id,
                    auth_time=at,
                    ip=f"10.0.0.{i % 3}",
                    user_agent=FIREFOX,
                    created_at=at,
                    last_seen_at=now,
                    expires_at=now + dt.timedelta(days=1),
                )
            )


def test_sessions_list_is_keyset_paginated(admin, svc, clock):
    bulk = admin.user("bulk")
    _add_sessions(svc, bulk.id, PAGE_SIZE + 7, clock)
    first = text(admin.client.get("/admin/sessions?user=bulk"))
    sids = re.findall(r'href="/admin/sessions/([A-Za-z0-9_-]+)"', first)
    assert len(sids) == PAGE_SIZE
    nxt = re.search(r'rel="next" href="([^"]+)"', first)
    assert nxt
    second = text(admin.client.get(nxt.group(1).replace("&amp;", "&")))
    more = re.findall(r'href="/admin/sessions/([A-Za-z0-9_-]+)"', second)
    assert len(more) == 7 and not set(more) & set(sids)
    assert 'rel="next"' not in second and "← Newest" in second


def test_sessions_list_filters_by_user_client_and_ip(app, admin, rp, svc):
    alice = Browser(app, "alice")
    alice.tokens(rp)
    Browser(app, "carol")
    body = text(admin.client.get("/admin/sessions?client=rp"))
    assert ">alice</a>" in body and ">carol</a>" not in body
    body = text(admin.client.get("/admin/sessions?user=carol"))
    assert ">carol</a>" in body and ">alice</a>" not in body
    assert ">root</a>" in text(admin.client.get("/admin/sessions?ip=127.0.0.1"))
    assert ">root</a>" not in text(admin.client.get("/admin/sessions?ip=10.9.9.9"))
    row = text(admin.client.get("/admin/sessions?user=alice"))
    assert f'href="/admin/users/{alice.user.id}">alice</a>' in row  # the user page
    assert "Firefox 120 on Linux" in row and 'href="/admin/clients/rp"' in row


@pytest.mark.parametrize(
    "query",
    [
        "after=garbage",
        "after=2024-01-01T00:00:00|",
        "after=0001-01-01T00:00:00%2B14:00|x",
        "after=2024-01-01T00:00:00|%00",
        "user=%00",
        "client=rp%00",
        "ip=" + "9" * 5000,
        "user=" + "é" * 400,
    ],
)
def test_hostile_filters_never_fail(admin, query):
    resp = admin.client.get("/admin/sessions?" + query)
    # NUL is refused in any parameter (idp.web.check_request); the rest is ignored.
    assert resp.status_code == (400 if "%00" in query else 200), text(resp)[:300]


def test_session_detail_draws_rotations_and_marks_reuse_with_both_uses(admin, world, svc):
    body = text(admin.client.get(f"/admin/sessions/{world['sid']}"))
    assert "generation 1 issued (code exchange)" in body
    assert "generation 1 used → generation 2 issued" in body
    assert 'class="step reuse"' in body and "REUSE</strong> of generation 1" in body
    first_use, reuse = found(
        r"<dt>First use</dt><dd>(.*?)</dd>\s*<dt>Reuse</dt><dd>(.*?)</dd>", body
    ).groups()
    assert "Firefox 120" in first_use and "127.0.0.1" in first_use
    assert "curl/8.5" in reuse and "127.0.0.1" in reuse
    assert "chain revoked: refresh token reuse detected" in body


def test_session_detail_shows_backchannel_deliveries_and_their_status(app, admin, svc):
    rp = admin.oauth_client(
        "bc", scope="openid offline_access", backchannel_logout_uri="http://127.0.0.1:9/backchannel"
    )
    victim = Browser(app, "victim")
    victim.tokens(rp)
    sid = victim.sid(svc)
    assert "Sent when the session ends." in text(admin.client.get(f"/admin/sessions/{sid}"))
    assert post(admin, f"/admin/sessions/{sid}/kill", reason="stolen").status_code == 303
    body = text(admin.client.get(f"/admin/sessions/{sid}"))
    assert "http://127.0.0.1:9/backchannel" in body and ">pending<" in body
    svc.notifier.deliver_due()
    body = text(admin.client.get(f"/admin/sessions/{sid}"))
    # A generic error: the dashboard tells nothing about the port (issue 10 item 7).
    assert ">pending<" in body and "could not connect" in body
    with svc.db.transaction() as s:
        s.execute(
            update(BackchannelDelivery).values(
                status="delivered", last_status_code=200, last_error=None
            )
        )
    body = text(admin.client.get(f"/admin/sessions/{sid}"))
    assert ">delivered<" in body and "HTTP 200" in body


def test_kill_ends_the_session_and_introspection_turns_inactive(app, admin, rp, svc):
    victim = Browser(app, "victim")
    tokens = victim.tokens(rp)
    sid = victim.sid(svc)
    assert victim.introspect(rp, tokens["access_token"])["active"] is True
    resp = post(admin, f"/admin/sessions/{sid}/kill", reason="stolen laptop")
    assert resp.status_code == 303 and resp.headers["Location"].endswith(f"/admin/sessions/{sid}")
    assert victim.introspect(rp, tokens["access_token"]) == {"active": False}
    assert victim.refresh(rp, tokens["refresh_token"]).status_code == 400
    assert not victim.logged_in()
    page = text(admin.client.get(f"/admin/sessions/{sid}"))
    assert "Session killed" in page and ">ended<" in page and "stolen laptop" in page
    assert "Kill session" not in page
    [kill] = events(svc, kind="session.kill")
    assert kill["actor"] == "root" and kill["target"] == sid and kill["reason"] == "stolen laptop"
    again = post(admin, f"/admin/sessions/{sid}/kill", reason="again")
    assert again.status_code == 303 and len(events(svc, kind="session.kill")) == 1


@pytest.mark.parametrize("reason", ["", "   ", "x" * 501, "a\x00b"])
def test_kill_needs_a_sane_reason_and_changes_nothing_without_one(app, admin, svc, reason):
    victim = Browser(app, "victim")
    sid = victim.sid(svc)
    resp = post(admin, f"/admin/sessions/{sid}/kill", reason=reason)
    assert_clean_error(resp, 400)
    if "\x00" not in reason:  # NUL is refused before any view (idp.web.check_request)
        assert "reason" in text(resp).lower() and 'name="reason"' in text(resp)
    assert victim.logged_in() and audit_actions(svc) == []


# --- users ----------------------------------------------------------------------------------


def test_users_list_searches_by_prefix(admin):
    admin.user("alice", name="Alice Liddell")
    admin.user("albert")
    admin.user("zoe", email="alpha@example.test")
    body = text(admin.client.get("/admin/users?q=al"))
    assert ">alice</a>" in body and ">albert</a>" in body and ">zoe</a>" in body  # by email
    assert ">root</a>" not in body
    assert "No user matches" in text(admin.client.get("/admin/users?q=%25"))
    assert ">root</a>" in text(admin.client.get("/admin/users"))
    assert admin.client.get("/admin/users?q=%00").status_code == 400  # NUL refused up front


def test_user_page_shows_sessions_chains_and_consents(app, admin, world, svc, clock):
    admin.oauth_client("partner", first_party=False)
    with svc.db.transaction() as s:
        s.add(
            Consent(
                user_id=world["user_id"],
                client_id="partner",
                scope="openid email",
                granted_at=clock.now(),
            )
        )
    body = text(admin.client.get(f"/admin/users/{world['user_id']}"))
    assert "<h1>victim" in body
    assert f'href="/admin/sessions/{world["sid"]}"' in body and ">ended<" in body
    assert "reuse detected" in body and "generation 1 used" in body
    consents = body[body.index("<h2>Consents</h2>") :]
    assert 'href="/admin/clients/partner"' in consents and "openid email" in consents
    assert "Kill all sessions" in body and "Disable user" in body


def test_kill_all_sessions_ends_every_session_and_refresh_token(app, admin, rp, svc):
    laptop, bystander = Browser(app, "victim"), Browser(app, "bystander")
    phone = app.test_client()  # the same user's second session, from another browser
    AuthActions(app, phone).login("victim")
    tokens = laptop.tokens(rp)
    assert live_sessions(svc, "victim") == 2
    resp = post(admin, f"/admin/users/{laptop.user.id}/kill-sessions", reason="phished")
    assert resp.status_code == 303
    assert live_sessions(svc, "victim") == 0 and live_sessions(svc, "bystander") == 1
    assert laptop.refresh(rp, tokens["refresh_token"]).status_code == 400
    assert laptop.introspect(rp, tokens["access_token"]) == {"active": False}
    assert phone.get("/account").status_code == 303 and bystander.logged_in()
    [summary] = events(svc, kind="user.kill_sessions")
    assert summary["reason"] == "phished" and summary["details"]["sessions_killed"] == 2
    assert len(events(svc, kind="session.kill")) == 2


def test_a_users_second_factors_are_shown_and_reset(app, admin, svc):
    victim = AuthActions(app, app.test_client())
    user = victim.user("victim")
    enrol(victim, "victim")
    page = text(admin.client.get(f"/admin/users/{user.id}"))
    factors = page[page.index("<h2>Second factors</h2>") :]
    assert "authenticator app (TOTP)" in factors and "Recovery codes left: 10" in factors
    resp = post(admin, f"/admin/users/{user.id}/mfa-reset", reason="lost phone")
    assert resp.status_code == 303
    assert not svc.factors.has_factor(user.id)
    assert "None: the user signs in with a password only." in text(
        admin.client.get(f"/admin/users/{user.id}")
    )
    [reset] = events(svc, kind="user.mfa_reset")
    assert reset["reason"] == "lost phone" and reset["details"]["factors_removed"] == 1
    assert victim.login("victim").headers["Location"] == "/account"  # no code step now


def test_disabling_a_user_kills_sessions_and_blocks_login_until_enabled(app, admin, rp, svc):
    victim = Browser(app, "victim")
    tokens = victim.tokens(rp)
    user_id = victim.user.id
    assert post(admin, f"/admin/users/{user_id}/disable", reason="left").status_code == 303
    assert not victim.logged_in() and live_sessions(svc, "victim") == 0
    assert victim.refresh(rp, tokens["refresh_token"]).status_code == 400
    # refused like a wrong password: a disabled account is not told apart (ASVS 2.2.1)
    assert victim.auth.login("victim").status_code == 401 and not victim.logged_in()
    page = text(admin.client.get(f"/admin/users/{user_id}"))
    assert ">disabled<" in page and "Enable user" in page
    assert post(admin, f"/admin/users/{user_id}/enable", reason="back").status_code == 303
    assert victim.auth.login("victim").status_code == 303 and victim.logged_in()
    actions = audit_actions(svc)
    assert "user.disable" in actions and "user.enable" in actions and "session.kill" in actions


def test_an_admin_cannot_disable_themselves(admin, svc):
    with svc.db.read() as s:
        root = s.scalar(select(User.id).where(User.username == "root"))
    resp = post(admin, f"/admin/users/{root}/disable", reason="oops")
    assert_clean_error(resp, 400)
    assert "your own account" in text(resp)
    assert admin.client.get("/admin/").status_code == 200


def test_user_page_shows_recent_security_events(admin, world):
    body = text(admin.client.get(f"/admin/users/{world['user_id']}"))
    section = body[body.index("<h2>Recent security events</h2>") : body.index("<h2>Recent audit")]
    assert "refresh_token_reuse" in section and 'href="/admin/clients/rp"' in section
    assert "curl/8.5" in section  # the reuse's user agent, from the event's details
    assert "Delete user" in body


def test_user_page_escapes_hostile_security_event_details(admin, world, svc):
    security_event(svc.db, svc.clock, "admin_reauth_failed", user_id=world["user_id"], ip=MARKUP)
    body = text(admin.client.get(f"/admin/users/{world['user_id']}"))
    assert ESCAPED in body and MARKUP not in body


def test_deleting_a_user_ends_everything_and_leaves_a_pseudonym(app, admin, rp, svc):
    victim = Browser(app, "victim", name="Vic Tim")
    tokens = victim.tokens(rp)
    resp = post(admin, f"/admin/users/{victim.user.id}/delete", reason="asked by victim")
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/admin/users")
    flashed = text(admin.client.get("/admin/users"))
    pseudonym = found(r"calls them (deleted-user-[0-9a-f]{16})", flashed).group(1)
    assert ">victim</a>" not in flashed
    assert not victim.logged_in()
    assert victim.refresh(rp, tokens["refresh_token"]).status_code == 400
    assert victim.introspect(rp, tokens["access_token"]) == {"active": False}
    assert_clean_error(admin.client.get(f"/admin/users/{victim.user.id}"), 404)
    [deleted] = events(svc, kind="user.delete")
    assert deleted["actor"] == "root" and deleted["target"] == pseudonym
    assert deleted["reason"] == f"asked by {pseudonym}"
    assert all("victim" not in str(e) for e in events(svc))


def test_deleting_needs_a_reason_and_changes_nothing_without_one(app, admin, svc):
    victim = Browser(app, "victim")
    for reason in ("", "   ", "x" * 501, "nul\x00"):
        resp = post(admin, f"/admin/users/{victim.user.id}/delete", reason=reason)
        assert_clean_error(resp, 400)
        assert victim.logged_in()
    assert audit_actions(svc) == []


def test_an_admin_cannot_delete_themselves(admin, svc):
    with svc.db.read() as s:
        root = s.scalar(select(User.id).where(User.username == "root"))
    resp = post(admin, f"/admin/users/{root}/delete", reason="oops")
    assert_clean_error(resp, 400)
    assert "your own account" in text(resp)
    assert admin.client.get("/admin/").status_code == 200


# --- clients --------------------------------------------------------------------------------


NEW_CLIENT = {
    "client_id": "billing",
    "name": "Billing",
    "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
    "scope": "openid offline_access api",
    "redirect_uris": "https://billing.example.test/cb\r\nhttp://127.0.0.1/cb",
    "post_logout_redirect_uris": "https://billing.example.test/bye",
    "backchannel_logout_uri": "https://billing.example.test/bc",
    "claims": "tenant=acme\r\ntier=gold",
}


def client_row(svc: Any, client_id: str) -> Client | None:
    with svc.db.read() as s:
        return s.get(Client, client_id)


def stored_client(svc: Any, client_id: str) -> Client:
    row = client_row(svc, client_id)
    assert row is not None, f"client {client_id} is not stored"
    return row


def test_creating_a_client_shows_its_secret_once_and_the_secret_works(admin, svc):
    assert "Register" in text(admin.client.get("/admin/clients/_new"))
    resp = post(admin, "/admin/clients/_new", **NEW_CLIENT)
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    secret = found(r'<code class="secret-value" id="client-secret">([^<]+)</code>', text(resp))[1]
    row = stored_client(svc, "billing")
    assert row.check_client_secret(secret)
    assert row.redirect_uris == ["https://billing.example.test/cb", "http://127.0.0.1/cb"]
    assert row.claims == {"tenant": "acme", "tier": "gold"}
    assert row.backchannel_logout_uri == "https://billing.example.test/bc"
    for path in ("/admin/clients/billing", "/admin/clients", "/admin/audit"):
        assert secret not in text(admin.client.get(path))
    billing = RegisteredClient("billing", secret, "https://billing.example.test/cb")
    token = admin.client.post(
        "/token", headers=billing.basic(), data={"grant_type": "client_credentials", "scope": "api"}
    )
    assert token.status_code == 200, token.get_json()
    [created] = events(svc, kind="client.create")
    assert created["actor"] == "root" and created["target"] == "billing"


def test_a_public_client_has_no_secret(admin, svc):
    resp = post(
        admin,
        "/admin/clients/_new",
        **{**NEW_CLIENT, "public": "on", "grant_types": ["authorization_code"]},
    )
    assert resp.status_code == 303
    assert stored_client(svc, "billing").is_public


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"redirect_uris": "http://evil.example/cb"}, "http is allowed only for loopback"),
        ({"redirect_uris": "https://ok.example/cb#frag"}, "fragment"),
        ({"redirect_uris": "javascript:alert(1)"}, "not allowed"),
        ({"redirect_uris": ""}, "at least one"),
        ({"redirect_uris": "https://x.example/" + "a" * 2001}, "too long"),
        ({"redirect_uris": "\n".join(f"https://x.example/{i}" for i in range(21))}, "at most 20"),
        ({"name": "n" * 201}, "too long"),
        ({"client_id": "bad id"}, "client_id may use"),
        ({"client_id": "rp"}, "already exists"),
        ({"client_id": ""}, "required"),
        ({"client_id": "x\x00"}, "NUL"),
        ({"scope": "openid " + "s" * 1000}, "too long"),
        ({"scope": 'openid "quoted"'}, "not valid"),
        ({"claims": "sub=admin"}, "reserved"),
        ({"claims": "no-equals-sign"}, "NAME=VALUE"),
        ({"backchannel_logout_uri": "ftp://billing.example.test/bc"}, "backchannel"),
        ({"backchannel_logout_uri": "https://b.example/" + "x" * 2000}, "too long"),
        ({"grant_types": ["password"]}, "not supported"),
        ({"id_token_alg": "none"}, "must be one of"),
    ],
)
def test_bad_registration_shows_the_form_again_and_stores_nothing(admin, rp, svc, change, message):
    before = (count(svc, Client), audit_actions(svc))
    resp = post(admin, "/admin/clients/_new", **{**NEW_CLIENT, **change})
    assert_clean_error(resp, 400)
    if any("\x00" in str(v) for v in change.values()):  # refused before any view
        assert (count(svc, Client), audit_actions(svc)) == before
        return
    assert message in text(resp), text(resp)[:2000]
    assert 'name="client_id"' in text(resp)  # the form, filled in again
    if "name" not in change:
        assert 'value="Billing"' in text(resp)
    assert (count(svc, Client), audit_actions(svc)) == before


EDIT = {
    "name": "Relying party",
    "redirect_uris": "https://rp.example.test/callback\nhttps://rp.example.test/other",
    "post_logout_redirect_uris": "https://rp.example.test/bye",
    "backchannel_logout_uri": "https://rp.example.test/bc",
    "claims": "tenant=acme\ndept=ops=1",
}


def test_a_dpop_bound_chain_shows_its_key_on_the_session_page(admin, world, svc):
    jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
    with svc.db.transaction() as s:
        s.execute(
            update(RefreshFamily)
            .where(RefreshFamily.user_id == world["user_id"])
            .values(dpop_jkt=jkt)
        )
    page = text(admin.client.get(f"/admin/sessions/{world['sid']}"))
    assert f"DPoP-bound to key <code>{jkt}</code>" in page


def test_keys_and_the_par_requirement_are_shown_and_edited_in_the_dashboard(admin, svc, auth):
    from tests.support.client_jwt import ClientKey

    key = ClientKey()
    auth.oauth_client("signer", token_endpoint_auth_method="private_key_jwt", jwks=key.jwks())
    page = text(admin.client.get("/admin/clients/signer"))
    assert "confidential (private_key_jwt)" in page and key.kid in page
    edit = {**EDIT, "redirect_uris": "https://rp.example.test/callback"}
    post(admin, "/admin/clients/signer", **edit, require_pushed_authorization_requests="on")
    assert stored_client(svc, "signer").require_pushed_authorization_requests is True
    assert "PAR required" in text(admin.client.get("/admin/clients/signer"))


def test_the_dpop_requirement_is_shown_and_edited_in_the_dashboard(admin, rp, svc):
    resp = post(admin, "/admin/clients/rp", **EDIT, dpop_bound_access_tokens="on")
    assert resp.status_code == 303
    assert stored_client(svc, "rp").dpop_bound_access_tokens is True
    page = text(admin.client.get("/admin/clients/rp"))
    assert "DPoP required" in page and 'name="dpop_bound_access_tokens" checked' in page
    post(admin, "/admin/clients/rp", **EDIT)  # the box unticked
    assert stored_client(svc, "rp").dpop_bound_access_tokens is False


def test_editing_a_client_saves_uris_backchannel_and_claims(admin, rp, svc):
    resp = post(admin, "/admin/clients/rp", **EDIT)
    assert resp.status_code == 303
    row = stored_client(svc, "rp")
    assert row.name == "Relying party"
    assert row.redirect_uris == [
        "https://rp.example.test/callback",
        "https://rp.example.test/other",
    ]
    assert row.post_logout_redirect_uris == ["https://rp.example.test/bye"]
    assert row.backchannel_logout_uri == "https://rp.example.test/bc"
    assert row.claims == {"tenant": "acme", "dept": "ops=1"}
    page = text(admin.client.get("/admin/clients/rp"))
    assert "Client saved." in page and "dept=ops=1" in page
    [edit] = events(svc, kind="client.update")
    assert set(edit["details"]["changed"]) == {
        "client_name",
        "redirect_uris",
        "claims",
        "post_logout_redirect_uris",
        "backchannel_logout_uri",
    }
    cleared = post(
        admin, "/admin/clients/rp", **{**EDIT, "backchannel_logout_uri": "", "claims": ""}
    )
    assert cleared.status_code == 303
    row = stored_client(svc, "rp")
    assert row.backchannel_logout_uri is None and row.claims == {}


@pytest.mark.parametrize(
    "change",
    [
        {"redirect_uris": "http://evil.example/cb"},
        {"redirect_uris": ""},
        {"post_logout_redirect_uris": "data:text/html,hi"},
        {"backchannel_logout_uri": "not a uri"},
        {"backchannel_logout_uri": "https://b.example/" + "x" * 2000},
        {"claims": "iss=https://evil.example"},
        {"claims": "bad name=1"},
        {"name": ""},
        {"name": "n" * 201},
        {"name": "rp\x00"},
    ],
)
def test_bad_edits_show_the_form_again_and_change_nothing(admin, rp, svc, change):
    before = stored_client(svc, "rp")
    resp = post(admin, "/admin/clients/rp", **{**EDIT, **change})
    assert_clean_error(resp, 400)
    if not any("\x00" in str(v) for v in change.values()):  # NUL: refused before the view
        assert 'action="/admin/clients/rp"' in text(resp)
    after = stored_client(svc, "rp")
    assert (after.name, after.redirect_uris, after.claims, after.backchannel_logout_uri) == (
        before.name,
        before.redirect_uris,
        before.claims,
        before.backchannel_logout_uri,
    )
    assert audit_actions(svc) == []


def test_rotating_the_secret_makes_the_old_one_fail_at_token(app, admin, rp, svc):
    victim = Browser(app, "victim")
    tokens = victim.tokens(rp)
    resp = post(admin, "/admin/clients/rp/rotate-secret", reason="leaked in a log")
    assert resp.status_code == 200 and "shown only this once" in text(resp)
    new = found(r'id="client-secret">([^<]+)<', text(resp))[1]
    assert new != rp.secret
    old = victim.refresh(rp, tokens["refresh_token"])
    assert old.status_code == 401 and old.get_json()["error"] == "invalid_client"
    assert victim.refresh(rp, tokens["refresh_token"], secret=new).status_code == 200
    assert new not in text(admin.client.get("/admin/clients/rp"))
    [rotation] = events(svc, kind="client.rotate_secret")
    assert rotation["reason"] == "leaked in a log" and rotation["target"] == "rp"
    assert new not in str(rotation)


def test_a_public_client_has_no_secret_to_rotate(admin, svc):
    admin.oauth_client("spa", public=True)
    resp = post(admin, "/admin/clients/spa/rotate-secret", reason="r")
    assert_clean_error(resp, 400)
    assert "no secret" in text(resp) and audit_actions(svc) == []


def test_revoking_client_tokens_makes_its_refresh_tokens_fail(app, admin, rp, svc):
    victim = Browser(app, "victim")
    tokens = victim.tokens(rp)
    other = admin.oauth_client("other", scope="openid offline_access")
    kept = victim.tokens(other)
    resp = post(admin, "/admin/clients/rp/revoke-tokens", reason="compromised")
    assert resp.status_code == 303
    refused = victim.refresh(rp, tokens["refresh_token"])
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_grant"
    assert victim.introspect(rp, tokens["access_token"]) == {"active": False}
    assert victim.refresh(other, kept["refresh_token"]).status_code == 200
    [revoked] = events(svc, kind="client.revoke_tokens")
    assert revoked["reason"] == "compromised" and revoked["details"]["families"] == 1


# --- keys -----------------------------------------------------------------------------------


def test_rotate_now_changes_the_active_kid(app, admin, rp, svc):
    Browser(app, "victim").tokens(rp)  # keys exist
    before = {k["alg"]: k["kid"] for k in keys_list(svc) if k["state"] == "active"}
    resp = post(admin, "/admin/keys/rotate", reason="scheduled")
    assert resp.status_code == 303
    after = {k["alg"]: k["kid"] for k in keys_list(svc) if k["state"] == "active"}
    assert before and set(before) <= set(after)
    assert all(before[alg] != after[alg] for alg in before)
    assert svc.keys.signer("ES256").kid == after["ES256"]
    retired = {k["kid"] for k in keys_list(svc) if k["state"] == "retired"}
    assert set(before.values()) <= retired
    page = text(admin.client.get("/admin/keys"))
    assert after["ES256"] in page and ">retired<" in page
    [rotation] = events(svc, kind="keys.rotate")
    assert rotation["reason"] == "scheduled"
    assert set(rotation["details"]["active"]) == set(after.values())


# --- fresh authentication -------------------------------------------------------------------


ACTIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "kill": ("/admin/sessions/{sid}/kill", {"reason": "r"}),
    "kill-all": ("/admin/users/{user_id}/kill-sessions", {"reason": "r"}),
    "disable": ("/admin/users/{user_id}/disable", {"reason": "r"}),
    "enable": ("/admin/users/{user_id}/enable", {"reason": "r"}),
    "delete": ("/admin/users/{user_id}/delete", {"reason": "r"}),
    "mfa-reset": ("/admin/users/{user_id}/mfa-reset", {"reason": "r"}),
    "rotate-secret": ("/admin/clients/rp/rotate-secret", {"reason": "r"}),
    "revoke-tokens": ("/admin/clients/rp/revoke-tokens", {"reason": "r"}),
    "edit-client": ("/admin/clients/rp", EDIT),
    "create-client": ("/admin/clients/_new", NEW_CLIENT),
    "rotate-keys": ("/admin/keys/rotate", {"reason": "r"}),
}


# Actions whose result page shows a new client secret (once); the others redirect.
SHOWS_A_SECRET = {"rotate-secret", "create-client"}

AUDITED_AS = {
    "kill": "session.kill",
    "kill-all": "user.kill_sessions",
    "disable": "user.disable",
    "enable": "user.enable",
    "delete": "user.delete",
    "mfa-reset": "user.mfa_reset",
    "rotate-secret": "client.rotate_secret",
    "revoke-tokens": "client.revoke_tokens",
    "edit-client": "client.update",
    "create-client": "client.create",
    "rotate-keys": "keys.rotate",
}


@pytest.mark.parametrize("action", ACTIONS)
def test_destructive_actions_ask_for_the_password_when_the_login_is_stale(
    app, admin, rp, svc, clock, action
):
    victim = Browser(app, "victim")
    victim.tokens(rp)
    path, data = ACTIONS[action]
    path = path.format(sid=victim.sid(svc), user_id=victim.user.id)
    token = csrf(admin)
    kids = {k["kid"] for k in keys_list(svc)}
    clock.advance(svc.config.admin.reauth_seconds + 1)
    stale = admin.client.post(path, data={**data, "csrf_token": token, "back": "/admin/keys"})
    assert stale.status_code == 401 and "Confirm it is you" in text(stale)
    assert 'name="back" value="/admin/keys"' in text(stale)  # the form's page, to return to
    assert victim.logged_in() and client_row(svc, "billing") is None
    assert stored_client(svc, "rp").check_client_secret(rp.secret)
    assert {k["kid"] for k in keys_list(svc)} == kids
    assert audit_actions(svc) == []
    again = admin.client.post(
        "/admin/reauth",
        data={
            "password": "correct horse battery",
            "back": "/admin/keys",
            "csrf_token": csrf_from(text(stale)),
        },
    )
    assert again.status_code == 303
    done = admin.client.post(path, data={**data, "csrf_token": token})
    assert done.status_code == (200 if action in SHOWS_A_SECRET else 303), text(done)[:500]
    assert AUDITED_AS[action] in audit_actions(svc)


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/admin/sessions/nope",
        "/admin/sessions/%00",
        "/admin/sessions/" + "x" * 300,
        "/admin/users/nope",
        "/admin/users/%00",
        "/admin/clients/nope",
        "/admin/clients/rp%00",
        "/admin/clients/" + "c" * 300,
        "/admin/nowhere",
    ],
)
def test_unknown_things_are_404_pages(admin, rp, path):
    assert_clean_error(admin.client.get(path), 404)


@pytest.mark.parametrize(
    "path",
    [
        "/admin/sessions/nope/kill",
        "/admin/sessions/%00/kill",
        "/admin/users/nope/kill-sessions",
        "/admin/users/nope/disable",
        "/admin/users/%00/enable",
        "/admin/users/nope/delete",
        "/admin/users/%00/delete",
        "/admin/clients/nope",
        "/admin/clients/nope/rotate-secret",
        "/admin/clients/nope%00/revoke-tokens",
    ],
)
def test_actions_on_unknown_things_are_404_and_change_nothing(admin, svc, path):
    resp = post(admin, path, reason="r", **{k: v for k, v in EDIT.items() if k != "reason"})
    assert_clean_error(resp, 404)
    assert audit_actions(svc) == []
    assert svc.deny.is_denied("sid", "nope") is False


@pytest.mark.parametrize(
    "query", ["kind=%00", "kind=" + "k" * 5000, "action=%00&actor=%00", "target=" + "é" * 300]
)
def test_event_filters_never_fail(admin, query):
    expected = 400 if "%00" in query else 200  # NUL is refused in any parameter
    assert admin.client.get("/admin/events?" + query).status_code == expected
    assert admin.client.get("/admin/audit?" + query).status_code == expected


# --- events ---------------------------------------------------------------------------------


def test_security_events_show_both_uses_of_a_reused_token(admin, world):
    body = text(admin.client.get("/admin/events?kind=refresh_token_reuse"))
    assert "refresh_token_reuse" in body and ">victim<" in body
    assert "curl/8.5" in body and "Firefox/120.0" in body
    assert "No security events of this kind" in text(
        admin.client.get("/admin/events?kind=authorization_code_replay")
    )


def test_audit_log_is_filterable(app, admin, svc, rp):
    sid = Browser(app, "victim").sid(svc)
    post(admin, f"/admin/sessions/{sid}/kill", reason="first reason")
    post(admin, "/admin/keys/rotate", reason="second reason")
    everything = text(admin.client.get("/admin/audit"))
    assert "first reason" in everything and "second reason" in everything
    kills = text(admin.client.get("/admin/audit?action=session.kill"))
    assert "first reason" in kills and "second reason" not in kills
    by_target = text(admin.client.get(f"/admin/audit?target={sid}"))
    assert "first reason" in by_target and "second reason" not in by_target
    assert "second reason" in text(admin.client.get("/admin/audit?actor=root"))
    assert "No audit events." in text(admin.client.get("/admin/audit?actor=nobody"))


def test_signals_page_shows_streams_and_the_session_page_what_went_to_whom(admin, world, svc, auth):
    from idp.ssf import streams as ssf_streams
    from idp.ssf.models import SsfStream

    auth.oauth_client("rx", grant_types=["client_credentials"], scope="ssf")
    body = {
        "delivery": {"method": ssf_streams.POLL},
        "events_requested": ["https://schemas.openid.net/secevent/caep/event-type/session-revoked"],
    }
    with svc.db.transaction() as s:
        stream_id = ssf_streams.create(s, svc.clock.now(), "rx", body, svc.pusher.outbound).id
    victim = Browser(admin.app, "victim2")
    victim.tokens(admin.oauth_client("rp2"))
    sid = _any_sid(svc, victim.user.id)
    post(admin, f"/admin/sessions/{sid}/kill", reason="stolen")
    page = text(admin.client.get("/admin/signals"))
    assert stream_id in page and "rx" in page
    session_page = text(admin.client.get(f"/admin/sessions/{sid}"))
    assert "session-revoked" in session_page and "pending" in session_page
    resp = post(admin, f"/admin/signals/{stream_id}/status", status="paused", reason="maint")
    assert resp.status_code == 303
    with svc.db.read() as s:
        assert s.scalar(select(SsfStream.status)) == "paused"
    assert (
        post(admin, f"/admin/signals/{stream_id}/status", status="x", reason="r").status_code == 400
    )
