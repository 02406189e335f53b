"""Three idp nodes behind a real HAProxy, sharing one PostgreSQL database and one Redis
key prefix (issue 14 item 3): the shape of a several-machine deployment, on loopback.

Each node is its own ``idp serve`` (one worker: the machine has two cores) with its own
port, instance folder, in-process caches and background threads. They share the issuer
(the balancer's URL), ``IDP_KEK`` and the secret key, as nodes of one deployment must.
HAProxy runs in the foreground (``-db``) from a generated configuration: round robin,
health checks on ``/readyz``, and the name of the node that answered in ``X-Idp-Node``.

Tests reach the cluster through the balancer (``Cluster.url``) or one node directly
(``Node.url``), and change it through the admin API or the CLI only."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from sqlalchemy.engine import make_url

from tests.conftest import TEST_KEK
from tests.support.live import free_ports
from tests.support.scrape import Samples, scrape_url
from tests.support.server import ROOT, env_for

HAPROXY = "/usr/sbin/haproxy"
NODES = 3
START_SECONDS = 60  # the most a node or the balancer may take to answer
NODE_HEADER = "X-Idp-Node"
SECRET_KEY = "cluster-test-secret-key"
JANITOR_EVERY = 1  # seconds: the janitor test counts its runs
# A Prometheus scrape: (sample name, sorted labels) -> value, added up across the nodes.


def wait_until_up(url: str, proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    """Until ``url`` answers 200, bounded; fails with the process's log if it exits."""
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text()[-3000:] if log.exists() else ""
            raise RuntimeError(f"{what} did not start (exit {proc.returncode}):\n{tail}")
        time.sleep(0.1)


