"""The admin API tests' shared fixtures: an admin client and its token, a relying app, a
resource server, and alice logged in holding that app's tokens."""

from __future__ import annotations

from typing import Any

import pytest

from tests.admin.test_api import Api, Login, admin_token
from tests.support.auth import AuthActions, RegisteredClient


@pytest.fixture
def ops(auth: AuthActions) -> RegisteredClient:
    return auth.oauth_client(
        "ops",
        grant_types=["client_credentials"],
        admin_client=True,
        scope="idp:admin",
        redirect_uri="https://ops.example.test/x",
    )


@pytest.fixture
def api(auth: AuthActions, ops: RegisteredClient) -> Api:
    return Api(auth.client, admin_token(auth, ops))


@pytest.fixture
def rp(auth: AuthActions) -> RegisteredClient:
    return auth.oauth_client("app", scope="openid profile email offline_access")


@pytest.fixture
def rs(auth: AuthActions) -> RegisteredClient:
    """A resource server that introspects tokens."""
    return auth.oauth_client(
        "rs",
        grant_types=["client_credentials"],
        scope="api",
        redirect_uri="https://rs.example.test/unused",
    )


@pytest.fixture
def alice(app: Any, auth: AuthActions, rp: RegisteredClient) -> Login:
    auth.user("alice")
    return Login(app, auth, rp, "alice")
