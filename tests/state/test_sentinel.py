"""``[redis] url = "redis+sentinel://..."`` (idp.state.redis_client): idp finds the
primary through a real Redis Sentinel and follows it when Sentinel fails over to the
replica. Runs its own primary, replica and Sentinel (redis-server), never the shared
Redis of the suite."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from idp import create_app, migrate
from idp.state.store import RedisStateStore
from tests.conftest import TEST_KEK
from tests.support.clock import FrozenClock
from tests.support.databases import redis_prefix
from tests.support.live import free_ports
from tests.support.waiting import wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server"),
]

SERVICE = "idp"


@dataclass
class Sentinelled:
    primary: int
    replica: int
    sentinel: int
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel}/{SERVICE}"

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_timeout=2)

    def primary_now(self) -> int:
        _, port = self.client(self.sentinel).execute_command(
            "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE
        )
        return int(port)


def in_sync(s: Sentinelled) -> bool:
    try:
        return s.client(s.replica).info("replication").get("master_link_status") == "up"
    except redis.RedisError:
        return False


def replica_known(s: Sentinelled) -> bool:
    """The replica is in sync and the Sentinel knows it (a failover needs both)."""
    try:
        info = s.client(s.replica).info("replication")
        replicas = s.client(s.sentinel).sentinel_slaves(SERVICE)
    except redis.RedisError:
        return False
    return info.get("master_link_status") == "up" and any(
        not (r.get("is_sdown") or r.get("is_odown") or r.get("is_disconnected")) for r in replicas
    )


@pytest.fixture
def sentinelled(tmp_path: Path) -> Iterator[Sentinelled]:
    primary, replica, sentinel = free_ports(3)
    s = Sentinelled(primary, replica, sentinel)
    conf = tmp_path / "sentinel.conf"  # Sentinel rewrites its file: a writable copy
    conf.write_text(
        f"port {sentinel}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"sentinel monitor {SERVICE} 127.0.0.1 {primary} 1\n"
        f"sentinel down-after-milliseconds {SERVICE} 1000\n"
        f"sentinel failover-timeout {SERVICE} 10000\n"
    )
    common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp_path)]
    common += ["--repl-diskless-sync-delay", "0"]  # the replica syncs at once
    commands = [
        ["redis-server", "--port", str(primary), *common],
        ["redis-server", "--port", str(replica), *common, "--replicaof", "127.0.0.1", str(primary)],
        ["redis-server", str(conf), "--sentinel"],
    ]
    procs = s.procs
    try:
        for command in commands:
            procs.append(
                subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )
            if len(procs) == 2:  # the Sentinel learns of the replica from the primary
                wait_for(lambda: in_sync(s), timeout=20, every=0.05)
        wait_for(lambda: replica_known(s), timeout=20, every=0.1)
        yield s
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_the_state_store_finds_the_primary_and_follows_a_failover(
    sentinelled: Sentinelled,
) -> None:
    s = sentinelled
    prefix = redis_prefix()
    clock = FrozenClock()
    store = RedisStateStore(s.url, prefix, clock)
    store.deny("sid:before", clock.now().replace(year=clock.now().year + 1))
    assert store.add_once("lease:janitor", 600)
    assert s.client(s.primary).exists(prefix + "sid:before")
    wait_for(lambda: s.client(s.replica).exists(prefix + "lease:janitor"), timeout=10)

    # The primary's machine dies; Sentinel sees it down after a second and promotes
    # the replica.
    s.procs[0].kill()
    s.procs[0].wait()
    wait_for(lambda: s.primary_now() == s.replica, timeout=30, every=0.1)

    def written_to_the_new_primary() -> bool:
        # The client's connection to the dead primary fails; it asks Sentinel again.
        try:
            store.hit("login:after", 60)
        except redis.RedisError:
            return False
        return bool(s.client(s.replica).exists(prefix + "login:after"))

    wait_for(written_to_the_new_primary, timeout=30, every=0.1)
    # What was replicated before the failover is still there.
    assert store.is_denied("sid:before")
    assert not store.add_once("lease:janitor", 600)


def test_idp_starts_on_a_sentinel_url_and_reports_redis_ready(
    sentinelled: Sentinelled, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/idp.db"
    migrate.upgrade(url)
    app = create_app(
        {
            "server": {"instance_path": str(tmp_path), "secret_key": "k"},
            "database": {"url": url},
            "redis": {"url": sentinelled.url, "prefix": redis_prefix()},
            "keys": {"kek": TEST_KEK},
        }
    )
    try:
        ready = app.test_client().get("/readyz")
        assert ready.status_code == 200
        assert ready.get_json()["checks"] == {"database": "ok", "redis": "ok"}
    finally:
        app.extensions["idp"].close()
