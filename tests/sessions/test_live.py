"""A live session is defined once (BrowserSession.live): every list and count that says
"live" agrees, the idle timeout included (issue 9 item 2)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from idp.admin import queries
from idp.sessions.models import BrowserSession
from tests.support.auth import AuthActions, csrf_from
from tests.support.clock import FrozenClock


def live_everywhere(svc: Any, client: Any) -> dict[str, Any]:
    now = svc.clock.now()
    idle = svc.config.sessions.idle_timeout
    with svc.db.read() as s:
        rows = list(s.scalars(select(BrowserSession)))
        in_sql = list(s.scalars(select(BrowserSession.id).where(BrowserSession.live(now, idle))))
    metrics = client.get("/metrics").get_data(as_text=True)
    return {
        "python": [r.id for r in rows if r.is_live(now, idle)],
        "sql": in_sql,
        "operator list": [r["sid"] for r in queries.sessions_page(svc).rows],
        "overview": queries.overview(svc)["live_sessions"],
        "metrics": int(re.search(r"^idp_live_sessions (\d+)$", metrics, re.M)[1]),  # type: ignore[index]
    }


def test_an_idle_session_is_live_nowhere(auth: AuthActions, svc: Any, clock: FrozenClock) -> None:
    auth.user()
    auth.login()
    fresh = live_everywhere(svc, auth.client)
    assert len(fresh["python"]) == 1
    assert fresh == {
        "python": fresh["python"],
        "sql": fresh["python"],
        "operator list": fresh["python"],
        "overview": 1,
        "metrics": 1,
    }
    clock.advance(svc.config.sessions.idle_timeout + 1)
    assert live_everywhere(svc, auth.client) == {
        "python": [],
        "sql": [],
        "operator list": [],
        "overview": 0,
        "metrics": 0,
    }


def test_ending_an_ended_session_again_adds_nothing_to_the_feed(
    auth: AuthActions, svc: Any
) -> None:
    """Issue 10 item 11: a user cannot flood the revocation feed by ending their own
    already-ended session over and over."""
    from idp.revocations.models import RevocationEntry

    auth.user()
    auth.login()
    with svc.db.read() as s:
        [old] = s.scalars(select(BrowserSession.id)).all()
    auth.client.delete_cookie("idp_session")
    auth.login()  # a second device
    page = auth.client.get("/account").get_data(as_text=True)
    token = csrf_from(page)

    def entries() -> int:
        with svc.db.read() as s:
            return len(s.scalars(select(RevocationEntry)).all())

    resp = auth.client.post(f"/account/sessions/{old}/end", data={"csrf_token": token})
    assert resp.status_code == 303
    after_first = entries()
    for _ in range(20):
        auth.client.post(f"/account/sessions/{old}/end", data={"csrf_token": token})
    assert entries() == after_first
