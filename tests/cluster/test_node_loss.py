"""A node SIGKILLed mid-load loses no chain (issue 14 item 3), the several-node form of
tests/chaos/test_worker_crash.py: clients follow their refresh chains through the
balancer (tests.chaos.chains: after a dropped connection or a 5xx, the same token again)
while one node's whole process group is killed, as when its machine dies.

A rotation the dead node committed without answering is retried through a surviving
node within the grace interval and gets the same child. Asserted: every chain goes on
afterwards, no security event (no reuse detected, so no false theft alarm)."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.chaos.chains import following
from tests.cluster.flows import Setup
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow

CHAINS = 6


def security_events(setup: Setup) -> int:
    found = setup.admin(setup.cluster.url, "/security-events?limit=500")["events"]
    assert len(found) < 500
    return len(found)


def test_a_node_killed_mid_load_loses_no_chain_and_raises_no_false_alarm(setup: Setup) -> None:
    cluster = setup.cluster
    victim = cluster.nodes[1]
    alarms = security_events(setup)
    counts: Counter[str] = Counter()
    try:
        with following(cluster.url, setup.secrets["rp"], CHAINS, counts) as chains:
            wait_for(lambda: counts["ok"] >= 30, timeout=30)  # every node is busy rotating
            cluster.kill(victim)
            at_kill = counts["ok"]
            # The chains go on through the two survivors.
            wait_for(lambda: counts["ok"] >= at_kill + 60, timeout=30)
        lost = [c.lost for c in chains if c.lost]
        print(f"\nanswers {dict(counts)}; lost chains {len(lost)}")
        assert lost == [], lost
        # Each chain continues afterwards, on each surviving node.
        survivors = [n for n in cluster.nodes if n.alive()]
        assert len(survivors) == len(cluster.nodes) - 1
        for chain in chains:
            for node in survivors:
                resp = setup.refresh(node.url, "rp", chain.token)
                assert resp.status_code == 200, (node.name, resp.text)
                chain.token = resp.json()["refresh_token"]
        assert security_events(setup) == alarms
    finally:
        if not victim.alive():
            cluster.revive(victim)
