"""Second factors driven through the pages a user sees, with codes from pyotp at the
app's clock (a FrozenClock in tests: no sleeps)."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyotp

from tests.support.auth import PASSWORD, AuthActions, csrf_from

URI_RE = re.compile(r'<code class="otpauth-uri">([^<]+)</code>')
RECOVERY_RE = re.compile(r"<li><code>([a-z2-7]{4}(?:-[a-z2-7]{4}){3})</code></li>")


@dataclass
class Enrolled:
    secret: str
    recovery_codes: list[str]

    def code(self, auth: AuthActions, offset_steps: int = 0) -> str:
        """The code the app shows now (or ``offset_steps`` steps from now)."""
        return code_at(auth, self.secret, offset_steps)


def page_csrf(auth: AuthActions, path: str = "/account/security") -> str:
    return csrf_from(auth.client.get(path).get_data(as_text=True))


def start_enrolment(auth: AuthActions) -> str:
    """Asks for a new authenticator app on a signed-in page; returns its secret (read
    from the otpauth:// URI the page shows)."""
    resp = auth.client.post("/account/security/totp/start", data={"csrf_token": page_csrf(auth)})
    assert resp.status_code == 303, resp.get_data(as_text=True)
    page = auth.client.get("/account/security").get_data(as_text=True)
    match = URI_RE.search(page)
    assert match, "the page shows no otpauth:// URI"
    uri = html.unescape(match.group(1))
    return parse_qs(urlsplit(uri).query)["secret"][0]


def confirm(auth: AuthActions, code: str) -> Any:
    return auth.client.post(
        "/account/security/totp/confirm", data={"code": code, "csrf_token": page_csrf(auth)}
    )


def code_at(auth: AuthActions, secret: str, offset_steps: int = 0) -> str:
    return str(pyotp.TOTP(secret).at(int(auth.svc.clock.now().timestamp()) + 30 * offset_steps))


def enrol_in_session(auth: AuthActions) -> Enrolled:
    """Enrols and confirms an authenticator app in the signed-in session (which stays
    signed in, worth what it was worth before)."""
    secret = start_enrolment(auth)
    resp = confirm(auth, code_at(auth, secret))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    codes = RECOVERY_RE.findall(resp.get_data(as_text=True))
    assert len(codes) == 10
    # The confirmation spent the current step; the next code is a later one's.
    auth.svc.clock.advance(30)
    return Enrolled(secret, codes)


def enrol(auth: AuthActions, username: str = "alice", password: str = PASSWORD) -> Enrolled:
    """Signs in, enrols an authenticator app, and signs out again (so the next login is
    a fresh one)."""
    assert auth.login(username, password).status_code == 303
    enrolled = enrol_in_session(auth)
    logout(auth)
    return enrolled


def logout(auth: AuthActions) -> None:
    resp = auth.client.post(
        "/logout", data={"csrf_token": page_csrf(auth, "/account"), "confirm": "yes"}
    )
    assert resp.status_code in (200, 302, 303), resp.status_code
    auth.client.delete_cookie("idp_session")


def send_code(auth: AuthActions, code: str) -> Any:
    page = auth.client.get("/login/code")
    assert page.status_code == 200, page.status_code
    return auth.client.post(
        "/login/code", data={"code": code, "csrf_token": csrf_from(page.get_data(as_text=True))}
    )


def login_with_code(
    auth: AuthActions, code: str, username: str = "alice", next: str = "/account"
) -> Any:
    first = auth.login(username, next=next)
    assert first.status_code == 303 and first.headers["Location"] == "/login/code"
    return send_code(auth, code)
