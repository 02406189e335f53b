"""What one process changes, every other process honours at its next request (issue 8:
clients, keys and the deny list are held in memory; idp.changes.watch).

Two apps on the same storage stand for two processes (they share nothing in memory): one
changes something, the other must act on it at once, on SQLite (``PRAGMA data_version``)
and on PostgreSQL with Redis (a Redis key)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from idp import create_app
from idp.changes import watch
from idp.clients.models import Client
from idp.clients.services import rotate_secret
from idp.operator import Actor
from tests.conftest import make_config
from tests.support.auth import AuthActions, RegisteredClient
from tests.support.clock import FrozenClock
from tests.support.jwt import header


@pytest.fixture
def other(
    backend: dict[str, Any], tmp_path: Path, clock: FrozenClock, app: Flask
) -> Iterator[AuthActions]:
    """A second idp process on the ``app`` fixture's storage, already warm: it has read
    its clients, keys and deny list before the change happens."""
    second = create_app(make_config(backend, tmp_path / "other"), clock=clock)
    yield AuthActions(second, second.test_client())
    second.extensions["idp"].close()


@pytest.fixture
def svc_client(auth: AuthActions) -> RegisteredClient:
    return auth.oauth_client(
        "svc", grant_types=["client_credentials"], scope="api", redirect_uri="https://x.test/cb"
    )


def client_credentials(actions: AuthActions, rp: RegisteredClient) -> Any:
    return actions.token(rp, {"grant_type": "client_credentials", "scope": "api"})


def introspect(actions: AuthActions, rp: RegisteredClient, token: str) -> dict[str, Any]:
    resp = actions.client.post("/introspect", data={"token": token}, headers=rp.basic())
    assert resp.status_code == 200
    return dict(resp.get_json())


def test_a_rotated_secret_is_refused_by_the_other_process_at_once(auth, other, svc, svc_client):
    assert client_credentials(other, svc_client).status_code == 200
    with svc.db.transaction() as s:
        client = s.get(Client, "svc")
        assert client is not None
        new_secret = rotate_secret(s, client)
    assert client_credentials(other, svc_client).status_code == 401
    rotated = RegisteredClient("svc", new_secret, svc_client.redirect_uri)
    assert client_credentials(other, rotated).status_code == 200


def test_a_disabled_client_is_refused_by_the_other_process_at_once(auth, other, svc, svc_client):
    assert client_credentials(other, svc_client).status_code == 200
    with svc.db.transaction() as s:
        client = s.get(Client, "svc")
        assert client is not None
        client.disabled = True
    assert client_credentials(other, svc_client).status_code == 401


def test_a_new_key_signs_in_the_other_process_at_once(auth, other, svc, svc_client):
    before = header(client_credentials(other, svc_client).get_json()["access_token"])["kid"]
    [new_kid] = [k for k in svc.keys.rotate(["ES256"])]
    assert new_kid != before
    after = header(client_credentials(other, svc_client).get_json()["access_token"])["kid"]
    assert after == new_kid
    assert new_kid.encode() in other.client.get("/jwks.json").get_data()


def test_a_kill_is_honoured_by_the_other_process_at_once(auth, other, svc):
    auth.user()
    rp = auth.oauth_client("app", scope="openid offline_access")
    auth.login()
    tokens = auth.tokens(rp, scope="openid offline_access")
    assert introspect(other, rp, tokens["access_token"])["active"] is True
    with svc.db.read() as s:
        [sid] = [row.id for row in s.scalars(_sessions())]
    svc.killer.kill_session(sid, actor="test", action="session.kill", reason="stolen")
    assert introspect(other, rp, tokens["access_token"]) == {"active": False}


def test_a_disabled_user_is_refused_by_the_other_process_at_once(auth, other, svc):
    user = auth.user()
    rp = auth.oauth_client("app", scope="openid offline_access")
    auth.login()
    tokens = auth.tokens(rp, scope="openid offline_access")
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert other.client.get("/userinfo", headers=bearer).status_code == 200
    svc.actions.set_disabled(user.id, True, Actor("test"), "left")
    assert other.client.get("/userinfo", headers=bearer).status_code == 401
    assert introspect(other, rp, tokens["access_token"]) == {"active": False}


def test_a_lost_signal_delays_a_change_by_at_most_max_age(
    backend, other, svc, svc_client, monkeypatch
):
    """Redis restarted between a commit and its increment (or a signal that never moves):
    the other process still re-reads the counters after MAX_AGE."""
    generations = other.svc.generations
    now = [0.0]
    monkeypatch.setattr(generations, "_monotonic", lambda: now[0])
    monkeypatch.setattr(generations.signal, "read", lambda: "never moves")
    generations._stale = True
    assert client_credentials(other, svc_client).status_code == 200  # checked at 0.0
    with svc.db.transaction() as s:
        client = s.get(Client, "svc")
        assert client is not None
        client.disabled = True
    now[0] = watch.MAX_AGE / 2
    assert client_credentials(other, svc_client).status_code == 200  # not yet
    now[0] = watch.MAX_AGE + 0.01
    assert client_credentials(other, svc_client).status_code == 401  # past MAX_AGE


def _sessions() -> Any:
    from sqlalchemy import select

    from idp.sessions.models import BrowserSession

    return select(BrowserSession).where(BrowserSession.ended_at.is_(None))
