#!/usr/bin/env python3
"""idp side by side with node-oidc-provider, one core each, written to bench/RESULTS.md
(section ``compare``). ``make bench`` runs it.

Both servers run as one process (idp: one worker) pinned to CPU 0; wrk and this script
run on CPU 1. Every scenario alternates rounds between the servers (the order flips
every round) after an unrecorded warm-up, and reports the median of the rounds:

  1. POST /token client_credentials, ES256 JWT access token      (target idp/peer >= 0.7)
  2. GET the JWKS                                                (>= 0.5)
  3. introspection of an access token                            (>= 0.7)
  4. refresh with rotation, each wrk connection following its own chain: idp on SQLite
     and on PostgreSQL + Redis, the peer on its memory store     (>= 0.5)
  5. whole password logins on idp against the argon2id bound (1 / one verify alone)
                                                                 (>= 0.9)
  6. rotation on idp with 1,000 and 1,000,000 stored families    (rate 1M / 1k >= 1/1.2)
  7. worker RSS after the load

    make bench                                    # everything, 10 s rounds (~15 min)
    .venv/bin/python bench/compare.py --quick     # 3 s rounds, 100,000 families (~5 min)
    .venv/bin/python bench/compare.py --only 1 2 --rounds 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from families import seed_families  # noqa: E402 - bench/ is not a package on sys.path
from flows import (  # noqa: E402
    CC_BODY,
    INTROSPECT_LUA,
    PEER_API,
    TOKEN_LUA,
    Accounts,
    argon2_verify,
    check_client_credentials,
    check_introspection,
    idp_login,
    login_load,
    peer_accounts,
    peer_login,
    refresh_once,
    seed_idp,
)
from report import Pair, Sample, Scenario, render  # noqa: E402
from rounds import Measure, alternate, measured, rotation_measure, wrk_measure  # noqa: E402
from run import (  # noqa: E402
    OUT,
    RESULTS,
    free_port,
    idp_env,
    log_problems,
    postgresql_setup,
    run_script,
    sqlite_setup,
    write_results,
)
from servers import (  # noqa: E402
    CLIENT_CPU,
    SERVER_CPU,
    SERVERS,
    Running,
    start_idp_server,
    start_peer,
)

# --- the scenarios --------------------------------------------------------------------


def jwks_size(server: Running, path: str) -> str:
    resp = requests.get(server.url + path, timeout=30)
    algs = ", ".join(k.get("alg", k.get("kty", "?")) for k in resp.json()["keys"])
    return f"{len(resp.content):,} bytes, keys {algs}"


def versus(
    args: argparse.Namespace,
    number: int,
    title: str,
    target: float,
    measures: tuple[Measure, Measure],
    notes: Sequence[str] = (),
) -> Scenario:
    """idp (SQLite) against the peer, alternating rounds."""
    s = alternate(args, f"{number} {title}", dict(zip(("idp", "peer"), measures, strict=True)))
    pair = Pair("idp (SQLite)", s["idp"], "node-oidc-provider", s["peer"])
    return Scenario(number, title, "req/s", target, [pair], notes=list(notes))


def scenario_1(
    args: argparse.Namespace, idp: Running, acc: Accounts, peer: Running, pacc: Accounts
) -> Scenario:
    check_client_credentials(idp.url, acc, "/jwks.json")
    check_client_credentials(peer.url, pacc, "/jwks")
    c = args.connections
    measures = (
        wrk_measure(idp, "/token", c, TOKEN_LUA, [acc.auth("bench-cc"), CC_BODY]),
        wrk_measure(peer, "/token", c, TOKEN_LUA, [pacc.auth("bench-cc"), CC_BODY]),
    )
    return versus(args, 1, "client_credentials, ES256 JWT access token", 0.7, measures)


def scenario_2(
    args: argparse.Namespace, idp: Running, acc: Accounts, peer: Running, pacc: Accounts
) -> Scenario:
    sizes = f"{jwks_size(idp, '/jwks.json')} (idp), {jwks_size(peer, '/jwks')} (peer)"
    c = args.connections
    measures = (wrk_measure(idp, "/jwks.json", c), wrk_measure(peer, "/jwks", c))
    title = "GET JWKS (idp /jwks.json, peer /jwks)"
    return versus(args, 2, title, 0.5, measures, [f"JWKS answers: {sizes}"])


def scenario_3(
    args: argparse.Namespace, idp: Running, acc: Accounts, peer: Running, pacc: Accounts
) -> Scenario:
    # node-oidc-provider refuses to introspect JWTs ("Structured JWT Tokens cannot be
    # introspected"): it gets the opaque access token of its code exchange.
    idp_token = idp_login(idp.url, acc)["access_token"]
    peer_token = peer_login(peer.url, pacc)["access_token"]
    check_introspection(idp.url + "/introspect", acc, idp_token)
    check_introspection(peer.url + "/token/introspection", pacc, peer_token)
    idp_args = [acc.auth("bench-rs"), urlencode({"token": idp_token})]
    peer_args = [pacc.auth("bench-rs"), urlencode({"token": peer_token})]
    c = args.connections
    measures = (
        wrk_measure(idp, "/introspect", c, INTROSPECT_LUA, idp_args),
        wrk_measure(peer, "/token/introspection", c, INTROSPECT_LUA, peer_args),
    )
    return versus(args, 3, "introspection (idp: JWT user token; peer: opaque)", 0.7, measures)


def idp_rotation(args: argparse.Namespace, server: Running, acc: Accounts) -> Measure:
    """Rotation on idp; each round's chains come from whole logins over HTTP."""

    def login() -> str:
        return str(idp_login(server.url, acc)["refresh_token"])

    return rotation_measure(server, login, acc.auth("bench-rp"), args.chains)


