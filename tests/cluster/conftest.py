"""The cluster the tests in this folder share: started once per session (three nodes
take seconds to start), on PostgreSQL and Redis only."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.cluster import HAPROXY, Cluster
from tests.cluster.flows import REDIRECT, Setup
from tests.support.auth import PASSWORD
from tests.support.databases import REDIS_URL, clear_redis, postgres_database, redis_prefix


@pytest.fixture(scope="session")
def cluster(backend: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if backend["name"] != "postgresql":
        pytest.skip("several nodes share a database server: PostgreSQL and Redis only")
    if not os.access(HAPROXY, os.X_OK):
        pytest.skip("needs HAProxy (make services installs it)")
    home: Path = tmp_path_factory.mktemp("cluster")
    prefix = redis_prefix()
    with postgres_database() as url:
        cluster = Cluster(url, REDIS_URL, prefix, home)
        try:
            cluster.cli("db", "upgrade")  # as the migration Job does, before any node
            cluster.start()
            yield cluster
        finally:
            cluster.close()
            clear_redis(prefix)


@pytest.fixture(scope="session")
def setup(cluster: Cluster) -> Setup:
    """The users and clients the tests use: the operator's first admin client from the
    CLI, the rest through the admin API on the balancer."""
    ops = cluster.cli_json(
        "clients", "create", "ops", "--grant", "client_credentials", "--admin-client",
        "--scope", "idp:admin", "--redirect-uri", "https://unused.example.test/cb",
    )  # fmt: skip
    setup = Setup(cluster, {"ops": ops["client_secret"]})
    for user in ("alice", "bob", "carol", "dave"):
        made = setup.admin(
            cluster.url,
            "/users",
            {"username": user, "password": PASSWORD, "email": f"{user}@example.test"},
        )
        setup.users[user] = made["id"]
    logins: dict[str, Any] = {
        "grant_types": ["authorization_code", "refresh_token"],
        "redirect_uris": [REDIRECT],
    }
    machines: dict[str, Any] = {"grant_types": ["client_credentials"], "scope": "api"}
    clients: dict[str, dict[str, Any]] = {
        # tests.chaos.chains follows refresh chains of client "rp" to the same REDIRECT.
        "rp": {**logins, "first_party": True},
        "shop": {**logins, "name": "Shop"},  # a third-party app: its login asks for consent
        "racer": {**logins, "first_party": True},
        "watch": {**logins, "first_party": True},
        "api": machines,  # introspects
        "rotor": machines,  # has its secret rotated
    }
    for client_id, metadata in clients.items():
        scope = {"scope": "openid email offline_access"} if "scope" not in metadata else {}
        made = setup.admin(cluster.url, "/clients", {"client_id": client_id, **scope, **metadata})
        setup.secrets[client_id] = made["client_secret"]
    return setup
