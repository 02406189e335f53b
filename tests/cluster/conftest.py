"""The cluster the tests in this folder share: started once per session (three nodes
take seconds to start), on PostgreSQL and Redis only."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.cluster import HAPROXY, Cluster
from tests.cluster.flows import Setup
from tests.support.auth import PASSWORD
from tests.support.databases import REDIS_URL, clear_redis, postgres_database, redis_prefix

CHAIN_REDIRECT = "http://127.0.0.1/cb"  # tests.chaos.chains follows client "rp" there


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
    """The users and clients the tests use, made with the CLI as an operator would."""
    users: dict[str, str] = {}
    for user in ("alice", "bob", "carol", "dave"):
        users[user] = cluster.cli_json(
            "users", "create", user, "--password-stdin", "--email", f"{user}@example.test",
            stdin=PASSWORD + "\n",
        )["id"]
    secrets: dict[str, str] = {}
    for client_id, extra in {
        # tests.chaos.chains follows refresh chains of client "rp".
        "rp": ["--first-party", "--redirect-uri", CHAIN_REDIRECT],
        # A third-party app: its login asks for consent.
        "shop": ["--redirect-uri", CHAIN_REDIRECT],
        "racer": ["--first-party", "--redirect-uri", CHAIN_REDIRECT],
        "watch": ["--first-party", "--redirect-uri", CHAIN_REDIRECT],
    }.items():
        made = cluster.cli_json(
            "clients", "create", client_id, "--grant", "authorization_code",
            "--grant", "refresh_token", "--scope", "openid email offline_access", *extra,
        )
        secrets[client_id] = made["client_secret"]
    for client_id, extra in {
        "ops": ["--admin-client", "--scope", "idp:admin"],
        "api": ["--scope", "api"],  # introspects
        "rotor": ["--scope", "api"],  # has its secret rotated
    }.items():
        made = cluster.cli_json(
            "clients", "create", client_id, "--grant", "client_credentials",
            "--redirect-uri", "https://unused.example.test/cb", *extra,
        )
        secrets[client_id] = made["client_secret"]
    return Setup(cluster, secrets, users)
