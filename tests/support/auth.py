"""flaskr-style helpers that drive idp through its real HTTP interface."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from flask import Flask

from idp.accounts.services import create_user
from idp.clients.services import create_client

PASSWORD = "correct horse battery"
REDIRECT = "https://rp.example.test/callback"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def csrf_from(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "page has no CSRF field"
    return match.group(1)


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


@dataclass
class RegisteredClient:
    client_id: str
    secret: str | None
    redirect_uri: str

    def basic(self) -> dict[str, str]:
        raw = f"{self.client_id}:{self.secret}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}

    def credentials(self) -> tuple[str, str]:
        """(client_id, secret) for an HTTP client's basic auth; only a confidential client
        has them."""
        assert self.secret is not None, f"{self.client_id} is a public client"
        return self.client_id, self.secret


class AuthActions:
    def __init__(self, app: Flask, client: Any) -> None:
        self.app = app
        self.client = client
        self.svc = app.extensions["idp"]

    # --- setup ------------------------------------------------------------------
    def user(self, username: str = "alice", password: str = PASSWORD, **kw: Any) -> Any:
        with self.app.app_context(), self.svc.db.transaction() as s:
            kw.setdefault("email", f"{username}@example.test")
            return create_user(s, self.svc.clock, username, password, **kw)

    def oauth_client(
        self,
        client_id: str = "rp",
        *,
        public: bool = False,
        redirect_uri: str = REDIRECT,
        **kw: Any,
    ) -> RegisteredClient:
        kw.setdefault(
            "grant_types",
            ["authorization_code", "refresh_token"]
            if not public
            else ["authorization_code", "refresh_token"],
        )
        kw.setdefault("first_party", True)
        with self.app.app_context(), self.svc.db.transaction() as s:
            _, secret = create_client(
                s,
                self.svc.clock,
                client_id,
                redirect_uris=[redirect_uri],
                public=public,
                allow_loopback=self.svc.config.outbound.allow_loopback,
                **kw,
            )
        return RegisteredClient(client_id, secret, redirect_uri)

    # --- browser ------------------------------------------------------------------
    def login(
        self, username: str = "alice", password: str = PASSWORD, next: str = "/account"
    ) -> Any:
        page = self.client.get("/login?" + urlencode({"next": next}))
        return self.client.post(
            "/login",
            data={
                "username": username,
                "password": password,
                "next": next,
                "csrf_token": csrf_from(page.get_data(as_text=True)),
            },
        )

    def authorize_params(self, rp: RegisteredClient, **extra: Any) -> dict[str, str]:
        verifier, challenge = pkce_pair()
        params = {
            "response_type": "code",
            "client_id": rp.client_id,
            "redirect_uri": rp.redirect_uri,
            "scope": "openid profile email",
            "state": secrets.token_urlsafe(8),
            "nonce": secrets.token_urlsafe(8),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        params.update({k: v for k, v in extra.items() if v is not None})
        for k in [k for k, v in extra.items() if v is None]:
            params.pop(k, None)
        self.verifier = verifier
        return params

    def authorize(self, rp: RegisteredClient, **extra: Any) -> Any:
        return self.client.get("/authorize?" + urlencode(self.authorize_params(rp, **extra)))

    def code_for(self, rp: RegisteredClient, **extra: Any) -> tuple[str, str, dict[str, str]]:
        """(code, verifier, params) from a logged-in, consented authorization request."""
        params = self.authorize_params(rp, **extra)
        resp = self.client.get("/authorize?" + urlencode(params))
        assert resp.status_code == 302, resp.get_data(as_text=True)
        q = query_of(resp.headers["Location"])
        assert "code" in q, q
        return q["code"], self.verifier, params

    def token(self, rp: RegisteredClient, data: dict[str, str], auth: str = "basic") -> Any:
        headers = {}
        data = dict(data)
        if rp.secret is None:
            data["client_id"] = rp.client_id
        elif auth == "basic":
            headers = rp.basic()
        else:
            data.update(client_id=rp.client_id, client_secret=rp.secret)
        return self.client.post("/token", data=data, headers=headers)

    def exchange(self, rp: RegisteredClient, code: str, verifier: str | None) -> Any:
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": rp.redirect_uri}
        if verifier:
            data["code_verifier"] = verifier
        return self.token(rp, data)

    def tokens(self, rp: RegisteredClient, **extra: Any) -> dict[str, Any]:
        code, verifier, _ = self.code_for(rp, **extra)
        resp = self.exchange(rp, code, verifier)
        assert resp.status_code == 200, resp.get_json()
        return dict(resp.get_json())
