#!/usr/bin/env python3
"""Refresh-token rotation and introspection under idp as deployed (``idp serve``, one
worker per CPU), written to bench/RESULTS.md
(sections ``refresh:<setup>``).

For each setup (SQLite; PostgreSQL + Redis; throwaway databases from bench/run.py) this
migrates, creates a user and a confidential first-party client with the
authorization_code and refresh_token grants, starts idp, logs in N times over real
HTTP (authorization code + PKCE, like tests/support/browserless.code_flow) to get N
independent refresh-token chains, then:

* rotation: N client threads, each following its own chain for M sequential
  ``grant_type=refresh_token`` requests (wrk cannot follow a token that changes with
  every answer); every answer must carry a new refresh token, an access token and an
  ID token (the scope includes openid);
* introspection: wrk with bench/introspect.lua, POST /introspect token=<access token>
  with HTTP Basic of a confidential resource-server client.

The section ``refresh-orm`` of RESULTS.md (ORM against SQLAlchemy Core on the rotation
path) was measured by an earlier version of this script; the store is Core now.

    .venv/bin/python bench/refresh.py                       # both setups
    .venv/bin/python bench/refresh.py --only postgresql --chains 8 --rotations 50
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import (  # noqa: E402 - bench/ is not a package on sys.path by default
    OUT,
    RESULTS,
    SETUP_FACTORIES,
    SETUPS,
    BenchError,
    Row,
    Setup,
    basic_auth,
    create_client,
    environment_lines,
    fmt_ms,
    free_port,
    idp_cli,
    idp_env,
    load_average,
    log_problems,
    render_table,
    run_script,
    run_wrk,
    start_idp,
    write_results,
)

BENCH = Path(__file__).resolve().parent
INTROSPECT_LUA = BENCH / "introspect.lua"
RP_ID = "bench-rp"
RS_ID = "bench-rs"
REDIRECT_URI = "http://127.0.0.1/cb"
SCOPE = "openid offline_access"
USERNAME = "bench"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


# --- logging in over HTTP -------------------------------------------------------------


def _query(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def browser_login(base: str, username: str, password: str, next_url: str) -> requests.Session:
    """GET /login, POST it with its CSRF token; returns the browser (cookies) after the 303."""
    browser = requests.Session()
    page = browser.get(f"{base}/login?{urlencode({'next': next_url})}", timeout=30)
    match = CSRF_RE.search(page.text)
    if page.status_code != 200 or not match:
        raise BenchError(f"login page: {page.status_code}, no CSRF field")
    resp = browser.post(
        f"{base}/login",
        data={
            "username": username,
            "password": password,
            "next": next_url,
            "csrf_token": match.group(1),
        },
        allow_redirects=False,
        timeout=30,
    )
    if resp.status_code != 303:
        raise BenchError(f"login answered {resp.status_code}: {resp.text[:300]}")
    return browser


def code_flow(
    base: str, client_id: str, secret: str, username: str, password: str
) -> dict[str, Any]:
    """A login as a browser would do it, then the code exchange; the token response."""
    browser = requests.Session()
    verifier, challenge = _pkce()
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": SCOPE,
        "state": "s",
        "nonce": secrets.token_urlsafe(8),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    resp = browser.get(f"{base}/authorize?{urlencode(params)}", allow_redirects=False, timeout=30)
    login_url = urljoin(base, resp.headers["Location"])
    page = browser.get(login_url, timeout=30)
    resp = browser.post(
        f"{base}/login",
        allow_redirects=False,
        timeout=30,
        data={
            "username": username,
            "password": password,
            "next": _query(login_url)["next"],
            "csrf_token": CSRF_RE.search(page.text).group(1),
        },
    )  # type: ignore[union-attr]
    if resp.status_code != 303:
        raise BenchError(f"login answered {resp.status_code}: {resp.text[:300]}")
    resp = browser.get(urljoin(base, resp.headers["Location"]), allow_redirects=False, timeout=30)
    code = _query(resp.headers["Location"])["code"]
    token = requests.post(
        f"{base}/token",
        auth=(client_id, secret),
        timeout=30,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        },
    )
    if token.status_code != 200:
        raise BenchError(f"code exchange answered {token.status_code}: {token.text[:300]}")
    return dict(token.json())


# --- the rotation load generator ------------------------------------------------------


@dataclass
class LoadResult:
    requests: int
    seconds: float
    latencies_ms: list[float]
    failures: list[str]
    last_access_token: str

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        xs = sorted(self.latencies_ms)
        return xs[min(len(xs) - 1, max(0, round(p / 100 * len(xs)) - 1))]


def rotate_chains(
    base: str, authorization: str, chains: Sequence[str], rotations: int
) -> LoadResult:
    """One thread per chain, ``rotations`` sequential refreshes each, all started together."""
    latencies: list[float] = []
    failures: list[str] = []
    last = [""]
    lock = threading.Lock()
    start = threading.Barrier(len(chains) + 1)

    def worker(first: str) -> None:
        http = requests.Session()
        http.headers["Authorization"] = authorization
        token = first
        mine: list[float] = []
        start.wait()
        for _ in range(rotations):
            t0 = time.perf_counter()
            resp = http.post(
                f"{base}/token",
                timeout=30,
                data={"grant_type": "refresh_token", "refresh_token": token},
            )
            mine.append((time.perf_counter() - t0) * 1000)
            body = (
                resp.json()
                if resp.headers.get("Content-Type", "").startswith("application/json")
                else {}
            )
            if (
                resp.status_code != 200
                or not all(body.get(k) for k in ("access_token", "id_token", "refresh_token"))
                or body["refresh_token"] == token
            ):
                with lock:
                    failures.append(f"{resp.status_code}: {resp.text[:200]}")
                break
            token = body["refresh_token"]
            with lock:
                last[0] = body["access_token"]
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(c,)) for c in chains]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    return LoadResult(len(latencies), seconds, latencies, failures, last[0])


def check_introspection(base: str, authorization: str, token: str) -> None:
    resp = requests.post(
        f"{base}/introspect",
        data={"token": token},
        headers={"Authorization": authorization},
        timeout=30,
    )
    if resp.status_code != 200 or resp.json().get("active") is not True:
        raise BenchError(f"sample introspection: {resp.status_code} {resp.text[:300]}")


# --- idp in this process ---------------------------------------------------------------


@contextmanager
def in_process_app(env: Mapping[str, str]) -> Iterator[Any]:
    """idp.create_app() in this process under ``env``'s IDP_* settings, in an app context."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        from idp import create_app

        app = create_app()
        try:
            with app.app_context():
                yield app
        finally:
            app.extensions["idp"].close()
    finally:
        os.environ.clear()
        os.environ.update(saved)


