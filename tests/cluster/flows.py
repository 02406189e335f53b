"""What the cluster tests do over HTTP: a browser's login, refreshes, introspection and
the admin API, each against the balancer or one node's own port."""

from __future__ import annotations

import base64
import html
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urljoin

import requests

from tests.cluster.cluster import NODE_HEADER, Cluster
from tests.support.auth import PASSWORD, csrf_from, pkce_pair, query_of

REDIRECT = "http://127.0.0.1/cb"
FORM_ACTION_RE = re.compile(r'<form method="post" action="([^"]*)"')


def claims(jwt: str) -> dict[str, Any]:
    """The payload of a JWT, unverified (the tests only read which session it names)."""
    part = jwt.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def kid(jwt: str) -> str:
    part = jwt.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))["kid"])


@dataclass
class Login:
    tokens: dict[str, Any]
    nodes: list[str] = field(default_factory=list)  # which node answered each step


@dataclass
class Setup:
    cluster: Cluster
    secrets: dict[str, str]
    users: dict[str, str] = field(default_factory=dict)  # username: user id

    def auth(self, client_id: str) -> tuple[str, str]:
        return client_id, self.secrets[client_id]

    def login(self, client_id: str, username: str, base: str | None = None) -> Login:
        """A browser's code flow (login form with its CSRF field, consent when the app is
        not first-party) through ``base`` (the balancer by default), then the token."""
        base = base or self.cluster.url
        browser = requests.Session()
        done = Login({})

        def step(resp: requests.Response) -> requests.Response:
            done.nodes.append(resp.headers.get(NODE_HEADER, ""))
            return resp

        verifier, challenge = pkce_pair()
        params = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": REDIRECT,
            "scope": "openid email offline_access",
            "state": "s",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        resp = step(browser.get(f"{base}/authorize?{urlencode(params)}", allow_redirects=False))
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
                    "password": PASSWORD,
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
        token = step(
            requests.post(
                f"{base}/token",
                auth=self.auth(client_id),
                timeout=10,
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": REDIRECT,
                    "code_verifier": verifier,
                },
            )
        )
        assert token.status_code == 200, token.text
        done.tokens = dict(token.json())
        return done

    def refresh(self, base: str, client_id: str, token: str) -> requests.Response:
        return requests.post(
            f"{base}/token",
            auth=self.auth(client_id),
            timeout=30,
            data={"grant_type": "refresh_token", "refresh_token": token},
        )

    def introspect(self, base: str, token: str) -> dict[str, Any]:
        resp = requests.post(
            f"{base}/introspect", auth=self.auth("api"), data={"token": token}, timeout=10
        )
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    def client_token(self, base: str, client_id: str, secret: str, scope: str) -> requests.Response:
        return requests.post(
            f"{base}/token",
            auth=(client_id, secret),
            data={"grant_type": "client_credentials", "scope": scope},
            timeout=10,
        )

    def admin(self, base: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """POST (with a body) or GET one admin API path on ``base``; the answer's JSON."""
        token = self.client_token(base, "ops", self.secrets["ops"], "idp:admin")
        assert token.status_code == 200, token.text
        headers = {"Authorization": "Bearer " + token.json()["access_token"]}
        url = f"{base}/admin/api{path}"
        if body is None:
            resp = requests.get(url, headers=headers, timeout=10)
        else:
            resp = requests.post(url, json=body, headers=headers, timeout=10)
        assert resp.status_code in (200, 201), resp.text
        return resp.json()
