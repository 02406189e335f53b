"""A forgotten password, reset in a real browser from the link in a real mail (issue 13
"Done when": reset a forgotten password by mail), and the address verified the same way."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from tests.browser.helpers import fill_login
from tests.conftest import make_config
from tests.support.auth import AuthActions
from tests.support.clock import FrozenClock
from tests.support.live import LiveServer, live_server
from tests.support.smtp import Sink

pytestmark = pytest.mark.slow

NEW = "a brand new passphrase"


@pytest.fixture
def server(
    backend: dict[str, Any],
    tmp_path: Path,
    app: Flask,
    clock: FrozenClock,
    mail_config: dict[str, dict[str, Any]],
    mailbox: Sink,
) -> Iterator[LiveServer]:
    """idp over HTTP whose mail goes to ``mailbox``, sent by its own background worker."""
    with live_server(make_config(backend, tmp_path, **mail_config), clock=clock) as live:
        yield live


def link_in(mailbox: Sink, subject: str, server: LiveServer) -> str:
    assert mailbox.arrived.wait(10), "no mail arrived"
    [mail] = [m for m in mailbox.messages if m["Subject"] == subject]
    match = re.search(re.escape(server.url) + r"/\S+", Sink.text(mail))
    assert match, Sink.text(mail)
    return match.group(0)


def test_a_forgotten_password_is_reset_from_the_mailed_link(
    page: Page, server: LiveServer, auth: AuthActions, mailbox: Sink
) -> None:
    auth.user("alice")
    page.goto(server.url + "/login")
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Username or email address").fill("alice")
    page.get_by_role("button", name="Send me a link").click()
    expect(page.get_by_role("status")).to_contain_text("If an account matches")
    page.goto(link_in(mailbox, "Reset your password", server))
    page.get_by_label("New password").fill(NEW)
    page.get_by_role("button", name="Set the new password").click()
    expect(page.get_by_role("status")).to_contain_text("Your password was changed")
    page.get_by_role("link", name="Sign in").click()
    fill_login(page, "alice", NEW)
    expect(page.get_by_role("heading", name="Hello, alice")).to_be_visible()


def test_an_address_is_verified_from_the_mailed_link(
    page: Page, server: LiveServer, auth: AuthActions, mailbox: Sink
) -> None:
    auth.user("alice")
    page.goto(server.url + "/login?next=/account/security")
    fill_login(page, "alice")
    expect(page.get_by_text("(not verified)")).to_be_visible()
    page.get_by_role("button", name="Send the verification link again").click()
    expect(page.get_by_role("status")).to_contain_text("new verification link")
    page.goto(link_in(mailbox, "Confirm your email address", server))
    page.get_by_role("button", name="Confirm my address").click()
    expect(page.get_by_role("status")).to_contain_text("verified")
    page.goto(server.url + "/account/security")
    expect(page.get_by_text("(verified)")).to_be_visible()
