"""The servers the benchmarks run, and what they cost in CPU and memory: idp, and
node-oidc-provider for the side-by-side benchmark, each in its own process group.

``start_idp_server`` is the one place that decides how idp is served: ``idp serve
--workers N`` when that command has a ``--workers`` option (it runs granian), gunicorn
(gthread) otherwise, or either of them by name for the server trial. The side-by-side
benchmark pins every server to one core (``taskset -c SERVER_CPU``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"  # server logs (ignored by git)
PEER = ROOT / "bench" / "peer"
HOST = "127.0.0.1"
SERVER_CPU = "0"  # every server process runs on this core ...
CLIENT_CPU = "1"  # ... and every load generator (and compare.py itself) on this one
SERVERS = ("auto", "idp-serve", "gunicorn", "granian")
GRACE_SECONDS = 35  # idp serve gives requests 30 s after SIGTERM
TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


class BenchError(RuntimeError):
    """A setup could not be measured (or its numbers cannot be trusted)."""


def tool(name: str) -> str:
    """A console script of the project's venv (the scripts may be run by any python)."""
    for folder in (Path(sys.executable).parent, ROOT / ".venv" / "bin"):
        if (folder / name).exists():
            return str(folder / name)
    found = shutil.which(name)
    if not found:
        raise BenchError(f"{name} not found (run `make install` / `make services`)")
    return found


