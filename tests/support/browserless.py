"""Logging in and getting tokens over real HTTP with requests (no browser)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urljoin

import requests

from tests.support.auth import PASSWORD, csrf_from, pkce_pair, query_of


def code_flow(
    base: str,
    client_id: str,
    secret: str | None,
    redirect_uri: str,
    scope: str = "openid offline_access",
    username: str = "alice",
    password: str = PASSWORD,
) -> dict[str, Any]:
    """Logs in as a browser would and exchanges the code; returns the token response."""
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
    resp = browser.get(f"{base}/authorize?{urlencode(params)}", allow_redirects=False)
    login_url = urljoin(base, resp.headers["Location"])
    page = browser.get(login_url)
    resp = browser.post(
        f"{base}/login",
        allow_redirects=False,
        data={
            "username": username,
            "password": password,
            "next": query_of(login_url)["next"],
            "csrf_token": csrf_from(page.text),
        },
    )
    assert resp.status_code == 303, resp.text
    resp = browser.get(urljoin(base, resp.headers["Location"]), allow_redirects=False)
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
    token = requests.post(f"{base}/token", data=data, auth=auth, timeout=10)
    assert token.status_code == 200, token.text
    return dict(token.json())