def scenario_4(
    args: argparse.Namespace,
    idps: dict[str, tuple[Running, Accounts]],
    peer: Running,
    pacc: Accounts,
) -> Scenario:
    # With resource= the peer's new access token is an ES256 JWT, as idp's is.
    resource = {"resource": PEER_API}
    for server, acc in idps.values():
        refresh_once(server.url, acc, idp_login(server.url, acc)["refresh_token"])
    refresh_once(peer.url, pacc, peer_login(peer.url, pacc)["refresh_token"], resource)
    measures = {label: idp_rotation(args, server, acc) for label, (server, acc) in idps.items()}
    measures["peer"] = rotation_measure(
        peer,
        lambda: str(peer_login(peer.url, pacc)["refresh_token"]),
        pacc.auth("bench-rp"),
        args.chains,
        "&" + urlencode(resource),
    )
    s = alternate(args, "4 rotation", measures)
    pairs = [Pair(label, s[label], "node-oidc-provider", s["peer"]) for label in idps]
    return Scenario(4, "refresh with rotation (new access + ID token)", "req/s", 0.5, pairs)


Flow = Callable[[str, Accounts], dict[str, Any]]


def scenario_5(
    args: argparse.Namespace, idp: Running, acc: Accounts, peer: Running, pacc: Accounts
) -> Scenario:
    verify, wall, params = argon2_verify()
    bound = Sample(1 / verify, verify * 1000, None, 0, float("nan"), 0.0, float("nan"))
    note = (
        f"argon2id ({params}) verify alone on CPU {SERVER_CPU}: {verify * 1000:.1f} ms of "
        f"CPU, {wall * 1000:.1f} ms wall (median of 30); the bound is 1 / CPU time"
    )
    print(f"  5 {note}", flush=True)

    def flows(server: Running, accounts: Accounts, flow: Flow) -> Measure:
        def one(duration: int) -> Sample:
            return measured(
                server, lambda: login_rounds(server, accounts, duration, args.login_clients, flow)
            )

        return one

    s = alternate(
        args,
        "5 whole login",
        {"idp": flows(idp, acc, idp_login), "peer": flows(peer, pacc, peer_login)},
    )
    label = f"argon2id bound (t/m KiB/p = {params})"
    pair = Pair("idp (SQLite)", s["idp"], label, [bound])
    title = "whole password login: authorize, login form, code, token"
    # The same flow on the peer (its development login: no password is checked) gives
    # the CPU a login costs apart from the hash, side by side, and what the peer itself
    # would score against the bound with argon2id added to each of its flows.
    idp_cpu = 1 / statistics.median(x.per_cpu for x in s["idp"])
    peer_cpu = 1 / statistics.median(x.per_cpu for x in s["peer"])
    apart = max(idp_cpu - verify, 0.0)
    notes = [
        note,
        f"server CPU per whole login: idp {idp_cpu * 1000:.1f} ms, of which "
        f"{apart * 1000:.1f} ms is not the password hash; node-oidc-provider "
        f"{peer_cpu * 1000:.1f} ms for the same flow with no password check "
        f"(devInteractions), so idp's flow apart from the hash costs "
        f"{apart / peer_cpu:.2f}x the peer's, and the peer with argon2id added would "
        f"score {verify / (verify + peer_cpu):.2f} against this bound",
    ]
    print(f"  5 {notes[1]}", flush=True)
    return Scenario(5, title, "flows/s", 0.9, [pair], ratio_label="idp ÷ bound", notes=notes)


