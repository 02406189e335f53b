"""Small steps shared by the browser tests."""

from __future__ import annotations

from urllib.parse import urlencode

from playwright.sync_api import Dialog, Page

from tests.support.auth import PASSWORD


def sign_in(
    page: Page, base: str, username: str, password: str = PASSWORD, next: str = "/account"
) -> None:
    """Opens idp's login page and submits it (does not wait for where it leads)."""
    page.goto(f"{base}/login?{urlencode({'next': next})}")
    fill_login(page, username, password)


def fill_login(page: Page, username: str, password: str = PASSWORD) -> None:
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


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
