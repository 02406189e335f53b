"""Chaos trial: Redis flushed, down and back (issue 9 items 1, 5 and 7).

Revoked access tokens (one revoked at /revoke, one of a killed session) must stay
revoked at introspection and at /userinfo whatever happens to Redis, and tokens keep
being issued and refreshed while Redis is away. Asserted: 0 resurrected revocations,
every token request answered. Runs on PostgreSQL + Redis (SQLite has no Redis to lose);
Redis is cut with a proxy, never stopped (it is the machine's shared server).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from idp.state.fallback import RETRY_SECONDS
from tests.support.auth import AuthActions, RegisteredClient
from tests.support.databases import clear_redis
from tests.support.jwt import claims_unverified
from tests.support.proxy import proxied_app
from tests.support.scrape import scrape, value
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow


def accepted(client: Any, rp: RegisteredClient, token: str) -> list[str]:
    """Where the revoked ``token`` still passes (should be nowhere)."""
    found = []
    intro = client.post("/introspect", data={"token": token}, headers=rp.basic())
    assert intro.status_code == 200
    if intro.get_json()["active"]:
        found.append("introspection")
    if client.get("/userinfo", headers={"Authorization": f"Bearer {token}"}).status_code == 200:
        found.append("userinfo")
    return found


def test_revocations_survive_redis_flush_outage_and_return(
    backend: dict[str, Any], tmp_path: Path, app: Flask
) -> None:
    with proxied_app(backend, tmp_path) as (proxied, _, redis):
        client = proxied.test_client()
        auth = AuthActions(proxied, client)
        svc = proxied.extensions["idp"]
        auth.user()
        rp = auth.oauth_client("rp", scope="openid offline_access")
        auth.login()
        revoked_at = auth.tokens(rp, scope="openid offline_access")
        assert (
            client.post(
                "/revoke", data={"token": revoked_at["access_token"]}, headers=rp.basic()
            ).status_code
            == 200
        )
        killed = auth.tokens(rp, scope="openid offline_access")
        sid = claims_unverified(killed["access_token"])["sid"]
        svc.killer.kill_session(sid, actor="test", action="session.kill", reason="chaos")
        auth.login()  # a new session, whose chain must keep working throughout
        live = auth.tokens(rp, scope="openid offline_access")
        revoked = [revoked_at["access_token"], killed["access_token"]]
        resurrected: Counter[str] = Counter()
        answers: Counter[str] = Counter()

        def trial(stage: str) -> None:
            for token in revoked:
                for where in accepted(client, rp, token):
                    resurrected[f"{stage}: {where}"] += 1
            resp = auth.token(
                rp, {"grant_type": "refresh_token", "refresh_token": live["refresh_token"]}
            )
            answers[f"{stage}: {resp.status_code}"] += 1
            if resp.status_code == 200:
                live["refresh_token"] = resp.get_json()["refresh_token"]

        assert value(scrape(client), "idp_redis_up") == 1
        trial("before")
        clear_redis(backend["redis"]["prefix"])  # flushed (or restarted without a disk)
        trial("flushed")
        redis.set("refuse")  # down
        trial("down")
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.get_json()["status"] == "degraded"
        assert value(scrape(client), "idp_redis_up") == 0  # what Prometheus sees
        redis.set("hang")  # a network that swallows packets
        trial("hanging")
        redis.set("pass")  # back, empty
        clear_redis(backend["redis"]["prefix"])
        trial("back")
        print(f"\nanswers {dict(answers)}; resurrected revocations {dict(resurrected)}")
        assert not resurrected
        # Redis is tried again every RETRY_SECONDS; once it answered, the gauge says so.
        wait_for(
            lambda: (
                client.get("/readyz").get_json()["status"] == "ok"
                and value(scrape(client), "idp_redis_up") == 1
            ),
            timeout=RETRY_SECONDS + 10,
        )
        assert set(answers) == {
            f"{s}: 200" for s in ("before", "flushed", "down", "hanging", "back")
        }