def login_rounds(
    server: Running, accounts: Accounts, duration: int, clients: int, flow: Flow
) -> tuple[float, float, float, float, int, float]:
    """One round of whole logins (``flow``) on ``server``, as ``measured`` wants it."""
    r = login_load(server.url, accounts, duration, clients, flow)
    if r.failures:
        print(f"    login failure: {r.failures[0]}", flush=True)
    lat = sorted(r.latencies_ms) or [float("nan")]
    p99 = lat[min(len(lat) - 1, round(0.99 * len(lat)))]
    return (r.rate, r.seconds, statistics.median(lat), p99, len(r.failures), r.client_cpu_seconds)


def scenario_6(
    args: argparse.Namespace, workdir: Path, problems: dict[str, dict[str, int]]
) -> Scenario:
    """Rotation with 1,000 and 1,000,000 families stored, on every backend asked for."""
    pairs = [families_pair(args, workdir, b, problems) for b in args.families_backends]
    title = "rotation with many stored refresh families"
    target = round(1 / 1.2, 3)
    return Scenario(6, title, "req/s", target, pairs, ratio_label="large ÷ small")


def families_pair(
    args: argparse.Namespace, workdir: Path, backend: str, problems: dict[str, dict[str, int]]
) -> Pair:
    small, large = args.families_small, args.families
    name = "SQLite" if backend == "sqlite" else "PostgreSQL + Redis"
    with ExitStack() as stack:
        servers = {}
        for n in (small, large):
            factory = sqlite_setup if backend == "sqlite" else postgresql_setup
            setup = stack.enter_context(factory(workdir / f"families-{n}"))
            port = free_port()
            env = idp_env(setup, port)
            acc = seed_idp(env)
            server = stack.enter_context(
                start_idp_server(env, threads=args.threads, server=args.server)
            )
            first = idp_login(server.url, acc)  # the template family: one login, one rotation
            refresh_once(server.url, acc, first["refresh_token"])
            print(f"  6 {backend}: seeding {n:,} refresh families", flush=True)
            seed_families(
                setup.settings["IDP_DATABASE__URL"], n, log=lambda m: print(m, flush=True)
            )
            servers[f"{n:,} families"] = (server, acc)
        measures = {label: idp_rotation(args, srv, acc) for label, (srv, acc) in servers.items()}
        s = alternate(args, f"6 rotation {backend}", measures)
        for label, (srv, _acc) in servers.items():
            problems[f"idp ({name}), {label}"] = log_problems(srv.log_text())
    big, few = f"{large:,} families", f"{small:,} families"
    return Pair(f"idp ({name}), {big}", s[big], f"idp ({name}), {few}", s[few])


