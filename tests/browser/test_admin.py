"""The operator dashboard in a real browser (issue 4, item 10).

An admin finds a victim's session, kills it with a reason, and the victim's tokens die
with it: the refresh token is refused at /token and introspection says inactive. The
victim's browser sends a user agent with a <script> tag, which the dashboard must show
as text. A stale login is asked for the password again (the FrozenClock is moved on,
nothing sleeps).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from playwright.sync_api import BrowserContext, Locator, Page, expect

from tests.browser.helpers import Dialogs, sign_in
from tests.support.auth import PASSWORD, AuthActions, RegisteredClient, pkce_pair, query_of
from tests.support.clock import FrozenClock
from tests.support.live import LiveServer

pytestmark = pytest.mark.slow

EVIL_AGENT = (
    "<script>alert(document.domain)</script><img src=x onerror=alert(2)> "
    "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
)
REASON = "laptop reported stolen <b>ticket 42</b>"


@pytest.fixture
def rp(auth: AuthActions) -> RegisteredClient:
    return auth.oauth_client("rp", scope="openid offline_access")


@pytest.fixture
def resource_server(auth: AuthActions) -> RegisteredClient:
    return auth.oauth_client(
        "api",
        grant_types=["client_credentials"],
        scope="api",
        redirect_uri="https://api.example.test/x",
    )


@pytest.fixture
def users(auth: AuthActions) -> None:
    auth.user("root", admin=True, name="Root Operator")
    auth.user("victim")


@pytest.fixture
def admin_page(new_context: Callable[..., BrowserContext]) -> Page:
    return new_context().new_page()


@pytest.fixture
def victim_context(new_context: Callable[..., BrowserContext]) -> BrowserContext:
    return new_context(user_agent=EVIL_AGENT)


def victim_signs_in(
    context: BrowserContext, server: LiveServer, rp: RegisteredClient
) -> dict[str, Any]:
    """The victim logs in in their browser, then the app gets tokens in that session.

    The authorization request goes through the context's own HTTP client (same cookies,
    same user agent) so the redirect to the relying app's callback is read, not followed.
    """
    page = context.new_page()
    sign_in(page, server.url, "victim")
    page.wait_for_url(f"{server.url}/account")
    verifier, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": rp.client_id,
        "redirect_uri": rp.redirect_uri,
        "scope": "openid offline_access",
        "state": secrets.token_urlsafe(8),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    resp = context.request.get(f"{server.url}/authorize?{urlencode(params)}", max_redirects=0)
    assert resp.status == 302, resp.text()
    code = query_of(resp.headers["location"])["code"]
    token = requests.post(
        f"{server.url}/token",
        auth=rp.credentials(),
        timeout=10,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": rp.redirect_uri,
            "code_verifier": verifier,
        },
    )
    assert token.status_code == 200, token.text
    return dict(token.json())


def refresh(server: LiveServer, rp: RegisteredClient, refresh_token: str) -> requests.Response:
    return requests.post(
        f"{server.url}/token",
        auth=rp.credentials(),
        timeout=10,
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
    )


def introspect(server: LiveServer, rs: RegisteredClient, token: str) -> dict[str, Any]:
    resp = requests.post(
        f"{server.url}/introspect",
        data={"token": token},
        auth=rs.credentials(),
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def admin_signs_in(page: Page, server: LiveServer) -> None:
    sign_in(page, server.url, "root", next="/admin/")
    page.wait_for_url(f"{server.url}/admin/")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()


def nav(page: Page, name: str) -> None:
    page.get_by_role("navigation").get_by_role("link", name=name, exact=True).click()


def open_victim_session(
    page: Page, server: LiveServer, shot: Callable[..., Path] | None = None
) -> None:
    """Sessions → filter by user → the victim's one session → its detail page."""
    nav(page, "Sessions")
    expect(page.get_by_role("heading", name="Live sessions")).to_be_visible()
    rows = page.locator("table tbody tr")
    expect(rows.filter(has_text="victim")).to_have_count(1)
    expect(rows.filter(has_text="root")).to_have_count(1)
    if shot:
        shot(page, "admin-sessions", docs=True)

    page.get_by_placeholder("username").fill("victim")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/admin/sessions?*user=victim*")
    expect(rows).to_have_count(1)
    row = rows.first
    expect(row).to_contain_text("victim")
    expect(row).to_contain_text("rp")
    # The raw agent is shown as text (escaped), next to the browser it was parsed as.
    expect(row).to_contain_text(EVIL_AGENT)
    expect(row).to_contain_text("Firefox")
    assert_no_injected_markup(page)
    if shot:
        shot(page, "admin-sessions-filtered")

    row.locator("a[href*='/admin/sessions/']").first.click()
    page.wait_for_url(f"{server.url}/admin/sessions/*")
    expect(heading(page)).to_contain_text("Session of victim")
    expect(heading(page)).to_contain_text("live")
    expect(page.locator("main")).to_contain_text(EVIL_AGENT)
    assert_no_injected_markup(page)