# --- one setup ----------------------------------------------------------------------------


@dataclass
class SetupRun:
    setup: Setup
    load: LoadResult
    introspect: Any
    problems: dict[str, int]
    server: str
    load_before: float


def bench_setup(setup: Setup, args: argparse.Namespace) -> SetupRun:
    load_before = load_average()
    env = idp_env(setup, free_port())
    print(f"[{setup.name}] idp db upgrade", flush=True)
    idp_cli(env, "db", "upgrade")
    password = secrets.token_urlsafe(16)
    idp_cli(env, "users", "create", USERNAME, "--password-stdin", stdin=password + "\n")
    out = idp_cli(
        env,
        "clients",
        "create",
        RP_ID,
        "--grant",
        "authorization_code",
        "--grant",
        "refresh_token",
        "--redirect-uri",
        REDIRECT_URI,
        "--scope",
        SCOPE,
        "--first-party",
    )
    rp = json.loads(out.strip().splitlines()[-1])
    rs = create_client(env, RS_ID, grants=["client_credentials"], scope="api:read")
    rp_auth = basic_auth(rp["client_id"], rp["client_secret"])
    rs_auth = basic_auth(rs["client_id"], rs["client_secret"])
    log_path = OUT / f"idp-refresh-{setup.name}.log"
    with start_idp(env, log_path=log_path) as server:
        print(
            f"[{setup.name}] {server.label}; {args.chains} logins",
            flush=True,
        )
        chains = [
            code_flow(server.url, rp["client_id"], rp["client_secret"], USERNAME, password)[
                "refresh_token"
            ]
            for _ in range(args.chains)
        ]
        # Unrecorded warm-up on separate chains, so every worker has its caches filled.
        warm = [
            code_flow(server.url, rp["client_id"], rp["client_secret"], USERNAME, password)[
                "refresh_token"
            ]
            for _ in range(2)
        ]
        rotate_chains(server.url, rp_auth, warm, 5)
        print(f"[{setup.name}] {args.chains} chains × {args.rotations} rotations", flush=True)
        load = rotate_chains(server.url, rp_auth, chains, args.rotations)
        if load.failures:
            raise BenchError(f"{len(load.failures)} rotations failed, e.g. {load.failures[0]}")
        print(
            f"[{setup.name}]   {load.rps:,.1f} rotations/s, p50 {fmt_ms(load.pct(50))}, "
            f"p99 {fmt_ms(load.pct(99))}",
            flush=True,
        )
        check_introspection(server.url, rs_auth, load.last_access_token)
        body = urlencode({"token": load.last_access_token})
        print(f"[{setup.name}] wrk POST /introspect for {args.duration} s", flush=True)
        intro = run_wrk(
            f"{server.url}/introspect",
            duration=args.duration,
            connections=args.connections,
            threads=2,
            script=INTROSPECT_LUA,
            script_args=[rs_auth, body],
        )
        print(
            f"[{setup.name}]   {intro.requests_per_sec:,.0f} req/s, p50 {fmt_ms(intro.p50)}, "
            f"p99 {fmt_ms(intro.p99)}, non-2xx {intro.non_2xx}",
            flush=True,
        )
        check_introspection(server.url, rs_auth, load.last_access_token)
        inactive = re.search(r"Inactive answers: (\d+)", intro.output)
        if inactive is None or int(inactive[1]):
            raise BenchError(f"introspection answers without active=true: {intro.output}")
        label = server.label
    problems = log_problems(log_path.read_text(errors="replace"))
    return SetupRun(setup, load, intro, problems, label, load_before)


