"""Refresh-token rotation, reuse detection, grace, lifetimes (SPEC §6, RFC 9700 §4.14)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from idp import create_app
from idp.audit.models import SecurityEvent
from idp.refresh.models import RefreshFamily, RefreshToken
from idp.sessions.models import BrowserSession
from tests.conftest import make_config
from tests.support.jwt import claims_unverified


def ok(resp):
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def families(svc):
    with svc.db.transaction() as s:
        return s.scalars(select(RefreshFamily)).all()


def test_refresh_token_only_with_offline_access(auth):
    auth.user()
    rp = auth.oauth_client(scope="openid offline_access")
    auth.login()
    assert "refresh_token" not in auth.tokens(rp, scope="openid")
    assert len(auth.tokens(rp, scope="openid offline_access")["refresh_token"]) >= 43


def test_only_hashes_are_stored(chain, svc):
    value = chain.first["refresh_token"]
    with svc.db.transaction() as s:
        [row] = s.scalars(select(RefreshToken)).all()
    assert row.token_hash != value and len(row.token_hash) == 64
    assert row.generation == 1 and row.parent_id is None


def test_each_refresh_returns_a_new_token_and_new_access_token(chain, svc):
    second = ok(chain.refresh(chain.first["refresh_token"]))
    third = ok(chain.refresh(second["refresh_token"]))
    assert len({chain.first["refresh_token"], second["refresh_token"], third["refresh_token"]}) == 3
    assert second["access_token"] != chain.first["access_token"]
    assert "id_token" in third
    with svc.db.transaction() as s:
        gens = s.scalars(select(RefreshToken.generation).order_by(RefreshToken.generation))
        assert list(gens) == [1, 2, 3]


@pytest.mark.parametrize("generations", [1, 2, 3])
def test_reused_refresh_token_revokes_whole_family(chain, svc, generations):
    tokens = [chain.first]
    for _ in range(generations):
        tokens.append(ok(chain.refresh(tokens[-1]["refresh_token"])))
    stolen = tokens[0]["refresh_token"]
    resp = chain.refresh(stolen, ua="thief/9")
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_grant"
    # The legitimate newest token is dead too, and so is every access token.
    assert chain.refresh(tokens[-1]["refresh_token"]).get_json()["error"] == "invalid_grant"
    for t in tokens:
        assert chain.introspect(t["access_token"]) == {"active": False}
    assert chain.introspect(tokens[-1]["refresh_token"]) == {"active": False}
    [family] = families(svc)
    assert family.revoked_reason == "refresh token reuse detected"
    with svc.db.transaction() as s:
        [event] = s.scalars(select(SecurityEvent)).all()
        session = s.get(BrowserSession, family.session_id)
    assert event.kind == "refresh_token_reuse" and event.family_id == family.id
    assert event.details["generation"] == 1
    assert event.details["reuse"]["user_agent"] == "thief/9"
    assert event.details["first_use"]["user_agent"] == "app/1.0"
    assert session.ended_at is not None, "reuse kills the browser session"


def test_reuse_is_one_transaction_with_its_session_kill(chain, svc, monkeypatch):
    """A crash while killing the session rolls the reuse back whole (nothing revoked, no
    security event, the session alive); the next replay is detected with all of it."""
    from idp.sessions import kill

    ok(chain.refresh(chain.first["refresh_token"]))

    def crash(*_, **__):
        raise RuntimeError("crash before the commit")

    with monkeypatch.context() as m:
        m.setattr(kill, "record", crash)
        assert chain.refresh(chain.first["refresh_token"]).status_code == 500
    [family] = families(svc)
    with svc.db.read() as s:
        assert family.revoked_at is None and not s.scalars(select(SecurityEvent)).all()
        assert s.get(BrowserSession, family.session_id).ended_at is None
    assert chain.refresh(chain.first["refresh_token"]).status_code == 400
    [family] = families(svc)
    with svc.db.read() as s:
        assert family.revoked_at is not None and len(s.scalars(select(SecurityEvent)).all()) == 1
        assert s.get(BrowserSession, family.session_id).ended_at is not None
    assert chain.introspect(chain.first["access_token"]) == {"active": False}


@pytest.mark.parametrize("config_overrides", [{"tokens": {"reuse_kills_session": False}}])
def test_reuse_can_spare_the_session(chain, svc, config_overrides):
    ok(chain.refresh(chain.first["refresh_token"]))
    reuse = chain.refresh(chain.first["refresh_token"])
    assert reuse.status_code == 400 and reuse.get_json()["error"] == "invalid_grant"
    [family] = families(svc)
    assert family.revoked_reason == "refresh token reuse detected", "the family still dies"
    with svc.db.transaction() as s:
        assert s.get(BrowserSession, family.session_id).ended_at is None
    assert chain.auth.client.get("/account").status_code == 200


GRACE = {"tokens": {"refresh_reuse_grace_seconds": 30}}


@pytest.mark.parametrize("config_overrides", [GRACE])
def test_grace_replay_returns_the_same_child(chain, svc, clock, config_overrides):
    second = ok(chain.refresh(chain.first["refresh_token"]))
    clock.advance(5)
    again = ok(chain.refresh(chain.first["refresh_token"]))
    assert again["refresh_token"] == second["refresh_token"], "the chain does not fork"
    assert again["access_token"] != second["access_token"]
    # The replayed answer's ID token describes the same login (OIDC Core §12.2).
    replayed = claims_unverified(again["id_token"])
    assert (replayed["amr"], replayed["acr"]) == (["pwd"], "1")
    third = ok(chain.refresh(again["refresh_token"]))
    assert third["refresh_token"] not in {second["refresh_token"], chain.first["refresh_token"]}
    assert families(svc)[0].revoked_at is None


@pytest.mark.parametrize("config_overrides", [GRACE])
def test_grace_does_not_extend_to_older_generations(chain, svc, config_overrides):
    second = ok(chain.refresh(chain.first["refresh_token"]))
    ok(chain.refresh(second["refresh_token"]))
    # first is now the grandparent of the newest token: reuse, even within the grace period.
    assert chain.refresh(chain.first["refresh_token"]).get_json()["error"] == "invalid_grant"
    assert families(svc)[0].revoked_at is not None


@pytest.mark.parametrize("config_overrides", [GRACE])
def test_grace_ends_after_the_interval(chain, svc, clock, config_overrides):
    ok(chain.refresh(chain.first["refresh_token"]))
    clock.advance(31)
    assert chain.refresh(chain.first["refresh_token"]).status_code == 400
    assert families(svc)[0].revoked_at is not None


@pytest.mark.parametrize("config_overrides", [GRACE])
def test_grace_does_not_extend_to_other_clients(chain, auth, svc, config_overrides):
    other = auth.oauth_client("other", scope="openid offline_access")
    ok(chain.refresh(chain.first["refresh_token"]))
    resp = chain.refresh(chain.first["refresh_token"], client=other)
    assert resp.get_json()["error"] == "invalid_grant"


def test_token_of_another_client_is_refused(chain, auth):
    other = auth.oauth_client("other", scope="openid offline_access")
    assert chain.refresh(chain.first["refresh_token"], client=other).status_code == 400
    ok(chain.refresh(chain.first["refresh_token"]))


def test_scope_may_narrow_but_never_widen(chain):
    narrowed = ok(chain.refresh(chain.first["refresh_token"], scope="openid offline_access"))
    assert narrowed["scope"] == "openid offline_access"
    wider = chain.refresh(narrowed["refresh_token"], scope="openid email offline_access")
    assert wider.status_code == 400 and wider.get_json()["error"] == "invalid_scope"


@pytest.mark.parametrize("config_overrides", [{"tokens": {"refresh_token_idle_ttl": 600}}])
def test_idle_family_expires(chain, clock, config_overrides):
    clock.advance(601)
    assert chain.refresh(chain.first["refresh_token"]).get_json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "config_overrides",
    [{"tokens": {"refresh_token_idle_ttl": 600, "refresh_token_absolute_ttl": 1000}}],
)
def test_child_never_outlives_the_family(chain, clock, svc, config_overrides):
    token = chain.first["refresh_token"]
    for _ in range(3):
        clock.advance(300)
        token = ok(chain.refresh(token))["refresh_token"]
    with svc.db.transaction() as s:
        newest = s.scalars(select(RefreshToken).order_by(RefreshToken.generation.desc())).first()
        family = s.get(RefreshFamily, newest.family_id)
    assert newest.expires_at == family.absolute_expires_at
    clock.advance(101)
    assert chain.refresh(token).status_code == 400


def test_public_clients_rotate_too(auth):
    from tests.refresh.conftest import Chain

    spa = Chain(auth, public=True)
    second = ok(spa.refresh(spa.first["refresh_token"]))
    assert second["refresh_token"] != spa.first["refresh_token"]
    assert spa.refresh(spa.first["refresh_token"]).status_code == 400


def test_restart_between_refreshes_changes_nothing(chain, backend, tmp_path, clock):
    second = ok(chain.refresh(chain.first["refresh_token"]))
    restarted = create_app(make_config(backend, tmp_path), clock=clock)
    client = restarted.test_client()
    data = {"grant_type": "refresh_token", "refresh_token": second["refresh_token"]}
    assert client.post("/token", data=data, headers=chain.rp.basic()).status_code == 200
    replay = {"grant_type": "refresh_token", "refresh_token": chain.first["refresh_token"]}
    assert client.post("/token", data=replay, headers=chain.rp.basic()).status_code == 400
    restarted.extensions["idp"].close()


def test_client_without_refresh_grant_cannot_refresh(chain, auth):
    cc = auth.oauth_client(
        "cc",
        grant_types=["client_credentials"],
        scope="api",
        redirect_uri="https://cc.example.test/x",
    )
    resp = chain.refresh(chain.first["refresh_token"], client=cc)
    assert resp.get_json()["error"] == "unauthorized_client"


def test_code_replay_revokes_the_refresh_family(auth, svc):
    auth.user()
    rp = auth.oauth_client(scope="openid offline_access")
    auth.login()
    code, verifier, _ = auth.code_for(rp, scope="openid offline_access")
    first = auth.exchange(rp, code, verifier).get_json()
    assert auth.exchange(rp, code, verifier).status_code == 400
    refreshed = auth.client.post(
        "/token",
        headers=rp.basic(),
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
    )
    assert refreshed.status_code == 400
    assert families(svc)[0].revoked_reason == "authorization code replayed"


def test_a_code_replay_racing_its_exchange_still_revokes_the_family(auth, svc):
    """The replay flags the code and revokes what exists; the exchange it raced creates
    the family just after. The exchange sees the flag and revokes its own family."""
    auth.user()
    rp = auth.oauth_client(scope="openid offline_access")
    auth.login()
    code, verifier, _ = auth.code_for(rp, scope="openid offline_access")
    with svc.db.read() as s:
        from idp.oauth.models import AuthorizationCode

        [row] = s.scalars(select(AuthorizationCode)).all()
    # What the racing replay did before this exchange's family existed (code_store).
    svc.state.deny(f"code:{row.id}", svc.clock.now() + dt.timedelta(hours=1))
    first = auth.exchange(rp, code, verifier).get_json()
    assert families(svc)[0].revoked_reason == "authorization code replayed"
    assert chain_refresh(auth, rp, first["refresh_token"]).status_code == 400
    intro = auth.client.post(
        "/introspect", data={"token": first["access_token"]}, headers=rp.basic()
    )
    assert intro.get_json() == {"active": False}


def chain_refresh(auth, rp, value):
    return auth.client.post(
        "/token",
        headers=rp.basic(),
        data={"grant_type": "refresh_token", "refresh_token": value},
    )
