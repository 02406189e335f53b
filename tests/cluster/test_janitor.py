"""The janitor runs once per interval in the whole cluster (idp/janitor.py: the node
that first takes the lease in the shared Redis runs it). The cluster's interval is one
second and HAProxy's health checks keep every node busy, so each node tries every
second; the runs are read from the nodes' JSON logs."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.cluster.cluster import JANITOR_EVERY, Cluster
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow

RUNS = 5


def runs(cluster: Cluster, since: dt.datetime) -> list[tuple[dt.datetime, str]]:
    """(when, node) of every janitor run logged after ``since``, oldest first."""
    found = []
    for node in cluster.nodes:
        for line in cluster.log_lines(node):
            if str(line.get("msg", "")).startswith("janitor purged"):
                at = dt.datetime.fromisoformat(line["ts"].replace("Z", "+00:00"))
                if at > since:
                    found.append((at, node.name))
    return sorted(found)


def test_the_janitor_runs_once_per_interval_in_the_cluster(cluster: Cluster) -> None:
    since = dt.datetime.now(dt.UTC)
    found = wait_for(lambda: len(r := runs(cluster, since)) >= RUNS and r, timeout=RUNS * 4)
    print("\njanitor runs:", [(at.strftime("%S.%f")[:6], node) for at, node in found])
    gaps = [(b[0] - a[0]).total_seconds() for a, b in zip(found, found[1:], strict=False)]
    # A run is logged when its purge ends, so two runs a period apart may log a little
    # less than a period apart; two runs in one period (three nodes without the lease
    # would run about three times a second) would log far less.
    assert min(gaps) >= JANITOR_EVERY / 2, gaps
