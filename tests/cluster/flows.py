"""What the cluster tests do over HTTP: a browser's login, refreshes, introspection and
the admin API, each against the balancer or one node's own port."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import requests

from tests.cluster.cluster import NODE_HEADER, Cluster
from tests.support.browserless import code_flow

REDIRECT = "http://127.0.0.1/cb"


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
        done = Login({})
        done.tokens = code_flow(
            base or self.cluster.url,
            client_id,
            self.secrets[client_id],
            REDIRECT,
            scope="openid email offline_access",
            username=username,
            seen=lambda resp: done.nodes.append(resp.headers.get(NODE_HEADER, "")),
        )
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
