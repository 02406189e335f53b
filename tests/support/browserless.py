"""Logging in and getting tokens over real HTTP with requests (no browser)."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urljoin

import requests

from tests.support.auth import PASSWORD, csrf_from, pkce_pair, query_of

FORM_ACTION_RE = re.compile(r'<form method="post" action="([^"]*)"')


def code_flow(
    base: str,
    client_id: str,
    secret: str | None,
    redirect_uri: str,
    scope: str = "openid offline_access",
    username: str = "alice",
    password: str = PASSWORD,
    seen: Callable[[requests.Response], object] | None = None,
) -> dict[str, Any]:
    """Logs in as a browser would (the login form with its CSRF field, then the consent
    page when the app is not first-party) and exchanges the code; returns the token
    response. ``seen`` is shown every response, the token endpoint's included."""

    def step(resp: requests.Response) -> requests.Response:
        if seen is not None:
            seen(resp)
        return resp

    browser = requests.Session()
    verifier, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": "s",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    resp = step(
        browser.get(f"{base}/authorize?{urlencode(params)}", allow_redirects=False, timeout=10)
    )
    assert resp.status_code == 302, resp.text
    login_url = urljoin(base, resp.headers["Location"])
    page = step(browser.get(login_url, timeout=10))
    resp = step(
        browser.post(
            f"{base}/login",
            allow_redirects=False,
            timeout=10,
            data={
                "username": username,
                "password": password,
                "next": query_of(login_url)["next"],
                "csrf_token": csrf_from(page.text),
            },
        )
    )
    assert resp.status_code == 303, resp.text
    resp = step(browser.get(urljoin(base, resp.headers["Location"]), allow_redirects=False))
    if resp.status_code == 200:  # the consent page
        action = FORM_ACTION_RE.search(resp.text)
        assert action, resp.text
        resp = step(
            browser.post(
                urljoin(resp.url, html.unescape(action.group(1))),
                data={"decision": "allow", "csrf_token": csrf_from(resp.text)},
                allow_redirects=False,
                timeout=10,
            )
        )
    assert resp.status_code in (302, 303), resp.text
    code = query_of(resp.headers["Location"])["code"]
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
    }
    auth = (client_id, secret) if secret else None
    if not secret:
        data["client_id"] = client_id
    token = step(requests.post(f"{base}/token", data=data, auth=auth, timeout=10))
    assert token.status_code == 200, token.text
    return dict(token.json())
