"""Revocation (RFC 7009) and introspection (RFC 7662), and that every kind of kill shows
in introspection at once."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from idp.accounts.models import User
from idp.operator import Actor
from tests.conftest import ISSUER
from tests.support.auth import csrf_from


def revoke(chain, token, client=None, hint=None):
    data = {"token": token}
    if hint:
        data["token_type_hint"] = hint
    return chain.auth.client.post("/revoke", data=data, headers=(client or chain.rp).basic())


def test_introspection_describes_an_access_token(chain, svc):
    info = chain.introspect(chain.first["access_token"])
    assert info["active"] is True
    assert info["token_type"] == "Bearer" and info["token_use"] == "access_token"
    assert info["client_id"] == "app" and info["iss"] == ISSUER
    assert info["scope"] == "openid email offline_access"
    for key in ("sub", "exp", "iat", "nbf", "jti", "sid", "aud"):
        assert info[key], key


def test_introspection_describes_a_refresh_token(chain):
    info = chain.introspect(chain.first["refresh_token"], client=chain.rp)
    assert info["active"] is True and info["token_use"] == "refresh_token"
    assert info["username"] == "alice" and info["client_id"] == "app"
    assert info["sid"] and info["exp"] > info["iat"]


def test_refresh_tokens_are_only_introspectable_by_their_client(chain):
    assert chain.introspect(chain.first["refresh_token"]) == {"active": False}


@pytest.mark.parametrize(
    "garbage", ["x", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", "é" * 50, "A" * 5000]
)
def test_garbage_is_inactive(chain, garbage):
    assert chain.introspect(garbage) == {"active": False}


def test_introspection_requires_client_authentication(chain):
    resp = chain.auth.client.post("/introspect", data={"token": chain.first["access_token"]})
    assert resp.status_code == 401 and resp.get_json()["error"] == "invalid_client"


def test_revoking_a_refresh_token_revokes_its_family(chain):
    second = chain.refresh(chain.first["refresh_token"]).get_json()
    assert revoke(chain, chain.first["refresh_token"]).status_code == 200
    assert chain.refresh(second["refresh_token"]).status_code == 400
    assert chain.introspect(second["access_token"]) == {"active": False}


def test_revoking_an_access_token_denies_its_jti_until_expiry(chain):
    assert revoke(chain, chain.first["access_token"], hint="access_token").status_code == 200
    assert chain.introspect(chain.first["access_token"]) == {"active": False}
    assert chain.refresh(chain.first["refresh_token"]).status_code == 200


def test_a_client_cannot_revoke_another_clients_token(chain, auth):
    other = auth.oauth_client("other", scope="openid offline_access")
    resp = revoke(chain, chain.first["refresh_token"], client=other)
    assert resp.status_code == 400
    assert chain.introspect(chain.first["refresh_token"], client=chain.rp)["active"] is True


def test_unknown_token_revocation_answers_200(chain):
    assert revoke(chain, "never-issued").status_code == 200


def test_expiry_turns_introspection_inactive(chain, clock, svc):
    clock.advance(svc.config.tokens.access_token_ttl + 1)
    assert chain.introspect(chain.first["access_token"]) == {"active": False}


def test_logout_turns_introspection_inactive(chain):
    page = chain.auth.client.get("/logout")
    chain.auth.client.post(
        "/logout", data={"confirm": "yes", "csrf_token": csrf_from(page.get_data(as_text=True))}
    )
    assert chain.introspect(chain.first["access_token"]) == {"active": False}
    assert chain.introspect(chain.first["refresh_token"], client=chain.rp) == {"active": False}


def test_disabled_user_turns_introspection_inactive(chain, svc):
    [user_id] = [u.id for u in users(svc)]
    svc.actions.set_disabled(user_id, True, Actor("test"), "left")
    assert chain.introspect(chain.first["access_token"]) == {"active": False}
    assert chain.introspect(chain.first["refresh_token"], client=chain.rp) == {"active": False}
    assert chain.refresh(chain.first["refresh_token"]).status_code == 400


def test_a_user_disabled_behind_idps_back_is_inactive_too(chain, svc):
    """An edit of the user row that skips OperatorActions.set_disabled (no kill, no
    revocation) still reaches every process: the users generation moves with any change
    to a user."""
    with svc.db.transaction() as s:
        for user in s.scalars(select(User)):
            user.disabled = True
    assert chain.introspect(chain.first["access_token"]) == {"active": False}


def users(svc):
    with svc.db.read() as s:
        return list(s.scalars(select(User)))


def test_reuse_turns_introspection_inactive(chain):
    second = chain.refresh(chain.first["refresh_token"]).get_json()
    chain.refresh(chain.first["refresh_token"])
    assert chain.introspect(second["access_token"]) == {"active": False}


def test_revoke_racing_refresh_leaves_nothing_alive(chain, app):
    results = {}
    barrier = threading.Barrier(2)

    def do(name, fn):
        c = app.test_client()
        barrier.wait()
        results[name] = fn(c)

    token = chain.first["refresh_token"]
    refresh = threading.Thread(
        target=do,
        args=(
            "refresh",
            lambda c: c.post(
                "/token",
                data={"grant_type": "refresh_token", "refresh_token": token},
                headers=chain.rp.basic(),
            ),
        ),
    )
    rev = threading.Thread(
        target=do,
        args=(
            "revoke",
            lambda c: c.post("/revoke", data={"token": token}, headers=chain.rp.basic()),
        ),
    )
    refresh.start()
    rev.start()
    refresh.join()
    rev.join()
    assert results["revoke"].status_code == 200
    if results["refresh"].status_code == 200:
        child = results["refresh"].get_json()
        assert chain.introspect(child["refresh_token"], client=chain.rp) == {"active": False}
        assert chain.refresh(child["refresh_token"]).status_code == 400
    else:
        assert results["refresh"].get_json()["error"] == "invalid_grant"