# --- the run --------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="3 s rounds, 1 s warm-up, 100k families")
    p.add_argument("--duration", type=int, default=10, help="seconds per round (1-120)")
    p.add_argument("--warmup", type=int, default=3, help="unrecorded seconds per server first")
    p.add_argument("--rounds", type=int, default=3, help="rounds per server and scenario")
    p.add_argument("--connections", type=int, default=16, help="wrk connections (1, 2, 3)")
    p.add_argument("--chains", type=int, default=8, help="rotation chains = connections (4, 6)")
    p.add_argument("--login-clients", type=int, default=4, help="threads running logins (5)")
    p.add_argument("--threads", type=int, default=4, help="threads of idp's one worker")
    p.add_argument("--server", choices=SERVERS, default="auto", help="how idp is served")
    p.add_argument("--families", type=int, default=1_000_000, help="the large count (6)")
    p.add_argument("--families-small", type=int, default=1_000, help="the small count (6)")
    p.add_argument("--families-backends", nargs="+", default=["sqlite", "postgresql"])
    p.add_argument("--only", type=int, nargs="+", default=[1, 2, 3, 4, 5, 6, 7])
    p.add_argument("--results", type=Path, default=RESULTS, help="markdown file to update")
    a = p.parse_args(argv)
    if a.quick:
        a.duration, a.warmup = 3, 1
        a.families = min(a.families, 100_000)
    if not (1 <= a.duration <= 120 and 0 <= a.warmup <= 30 and 1 <= a.rounds <= 9):
        p.error("--duration 1-120, --warmup 0-30, --rounds 1-9")
    if not (1 <= a.chains <= 64 and 1 <= a.connections <= 256 and 1 <= a.threads <= 64):
        p.error("--chains 1-64, --connections 1-256, --threads 1-64")
    if not 1 <= a.families_small < a.families <= 5_000_000:
        p.error("need 1 <= --families-small < --families <= 5,000,000")
    if set(a.families_backends) - {"sqlite", "postgresql"}:
        p.error("--families-backends: sqlite and/or postgresql")
    return a


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    command = ".venv/bin/python bench/compare.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    # This script is a load generator too (logins, chains): keep it off the servers' core.
    os.sched_setaffinity(0, {int(CLIENT_CPU)})
    OUT.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    scenarios: list[Scenario] = []
    rss: dict[str, float] = {}
    problems: dict[str, dict[str, int]] = {}
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="idp-bench-compare-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        idps: dict[str, tuple[Running, Accounts]] = {}
        for name, factory in (("SQLite", sqlite_setup), ("PostgreSQL + Redis", postgresql_setup)):
            if name != "SQLite" and 4 not in args.only:
                continue
            setup = stack.enter_context(factory(work / name.split()[0].lower()))
            port = free_port()
            env = idp_env(setup, port)
            print(f"[{name}] idp db upgrade, user and clients", flush=True)
            acc = seed_idp(env)
            server = stack.enter_context(
                start_idp_server(env, threads=args.threads, server=args.server)
            )
            print(f"[{name}] {server.label} on {server.url}", flush=True)
            idps[f"idp ({name})"] = (server, acc)
        pacc = peer_accounts()
        peer = stack.enter_context(start_peer(free_port(), pacc.secrets))
        print(f"[peer] {peer.label} on {peer.url}", flush=True)
        idp, acc = idps["idp (SQLite)"]
        runs: dict[int, Callable[[], Scenario]] = {
            1: lambda: scenario_1(args, idp, acc, peer, pacc),
            2: lambda: scenario_2(args, idp, acc, peer, pacc),
            3: lambda: scenario_3(args, idp, acc, peer, pacc),
            4: lambda: scenario_4(args, idps, peer, pacc),
            5: lambda: scenario_5(args, idp, acc, peer, pacc),
            6: lambda: scenario_6(args, work, problems),
        }
        for number, run in runs.items():
            if number not in args.only:
                continue
            try:
                scenarios.append(run())
            except Exception as exc:  # noqa: BLE001 - reported in the section; go on
                lines = [x for x in str(exc).splitlines() if x.strip()] or [""]
                why = lines[0] if len(lines) == 1 else f"{lines[0]} … {lines[-1]}"
                failed.append(f"scenario {number}: {type(exc).__name__}: {why}")
                print(f"  {failed[-1]}", file=sys.stderr, flush=True)
        for label, (server, _acc) in idps.items():
            rss[label] = server.worker_rss_mb()
            problems[label] = log_problems(server.log_text())
        rss["node-oidc-provider"] = peer.worker_rss_mb()
        labels = {"idp": idp.label, "peer": peer.label}
    load_after = os.getloadavg()
    body = render(
        args,
        scenarios,
        rss if 7 in args.only else {},
        problems,
        failed,
        labels,
        load_before,
        load_after,
        command.strip(),
    )
    write_results("compare", body, args.results)
    print(f"written to {args.results} (section compare)", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    run_script(main, cleanup="servers stopped, temporary databases removed")
