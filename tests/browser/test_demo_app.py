"""A session killed in the dashboard signs the demo relying app out (issue 7).

examples/relying_app.py keeps its tokens on its server, registers a back-channel logout
URI and refreshes its access token with the rotating refresh token. An operator kills
the session through the real dashboard; the app learns it from idp's logout token (sent
by idp's worker thread), or, when it registered no back-channel URI, from idp refusing
its next refresh. idp and the app share one FrozenClock: time passes by hand.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect
from sqlalchemy import select

from idp.sessions.models import BackchannelDelivery
from tests.browser.helpers import DemoApp, Dialogs, app_cookie, fill_login, serve_demo_app, sign_in
from tests.support.auth import AuthActions
from tests.support.clock import FrozenClock
from tests.support.live import LiveServer

pytestmark = pytest.mark.slow

REASON = "laptop left on the train"
DELIVERY_TIMEOUT = 10.0


@pytest.fixture
def users(auth: AuthActions) -> None:
    auth.user("root", admin=True, name="Root Operator")
    auth.user("alice", name="Alice Liddell")


@pytest.fixture
def alice_page(new_context: Callable[..., BrowserContext]) -> Page:
    return new_context().new_page()


@pytest.fixture
def admin_page(new_context: Callable[..., BrowserContext]) -> Page:
    return new_context().new_page()


def looks_like_jwt(value: str) -> bool:
    parts = value.split(".")
    if len(parts) not in (3, 5):
        return False
    try:
        header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    except ValueError:
        return False
    return isinstance(header, dict) and "alg" in header


def signs_in_to_demo_app(page: Page, demo: DemoApp, server: LiveServer) -> None:
    page.goto(demo.url + "/")
    page.get_by_role("link", name="Sign in with idp").click()
    page.wait_for_url(f"{server.url}/login?**")
    fill_login(page, "alice")
    page.wait_for_url(demo.url + "/")
    expect(page.get_by_text("Signed in as")).to_contain_text("alice")


def assert_signed_out(page: Page, why: str) -> None:
    expect(page.get_by_role("link", name="Sign in with idp")).to_be_visible()
    expect(page.get_by_text("Signed in as")).to_have_count(0)
    expect(page.get_by_role("status")).to_contain_text(why)
    assert not [c for c in page.context.cookies() if c["name"] == "session"]


def operator_kills_session_of(page: Page, server: LiveServer, username: str) -> str:
    """The admin finds the user's session in the dashboard and kills it with a reason;
    returns the session page's URL."""
    sign_in(page, server.url, "root", next="/admin/")
    page.wait_for_url(f"{server.url}/admin/")
    page.get_by_role("navigation").get_by_role("link", name="Sessions", exact=True).click()
    page.get_by_placeholder("username").fill(username)
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(f"**/admin/sessions?*user={username}*")
    rows = page.locator("table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("demo-app")
    rows.first.locator("a[href*='/admin/sessions/']").first.click()
    page.wait_for_url(f"{server.url}/admin/sessions/*")
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_contain_text(f"Session of {username}")
    expect(heading).to_contain_text("live")

    page.get_by_label("Reason").fill(REASON)
    page.get_by_role("button", name="Kill session").click()

    expect(page.get_by_role("status")).to_contain_text("Session killed")
    expect(heading).to_contain_text("ended")
    expect(page.locator("main")).to_contain_text(REASON)
    return page.url


def first_delivery_attempt(server: LiveServer) -> BackchannelDelivery:
    """Waits, up to a deadline, until idp's worker thread has tried the logout token."""
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while True:
        with server.svc.db.read() as s:
            delivery = s.scalar(
                select(BackchannelDelivery).where(BackchannelDelivery.client_id == "demo-app")
            )
        if delivery is not None and delivery.attempts > 0:
            return delivery
        assert time.monotonic() < deadline, f"no back-channel delivery attempt: {delivery}"
        threading.Event().wait(0.05)


def test_kill_in_dashboard_signs_the_demo_app_out_by_back_channel(
    server: LiveServer,
    auth: AuthActions,
    clock: FrozenClock,
    users: None,
    alice_page: Page,
    admin_page: Page,
    dialogs: Dialogs,
    shot: Callable[..., Path],
) -> None:
    with serve_demo_app(server, auth, clock, backchannel=True) as demo:
        signs_in_to_demo_app(alice_page, demo, server)
        shot(alice_page, "demo-app-signed-in")

        # The tokens stay on the app's server: the browser holds a random key only.
        cookie = app_cookie(alice_page.context)
        assert cookie["httpOnly"] is True and cookie["sameSite"] == "Lax"
        assert len(cookie["value"]) <= 64 and "." not in cookie["value"]
        login = demo.login_of(alice_page.context)
        assert login.refresh_token and login.sid
        for c in alice_page.context.cookies():
            assert not looks_like_jwt(c["value"]), c["name"]
            for token in (login.access_token, login.refresh_token, login.id_token):
                assert token not in c["value"] and c["value"] not in token, c["name"]
        assert alice_page.evaluate("document.cookie") == ""

        session_url = operator_kills_session_of(admin_page, server, "alice")

        delivery = first_delivery_attempt(server)
        assert (delivery.status, delivery.last_status_code) == ("delivered", 200), (
            delivery.last_error
        )
        assert delivery.session_id == login.sid
        admin_page.goto(session_url)
        deliveries = admin_page.get_by_role("row").filter(has_text="backchannel-logout")
        expect(deliveries).to_contain_text("delivered")
        expect(deliveries).to_contain_text("HTTP 200")

        alice_page.reload()
        assert_signed_out(alice_page, "idp ended your session (back-channel logout)")
        shot(alice_page, "demo-app-signed-out")
        # The message is shown once; the app is simply signed out after that.
        alice_page.reload()
        expect(alice_page.get_by_role("link", name="Sign in with idp")).to_be_visible()
        expect(alice_page.get_by_role("status")).to_have_count(0)
    assert dialogs.unexpected() == []


def test_demo_app_refreshes_and_is_signed_out_when_the_refresh_is_refused(
    server: LiveServer,
    auth: AuthActions,
    clock: FrozenClock,
    users: None,
    alice_page: Page,
    admin_page: Page,
    dialogs: Dialogs,
) -> None:
    ttl = server.svc.config.tokens.access_token_ttl
    with serve_demo_app(server, auth, clock, backchannel=False) as demo:
        signs_in_to_demo_app(alice_page, demo, server)
        refreshed = alice_page.locator("#refreshed")
        expect(refreshed).to_contain_text("not yet")
        first = demo.login_of(alice_page.context)
        first_refresh_token = first.refresh_token

        clock.advance(ttl)
        alice_page.reload()
        expect(alice_page.get_by_text("Signed in as")).to_contain_text("alice")
        expect(refreshed).to_contain_text(clock.now().strftime("%H:%M:%S UTC"))
        expect(refreshed).to_contain_text("(1 in this session)")
        assert demo.login_of(alice_page.context).refresh_token != first_refresh_token

        # A second refresh works only if the app kept the rotated token: idp takes a
        # replay of the first one for theft and revokes the whole chain.
        clock.advance(ttl)
        alice_page.reload()
        expect(refreshed).to_contain_text("(2 in this session)")
        expect(alice_page.get_by_role("alert")).to_have_count(0)

        operator_kills_session_of(admin_page, server, "alice")

        # No back-channel URI: the app learns of the kill only at its next refresh.
        alice_page.reload()
        expect(alice_page.get_by_text("Signed in as")).to_contain_text("alice")
        clock.advance(ttl)
        alice_page.reload()
        assert_signed_out(alice_page, "idp refused the refresh token")
    assert dialogs.unexpected() == []
