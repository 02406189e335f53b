"""Small steps shared by the browser tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from flask import Flask
from playwright.sync_api import BrowserContext, Dialog, Page

from examples.relying_app import Login, create_rp
from tests.support.auth import PASSWORD, AuthActions
from tests.support.clock import FrozenClock
from tests.support.live import LiveServer, free_port, serve

SCOPE = "openid profile email offline_access"


def sign_in(
    page: Page, base: str, username: str, password: str = PASSWORD, next: str = "/account"
) -> None:
    """Opens idp's login page and submits it (does not wait for where it leads)."""
    page.goto(f"{base}/login?{urlencode({'next': next})}")
    fill_login(page, username, password)


def fill_login(page: Page, username: str, password: str = PASSWORD) -> None:
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


class Dialogs(list[str]):
    """Every JavaScript dialog the test's pages opened, as "type: message".

    A ``confirm`` is the dashboard asking before a destructive action (admin.js) and is
    accepted, as an operator would; anything else (an ``alert`` from injected script)
    is dismissed and fails the test's ``unexpected()`` check.
    """

    def record(self, dialog: Dialog) -> None:
        self.append(f"{dialog.type}: {dialog.message}")
        if dialog.type == "confirm":
            dialog.accept()
        else:
            dialog.dismiss()

    def unexpected(self) -> list[str]:
        return [d for d in self if not d.startswith("confirm: ")]


@dataclass
class DemoApp:
    url: str
    app: Flask

    def login_of(self, context: BrowserContext) -> Login:
        """The server-side session behind the browser's cookie."""
        login = self.app.extensions["logins"].get(app_cookie(context)["value"])
        assert login is not None
        return login


@contextmanager
def serve_demo_app(
    server: LiveServer, auth: AuthActions, clock: FrozenClock, *, backchannel: bool
) -> Iterator[DemoApp]:
    """The demo relying app on a free port, registered at idp as `make run` does."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    rp = auth.oauth_client(
        "demo-app",
        redirect_uri=f"{url}/callback",
        first_party=True,
        scope=SCOPE,
        name="Demo relying app",
        post_logout_redirect_uris=[f"{url}/"],
        backchannel_logout_uri=f"{url}/backchannel-logout" if backchannel else None,
    )
    assert rp.secret
    app = create_rp(
        server.url, rp.client_id, rp.secret, port, clock=lambda: clock.now().timestamp()
    )
    with serve(app, port):
        yield DemoApp(url, app)


def app_cookie(context: BrowserContext) -> dict[str, Any]:
    found = [c for c in context.cookies() if c["name"] == "session"]
    assert len(found) == 1, [c["name"] for c in context.cookies()]
    return dict(found[0])
