"""Expired short-lived state is purged (issue: deny list entries are purged)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from idp.janitor import purge
from idp.oauth.models import AuthorizationCode
from idp.state.models import StateEntry


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
        "family_access_tokens": 0,
    }
    assert count(svc, AuthorizationCode) == 0
    if sql_state:
        with svc.db.read() as s:
            assert set(s.scalars(select(StateEntry.key))) == {"marker:long-lived"}
    assert svc.state.is_denied("marker:long-lived")
