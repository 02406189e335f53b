"""A browser's login through the balancer: its steps land on different nodes, which
share the login's state (CSRF, the pending authorization, the code) through PostgreSQL,
Redis and the shared secret key."""

from __future__ import annotations

import pytest
import requests

from tests.cluster.cluster import NODE_HEADER
from tests.cluster.flows import Setup

pytestmark = pytest.mark.slow


def test_a_login_with_consent_works_with_its_steps_on_different_nodes(setup: Setup) -> None:
    done = setup.login("shop", "alice")
    print("\nsteps answered by", done.nodes)
    # authorize, login page, login post, authorize again, consent post, token
    assert len(done.nodes) == 6, done.nodes
    assert len(set(done.nodes)) >= 2, done.nodes
    assert set(done.nodes) <= {n.name for n in setup.cluster.nodes}, done.nodes
    # The access token works on every node, the one that issued it or not.
    for node in setup.cluster.nodes:
        resp = requests.get(
            node.url + "/userinfo",
            headers={"Authorization": "Bearer " + done.tokens["access_token"]},
            timeout=10,
        )
        assert resp.status_code == 200, (node.name, resp.text)
        assert resp.json()["email"] == "alice@example.test"
    # Its issuer is the balancer's URL, whichever node signed it.
    config = requests.get(setup.cluster.url + "/.well-known/openid-configuration", timeout=10)
    assert config.json()["issuer"] == setup.cluster.url
    assert config.headers[NODE_HEADER]
