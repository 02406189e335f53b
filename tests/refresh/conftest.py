from __future__ import annotations

import pytest

from tests.support.auth import AuthActions


class Chain:
    """A logged-in user, an offline_access client, and helpers to refresh and introspect."""

    def __init__(self, auth: AuthActions, public: bool = False) -> None:
        self.auth = auth
        auth.user()
        self.rp = auth.oauth_client(
            "app" if not public else "spa",
            public=public,
            scope="openid profile email offline_access",
        )
        self.rs = auth.oauth_client(
            "api",
            grant_types=["client_credentials"],
            scope="api",
            redirect_uri="https://api.example.test/unused",
        )
        auth.login()
        self.first = auth.tokens(self.rp, scope="openid email offline_access")

    def refresh(self, token, client=None, ua="app/1.0", **extra):
        data = {"grant_type": "refresh_token", "refresh_token": token, **extra}
        return (
            self.auth.client.post(
                "/token",
                data=data,
                headers={
                    **((client or self.rp).basic() if (client or self.rp).secret else {}),
                    "User-Agent": ua,
                },
            )
            if (client or self.rp).secret
            else self.auth.client.post(
                "/token",
                data={**data, "client_id": (client or self.rp).client_id},
                headers={"User-Agent": ua},
            )
        )

    def introspect(self, token, hint=None, client=None):
        data = {"token": token}
        if hint:
            data["token_type_hint"] = hint
        resp = self.auth.client.post("/introspect", data=data, headers=(client or self.rs).basic())
        assert resp.status_code == 200, resp.get_data(as_text=True)
        return resp.get_json()


@pytest.fixture
def chain(auth):
    return Chain(auth)
