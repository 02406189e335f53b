"""Expired short-lived state is purged, and what is kept only for a while is pruned
after ``[retention]`` (issue 9 item 6); the janitor runs once per interval in the
cluster."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from idp import janitor
from idp.audit.models import AuditEvent
from idp.janitor import purge
from idp.oauth.models import AuthorizationCode
from idp.refresh.models import RefreshFamily, RefreshToken
from idp.sessions.models import BrowserSession
from idp.state.models import StateEntry

DAY = 24 * 3600


def count(svc, model):
    with svc.db.read() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_janitor_purges_expired_entries_and_keeps_live_ones(auth, svc, clock, backend):
    auth.user()
    rp = auth.oauth_client()
    auth.login()
    tokens = auth.tokens(rp)
    client = auth.client
    client.post("/revoke", data={"token": tokens["access_token"]}, headers=rp.basic())
    svc.state.hit("login:short-lived", 60)
    svc.state.deny("marker:long-lived", clock.now() + dt.timedelta(hours=5))
    svc.oauth.pushed.push(rp.client_id, {"client_id": rp.client_id})  # never used
    assert count(svc, AuthorizationCode) == 1
    clock.advance(2 * 3600)
    counts = purge(svc)
    # The counter, the revoked token's log entry and the used code are past their time.
    # Redis expires its own keys, so with Redis the janitor finds no state entries to purge.
    sql_state = backend["name"] == "sqlite"
    assert counts == {
        "state_entries": 1 if sql_state else 0,
        "revocations": 1,
        "authorization_codes": 1,
        "pushed_requests": 1,
        "ssf_events": 0,
        "family_access_tokens": 0,
        "initial_access_tokens": 0,
        "pending_logins": 0,
        "account_links": 0,
        "mails": 0,
        "refresh_tokens": 0,
        "refresh_families": 0,
        "browser_sessions": 0,
    }
    assert count(svc, AuthorizationCode) == 0
    if sql_state:
        with svc.db.read() as s:
            assert set(s.scalars(select(StateEntry.key))) == {"marker:long-lived"}
    assert svc.state.is_denied("marker:long-lived")


def refresh(auth, rp, value):
    resp = auth.token(rp, {"grant_type": "refresh_token", "refresh_token": value})
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()["refresh_token"]


def test_retention_prunes_expired_tokens_then_dead_families_and_ended_sessions(auth, svc, clock):
    auth.user()
    rp = auth.oauth_client(scope="openid offline_access")
    auth.login()
    value = auth.tokens(rp, scope="openid offline_access")["refresh_token"]
    for _ in range(3):
        value = refresh(auth, rp, value)
    assert count(svc, RefreshToken) == 4
    cfg = svc.config
    # Nothing is due yet: the chain is alive, the session too.
    assert purge(svc)["refresh_tokens"] == 0
    # The tokens expire after the idle lifetime; a day later they are deleted (an expired
    # token is refused before reuse is looked for, so it tells nothing more). The family
    # stays: the dashboard shows a dead chain for `families_days`.
    clock.advance(cfg.tokens.refresh_token_idle_ttl + cfg.retention.refresh_tokens_days * DAY + 60)
    counts = purge(svc)
    assert counts["refresh_tokens"] == 4 and counts["refresh_families"] == 0
    assert count(svc, RefreshFamily) == 1
    # The session expired after its absolute timeout; 30 days on, it and the dead
    # family go too.
    assert count(svc, BrowserSession) == 1
    clock.advance(cfg.retention.families_days * DAY)
    counts = purge(svc)
    assert counts["refresh_families"] == 1 and counts["browser_sessions"] == 1
    assert count(svc, RefreshFamily) == 0 and count(svc, BrowserSession) == 0


def test_a_live_chain_keeps_its_unexpired_tokens(auth, svc, clock):
    auth.user()
    rp = auth.oauth_client(scope="openid offline_access")
    auth.login()
    value = auth.tokens(rp, scope="openid offline_access")["refresh_token"]
    for _ in range(40):
        clock.advance(DAY)  # one refresh a day: the family stays alive for 40 days
        value = refresh(auth, rp, value)
    purge(svc)
    # Tokens issued in the last idle lifetime (+ a day) are kept, older ones pruned,
    # and the newest still works.
    kept = count(svc, RefreshToken)
    idle_days = svc.config.tokens.refresh_token_idle_ttl // DAY
    assert idle_days <= kept <= idle_days + 2
    assert count(svc, RefreshFamily) == 1
    refresh(auth, rp, value)


def old_audit_event(svc, clock):
    from idp.audit.services import record

    with svc.db.transaction() as s:
        record(s, at=clock.now(), actor="test", action="test.old")
    clock.advance(400 * DAY)


def test_audit_events_are_kept_by_default(svc, clock):
    old_audit_event(svc, clock)
    assert "audit_events" not in purge(svc)
    assert count(svc, AuditEvent) == 1


@pytest.mark.parametrize("config_overrides", [{"retention": {"audit_days": 365}}])
def test_audit_events_are_pruned_when_configured(svc, clock):
    old_audit_event(svc, clock)
    counts = purge(svc)
    assert counts["audit_events"] == 1 and counts["security_events"] == 0
    assert count(svc, AuditEvent) == 0


def test_the_background_janitor_runs_once_per_interval_in_the_cluster(svc, monkeypatch):
    runs: list[object] = []

    def purge_once(s: object) -> dict[str, int]:
        runs.append(s)
        return {}

    monkeypatch.setattr(janitor, "purge", purge_once)
    # Two processes (two Janitors on the same storage) reach their interval together.
    first, second = janitor.Janitor(svc), janitor.Janitor(svc)
    first._run()
    second._run()
    assert len(runs) == 1
