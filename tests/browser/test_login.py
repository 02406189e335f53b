"""Signing in through the demo relying app in a real browser (issue 2).

The relying app is examples/relying_app.py (authlib's OAuth client: discovery, code flow
with PKCE, ID token validation against idp's JWKS), served on its own port next to idp.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from idp.accounts.views import GENERIC_LOGIN_ERROR
from tests.browser.helpers import fill_login, serve_demo_app
from tests.support.auth import AuthActions
from tests.support.clock import FrozenClock
from tests.support.live import LiveServer

pytestmark = pytest.mark.slow

SCOPE = "openid profile email offline_access"


@pytest.fixture
def relying_app(server: LiveServer, auth: AuthActions, clock: FrozenClock) -> Iterator[str]:
    """The demo relying app on a free port, registered at idp as `make run` registers it."""
    with serve_demo_app(server, auth, clock, backchannel=False) as demo:
        yield demo.url


@pytest.fixture
def alice(auth: AuthActions) -> Any:
    return auth.user("alice", name="Alice Liddell")


def start_sign_in(page: Page, relying_app: str, server: LiveServer) -> None:
    page.goto(relying_app + "/")
    expect(page.get_by_role("heading", name="Demo relying app")).to_be_visible()
    page.get_by_role("link", name="Sign in with idp").click()
    page.wait_for_url(f"{server.url}/login?**")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def cookie(context: BrowserContext, name: str) -> dict[str, Any]:
    found = [c for c in context.cookies() if c["name"] == name]
    assert len(found) == 1, [c["name"] for c in context.cookies()]
    return dict(found[0])


def test_sign_in_and_out_through_relying_app(
    page: Page,
    context: BrowserContext,
    server: LiveServer,
    relying_app: str,
    alice: Any,
    shot: Callable[..., Path],
) -> None:
    start_sign_in(page, relying_app, server)
    shot(page, "login", docs=True)

    fill_login(page, "alice")

    page.wait_for_url(relying_app + "/")
    expect(page.get_by_text("Signed in as")).to_contain_text("alice")
    claims = json.loads(page.locator("pre").first.inner_text())
    assert claims["iss"] == server.url
    assert claims["aud"] == "demo-app"
    assert claims["sub"] == alice.id
    assert claims["email"] == "alice@example.test"
    assert claims["name"] == "Alice Liddell"
    expect(page.get_by_text("Refresh token: yes")).to_be_visible()
    shot(page, "relying-app-signed-in")

    # idp's session cookie: a random id the page's script cannot read (SPEC §6).
    session = cookie(context, "idp_session")
    assert session["httpOnly"] is True
    assert session["sameSite"] == "Lax"
    assert session["path"] == "/"
    assert "alice" not in session["value"]
    assert cookie(context, "idp_csrf")["httpOnly"] is True
    # The relying app keeps the tokens server side behind its own HttpOnly cookie.
    assert cookie(context, "session")["httpOnly"] is True
    assert page.evaluate("document.cookie") == ""

    # Signing out at the relying app ends the idp session too (RP-initiated logout): the
    # ID token hint names the signed-in user, so idp does not ask, and sends them back.
    page.get_by_role("link", name="Sign out").click()
    page.wait_for_url(relying_app + "/")
    expect(page.get_by_role("link", name="Sign in with idp")).to_be_visible()
    assert not [c for c in context.cookies() if c["name"] == "idp_session"]
    page.goto(f"{server.url}/account")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_wrong_password_shows_the_generic_error(
    page: Page,
    context: BrowserContext,
    server: LiveServer,
    relying_app: str,
    alice: Any,
    shot: Callable[..., Path],
) -> None:
    start_sign_in(page, relying_app, server)
    login_url = page.url

    with page.expect_response(f"{server.url}/login") as response:
        fill_login(page, "alice", "not the password")
    assert response.value.status == 401
    expect(page.get_by_role("alert")).to_have_text(GENERIC_LOGIN_ERROR)
    expect(page.get_by_label("Username")).to_have_value("alice")
    expect(page.get_by_label("Password")).to_have_value("")
    shot(page, "login-wrong-password")

    # An unknown user gets the very same answer.
    fill_login(page, "nobody", "not the password")
    expect(page.get_by_role("alert")).to_have_text(GENERIC_LOGIN_ERROR)
    assert not [c for c in context.cookies() if c["name"] == "idp_session"]

    # The form still carries the way back to the relying app: the right password works.
    next_field = page.locator("form[action='/login'] input[name=next]")
    assert next_field.input_value().startswith("/authorize?")
    fill_login(page, "alice")
    page.wait_for_url(relying_app + "/")
    expect(page.get_by_text("Signed in as")).to_contain_text("alice")
    assert login_url.startswith(f"{server.url}/login?")