def stop(proc: subprocess.Popen[bytes] | None, grace: float = 10) -> None:
    """Ends ``proc``'s process group (started with start_new_session): TERM, then KILL,
    which also ends a worker left behind by a server that died first."""
    if proc is None:
        return
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@dataclass
class Node:
    name: str
    port: int
    home: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.home / "serve.log"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class Cluster:
    database_url: str
    redis_url: str
    prefix: str
    home: Path
    port: int = 0  # the balancer's
    gone_port: int = 0  # the database's first host: nothing listens there
    nodes: list[Node] = field(default_factory=list)
    balancer: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.port, self.gone_port, *node_ports = free_ports(NODES + 2)
        for i, port in enumerate(node_ports, 1):
            home = self.home / f"node{i}"
            home.mkdir()
            self.nodes.append(Node(f"node{i}", port, home))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self, node: Node | None = None) -> dict[str, Any]:
        instance = node.home if node else self.home
        return {
            "server": {
                "instance_path": str(instance),
                "secret_key": SECRET_KEY,
                "migrate_on_start": False,
                "trusted_proxies": 1,  # HAProxy adds X-Forwarded-For
            },
            "database": {"url": self.failover_url(), "pool_size": 5, "pool_overflow": 5},
            "redis": {"url": self.redis_url, "prefix": self.prefix},
            "keys": {"kek": TEST_KEK},
            # The shipped grace interval: a retry after a lost answer gets the same child.
            "tokens": {"refresh_reuse_grace_seconds": 10},
            "retention": {"janitor_every_seconds": JANITOR_EVERY},
            "outbound": {"allow_loopback": True},
            "log": {"format": "json", "level": "INFO"},
        }

    def failover_url(self) -> str:
        """The database URL in the form that follows a PostgreSQL failover without a
        proxy (deploy/README.md): several hosts, the first one that accepts writes. The
        first host here is a port nothing listens on (a primary that is gone)."""
        url = make_url(self.database_url)
        hosts = f"host={url.host}:{self.gone_port}&host={url.host}:{url.port or 5432}"
        return (
            f"{url.drivername}://{url.username}@/{url.database}?{hosts}"
            "&target_session_attrs=read-write"
        )

    def env(self, node: Node | None = None) -> dict[str, str]:
        env = env_for(self.config(node), self.url)
        # A killed node leaves its metrics directory behind: under the test's folder.
        env["TMPDIR"] = str((node or self).home)
        return env

    # --- the CLI against the shared database ---------------------------------------
    def cli(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "idp.cli", *args],
            env=self.env(),
            cwd=ROOT,
            input=stdin.encode() if stdin is not None else None,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout.decode()

    def cli_json(self, *args: str, stdin: str | None = None) -> dict[str, Any]:
        return dict(json.loads(self.cli(*args, stdin=stdin)))

    # --- nodes and the balancer -------------------------------------------------------
    def spawn(self, node: Node) -> None:
        out = open(node.log, "a")  # noqa: SIM115 - the child holds it; closed below
        try:
            node.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "idp.cli",
                    "serve",
                    "--port",
                    str(node.port),
                    "--workers",
                    "1",
                    "--threads",
                    "4",
                ],
                env=self.env(node),
                cwd=ROOT,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        finally:
            out.close()

    def start(self) -> None:
        for node in self.nodes:
            self.spawn(node)
        for node in self.nodes:
            assert node.proc is not None
            wait_until_up(node.url + "/readyz", node.proc, node.name, node.log)
        self.start_balancer()

    def start_balancer(self) -> None:
        cfg = self.home / "haproxy.cfg"
        servers = "\n".join(f"    server {n.name} 127.0.0.1:{n.port} check" for n in self.nodes)
        cfg.write_text(
            f"""global
    maxconn 1024

defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    retries 3
    option redispatch 1
    option forwardfor

frontend idp
    bind 127.0.0.1:{self.port}
    default_backend nodes

backend nodes
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 200ms fall 1 rise 1
    http-response set-header {NODE_HEADER} %s
{servers}
"""
        )
        log = self.home / "haproxy.log"
        with open(log, "w") as out:
            self.balancer = subprocess.Popen(
                [HAPROXY, "-db", "-f", str(cfg)],
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        wait_until_up(self.url + "/healthz", self.balancer, "haproxy", log)
        self.wait_balanced({n.name for n in self.nodes if n.alive()})

    def wait_balanced(self, names: set[str]) -> None:
        """Until the balancer has sent a request to each of ``names`` (bounded)."""
        seen: set[str] = set()
        deadline = time.monotonic() + START_SECONDS
        while not names <= seen:
            assert time.monotonic() < deadline, f"balancer reached only {seen} of {names}"
            try:
                resp = requests.get(self.url + "/healthz", timeout=2)
                seen.add(resp.headers.get(NODE_HEADER, ""))
            except requests.RequestException:
                time.sleep(0.1)

    def kill(self, node: Node) -> None:
        """SIGKILL to the node's whole process group: the machine is gone."""
        assert node.proc is not None
        os.killpg(node.proc.pid, signal.SIGKILL)
        node.proc.wait()

    def revive(self, node: Node) -> None:
        """Starts a killed node again on its port and waits until the balancer uses it."""
        self.spawn(node)
        assert node.proc is not None
        wait_until_up(node.url + "/readyz", node.proc, node.name, node.log)
        self.wait_balanced({n.name for n in self.nodes})

    def close(self) -> None:
        stop(self.balancer, 5)
        for node in self.nodes:
            stop(node.proc)

    # --- observing ------------------------------------------------------------------------
    def metrics(self) -> Samples:
        """Every sample of every live node's /metrics, added up across the nodes."""
        total: Samples = {}
        for node in self.nodes:
            if node.alive():
                for key, value in scrape_url(node.url).items():
                    total[key] = total.get(key, 0.0) + value
        return total

    def log_lines(self, node: Node) -> Iterator[dict[str, Any]]:
        for line in node.log.read_text().splitlines():
            with contextlib.suppress(ValueError):
                yield json.loads(line)
