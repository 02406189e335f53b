#!/usr/bin/env python3
"""Which server should ``idp serve`` run: gunicorn (gthread) or granian (WSGI)? One
worker pinned to one core, a few thread counts each, on side-by-side scenarios 1
(client_credentials) and 2 (JWKS); written to bench/RESULTS.md (section
``server-trial``).

Every configuration serves the same SQLite database at once on its own port (idle ones
cost nothing); the rounds alternate over them like bench/compare.py's. Both servers are
installed with idp (granian runs ``idp serve``; gunicorn is a development dependency).

    .venv/bin/python bench/server_trial.py                       # threads 1, 2, 4
    .venv/bin/python bench/server_trial.py --threads 2 8 --duration 5
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from flows import CC_BODY, TOKEN_LUA, check_client_credentials, seed_idp  # noqa: E402
from report import fmt_ms, median_sample, pct, per_cpu  # noqa: E402
from rounds import alternate, wrk_measure  # noqa: E402
from run import (  # noqa: E402
    OUT,
    RESULTS,
    free_port,
    idp_env,
    machine_info,
    run_script,
    sqlite_setup,
    tool,
    write_results,
)
from servers import CLIENT_CPU, Running, start_idp_server  # noqa: E402


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--servers", nargs="+", default=["gunicorn", "granian"])
    p.add_argument("--duration", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--results", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if not (1 <= args.duration <= 120 and 1 <= args.rounds <= 9 and max(args.threads) <= 64):
        p.error("--duration 1-120, --rounds 1-9, --threads at most 64")
    tool("granian")  # fails early when it is not installed
    tool("gunicorn")
    os.sched_setaffinity(0, {int(CLIENT_CPU)})
    OUT.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    with (
        tempfile.TemporaryDirectory(prefix="idp-bench-trial-") as tmp,
        sqlite_setup(Path(tmp)) as setup,
        ExitStack() as stack,
    ):
        base_env = idp_env(setup, free_port())
        acc = seed_idp(base_env)
        servers: dict[str, Running] = {}
        for server in args.servers:
            for threads in args.threads:
                port = free_port()
                env = {**base_env, "IDP_SERVER__ISSUER": f"http://127.0.0.1:{port}"}
                running = stack.enter_context(start_idp_server(env, threads=threads, server=server))
                check_client_credentials(running.url, acc, "/jwks.json")
                servers[running.label] = running
                print(f"{running.label} on {running.url}", flush=True)
        c = args.connections
        token_args = [acc.auth("bench-cc"), CC_BODY]
        cc = alternate(
            args,
            "1 client_credentials",
            {k: wrk_measure(s, "/token", c, TOKEN_LUA, token_args) for k, s in servers.items()},
        )
        jwks = alternate(
            args, "2 JWKS", {k: wrk_measure(s, "/jwks.json", c) for k, s in servers.items()}
        )
        rss = {k: s.worker_rss_mb() for k, s in servers.items()}
    lines = [
        "## Which server: idp under gunicorn (gthread) and granian (WSGI), one worker on one core",
        "",
        "Scenarios 1 and 2 of the side-by-side benchmark (`bench/compare.py`) against each "
        f"configuration: wrk -t2 -c{c} on CPU {CLIENT_CPU}, the server on the other core, "
        f"{args.rounds} rounds of {args.duration} s alternating over all configurations "
        f"after {args.warmup} s of warm-up. Medians over the rounds of the rate and of the "
        "rate per CPU-second the server used (steadier on a busy machine); p50 / p99 of the "
        "median round.",
        "",
        "| server | POST /token client_credentials | per CPU-s | p50 / p99 | GET /jwks.json "
        "| per CPU-s | p50 / p99 | server CPU (1 / 2) | worker RSS |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label in servers:
        a, b = median_sample(cc[label]), median_sample(jwks[label])
        lines.append(
            f"| {label} | {statistics.median(s.rate for s in cc[label]):,.0f} req/s "
            f"| {per_cpu(cc[label])} | {fmt_ms(a.p50_ms)} / {fmt_ms(a.p99_ms)} "
            f"| {statistics.median(s.rate for s in jwks[label]):,.0f} req/s "
            f"| {per_cpu(jwks[label])} | {fmt_ms(b.p50_ms)} / {fmt_ms(b.p99_ms)} "
            f"| {pct(a.server_cpu)} / {pct(b.server_cpu)} | {rss[label]:,.0f} MB |"
        )
    m = machine_info()
    version = subprocess.run([tool("granian"), "--version"], capture_output=True, text=True)
    lines += [
        "",
        f"- {version.stdout.strip()} (`--interface wsgi --http 1 --workers 1 "
        "--blocking-threads N`); gunicorn `--workers 1 --worker-class gthread --threads N "
        "--keep-alive 5` (what deploy/gunicorn.conf.py set)",
        f"- date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M UTC}; machine: {m['nproc']} CPUs "
        f"({m['cpu']}), Linux {m['kernel']}, Python {m['python']}; load average before "
        f"{load_before[0]:.2f}"
        + (" (**busy**: numbers are noisy)" if load_before[0] >= 0.5 else ""),
        "- reproduce: `.venv/bin/python bench/server_trial.py "
        + " ".join(sys.argv[1:] if argv is None else argv)
        + "`",
    ]
    write_results("server-trial", "\n".join(lines), args.results)
    print(f"written to {args.results} (section server-trial)", flush=True)
    return 0


if __name__ == "__main__":
    run_script(main, cleanup="servers stopped, temporary database removed")