def render_setup(run: SetupRun, args: argparse.Namespace, command: str) -> str:
    ld = run.load
    lines = [
        f"## Refresh-token rotation and introspection: {run.setup.label}",
        "",
        f"Rotation: {args.chains} Python client threads (requests, keep-alive), each "
        f"following its own chain (one HTTP login each) for {args.rotations} sequential "
        "`grant_type=refresh_token` requests, HTTP Basic; every answer checked to carry a new "
        "refresh token, an access token and an ID token (scope `openid offline_access`). "
        f"Introspection: wrk -t2 -c{args.connections} -d{args.duration}s with "
        "bench/introspect.lua (`token=<access token>`, HTTP Basic of a confidential "
        "resource-server client), every answer checked for `active: true` by the script.",
        "",
        "| setup | endpoint | req/s | p50 | p99 | non-2xx | socket errors |",
        "|---|---|---:|---:|---:|---:|---:|",
        f"| {run.setup.label} | POST /token (refresh_token, rotation) | {ld.rps:,.1f} "
        f"| {fmt_ms(ld.pct(50))} | {fmt_ms(ld.pct(99))} | 0 | 0 |",
        *render_table([Row(run.setup.label, "POST /introspect (access token)", run.introspect)])[
            2:
        ],
        "",
        f"- rotation: {ld.requests} requests in {ld.seconds:.1f} s; the load generator "
        "(Python, GIL) shares the 2 CPUs with the server",
        *environment_lines(run.server, command, run.load_before),
    ]
    if run.problems:
        found = ", ".join(f"{k}: {v}" for k, v in sorted(run.problems.items()))
        lines.append(f"- **server log problems**: {found}")
    else:
        lines.append("- server log: no tracebacks, lock errors or worker timeouts")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--chains", type=int, default=8, help="concurrent chains (logins), 1-32")
    p.add_argument("--rotations", type=int, default=40, help="rotations per chain, 1-500")
    p.add_argument("--duration", type=int, default=5, help="wrk seconds for /introspect")
    p.add_argument("--connections", type=int, default=8, help="wrk connections")
    p.add_argument("--only", choices=SETUPS)
    p.add_argument("--results", type=Path, default=RESULTS)
    a = p.parse_args(argv)
    if not (
        1 <= a.chains <= 32
        and 1 <= a.rotations <= 500
        and 1 <= a.duration <= 60
        and 1 <= a.connections <= 64
    ):
        p.error("a bound is out of range (see --help)")
    return a


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    command = (
        ".venv/bin/python bench/refresh.py " + " ".join(sys.argv[1:] if argv is None else argv)
    ).strip()
    OUT.mkdir(parents=True, exist_ok=True)
    failed = []
    with tempfile.TemporaryDirectory(prefix="idp-bench-refresh-") as tmp:
        for name in [args.only] if args.only else SETUPS:
            try:
                with SETUP_FACTORIES[name](Path(tmp)) as setup:
                    run = bench_setup(setup, args)
            except Exception as exc:  # noqa: BLE001 - report it, go on
                print(f"[{name}] FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
                failed.append(name)
                continue
            write_results(f"refresh:{name}", render_setup(run, args, command), args.results)
    if failed:
        print(f"failed setups: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    run_script(main)
