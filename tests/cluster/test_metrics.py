"""A Prometheus scrape of the nodes before and after some traffic through the balancer
shows the counters move (issue 14 "Done when"); the nodes count separately, so the
cluster's count is the sum over the nodes, as Prometheus would add them up."""

from __future__ import annotations

import pytest

from tests.cluster.flows import Setup
from tests.support.jwt import claims_unverified
from tests.support.scrape import moved

pytestmark = pytest.mark.slow


def test_the_counters_of_the_nodes_move(setup: Setup) -> None:
    cluster = setup.cluster
    before = cluster.metrics()
    first = setup.login("watch", "alice").tokens
    second = setup.refresh(cluster.url, "watch", first["refresh_token"])
    assert second.status_code == 200
    third = setup.refresh(cluster.url, "watch", second.json()["refresh_token"])
    assert third.status_code == 200
    # The grandparent again: reuse.
    assert setup.refresh(cluster.url, "watch", first["refresh_token"]).status_code == 400
    other = setup.login("watch", "alice").tokens
    sid = claims_unverified(other["access_token"])["sid"]
    setup.admin(cluster.url, f"/sessions/{sid}/kill", {"reason": "metrics test"})
    after = cluster.metrics()

    def grew(name: str, **labels: str) -> float:
        return moved(before, after, name, **labels)

    issued = "idp_tokens_issued_total"
    assert grew(issued, grant_type="authorization_code", client_id="watch") == 2
    assert grew(issued, grant_type="refresh_token", client_id="watch") == 2
    assert grew(issued, grant_type="client_credentials", client_id="ops") == 1
    assert grew("idp_refresh_rotations_total", kind="rotation") == 2
    assert grew("idp_refresh_reuse_detected_total", client_id="watch") == 1
    assert grew("idp_sessions_killed_total", cause="admin") == 1
    assert grew("idp_sessions_killed_total") == 2  # the reuse killed its session too
    assert grew("idp_logins_total", result="success") == 2
    assert grew("idp_http_request_duration_seconds_count", route="/token") >= 6
