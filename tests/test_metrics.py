"""Prometheus metrics (issue 14 item 1): the counters move where things happen, requests
are timed by route, the scrape-time gauges read the backlogs, and every metric the
Grafana dashboard and the alert rules use is one idp exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask

from idp import metrics
from tests.conftest import ISSUER
from tests.support.auth import AuthActions, csrf_from
from tests.support.clock import FrozenClock
from tests.support.jwt import verify
from tests.support.mfa import enrol
from tests.support.scrape import moved, scrape, value

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "deploy" / "grafana" / "idp-dashboard.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yaml"

# Deliveries are driven by the tests (deliver_due), not by worker threads.
pytestmark = pytest.mark.usefixtures("no_background_worker")


def sid_of(auth: AuthActions, access_token: str) -> str:
    jwks = auth.client.get("/jwks.json").get_json()
    return str(verify(access_token, jwks, "rp", ISSUER)["sid"])


def test_a_login_a_refresh_a_reuse_and_a_kill_move_their_counters(
    auth: AuthActions, svc: Any
) -> None:
    before = scrape(auth.client)
    auth.user()
    rp = auth.oauth_client()
    assert auth.login(password="wrong password").status_code == 401
    assert auth.login().status_code == 303
    tokens = auth.tokens(rp, scope="openid offline_access")
    first = tokens["refresh_token"]
    refreshed = auth.token(rp, {"grant_type": "refresh_token", "refresh_token": first})
    assert refreshed.status_code == 200
    # The spent token again, past the grace interval: theft, the family and its session die.
    svc.clock.advance(svc.config.tokens.refresh_reuse_grace_seconds + 1)
    reused = auth.token(rp, {"grant_type": "refresh_token", "refresh_token": first})
    assert reused.status_code == 400
    after = scrape(auth.client)

    assert moved(before, after, "idp_logins_total", result="failure") == 1
    assert moved(before, after, "idp_logins_total", result="success") == 1
    assert moved(before, after, "idp_tokens_issued_total", client_id="rp") == 2
    assert moved(before, after, "idp_tokens_issued_total", grant_type="authorization_code") == 1
    assert moved(before, after, "idp_tokens_issued_total", grant_type="refresh_token") == 1
    assert moved(before, after, "idp_refresh_rotations_total", kind="rotation") == 1
    assert moved(before, after, "idp_refresh_reuse_detected_total", client_id="rp") == 1
    assert (
        moved(before, after, "idp_sessions_killed_total", cause="policy", action="session.kill")
        == 1
    )


def test_an_operator_kill_and_a_logout_count_by_cause(auth: AuthActions, svc: Any) -> None:
    auth.user()
    rp = auth.oauth_client()
    auth.login()
    sid = sid_of(auth, auth.tokens(rp)["access_token"])
    before = scrape(auth.client)
    svc.killer.kill_session(sid, actor="ops", action="session.kill", reason="stolen laptop")
    # Killing it again ends nothing: not counted twice.
    svc.killer.kill_session(sid, actor="ops", action="session.kill", reason="again")
    auth.login()
    page = auth.client.get("/logout")
    auth.client.post(
        "/logout", data={"confirm": "yes", "csrf_token": csrf_from(page.get_data(as_text=True))}
    )
    after = scrape(auth.client)
    assert moved(before, after, "idp_sessions_killed_total", cause="admin") == 1
    assert moved(before, after, "idp_sessions_killed_total", cause="user", action="logout") == 1


def test_the_throttle_counts_its_refusals_and_locked_logins(auth: AuthActions) -> None:
    auth.user()
    before = scrape(auth.client)
    statuses = [auth.login(password=f"guess {n}").status_code for n in range(8)]
    assert 429 in statuses
    after = scrape(auth.client)
    refused = statuses.count(429)
    assert moved(before, after, "idp_logins_total", result="locked") == refused
    assert moved(before, after, "idp_throttle_hits_total", kind="login") >= refused
    assert moved(before, after, "idp_logins_total", result="failure") == 8 - refused


def test_a_password_that_asks_for_a_second_factor_counts_as_second_factor(
    auth: AuthActions,
) -> None:
    auth.user()
    enrol(auth)
    before = scrape(auth.client)
    first = auth.login()
    assert first.headers["Location"] == "/login/code"
    after = scrape(auth.client)
    assert moved(before, after, "idp_logins_total", result="second_factor") == 1
    assert moved(before, after, "idp_logins_total", result="success") == 0


def test_back_channel_backlog_and_attempts(auth: AuthActions, svc: Any, clock: FrozenClock) -> None:
    auth.user()
    rp = auth.oauth_client(backchannel_logout_uri="http://127.0.0.1:9/backchannel")
    auth.login()
    sid = sid_of(auth, auth.tokens(rp)["access_token"])
    empty = scrape(auth.client)
    assert value(empty, "idp_delivery_owed", channel="backchannel") == 0
    assert value(empty, "idp_delivery_oldest_age_seconds", channel="backchannel") == 0
    svc.killer.kill_session(sid, actor="ops", action="session.kill", reason="r")
    clock.advance(42)
    owed = scrape(auth.client)
    assert value(owed, "idp_delivery_owed", channel="backchannel") == 1
    assert value(owed, "idp_delivery_oldest_age_seconds", channel="backchannel") == 42
    svc.notifier.deliver_due()  # nothing listens on port 9: tried again later
    after = scrape(auth.client)
    assert moved(owed, after, "idp_delivery_attempts_total", channel="backchannel") == 1
    assert (
        moved(owed, after, "idp_delivery_attempts_total", channel="backchannel", outcome="retry")
        == 1
    )
    assert value(after, "idp_delivery_owed", channel="backchannel") == 1


def test_mail_backlog_and_attempts(auth: AuthActions, svc: Any, clock: FrozenClock) -> None:
    with svc.db.transaction() as s:
        svc.outbox.queue(
            s, clock.now(), "alice@example.test", "password_reset", username="alice",
            link="http://127.0.0.1:5000/password/reset?token=abc", minutes=30,
        )  # fmt: skip
    clock.advance(7)
    before = scrape(auth.client)
    assert value(before, "idp_delivery_owed", channel="mail") == 1
    assert value(before, "idp_delivery_oldest_age_seconds", channel="mail") == 7
    assert svc.mailer.deliver_due() is False
    after = scrape(auth.client)
    assert (
        moved(before, after, "idp_delivery_attempts_total", channel="mail", outcome="delivered")
        == 1
    )
    assert value(after, "idp_delivery_owed", channel="mail") == 0
    assert value(after, "idp_delivery_owed", channel="ssf_push") == 0


def test_requests_are_timed_by_route_not_by_path(auth: AuthActions, app: Flask) -> None:
    auth.user()
    before = scrape(auth.client)
    for _ in range(3):
        auth.client.get("/jwks.json")
    auth.client.get("/no/such/page/" + "x" * 50)
    auth.client.get("/admin/")
    auth.client.post("/token", data={"grant_type": "password"})
    after = scrape(auth.client)
    name = "idp_http_request_duration_seconds_count"
    assert moved(before, after, name, route="/jwks.json", method="GET", status_class="2xx") == 3
    assert moved(before, after, name, route="unmatched", status_class="4xx") == 1
    assert moved(before, after, name, route="/token", method="POST", status_class="4xx") == 1
    # The dashboard mounted under /admin: its rule, where it is mounted.
    assert moved(before, after, name, route="/admin/") == 1
    routes = {dict(labels)["route"] for (n, labels) in after if n == name}
    assert not any("x" * 50 in route for route in routes), "a raw path became a label"


def test_scrape_time_gauges_are_exported(client: Any, svc: Any) -> None:
    samples = scrape(client)
    algs = {dict(labels)["alg"] for (n, labels) in samples if n == "idp_signing_key_age_seconds"}
    assert algs == svc.keys.algs()
    if svc.config.redis.url:
        assert value(samples, "idp_redis_up") == 1
    if svc.db.engine.dialect.name == "postgresql":
        assert value(samples, "idp_db_pool_size") == svc.config.database.pool_size
        assert 0 <= value(samples, "idp_db_pool_checked_out") <= svc.config.database.pool_size


def exported_names(client: Any) -> set[str]:
    """Every sample name /metrics can show, once each counter has counted."""
    names = {name for name, _ in scrape(client)}
    for family in metrics.COUNTED.registry.collect():  # labelled: absent until counted
        names |= {family.name, family.name + "_total", family.name + "_bucket"}
        names |= {family.name + "_count", family.name + "_sum"}
    return names


def referenced(text: str) -> set[str]:
    return set(re.findall(r"\bidp_[a-z_]+\b", text))


def test_the_grafana_dashboard_uses_only_metrics_idp_exports(client: Any, svc: Any) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["title"] and dashboard["panels"]
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    assert exprs, "panels without queries"
    used = referenced("\n".join(exprs))
    exported = exported_names(client)
    if not svc.config.redis.url:
        exported.add("idp_redis_up")  # exported only where Redis is configured
    assert used and used <= exported, used - exported
    for wanted in (
        "idp_http_request_duration_seconds_bucket",
        "idp_tokens_issued_total",
        "idp_refresh_reuse_detected_total",
        "idp_sessions_killed_total",
        "idp_delivery_oldest_age_seconds",
    ):
        assert wanted in used, wanted


# With a key schedule, as deploy/config.production.toml has: the overdue gauge is exported.
@pytest.mark.parametrize("config_overrides", [{"keys": {"rotate_every": "30d"}}])
def test_the_alert_rules_use_only_metrics_idp_exports(client: Any, svc: Any) -> None:
    rules = yaml.safe_load(ALERTS.read_text())
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    assert all({"alert", "expr", "labels", "annotations"} <= set(rule) for rule in alerts)
    used = referenced("\n".join(str(rule["expr"]) for rule in alerts))
    exported = exported_names(client)
    if not svc.config.redis.url:
        exported.add("idp_redis_up")
    assert used <= exported, used - exported
    names = {rule["alert"] for rule in alerts}
    assert {
        "IdpRefreshTokenReuseSpike",
        "IdpDeliveryLagging",
        "IdpHigh5xxRatio",
        "IdpNotReady",
    } <= names