# --- processes --------------------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (Linux /proc)."""
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            continue
    return tree


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far."""
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / TICKS


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE_KB / 1024
    except OSError:
        return float("nan")


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop_process_group(proc: subprocess.Popen[Any], grace: float) -> None:
    """SIGTERM to the group (a graceful stop), SIGKILL if it lingers."""
    if proc.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            pass
    # The parent is gone or stuck; make sure no worker of its group survives.
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


@dataclass
class Running:
    """A server under test: its label, URL and process group."""

    label: str
    url: str
    pid: int
    log_path: Path

    def pids(self) -> list[int]:
        return process_tree(self.pid)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pids())

    def worker_pids(self) -> list[int]:
        """The processes that serve requests: the leaves of the tree (gunicorn's and
        granian's workers; node's single process)."""
        tree = self.pids()
        parents = set()
        for p in tree:
            try:
                with open(f"/proc/{p}/stat") as f:
                    parents.add(int(f.read().rsplit(")", 1)[1].split()[1]))
            except OSError:
                continue
        return [p for p in tree if p not in parents] or [self.pid]

    def worker_rss_mb(self) -> float:
        return sum(rss_mb(p) for p in self.worker_pids())

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def _serve(
    label: str,
    cmd: list[str],
    env: Mapping[str, str],
    url: str,
    ready_path: str,
    log_path: Path,
    cpus: str | None,
    cwd: Path = ROOT,
    grace: float = GRACE_SECONDS,
    ready_timeout: float = 60,
) -> Iterator[Running]:
    """Starts ``cmd`` (on ``cpus`` if given) in its own process group; yields once
    ``ready_path`` answers 200; always stops the whole group afterwards."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            ["taskset", "-c", cpus, *cmd] if cpus else cmd,
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if proc.poll() is not None:
                raise BenchError(
                    f"{label} exited with {proc.returncode}; log {log_path}:\n{log_tail(log_path)}"
                )
            try:
                if requests.get(url + ready_path, timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise BenchError(f"no answer from {url}{ready_path} in {ready_timeout:.0f} s")
            time.sleep(0.2)
        yield Running(label, url, proc.pid, log_path)
    finally:
        stop_process_group(proc, grace=grace)


# --- idp ------------------------------------------------------------------------------


@cache
def serve_has_workers() -> bool:
    """Whether ``idp serve`` chooses a production server itself (it has ``--workers``)."""
    proc = subprocess.run(
        [tool("idp"), "serve", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    return proc.returncode == 0 and "--workers" in proc.stdout


def idp_command(
    port: int, workers: int | None, threads: int | None, server: str
) -> tuple[str, list[str]]:
    """(label, command) of idp on 127.0.0.1:``port``; ``None`` workers or threads: the
    server's own default."""
    if server == "auto":
        server = "idp-serve" if serve_has_workers() else "gunicorn"
    if server == "idp-serve":
        cmd = [tool("idp"), "serve", "--host", HOST, "--port", str(port)]
        cmd += ["--workers", str(workers)] if workers else []
        cmd += ["--threads", str(threads)] if threads else []
        label = (
            f"idp serve, {workers or 'one per CPU'} worker(s) × "
            f"{threads or '[server] threads'} threads"
        )
        return label, cmd
    if server == "gunicorn":
        workers = workers or len(os.sched_getaffinity(0))
        threads = threads or 2
        cmd = [
            tool("gunicorn"),
            *("--bind", f"{HOST}:{port}", "--workers", str(workers)),
            *("--worker-class", "gthread", "--threads", str(threads), "--keep-alive", "5"),
            "idp.wsgi:app",
        ]
        return f"gunicorn, {workers} gthread worker(s) × {threads} threads", cmd
    if server == "granian":
        workers, threads = workers or 1, threads or 1
        cmd = [
            tool("granian"),
            *("--interface", "wsgi", "--host", HOST, "--port", str(port), "--http", "1"),
            *("--workers", str(workers), "--blocking-threads", str(threads), "--no-ws"),
            "idp.wsgi:app",
        ]
        return f"granian (WSGI), {workers} worker(s) × {threads} blocking threads", cmd
    raise BenchError(f"unknown server {server!r}; one of {', '.join(SERVERS)}")


def issuer_port(env: Mapping[str, str]) -> int:
    """The port of IDP_SERVER__ISSUER (http://127.0.0.1:PORT), where idp must listen."""
    issuer = urlsplit(env.get("IDP_SERVER__ISSUER", ""))
    if issuer.hostname != HOST or not issuer.port:
        raise BenchError(f"IDP_SERVER__ISSUER must be http://{HOST}:PORT, not {issuer.geturl()!r}")
    return issuer.port


@contextmanager
def start_idp_server(
    env: Mapping[str, str],
    *,
    workers: int | None = 1,
    threads: int | None = None,
    server: str = "auto",
    cpus: str | None = SERVER_CPU,
    log_path: Path | None = None,
) -> Iterator[Running]:
    """idp on the port of its issuer (``idp_env`` sets both), with ``workers`` workers of
    ``threads`` threads, pinned to ``cpus`` (None: any core). ``server`` is ``auto``
    (``idp serve`` if it has ``--workers``, else gunicorn), ``idp-serve``, ``gunicorn``
    or ``granian``."""
    port = issuer_port(env)
    label, cmd = idp_command(port, workers, threads, server)
    with _serve(
        label,
        cmd,
        env,
        f"http://{HOST}:{port}",
        "/healthz",
        log_path or OUT / f"idp-{port}.log",
        cpus,
    ) as running:
        yield running


# --- node-oidc-provider ---------------------------------------------------------------


def peer_version() -> str:
    """The installed oidc-provider version; installs bench/peer's lockfile if needed."""
    installed = PEER / "node_modules" / "oidc-provider" / "package.json"
    if not installed.exists():
        print("npm ci in bench/peer (node-oidc-provider)", flush=True)
        subprocess.run(
            ["npm", "ci", "--silent", "--no-audit", "--no-fund"],
            cwd=PEER,
            check=True,
            timeout=600,
        )
    return str(json.loads(installed.read_text())["version"])


def node_version() -> str:
    try:
        out = subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=30)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "not found"


@contextmanager
def start_peer(port: int, secrets: Mapping[str, str]) -> Iterator[Running]:
    """bench/peer/server.mjs (node-oidc-provider) on 127.0.0.1:``port``, pinned to
    SERVER_CPU, with the three clients' secrets."""
    version = peer_version()
    env: dict[str, Any] = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env.update(PEER_SECRETS=json.dumps(dict(secrets)), NODE_ENV="production")
    with _serve(
        f"node-oidc-provider {version} (node {node_version()}, memory adapter)",
        ["node", "server.mjs", str(port)],
        env,
        f"http://{HOST}:{port}",
        "/.well-known/openid-configuration",
        OUT / f"peer-{port}.log",
        SERVER_CPU,
        cwd=PEER,
        grace=10,
    ) as running:
        yield running