def heading(page: Page) -> Locator:
    return page.get_by_role("heading", level=1)


def assert_no_injected_markup(page: Page) -> None:
    """Hostile text did not become elements: only the dashboard's own external script."""
    assert page.locator("script:not([src])").count() == 0
    assert page.locator("main img, main b").count() == 0
    srcs = page.locator("script[src]").evaluate_all("els => els.map(e => e.src)")
    assert all(src.endswith("/admin/static/admin.js") for src in srcs), srcs


def kill(page: Page, reason: str) -> None:
    page.get_by_label("Reason").fill(reason)
    page.get_by_role("button", name="Kill session").click()


def assert_killed(page: Page, reason: str) -> None:
    expect(page.get_by_role("status")).to_contain_text("Session killed")
    expect(heading(page)).to_contain_text("ended")
    expect(heading(page)).not_to_contain_text("live")
    expect(page.get_by_role("button", name="Kill session")).to_have_count(0)
    expect(page.locator("main")).to_contain_text(reason)
    assert_no_injected_markup(page)


def test_admin_kills_a_session_and_its_tokens_die(
    server: LiveServer,
    users: None,
    rp: RegisteredClient,
    resource_server: RegisteredClient,
    admin_page: Page,
    victim_context: BrowserContext,
    dialogs: Dialogs,
    shot: Callable[..., Path],
) -> None:
    tokens = victim_signs_in(victim_context, server, rp)
    assert introspect(server, resource_server, tokens["access_token"])["active"] is True

    page = admin_page
    admin_signs_in(page, server)
    expect(page.locator("main")).to_contain_text("Live sessions")
    shot(page, "admin-overview", docs=True)

    open_victim_session(page, server, shot)
    shot(page, "admin-session-detail", docs=True)

    kill(page, REASON)

    assert_killed(page, REASON)
    shot(page, "admin-session-killed")

    resp = refresh(server, rp, tokens["refresh_token"])
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"] == "invalid_grant"
    assert introspect(server, resource_server, tokens["access_token"]) == {"active": False}
    assert introspect(server, resource_server, tokens["refresh_token"]) == {"active": False}

    # The victim's browser is signed out too.
    victim = victim_context.pages[0]
    victim.goto(f"{server.url}/account")
    expect(victim.get_by_role("heading", name="Sign in")).to_be_visible()

    # Gone from the live list; the dashboard never ran the agent's script.
    nav(page, "Sessions")
    expect(page.locator("table tbody tr").filter(has_text="victim")).to_have_count(0)
    assert dialogs.unexpected() == []


def test_non_admin_gets_403(
    server: LiveServer, users: None, page: Page, shot: Callable[..., Path]
) -> None:
    with page.expect_response(f"{server.url}/admin/") as response:
        sign_in(page, server.url, "victim", next="/admin/")
    assert response.value.status == 403
    expect(page.get_by_role("alert")).to_contain_text("This page is for administrators.")
    expect(page.locator("main")).not_to_contain_text("Live sessions")
    shot(page, "admin-403")

    sessions = page.goto(f"{server.url}/admin/sessions")
    assert sessions is not None and sessions.status == 403


