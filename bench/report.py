"""The side-by-side results: samples, medians, ratios, and the markdown section that
bench/compare.py writes into bench/RESULTS.md."""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from run import machine_info
from servers import CLIENT_CPU, SERVER_CPU, node_version, peer_version

# Load average above this before the run: something else competed for the two cores.
BUSY_LOAD = 0.5
# A round in which other processes used this much of a core is marked as disturbed.
BUSY_OTHER_CPU = 0.15


def virtual() -> str:
    """Notes a virtual machine: its vCPUs may share physical cores with other guests."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split("flags", 1)[1].split("\n", 1)[0]
    except (OSError, IndexError):
        return ""
    return "; a virtual machine" if " hypervisor" in flags else ""


def system_cpu_seconds() -> float:
    """Busy CPU time of the whole machine so far (all cores; /proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


@dataclass
class Sample:
    """One round: the rate, its latencies, errors (non-2xx, socket errors, failed
    checks), and the share of one core used by the server, the load generator and
    everything else (PostgreSQL and Redis included) while it ran."""

    rate: float
    p50_ms: float | None
    p99_ms: float | None
    errors: int
    server_cpu: float
    client_cpu: float
    other_cpu: float

    @property
    def per_cpu(self) -> float:
        """Rate per CPU-second of the server: steadier than the rate when other work
        keeps the server from its whole core (a busy machine)."""
        return self.rate / self.server_cpu if self.server_cpu > 0 else float("nan")

    def describe(self) -> str:
        return (
            f"{self.rate:,.1f}/s, p50 {fmt_ms(self.p50_ms)}, p99 {fmt_ms(self.p99_ms)}, "
            f"errors {self.errors}, CPU server {pct(self.server_cpu)} client "
            f"{pct(self.client_cpu)} other {pct(self.other_cpu)}"
        )


def median_sample(samples: Sequence[Sample]) -> Sample:
    """The round with the median rate (for latency and CPU; the lower middle one for an
    even count, whose rate is then below the median of the rates)."""
    ordered = sorted(samples, key=lambda s: s.rate)
    return ordered[(len(ordered) - 1) // 2]


@dataclass
class Pair:
    """Two sets of rounds compared: ``a`` ÷ ``b``."""

    a_label: str
    a: list[Sample]
    b_label: str
    b: list[Sample]

    @property
    def ratio(self) -> float:
        a, b = statistics.median(s.rate for s in self.a), statistics.median(s.rate for s in self.b)
        return a / b if b else float("nan")


@dataclass
class Scenario:
    number: int
    title: str
    unit: str
    target: float
    pairs: list[Pair]
    ratio_label: str = "idp ÷ peer"
    notes: list[str] = field(default_factory=list)


def fmt_ms(ms: float | None) -> str:
    if ms is None or math.isnan(ms):
        return "–"
    return f"{ms:.2f} ms" if ms < 100 else f"{ms:,.0f} ms"


def pct(share: float) -> str:
    return "–" if math.isnan(share) else f"{share * 100:.0f} %"


def rate(samples: Sequence[Sample], unit: str) -> str:
    return f"{statistics.median(s.rate for s in samples):,.1f} {unit}"


def per_cpu(samples: Sequence[Sample]) -> str:
    """Median over the rounds of the rate per server CPU-second."""
    value = statistics.median(s.per_cpu for s in samples)
    return "–" if math.isnan(value) else f"{value:,.0f}"


def summary(scenarios: Sequence[Scenario], rss: Mapping[str, float]) -> list[str]:
    lines = [
        "| # | scenario | measured | compared with | ratio | target | |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for sc in scenarios:
        for p in sc.pairs:
            met = "met" if p.ratio >= sc.target else "**below**"
            lines.append(
                f"| {sc.number} | {sc.title} | {p.a_label}: {rate(p.a, sc.unit)} "
                f"| {p.b_label}: {rate(p.b, sc.unit)} | {p.ratio:.2f} ({sc.ratio_label}) "
                f"| ≥ {sc.target:.2f} | {met} |"
            )
    peer = rss.get("node-oidc-provider")
    for label, mb in rss.items():
        if label != "node-oidc-provider" and peer:
            lines.append(
                f"| 7 | worker RSS after the load | {label}: {mb:,.0f} MB "
                f"| node-oidc-provider: {peer:,.0f} MB | {mb / peer:.2f} (idp ÷ peer) | – | |"
            )
    return lines


def rounds(scenarios: Sequence[Scenario]) -> list[str]:
    lines = [
        "| # | server | rate of each round | median | per server CPU-s | p50 | p99 | errors "
        "| server CPU | client CPU | other CPU |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for sc in scenarios:
        seen = set()
        for p in sc.pairs:
            for label, samples in ((p.a_label, p.a), (p.b_label, p.b)):
                if label in seen:
                    continue
                seen.add(label)
                m = median_sample(samples)
                disturbed = " ⚠" if any(s.other_cpu > BUSY_OTHER_CPU for s in samples) else ""
                lines.append(
                    f"| {sc.number} | {label} | {', '.join(f'{s.rate:,.1f}' for s in samples)} "
                    f"| {rate(samples, sc.unit)} | {per_cpu(samples)} "
                    f"| {fmt_ms(m.p50_ms)} | {fmt_ms(m.p99_ms)} "
                    f"| {sum(s.errors for s in samples)} | {pct(m.server_cpu)} "
                    f"| {pct(m.client_cpu)} | {pct(m.other_cpu)}{disturbed} |"
                )
    return lines


CONFIGURATION = """\
- **idp**: {idp}, pinned to CPU {server_cpu}; SQLite (a file in a temporary folder) or
  PostgreSQL (a throwaway database) + Redis (a throwaway key prefix), seeded with `idp db
  upgrade`, `idp users create` and `idp clients create`. Access tokens are RFC 9068 JWTs
  signed ES256, ID tokens RS256 (its defaults).
- **peer**: {peer} (`bench/peer/server.mjs`, versions pinned by `bench/peer/package-lock.json`),
  one node process pinned to CPU {server_cpu}. The same three clients (client_secret_basic):
  `bench-cc` (client_credentials, scope `api:read`), `bench-rp` (authorization_code +
  refresh_token, `openid offline_access`) and `bench-rs` (calls introspection); one ES256
  and one RS256 key; `features.resourceIndicators` with `accessTokenFormat: 'jwt'` signed
  ES256 for the API, so client_credentials and refreshes with `resource=` return ES256 JWT
  access tokens like idp's; `rotateRefreshToken: true` (every refresh rotates, as in idp);
  introspection enabled; lifetimes as idp's (5 min access and ID tokens, 14 days refresh);
  its default in-memory adapter.
- **load**: wrk ({wrk}) and this script pinned to CPU {client_cpu}, only on 127.0.0.1.
  Scenarios 1–3: `wrk -t2 -c{connections}`; 4 and 6: `wrk -t{chains} -c{chains}` with
  `bench/rotate.lua`, one connection per chain presenting the newest refresh token, every
  answer checked (200, a new refresh token, an access and an ID token), fresh chains (one
  login each) every round; 5: {login_clients} threads of this script running whole logins
  (`GET /authorize` → `GET /login` → `POST /login` with the CSRF token → `GET /authorize`
  → code → `POST /token`). {rounds} rounds of {duration} s per server, alternating, the
  order flipped every round, after {warmup} s of warm-up each; the median round counts.

Comparability:

- Introspection (3) is not the same work: node-oidc-provider refuses to introspect JWTs
  (`unsupported_token_type`: "Structured JWT Tokens cannot be introspected"), so it looks up
  its opaque access token (from the code exchange, without `resource`) in memory, while idp
  verifies its ES256 JWT and checks the deny list and the user in its database.
- The peer's default adapter is a 1,000-entry in-memory LRU: nothing is durable, nothing is
  shared between processes, and old grants are evicted. idp writes every rotation to SQLite
  or PostgreSQL in one transaction and keeps the chain for reuse detection.
- The peer logs in through its development pages (devInteractions: no password check); its
  chains are started that way, and scenario 5 is idp's alone.
- PostgreSQL and Redis are not pinned: their work shows as "other CPU" in the rounds table.
  The JWKS answers differ in size (idp publishes the next and retired keys too)."""


def render(
    args: argparse.Namespace,
    scenarios: Sequence[Scenario],
    rss: Mapping[str, float],
    problems: Mapping[str, Mapping[str, int]],
    failed: Sequence[str],
    labels: Mapping[str, str],
    load_before: Sequence[float],
    load_after: Sequence[float],
    command: str,
) -> str:
    m = machine_info()
    busy = load_before[0] >= BUSY_LOAD
    lines = [
        "## idp side by side with node-oidc-provider, one core each",
        "",
    ]
    if busy:
        lines += [
            f"**The machine was busy** (load average {load_before[0]:.2f} before the run, "
            f"{BUSY_LOAD} or more): other work shared the two cores, so these numbers are "
            "noisy and low; take them again on an idle machine. Rounds marked ⚠ had other "
            f"processes using more than {BUSY_OTHER_CPU * 100:.0f} % of a core.",
            "",
        ]
    lines += [f"**Failed**: {why}" for why in failed] + ([""] if failed else [])
    if args.quick:
        lines += [
            "Quick run (`--quick`): short rounds; the harness works, the numbers are rough.",
            "",
        ]
    lines += [
        *summary(scenarios, rss),
        "",
        "Every round (rates; the median over the rounds of the rate per CPU-second the "
        "server used, which a busy machine disturbs less; latency and CPU of the median "
        "round, CPU as a share of one core: the server's processes, the load generator, "
        "everything else):",
        "",
        *rounds(scenarios),
        "",
        *[f"- {sc.number}: {note}" for sc in scenarios for note in sc.notes],
        *([""] if any(sc.notes for sc in scenarios) else []),
        CONFIGURATION.replace("\n  ", " ").format(
            idp=labels.get("idp", "idp"),
            peer=labels.get("peer", "node-oidc-provider"),
            server_cpu=SERVER_CPU,
            client_cpu=CLIENT_CPU,
            wrk=m["wrk"],
            connections=args.connections,
            chains=args.chains,
            login_clients=args.login_clients,
            rounds=args.rounds,
            duration=args.duration,
            warmup=args.warmup,
        ),
        "",
    ]
    node = node_version()
    if node.startswith("v") and int(node[1:].split(".")[0]) < 22:
        lines.append(
            f"- oidc-provider 9 warns at start that it supports Node.js 22 LTS or later; this "
            f"run used node {node}."
        )
    for label, found in problems.items():
        if found:
            text = ", ".join(f"{k}: {v}" for k, v in sorted(found.items()))
            lines.append(f"- **{label} server log problems**: {text} (bench/out/)")
    lines += [
        f"- date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M UTC}",
        f"- machine: {m['nproc']} CPUs ({m['cpu']}{virtual()}), Linux {m['kernel']}, Python "
        f"{m['python']}, node {node}, oidc-provider {peer_version()}",
        f"- load average before the run {', '.join(f'{x:.2f}' for x in load_before)}; "
        f"after {', '.join(f'{x:.2f}' for x in load_after)} (1, 5, 15 min)",
        f"- reproduce: `make bench` (this run: `{command}`)",
    ]
    return "\n".join(lines)
