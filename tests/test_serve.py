"""`idp serve` (SPEC §5): the production server deploy/ runs, its workers, its admin
port, and what happens when a worker dies or the server is told to stop."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest
import requests

from tests.conftest import make_config
from tests.support.live import free_port
from tests.support.server import idp_serve, workers_of
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow


# Starting or replacing a worker process: up to 20 s on a loaded machine.
WORKERS_TIMEOUT = 20.0


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_killed_worker_is_replaced_and_the_others_keep_answering(backend, tmp_path):
    with idp_serve(make_config(backend, tmp_path), workers=2, threads=2) as served:
        workers = wait_for(
            lambda: len(w := workers_of(served.process.pid)) == 2 and w, WORKERS_TIMEOUT
        )
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        # A connection the dying worker had taken is reset, as from any crashed server;
        # the client retries it (on a new connection), and the other worker answers.
        for _ in range(20):
            assert get_retrying(served.url + "/jwks.json").status_code == 200
        replaced = wait_for(
            lambda: len(w := workers_of(served.process.pid)) == 2 and victim not in w and w,
            WORKERS_TIMEOUT,
        )
        assert replaced - workers
        assert requests.get(served.url + "/healthz", timeout=10).status_code == 200


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sigterm_stops_the_server_cleanly(backend, tmp_path):
    with idp_serve(make_config(backend, tmp_path), workers=2) as served:
        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(timeout=40) == 0


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_with_an_admin_port_the_dashboard_is_only_there(backend, tmp_path):
    admin_port = free_port()
    # As deploy/k8s runs it: the admin port set, and no migration on start (the database
    # is at head, so the server starts).
    config = make_config(
        backend, tmp_path, admin={"port": admin_port}, server={"migrate_on_start": False}
    )
    with idp_serve(config, workers=1) as served:
        assert requests.get(served.url + "/admin/", timeout=10).status_code == 404
        dashboard = wait_for(lambda: _get(f"http://127.0.0.1:{admin_port}/"), timeout=30)
        # Not signed in: the dashboard sends people to the public login page.
        assert dashboard.status_code == 303
        assert dashboard.headers["Location"] == served.url + "/login"
        # Metrics are where the dashboard is, and only there.
        assert requests.get(served.url + "/metrics", timeout=10).status_code == 404
        metrics = requests.get(f"http://127.0.0.1:{admin_port}/metrics", timeout=10)
        assert metrics.status_code == 200 and "idp_live_sessions" in metrics.text
        # The admin process adds up the public workers' counts too.
        assert 'route="/healthz"' in metrics.text


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_metrics_add_up_the_counts_of_every_worker(backend, tmp_path, monkeypatch):
    """Each worker counts into its own files; whichever answers /metrics adds them all up,
    and the directory is idp serve's own, removed when it stops."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # where idp serve makes its directory
    with idp_serve(make_config(backend, tmp_path), workers=2, threads=2) as served:
        [directory] = tmp_path.glob("idp-metrics-*")
        assert directory.stat().st_mode & 0o077 == 0, "readable by idp's user only"
        workers = wait_for(
            lambda: len(w := workers_of(served.process.pid)) == 2 and w, WORKERS_TIMEOUT
        )

        def counted_in() -> set[int]:
            return {int(f.stem.rpartition("_")[2]) for f in directory.glob("histogram_*.db")}

        sent = 0
        while not workers <= counted_in():  # until both workers have answered some
            assert requests.get(served.url + "/jwks.json", timeout=10).status_code == 200
            sent += 1
            assert sent < 1000, "one worker answered everything"
        for _ in range(3):  # whichever worker answers the scrape
            text = requests.get(served.url + "/metrics", timeout=10).text
            found = re.search(
                r'^idp_http_request_duration_seconds_count\{[^}]*route="/jwks.json"[^}]*\} (\S+)$',
                text,
                re.M,
            )
            assert found is not None and float(found.group(1)) == sent
    assert not directory.exists(), "removed when idp serve stops"


def get_retrying(url: str, tries: int = 5) -> requests.Response:
    for _ in range(tries - 1):
        try:
            return requests.get(url, timeout=10)
        except requests.ConnectionError:
            time.sleep(0.1)
    return requests.get(url, timeout=10)


def _get(url: str) -> requests.Response | None:
    try:
        return requests.get(url, timeout=5, allow_redirects=False)
    except requests.RequestException:
        return None


ARENAS_PROBE = """
import ctypes, os, sys, threading
from idp.serve import limit_malloc_arenas
print(limit_malloc_arenas(), flush=True)
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
def churn():  # ctypes lets go of the GIL: the threads meet in malloc
    for _ in range(3000):
        libc.free(libc.malloc(1 << 17))
threads = [threading.Thread(target=churn) for _ in range(16)]
for t in threads: t.start()
for t in threads: t.join()
libc.malloc_stats()  # one "Arena N:" block per arena, on stderr
"""


@pytest.mark.skipif(os.confstr("CS_GNU_LIBC_VERSION") is None, reason="glibc only")
def test_workers_share_two_malloc_arenas_unless_the_operator_says_otherwise():
    run = subprocess.run(
        [sys.executable, "-c", ARENAS_PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    assert run.stdout.split() == ["True"]
    assert 1 <= run.stderr.count("Arena ") <= 2, run.stderr
    env = {**os.environ, "MALLOC_ARENA_MAX": "4"}
    kept = subprocess.run(
        [sys.executable, "-c", ARENAS_PROBE],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=env,
    )
    assert kept.stdout.split() == ["False"]
