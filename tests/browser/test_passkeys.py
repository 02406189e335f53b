"""Passkeys in Chromium (issue 13 item 5): register one at /account/security, sign out,
sign in with it and no password. The authenticator is Chromium's own virtual one
(DevTools protocol, WebAuthn domain), so the page's script, the browser's WebAuthn
client and idp's verification all run for real.

WebAuthn needs a secure context and an RP ID that is a domain: plain http is allowed
on ``localhost`` but an IP address is no valid RP ID, so this idp's issuer is
http://localhost:PORT (served on 127.0.0.1, where Chromium resolves localhost).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import BrowserContext, Page, expect
from sqlalchemy import select

from idp import create_app
from idp.audit.models import AuditEvent
from tests.browser.helpers import sign_in
from tests.conftest import make_config
from tests.support.auth import PASSWORD, AuthActions
from tests.support.clock import FrozenClock
from tests.support.live import LiveServer, free_port, serve

pytestmark = pytest.mark.slow


@pytest.fixture
def localhost(
    backend: dict[str, Any], tmp_path: Path, app: Flask, clock: FrozenClock
) -> Iterator[LiveServer]:
    """idp on the ``app`` fixture's storage with the issuer http://localhost:PORT."""
    port = free_port()
    url = f"http://localhost:{port}"
    config = make_config(backend, tmp_path)
    config["server"]["issuer"] = url
    live = create_app(config, clock=clock)
    try:
        with serve(live, port):
            yield LiveServer(live, url)
    finally:
        live.extensions["idp"].close()


def add_virtual_authenticator(context: BrowserContext, page: Page) -> Any:
    """A platform authenticator with resident keys whose user verification succeeds
    (a fingerprint or PIN that is always right), present without a touch."""
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    found = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return cdp, found["authenticatorId"]


def test_register_a_passkey_then_sign_in_without_a_password(
    page: Page,
    context: BrowserContext,
    localhost: LiveServer,
    auth: AuthActions,
    shot: Callable[..., Path],
) -> None:
    alice = auth.user("alice")
    cdp, authenticator = add_virtual_authenticator(context, page)

    sign_in(page, localhost.url, "alice", next="/account/security")
    page.wait_for_url(f"{localhost.url}/account/security")
    add = page.locator("form[data-passkey=register]")
    add.get_by_label("Passkey name").fill("Test laptop")
    add.get_by_label("Current password").fill(PASSWORD)
    with page.expect_response(f"{localhost.url}/account/security/passkeys") as added:
        add.get_by_role("button", name="Add a passkey").click()
    assert added.value.status == 303
    page.wait_for_url(f"{localhost.url}/account/security")
    expect(page.get_by_text("Test laptop")).to_be_visible()
    shot(page, "account-security-passkey")

    [credential] = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})[
        "credentials"
    ]
    assert credential["isResidentCredential"] is True
    assert credential["rpId"] == "localhost"

    page.goto(f"{localhost.url}/account")
    page.get_by_role("button", name="Sign out").click()
    page.goto(f"{localhost.url}/account")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert not [c for c in context.cookies() if c["name"] == "idp_session"]

    page.get_by_role("button", name="Sign in with a passkey").click()
    page.wait_for_url(f"{localhost.url}/account")
    expect(page.get_by_role("heading", name="Hello, alice")).to_be_visible()
    with localhost.svc.db.read() as s:
        logins = s.scalars(
            select(AuditEvent).where(AuditEvent.action == "login", AuditEvent.actor == "alice")
        ).all()
    assert sorted(e.details["amr"] for e in logins) == [["hwk", "mfa"], ["pwd"]]
    again = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
    assert again["credentials"][0]["signCount"] >= 1
    assert alice.id


def test_a_failed_ceremony_shows_an_error_and_stores_nothing(
    page: Page, context: BrowserContext, localhost: LiveServer, auth: AuthActions
) -> None:
    alice = auth.user("alice")
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    # An authenticator whose user verification fails (a wrong fingerprint), while idp
    # requires it: the browser refuses the ceremony and the page says so.
    cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": False,
                "automaticPresenceSimulation": True,
            }
        },
    )
    sign_in(page, localhost.url, "alice", next="/account/security")
    page.wait_for_url(f"{localhost.url}/account/security")
    add = page.locator("form[data-passkey=register]")
    add.get_by_label("Current password").fill(PASSWORD)
    add.get_by_role("button", name="Add a passkey").click()
    expect(add.get_by_role("alert")).to_contain_text("cancelled or timed out")
    expect(page.get_by_text("No passkeys yet.")).to_be_visible()
    assert localhost.svc.passkeys.of_user(alice.id) == []
