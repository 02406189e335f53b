"""idp as deployed: `idp serve` (its production server, several worker processes) on
127.0.0.1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from tests.support.live import free_port

ROOT = Path(__file__).resolve().parents[2]


def env_for(config: dict[str, Any], url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env["IDP_CONFIG"] = os.devnull
    for section, values in config.items():
        for key, value in values.items():
            env[f"IDP_{section.upper()}__{key.upper()}"] = (
                str(value).lower() if isinstance(value, bool) else str(value)
            )
    env["IDP_SERVER__ISSUER"] = url
    return env


def workers_of(pid: int) -> set[int]:
    """The child processes of ``pid`` (``idp serve``'s workers), from /proc. A thread of
    the server may end while its tasks are listed: its entry is then gone, and skipped."""
    children: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "children").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        children |= {int(c) for c in text.split()}
    return children


@dataclass
class Served:
    url: str
    process: subprocess.Popen[bytes]


@contextmanager
def idp_serve(
    config: dict[str, Any], workers: int = 4, threads: int = 4, log: Path | None = None
) -> Iterator[Served]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    out = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "idp.cli",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--threads",
            str(threads),
        ],
        env=env_for(config, url),
        cwd=ROOT,
        stdout=out,
        stderr=out,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(url + "/healthz", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"idp serve did not start (exit {proc.returncode})")
            time.sleep(0.2)
        time.sleep(0.5)
        if proc.poll() is not None:  # it could not bind: what answered was another server
            raise RuntimeError(f"idp serve exited at start (exit {proc.returncode})")
        yield Served(url, proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(40)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if log:
            out.close()  # type: ignore[union-attr]
