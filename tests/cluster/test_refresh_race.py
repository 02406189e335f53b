"""32 simultaneous refreshes of one token, spread over the three nodes' own ports: one
rotation in the whole cluster (SPEC §6 "Refresh-token chains": on any number of idp
processes exactly one succeeds).

The cluster runs the shipped grace interval (10 s), so the 31 that lose the race are
handed the winner's child (a client that lost its answer must not look like a thief):
one winner shows as one child, the same in all 32 answers, and one rotation counted.
Then the family is handled as tests/refresh expect: the child goes on, and the spent
parent presented after its child was used is reuse that revokes the family."""

from __future__ import annotations

import threading

import pytest
import requests

from tests.cluster.flows import Setup
from tests.support.scrape import moved, value

pytestmark = pytest.mark.slow

RACERS = 32


def test_32_refreshes_of_one_token_on_three_nodes_rotate_it_once(setup: Setup) -> None:
    cluster = setup.cluster
    first = setup.login("racer", "carol").tokens["refresh_token"]
    before = cluster.metrics()
    barrier = threading.Barrier(RACERS)
    answers: list[tuple[str, requests.Response]] = []
    lock = threading.Lock()

    def refresh(i: int) -> None:
        node = cluster.nodes[i % len(cluster.nodes)]
        barrier.wait()
        resp = setup.refresh(node.url, "racer", first)
        with lock:
            answers.append((node.name, resp))

    threads = [threading.Thread(target=refresh, args=(i,)) for i in range(RACERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(answers) == RACERS
    assert {name for name, _ in answers} == {n.name for n in cluster.nodes}
    codes = [resp.status_code for _, resp in answers]
    assert codes == [200] * RACERS, [r.text for _, r in answers if r.status_code != 200]
    children = {resp.json()["refresh_token"] for _, resp in answers}
    assert len(children) == 1, "more than one node rotated the token"
    after = cluster.metrics()
    rotations = "idp_refresh_rotations_total"
    assert moved(before, after, rotations, kind="rotation") == 1
    assert moved(before, after, rotations, kind="grace_replay") == RACERS - 1

    # The child goes on, on any node.
    [child] = children
    grandchild = setup.refresh(cluster.url, "racer", child)
    assert grandchild.status_code == 200, grandchild.text
    # The parent again, now that its child is spent: reuse, on whichever node sees it;
    # the whole family is revoked everywhere, the newest token included.
    again = setup.refresh(cluster.nodes[0].url, "racer", first)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    for node in cluster.nodes:
        resp = setup.refresh(node.url, "racer", grandchild.json()["refresh_token"])
        assert resp.status_code == 400, (node.name, resp.text)
        assert resp.json()["error"] == "invalid_grant"
    reuse = "idp_refresh_reuse_detected_total"
    assert value(cluster.metrics(), reuse, client_id="racer") == 1
