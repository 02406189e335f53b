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
    svc.state.deny("jti:long-lived", clock.now() + dt.timedelta(hours=5))
    assert count(svc, AuthorizationCode) == 1
    clock.advance(2 * 3600)
    counts = purge(svc)
    assert counts["authorization_codes"] == 1
    assert count(svc, AuthorizationCode) == 0
    if backend["name"] == "sqlite":
        assert counts["state_entries"] >= 1
        with svc.db.read() as s:
            assert "jti:long-lived" in set(s.scalars(select(StateEntry.key)))
    assert svc.state.is_denied("jti:long-lived")