def test_stale_login_is_asked_for_the_password_before_a_kill(
    server: LiveServer,
    users: None,
    rp: RegisteredClient,
    resource_server: RegisteredClient,
    admin_page: Page,
    victim_context: BrowserContext,
    clock: FrozenClock,
    dialogs: Dialogs,
    shot: Callable[..., Path],
) -> None:
    page = admin_page
    admin_signs_in(page, server)
    clock.advance(server.svc.config.admin.reauth_seconds + 1)
    # The victim's tokens are fresh at the new time, so only the kill can end them.
    tokens = victim_signs_in(victim_context, server, rp)
    open_victim_session(page, server)
    session_url = page.url

    with page.expect_response(f"{session_url}/kill") as response:
        kill(page, "suspicious refreshes")
    assert response.value.status == 401
    expect(page.get_by_role("heading", name="Confirm it is you")).to_be_visible()
    shot(page, "admin-reauth")
    assert introspect(server, resource_server, tokens["access_token"])["active"] is True

    page.get_by_label("Password").fill("not my password")
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong password.")
    assert introspect(server, resource_server, tokens["access_token"])["active"] is True

    page.get_by_label("Password").fill(PASSWORD)
    with page.expect_response(f"{server.url}/admin/reauth") as confirmed:
        page.get_by_role("button", name="Confirm").click()
    assert confirmed.value.status == 303
    page.wait_for_url(lambda url: not url.endswith(("/admin/reauth", "/kill")))
    # The prompt says "then repeat the action": it should lead back to the session page.
    # Checked at the end, so that the kill after re-authentication is tested either way.
    landed = page.url
    if landed != session_url:
        page.goto(session_url)
    expect(heading(page)).to_contain_text("Session of victim")
    expect(heading(page)).to_contain_text("live")

    kill(page, "suspicious refreshes")

    assert_killed(page, "suspicious refreshes")
    resp = refresh(server, rp, tokens["refresh_token"])
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant", resp.text
    assert introspect(server, resource_server, tokens["access_token"]) == {"active": False}
    assert dialogs.unexpected() == []
    assert landed == session_url, "after re-authentication the admin is not sent back"


def test_every_dashboard_page_opens_and_shows_hostile_text_as_text(
    server: LiveServer,
    users: None,
    rp: RegisteredClient,
    admin_page: Page,
    victim_context: BrowserContext,
    dialogs: Dialogs,
    shot: Callable[..., Path],
) -> None:
    """Whatever pages the dashboard links to (users, clients, keys, events, ...): each
    opens, obeys its CSP, and renders the victim's user agent inertly."""
    victim_signs_in(victim_context, server, rp)
    page = admin_page
    violations: list[str] = []
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    admin_signs_in(page, server)
    links = page.get_by_role("navigation").get_by_role("link")
    names = [n.strip() for n in links.all_inner_texts()]
    assert {"Overview", "Sessions"} <= set(names), names

    for name in names:
        with page.expect_response(lambda r: r.request.is_navigation_request()) as response:
            nav(page, name)
        assert response.value.status == 200, (name, response.value.status)
        expect(heading(page)).to_be_visible()
        assert_no_injected_markup(page)
        shot(page, "admin-page-" + "-".join(name.lower().split()))

    # The victim's own page, where the agent shows up again.
    nav(page, "Sessions")
    page.locator("table tbody tr").filter(has_text="victim").get_by_role(
        "link", name="victim", exact=True
    ).click()
    expect(heading(page)).to_contain_text("victim")
    assert_no_injected_markup(page)
    assert violations == []
    assert dialogs.unexpected() == []


def test_admin_deletes_a_user_and_everything_they_hold(
    server: LiveServer,
    users: None,
    rp: RegisteredClient,
    resource_server: RegisteredClient,
    admin_page: Page,
    victim_context: BrowserContext,
    dialogs: Dialogs,
) -> None:
    """Issue 13: an operator deletes a user from the dashboard (confirming the dialog);
    the user's tokens and session die and the user is gone from the lists."""
    tokens = victim_signs_in(victim_context, server, rp)
    page = admin_page
    admin_signs_in(page, server)
    nav(page, "Users")
    page.locator("table tbody tr").filter(has_text="victim").get_by_role(
        "link", name="victim", exact=True
    ).click()
    expect(heading(page)).to_contain_text("victim")
    expect(page.locator("main")).to_contain_text("Recent security events")
    form = page.locator("form").filter(has=page.get_by_role("button", name="Delete user"))
    form.get_by_label("Reason").fill("erasure request <b>ticket 7</b>")
    form.get_by_role("button", name="Delete user").click()
    page.wait_for_url(f"{server.url}/admin/users")
    expect(page.get_by_role("status")).to_contain_text("User deleted")
    expect(page.locator("table tbody tr").filter(has_text="victim")).to_have_count(0)
    assert [d for d in dialogs if d.startswith("confirm: Delete victim")], dialogs
    assert dialogs.unexpected() == []
    assert refresh(server, rp, tokens["refresh_token"]).status_code == 400
    assert introspect(server, resource_server, tokens["access_token"]) == {"active": False}
    victim = victim_context.pages[0]
    victim.goto(f"{server.url}/account")
    expect(victim.get_by_role("heading", name="Sign in")).to_be_visible()
