"""The README's two-step sign-in in Chromium (issue 13 item 4): a user sets up an
authenticator app at /account/security, reading the otpauth:// URI beside the QR code as
a newcomer would paste it, turns it on with a code, is shown 10 recovery codes, signs out,
then signs in to the demo relying app: idp asks for a code at /login/code, and the app's
page shows the ID token's ``amr`` (otp, mfa) and ``acr`` "2", still there after the app
refreshed its tokens.

Codes come from pyotp at the live server's FrozenClock (the ``clock`` fixture; it
starts at the real time, so the demo app accepts the tokens), so no step can roll over
between computing a code and typing it. The code that turned the app on is spent (a code
is good once), so the sign-in moves the clock to the next 30-second step, as a user
waits for the app's next code.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import Dialogs, fill_login, serve_demo_app, sign_in
from tests.support.auth import AuthActions
from tests.support.clock import FrozenClock
from tests.support.live import LiveServer

pytestmark = pytest.mark.slow

STEP = 30  # seconds (RFC 6238's default, idp's)


def code_now(secret: str, clock: FrozenClock) -> str:
    """The code an authenticator app shows at the server's time."""
    return str(pyotp.TOTP(secret).at(int(clock.now().timestamp())))


def sets_up_an_authenticator_app(
    page: Page, server: LiveServer, clock: FrozenClock, shot: Callable[..., Path]
) -> str:
    """Signed in at idp: /account/security → Set up → the URI's secret → a code →
    recovery codes. Returns the secret."""
    page.goto(f"{server.url}/account/security")
    page.get_by_role("button", name="Set up an authenticator app").click()
    page.wait_for_url(f"{server.url}/account/security")
    expect(page.locator(".qr svg")).to_be_visible()
    uri = page.locator("code.otpauth-uri").inner_text()
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp"), uri
    query = parse_qs(parts.query)
    secret = query["secret"][0]
    assert pyotp.parse_uri(uri).secret == secret
    page.locator("#second-factors").scroll_into_view_if_needed()
    shot(page, "totp-setup")

    page.get_by_label("Code from the app").fill(code_now(secret, clock))
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_role("heading", name="Your authenticator app is set up")).to_be_visible()
    codes = page.locator("ul.recovery-codes li code")
    expect(codes).to_have_count(10)
    assert len(set(codes.all_inner_texts())) == 10
    shot(page, "totp-recovery-codes")
    return secret


def id_token_claims(page: Page) -> dict[str, Any]:
    """The claims the demo app's page shows."""
    shown = page.get_by_role("heading", name="ID token claims").locator("xpath=following::pre[1]")
    return dict(json.loads(shown.inner_text()))


def test_a_newcomer_sets_up_totp_and_the_demo_app_sees_amr_otp(
    server: LiveServer,
    auth: AuthActions,
    clock: FrozenClock,
    page: Page,
    dialogs: Dialogs,
    shot: Callable[..., Path],
) -> None:
    auth.user("alice", name="Alice Liddell")
    sign_in(page, server.url, "alice", next="/account/security")
    page.wait_for_url(f"{server.url}/account/security")
    secret = sets_up_an_authenticator_app(page, server, clock, shot)

    page.goto(f"{server.url}/account")
    page.get_by_role("button", name="Sign out").click()
    page.goto(f"{server.url}/account")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    with serve_demo_app(server, auth, clock, backchannel=False) as demo:
        page.goto(demo.url + "/")
        page.get_by_role("link", name="Sign in with idp").click()
        page.wait_for_url(f"{server.url}/login?**")
        fill_login(page, "alice")
        page.wait_for_url(f"{server.url}/login/code")
        expect(page.get_by_role("heading", name="Second step")).to_be_visible()
        shot(page, "login-code")

        # The code that turned the app on is spent (good once, even within its step):
        # refused. The user waits for the app's next one.
        page.get_by_label("Code").fill(code_now(secret, clock))
        page.get_by_role("button", name="Continue").click()
        expect(page.get_by_role("alert")).to_be_visible()
        assert urlsplit(page.url).path == "/login/code"
        clock.advance(STEP)
        page.get_by_label("Code").fill(code_now(secret, clock))
        page.get_by_role("button", name="Continue").click()
        page.wait_for_url(demo.url + "/")
        expect(page.get_by_text("Signed in as")).to_contain_text("alice")
        claims = id_token_claims(page)
        assert {"otp", "mfa"} <= set(claims["amr"])
        assert claims["amr"] == ["pwd", "otp", "mfa"] and claims["acr"] == "2"
        shot(page, "demo-app-amr-otp")

        # The app's next refresh brings a new ID token about the same login.
        clock.advance(server.svc.config.tokens.access_token_ttl)
        page.reload()
        expect(page.locator("#refreshed")).to_contain_text("(1 in this session)")
        refreshed = id_token_claims(page)
        assert refreshed["iat"] != claims["iat"]
        assert (refreshed["amr"], refreshed["acr"], refreshed["auth_time"]) == (
            claims["amr"],
            claims["acr"],
            claims["auth_time"],
        )
    assert dialogs.unexpected() == []
