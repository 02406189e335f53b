#!/usr/bin/env python3
"""Throughput and latency of idp as deployed (``idp serve``, one worker per CPU) on
127.0.0.1, written to bench/RESULTS.md.

For each setup (SQLite in a temporary instance folder; PostgreSQL + Redis in a
temporary database and Redis key prefix) this migrates a fresh database, registers
a client_credentials client, starts idp on a free port, checks one /token answer by
hand, then loads /token and /jwks.json with wrk.

    .venv/bin/python bench/run.py                # both setups, 10 s per endpoint
    .venv/bin/python bench/run.py --duration 5 --only postgresql

The pieces are importable by later benchmarks (``from bench.run import start_idp``
from the repository root, or ``from run import ...`` from a script in bench/):
``sqlite_setup``/``postgresql_setup`` give a throwaway database, ``idp_env``
the environment for it, ``start_idp`` a running idp (through
``servers.start_idp_server``), ``run_wrk`` one wrk run, and ``write_results`` replaces
one named section of RESULTS.md, leaving the other sections alone. Server logs go to
bench/out/ (ignored by git).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import re
import resource
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests
from servers import HOST, OUT, ROOT, BenchError, Running, start_idp_server, tool

BENCH = ROOT / "bench"
RESULTS = BENCH / "RESULTS.md"
TOKEN_LUA = BENCH / "token.lua"

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
REDIS_URL = "redis://127.0.0.1:6379/0"

SETUPS = ("sqlite", "postgresql")
LABELS = {"sqlite": "SQLite", "postgresql": "PostgreSQL + Redis"}


# --- tools ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def generate_kek() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


# --- throwaway databases --------------------------------------------------------------


@dataclass
class Setup:
    """One storage configuration: its name and the IDP_* settings that select it."""

    name: str
    settings: dict[str, str]
    instance_path: Path

    @property
    def label(self) -> str:
        return LABELS.get(self.name, self.name)


@contextmanager
def sqlite_setup(workdir: Path) -> Iterator[Setup]:
    """A SQLite file in a fresh instance folder under ``workdir``."""
    instance = workdir / "sqlite"
    instance.mkdir(parents=True)
    yield Setup("sqlite", {"IDP_DATABASE__URL": f"sqlite:///{instance / 'idp.db'}"}, instance)


@contextmanager
def postgresql_setup(workdir: Path) -> Iterator[Setup]:
    """A temporary database idp_bench_<random> and Redis prefix; both removed afterwards."""
    import psycopg
    import redis

    name = "idp_bench_" + secrets.token_hex(6)
    prefix = f"idp-bench-{secrets.token_hex(6)}:"
    instance = workdir / "postgresql"
    instance.mkdir(parents=True)
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield Setup(
            "postgresql",
            {
                "IDP_DATABASE__URL": f"postgresql+psycopg://postgres@{HOST}:5432/{name}",
                "IDP_REDIS__URL": REDIS_URL,
                "IDP_REDIS__PREFIX": prefix,
            },
            instance,
        )
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        r = redis.Redis.from_url(REDIS_URL)
        try:
            keys = list(r.scan_iter(match=prefix + "*", count=1000))
            if keys:
                r.delete(*keys)
        finally:
            r.close()


SETUP_FACTORIES = {"sqlite": sqlite_setup, "postgresql": postgresql_setup}


def idp_env(setup: Setup, port: int, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The process environment for idp on 127.0.0.1:port (its issuer, which
    ``start_idp_server`` listens on): inherited variables minus any
    IDP_* of the caller's shell, plus the setup's settings and fresh secrets. Call it once
    per setup and reuse the result: the KEK must stay the same for migrations, the CLI and
    the server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    # Measure this checkout, whatever an (editable or stale) install of idp points at.
    pythonpath = [str(ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env.update(
        {
            "PYTHONPATH": os.pathsep.join(pythonpath),
            "IDP_SERVER__ISSUER": f"http://{HOST}:{port}",
            "IDP_SERVER__INSTANCE_PATH": str(setup.instance_path),
            "IDP_SERVER__SECRET_KEY": secrets.token_urlsafe(32),
            "IDP_KEK": generate_kek(),
        }
    )
    env.update(setup.settings)
    env.update(extra or {})
    return env


# --- the idp command ------------------------------------------------------------------


def idp_cli(
    env: Mapping[str, str], *args: str, timeout: float = 120, stdin: str | None = None
) -> str:
    """Runs ``idp ARGS`` (with ``stdin`` as its standard input, e.g. for
    ``--password-stdin``) and returns its standard output; raises with its stderr."""
    proc = subprocess.run(
        [tool("idp"), *args],
        env=dict(env),
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise BenchError(f"idp {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc.stdout


def create_client(
    env: Mapping[str, str], client_id: str, *, grants: Sequence[str], scope: str
) -> dict[str, Any]:
    """``idp clients create``; returns its JSON (with client_secret)."""
    args = ["clients", "create", client_id, "--scope", scope]
    for g in grants:
        args += ["--grant", g]
    out = idp_cli(env, *args).strip().splitlines()
    if not out:
        raise BenchError("idp clients create printed nothing")
    return dict(json.loads(out[-1]))


def basic_auth(client_id: str, secret: str) -> str:
    # RFC 6749 §2.3.1: form-encode id and secret before joining them.
    from urllib.parse import quote_plus

    pair = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(pair).decode()


# --- the server -----------------------------------------------------------------------


@contextmanager
def start_idp(
    env: Mapping[str, str], *, log_path: Path | None = None, workers: int | None = None
) -> Iterator[Running]:
    """idp as deployed (``idp serve``: one worker per CPU unless ``workers``), on any
    core, on the port of its issuer; yields once /healthz answers, stops it afterwards."""
    with start_idp_server(env, workers=workers, cpus=None, log_path=log_path) as server:
        yield server


def log_problems(text: str) -> dict[str, int]:
    """Counts of the lines in a server log that mean something went wrong."""
    patterns = {
        "tracebacks": r"^Traceback \(most recent call last\)",
        "database is locked": r"database is locked",
        "worker timeouts": r"WORKER TIMEOUT",  # gunicorn
        "errors": r"\[ERROR\]",  # gunicorn and granian
    }
    return {
        k: n for k, p in patterns.items() if (n := len(re.findall(p, text, flags=re.MULTILINE)))
    }


# --- wrk ------------------------------------------------------------------------------


@dataclass
class WrkResult:
    requests: int
    seconds: float
    requests_per_sec: float
    latency_ms: dict[int, float]
    non_2xx: int
    socket_errors: dict[str, int] = field(default_factory=dict)
    output: str = ""
    client_cpu_seconds: float = 0.0  # user + system time of wrk itself

    @property
    def p50(self) -> float:
        return self.latency_ms[50]

    @property
    def p99(self) -> float:
        return self.latency_ms[99]

    @property
    def socket_error_count(self) -> int:
        return sum(self.socket_errors.values())


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def _to_ms(value: str, unit: str) -> float:
    return float(value) * _UNITS_MS[unit]


def parse_wrk(output: str) -> WrkResult:
    """Reads wrk 4's report (run with --latency)."""
    total = re.search(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h),", output, re.MULTILINE)
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    if not total or not rps:
        raise BenchError(f"cannot read wrk's report:\n{output}")
    latency = {
        int(m[1]): _to_ms(m[2], m[3])
        for m in re.finditer(
            r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m|h)\s*$", output, re.MULTILINE
        )
    }
    if 50 not in latency or 99 not in latency:
        raise BenchError(f"no latency distribution in wrk's report (--latency?):\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sock = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    socket_errors = {}
    if sock:
        socket_errors = dict(
            zip(("connect", "read", "write", "timeout"), map(int, sock.groups()), strict=True)
        )
    return WrkResult(
        requests=int(total[1]),
        seconds=_to_ms(total[2], total[3]) / 1000,
        requests_per_sec=float(rps[1]),
        latency_ms=latency,
        non_2xx=int(non_2xx[1]) if non_2xx else 0,
        socket_errors=socket_errors,
        output=output,
    )


def run_wrk(
    url: str,
    *,
    duration: int = 10,
    connections: int = 16,
    threads: int = 2,
    script: Path | None = None,
    script_args: Sequence[str] = (),
    timeout: str = "5s",
    cpu: str | None = None,
) -> WrkResult:
    """One bounded wrk run against a 127.0.0.1 URL (pinned to ``cpu`` with taskset if
    given); also reports the CPU time wrk used."""
    if not url.startswith(f"http://{HOST}:"):
        raise BenchError(f"benchmarks only target {HOST}, not {url}")
    threads = max(1, min(threads, connections))
    cmd = [
        tool("wrk"),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",
        "--latency",
        "--timeout",
        timeout,
    ]
    if script is not None:
        cmd += ["-s", str(script)]
    cmd.append(url)
    if script_args:
        cmd += ["--", *script_args]
    if cpu is not None:
        cmd = ["taskset", "-c", cpu, *cmd]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise BenchError(f"wrk failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    result = parse_wrk(proc.stdout)
    result.client_cpu_seconds = (after.ru_utime + after.ru_stime) - (
        before.ru_utime + before.ru_stime
    )
    return result


# --- RESULTS.md -----------------------------------------------------------------------

RESULTS_HEADER = """# Benchmarks

Measured by the scripts in `bench/` on 127.0.0.1. Each section is rewritten by the
benchmark that owns it; the others stay as they are. Client and server share the
machine, so the numbers compare setups, versions and servers; they are not capacity
figures.

- `make bench` (`bench/compare.py`): idp side by side with node-oidc-provider, each on
  one core, section `compare`.
- `make bench-1m` (`bench/sessions_1m.py`): the operator's sessions page and a kill with
  1,000,000 sessions, section `sessions-1m`.
- `make bench-ssf` (`bench/ssf_latency.py`): kill → refusal at 50 resource servers
  using `idp.verifier` by idp's feed, SSF poll and SSF push, section `ssf-latency`.
- By hand: `bench/run.py` (/token and /jwks.json under `idp serve` with one worker per
  CPU, as deployed), `bench/refresh.py` (rotation and introspection under it),
  `bench/server_trial.py` (which server `idp serve` runs: gunicorn against granian).
"""


def _markers(section: str) -> tuple[str, str]:
    if not re.fullmatch(r"[A-Za-z0-9_.:/-]+", section):
        raise ValueError(f"bad section name {section!r}")
    return f"<!-- BEGIN bench:{section} -->", f"<!-- END bench:{section} -->"


def write_results(section: str, body: str, path: Path = RESULTS) -> None:
    """Puts ``body`` (markdown) in the section named ``section`` of ``path``: replaced in
    place if it exists, appended otherwise. Text outside that section is kept."""
    begin, end = _markers(section)
    block = f"{begin}\n{body.strip()}\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else RESULTS_HEADER
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _m: block, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def machine_info() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    wrk_version = "unknown"
    try:
        wrk = subprocess.run(
            [tool("wrk"), "--version"], capture_output=True, text=True, timeout=10, check=False
        )
        wrk_version = (wrk.stdout or wrk.stderr).split("Copyright")[0].strip()
    except (BenchError, OSError, subprocess.SubprocessError):
        pass
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "kernel": os.uname().release,
        "python": sys.version.split()[0],
        "wrk": wrk_version,
    }


def load_average() -> float:
    """The 1-minute load average: other work on the machine skews every number."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def environment_lines(server: str, command: str, load_before: float | None = None) -> list[str]:
    m = machine_info()
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = "" if load_before is None else f"; load average {load_before:.2f} before the run"
    busy = []
    if load_before is not None and load_before >= (os.cpu_count() or 1):
        busy = [
            "- **the machine was busy** (load average at least the CPU count): "
            "these numbers are low; compare only with runs on an idle machine"
        ]
    return [
        *busy,
        f"- date: {now}",
        f"- machine: {m['nproc']} CPUs ({m['cpu']}), Linux {m['kernel']}, "
        f"Python {m['python']}{load}",
        f"- server: {server}",
        f"- client: {m['wrk']} on the same machine",
        f"- reproduce: `{command}`",
    ]


def fmt_ms(value: float) -> str:
    return f"{value:.2f} ms" if value < 100 else f"{value:.0f} ms"


@dataclass
class Row:
    setup: str
    endpoint: str
    result: WrkResult


def render_table(rows: Sequence[Row]) -> list[str]:
    lines = [
        "| setup | endpoint | req/s | p50 | p99 | non-2xx | socket errors |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        w = r.result
        lines.append(
            f"| {r.setup} | {r.endpoint} | {w.requests_per_sec:,.0f} | {fmt_ms(w.p50)} "
            f"| {fmt_ms(w.p99)} | {w.non_2xx} | {w.socket_error_count} |"
        )
    return lines


# --- the token / JWKS benchmark -------------------------------------------------------

CLIENT_ID = "bench-cc"
SCOPE = "api:read"
TOKEN_ENDPOINT = "POST /token (client_credentials)"  # noqa: S105 - a label
JWKS_ENDPOINT = "GET /jwks.json"


def check_token(url: str, authorization: str) -> str:
    """One /token request by hand: must be 200 with a Bearer access_token whose kid the
    JWKS publishes. Returns the token."""
    resp = requests.post(
        f"{url}/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": authorization},
        timeout=30,
    )
    if resp.status_code != 200:
        raise BenchError(f"sample /token answered {resp.status_code}: {resp.text[:500]}")
    body = resp.json()
    token = body.get("access_token")
    if not token or str(body.get("token_type", "")).lower() != "bearer":
        raise BenchError(f"sample /token has no Bearer access_token: {body}")
    header_b64 = token.split(".")[0]
    header = json.loads(base64.urlsafe_b64decode(header_b64 + "=" * (-len(header_b64) % 4)))
    jwks = requests.get(f"{url}/jwks.json", timeout=30)
    kids = {k.get("kid") for k in jwks.json().get("keys", [])} if jwks.ok else set()
    if jwks.status_code != 200 or header.get("kid") not in kids:
        raise BenchError(f"the token's kid {header.get('kid')} is not in /jwks.json")
    return str(token)


@dataclass
class SetupRun:
    setup: Setup
    server: str
    rows: list[Row]
    problems: dict[str, int]
    log_path: Path
    load_before: float


def bench_setup(setup: Setup, args: argparse.Namespace) -> SetupRun:
    load_before = load_average()
    port = free_port()
    env = idp_env(setup, port)
    print(f"[{setup.name}] idp db upgrade", flush=True)
    idp_cli(env, "db", "upgrade")
    client = create_client(env, CLIENT_ID, grants=["client_credentials"], scope=SCOPE)
    authorization = basic_auth(client["client_id"], client["client_secret"])
    token_args = [authorization, urlencode({"grant_type": "client_credentials"})]
    log_path = OUT / f"idp-{setup.name}.log"
    with start_idp(env, log_path=log_path, workers=args.workers or None) as server:
        print(f"[{setup.name}] {server.label} on {server.url}", flush=True)
        # Before any load: one answer checked by hand (this also creates the first keys).
        check_token(server.url, authorization)
        if args.warmup:
            run_wrk(
                f"{server.url}/token",
                duration=args.warmup,
                connections=args.connections,
                threads=args.threads,
                script=TOKEN_LUA,
                script_args=token_args,
            )
        rows = []
        for endpoint, path, script, script_args in (
            (TOKEN_ENDPOINT, "/token", TOKEN_LUA, token_args),
            (JWKS_ENDPOINT, "/jwks.json", None, []),
        ):
            print(f"[{setup.name}] wrk {endpoint} for {args.duration} s", flush=True)
            result = run_wrk(
                f"{server.url}{path}",
                duration=args.duration,
                connections=args.connections,
                threads=args.threads,
                script=script,
                script_args=script_args,
            )
            print(
                f"[{setup.name}]   {result.requests_per_sec:,.0f} req/s, p50 "
                f"{fmt_ms(result.p50)}, p99 {fmt_ms(result.p99)}, non-2xx {result.non_2xx}, "
                f"socket errors {result.socket_error_count}",
                flush=True,
            )
            rows.append(Row(setup.label, endpoint, result))
        # Still answering correctly after the load?
        check_token(server.url, authorization)
    problems = log_problems(log_path.read_text(errors="replace"))
    if problems:
        print(f"[{setup.name}] problems in {log_path}: {problems}", flush=True)
    return SetupRun(setup, server.label, rows, problems, log_path, load_before)


def render_setup(run: SetupRun, args: argparse.Namespace, command: str) -> str:
    lines = [
        f"## /token (client_credentials) and /jwks.json: {run.setup.label}",
        "",
        f"wrk -t{min(args.threads, args.connections)} -c{args.connections} "
        f"-d{args.duration}s --latency; /token with bench/token.lua (HTTP Basic client "
        "authentication, ES256 access token), after a hand-checked sample answer"
        + (f" and {args.warmup} s of warm-up." if args.warmup else "."),
        "",
        *render_table(run.rows),
        "",
        *environment_lines(run.server, command, run.load_before),
    ]
    if run.problems:
        found = ", ".join(f"{k}: {v}" for k, v in sorted(run.problems.items()))
        lines.append(f"- **server log problems**: {found} (see {run.log_path.name})")
    else:
        lines.append("- server log: no tracebacks, lock errors or worker timeouts")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=int, default=10, help="seconds per endpoint (1-300)")
    p.add_argument("--connections", type=int, default=16, help="wrk connections (1-512)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    p.add_argument("--warmup", type=int, default=2, help="seconds of unrecorded load first")
    p.add_argument("--only", choices=SETUPS, help="run one setup only")
    p.add_argument("--workers", type=int, default=0, help="idp workers (0: one per CPU)")
    p.add_argument("--results", type=Path, default=RESULTS, help="markdown file to update")
    args = p.parse_args(argv)
    if not 1 <= args.duration <= 300:
        p.error("--duration must be between 1 and 300")
    if not 1 <= args.connections <= 512:
        p.error("--connections must be between 1 and 512")
    if not 1 <= args.threads <= 64:
        p.error("--threads must be between 1 and 64")
    if not 0 <= args.warmup <= 60:
        p.error("--warmup must be between 0 and 60")
    if args.workers < 0:
        p.error("--workers must not be negative")
    return args


def _interrupt(signum: int, _frame: Any) -> None:
    # SIGTERM (e.g. a CI timeout) unwinds like Ctrl+C, so the server is stopped and the
    # temporary database and Redis keys are removed on the way out.
    raise KeyboardInterrupt(f"signal {signum}")


def run_script(main: Callable[[], int], cleanup: str = "temporary database removed") -> None:
    """Runs a benchmark's main() as a script: SIGTERM (e.g. a CI timeout) unwinds like
    Ctrl+C, so servers are stopped and temporary databases and Redis keys are removed."""
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print(f"interrupted; servers stopped, {cleanup}", file=sys.stderr)
        sys.exit(130)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    command = ".venv/bin/python bench/run.py " + " ".join(sys.argv[1:] if argv is None else argv)
    OUT.mkdir(parents=True, exist_ok=True)
    failed = []
    with tempfile.TemporaryDirectory(prefix="idp-bench-") as tmp:
        for name in [args.only] if args.only else SETUPS:
            try:
                with SETUP_FACTORIES[name](Path(tmp)) as setup:
                    run = bench_setup(setup, args)
            except Exception as exc:  # noqa: BLE001 - report it, go on with the next setup
                print(f"[{name}] FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
                failed.append(name)
                continue
            body = render_setup(run, args, command.strip())
            write_results(f"token-jwks:{name}", body, args.results)
            print(f"[{name}] written to {args.results}", flush=True)
    if failed:
        print(f"failed setups: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    run_script(main)
