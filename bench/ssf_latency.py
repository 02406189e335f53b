"""Kill latency: how long a killed session's access token still passes at resource
servers that verify idp's tokens offline with ``idp_verifier``, for the three ways they
learn of kills (issue 12 item 6), written to bench/RESULTS.md (section ``ssf-latency``).

- ``feed``: each resource server follows idp's own revocation feed (``/revocations``,
  long polls; ``Verifier``);
- ``poll``: each follows idp's Shared Signals by poll (RFC 8936, its own stream;
  ``Verifier(signals=True)``);
- ``push``: each runs an RFC 8935 push endpoint (``http.server`` on 127.0.0.1) registered
  as its push stream, and hands what it receives to ``Verifier.accept_set``.

idp runs as deployed (``idp serve``, one worker per CPU) on a fresh database with
``[outbound] allow_loopback = true`` (push goes to 127.0.0.1). ``--receivers`` resource
servers, each a thread with its own receiver client and ``Verifier``, split over
``--processes`` child processes, check a random live session's access token
``--rate`` times a second; every ~``--kill-every`` seconds the killer kills a random
live session through the admin API (``POST /admin/api/sessions/SID/kill``; the kill's
time is the ``ended_at`` idp answers, taken in the kill's transaction) and tells every
resource server, which from then on also checks that token at each of its ticks until
it is refused (at most PROBES_PER_TICK killed tokens a tick, in turns, if many wait).
For each kill and resource server: the last request accepted with the token after the
kill (exposure; 0 when none), the first refusal, and the moment the
verifier's deny state first held the session (``learned``, looked at after each poll
or push). For push, idp's outbox rows give kill → delivered (the POST answered).

    .venv/bin/python -m bench.ssf_latency                      # 50 receivers, 30 s, all modes
    .venv/bin/python -m bench.ssf_latency --receivers 5 --seconds 10 --mode push

Everything is on 127.0.0.1 and bounded: ``--seconds`` of load per mode, then at most
``--grace`` seconds for the last kills to be refused everywhere.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import math
import multiprocessing
import os
import random
import resource
import secrets
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))  # the benchmark scripts import each other flat

from flows import Accounts, idp_login, seed_idp  # noqa: E402
from run import (  # noqa: E402
    OUT,
    RESULTS,
    SETUP_FACTORIES,
    BenchError,
    Setup,
    basic_auth,
    free_port,
    idp_cli,
    idp_env,
    load_average,
    log_problems,
    machine_info,
    run_script,
    start_idp,
    write_results,
)

from idp_verifier import InvalidToken, Verifier  # noqa: E402
from idp_verifier.signals import SESSION_REVOKED  # noqa: E402

MODES = ("feed", "poll", "push")
MODE_LABELS = {
    "feed": "idp feed (/revocations)",
    "poll": "SSF poll (RFC 8936)",
    "push": "SSF push (RFC 8935)",
}
AUDIENCE = "bench-rp"  # the access tokens of bench/flows.py's logins are for this client
ADMIN_ID = "bench-admin"
PUSH = "urn:ietf:rfc:8935"
MAX_SET_BYTES = 16000
SECTION = "ssf-latency"
# Killed tokens a resource server checks per tick: all of them while refusals come
# quickly; in turns during a backlog, so the load stays what it was.
PROBES_PER_TICK = 3


@dataclass
class Options:
    receivers: int = 50
    seconds: float = 30.0
    modes: tuple[str, ...] = MODES
    setup: str = "postgresql"
    rate: float = 10.0  # checks per second per resource server
    kill_every: float = 0.5
    sessions: int = 20  # live sessions the load picks from (kills come on top)
    processes: int = 2
    grace: float = 300.0  # a push backlog drains for a minute or two after the load
    workers: int = 0  # idp workers; 0: one per CPU, as deployed
    seed: int = 12


# --- HTTP helpers (standard library: the children import nothing heavy) ---------------


def _call(
    method: str,
    url: str,
    *,
    body: Any = None,
    form: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> tuple[int, Any]:
    data, sent = None, dict(headers or {})
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        sent["Content-Type"] = "application/x-www-form-urlencoded"
    elif body is not None:
        data = json.dumps(body).encode()
        sent["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=sent)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            return int(resp.status), json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        raw = err.read()
        try:
            return err.code, json.loads(raw) if raw else None
        except ValueError:
            return err.code, raw.decode(errors="replace")


def client_token(issuer: str, client_id: str, secret: str, scope: str) -> str:
    status, got = _call(
        "POST",
        issuer + "/token",
        form={"grant_type": "client_credentials", "scope": scope},
        headers={"Authorization": basic_auth(client_id, secret)},
    )
    if status != 200:
        raise BenchError(f"{client_id}: client_credentials ({scope}) answered {status}: {got}")
    return str(got["access_token"])


def jwt_claims(token: str) -> dict[str, Any]:
    """A JWT's payload, unverified (the bench's own bookkeeping)."""
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def delete_streams(issuer: str, client_id: str, secret: str) -> None:
    """Removes every stream of the receiver (so the next mode owes it nothing)."""
    auth = {"Authorization": "Bearer " + client_token(issuer, client_id, secret, "ssf")}
    status, mine = _call("GET", issuer + "/ssf/stream", headers=auth)
    for stream in mine if status == 200 else []:
        query = urllib.parse.urlencode({"stream_id": stream["stream_id"]})
        _call("DELETE", f"{issuer}/ssf/stream?{query}", headers=auth)


# --- a resource server ----------------------------------------------------------------


class BenchVerifier(Verifier):
    """idp.verifier as a resource server uses it, noting when its deny state first
    holds each watched session (after each poll, and after each pushed SET)."""

    def watch(self, claims_by_sid: dict[str, dict[str, Any]]) -> None:
        self.claims_by_sid = claims_by_sid
        self.learned: dict[str, float] = {}
        self.pushed = 0
        self.push_refused = 0

    def note_learned(self) -> None:
        now = time.time()
        for sid, claims in self.claims_by_sid.items():
            if sid not in self.learned and self.is_revoked(claims):
                self.learned[sid] = now

    def poll(self, wait: float = 0) -> int:
        got = super().poll(wait)
        if got:
            self.note_learned()
        return got


class PushEndpoint(ThreadingHTTPServer):
    """An RFC 8935 push endpoint on 127.0.0.1 feeding one verifier."""

    daemon_threads = True

    def __init__(self, verifier: BenchVerifier) -> None:
        self.verifier = verifier
        self.authorization = "Bearer " + secrets.token_urlsafe(24)
        super().__init__(("127.0.0.1", 0), PushHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/events"


class PushHandler(BaseHTTPRequestHandler):
    server: PushEndpoint

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass

    def _answer(self, status: int, body: dict[str, str] | None = None) -> None:
        raw = json.dumps(body).encode() if body else b""
        self.send_response(status)
        if raw:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        endpoint = self.server
        if self.path != "/events":
            return self._answer(404)
        if self.headers.get("Authorization") != endpoint.authorization:
            return self._answer(401, {"err": "authentication_failed"})
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= MAX_SET_BYTES:
            return self._answer(400, {"err": "invalid_request", "description": "size"})
        token = self.rfile.read(length).decode(errors="replace")
        verifier = endpoint.verifier
        try:
            verifier.accept_set(token)
        except InvalidToken as exc:  # RFC 8935 §2.3: a 400 with the reason
            verifier.push_refused += 1
            return self._answer(400, {"err": exc.error, "description": str(exc)})
        verifier.pushed += 1
        verifier.note_learned()
        return self._answer(202)


def create_push_stream(issuer: str, client_id: str, secret: str, endpoint: PushEndpoint) -> None:
    token = client_token(issuer, client_id, secret, "ssf")
    status, got = _call(
        "POST",
        issuer + "/ssf/stream",
        body={
            "delivery": {
                "method": PUSH,
                "endpoint_url": endpoint.url,
                "authorization_header": endpoint.authorization,
            },
            "events_requested": [SESSION_REVOKED],
            "description": "bench/ssf_latency.py",
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    if status != 201:
        raise BenchError(f"{client_id}: creating its push stream answered {status}: {got}")


@dataclass
class Seen:
    """One resource server's view of one killed session (time.time() values)."""

    last_accepted: float | None = None
    first_refused: float | None = None


@dataclass
class Receiver:
    index: int
    client_id: str
    verifier: BenchVerifier
    rng: random.Random
    endpoint: PushEndpoint | None = None
    seen: dict[str, Seen] = field(default_factory=dict)  # sid -> what this server saw
    checks: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    lateness: list[float] = field(default_factory=list)  # seconds each tick started late


class Board:
    """What the resource servers of one process know of the killer's work."""

    def __init__(self, sids: Sequence[str]) -> None:
        self.lock = threading.Lock()
        self.live = list(sids)
        self.killed: list[str] = []
        self.stop = threading.Event()
        self.grace_until = math.inf

    def kill(self, sid: str) -> None:
        with self.lock:
            if sid in self.live:
                self.live.remove(sid)
                self.killed.append(sid)


def _check(rx: Receiver, sid: str, token: str, killed: bool) -> bool:
    """One request with ``token``; True when the token of a killed session is refused."""
    at = time.time()
    rx.checks += 1
    try:
        rx.verifier.verify(token)
    except InvalidToken as exc:
        if str(exc) != "revoked":
            rx.errors[str(exc)] = rx.errors.get(str(exc), 0) + 1
        # Of a session killed before the killer's word came, or never killed (a false
        # refusal): told apart at the end.
        seen = rx.seen.setdefault(sid, Seen())
        if seen.first_refused is None:
            seen.first_refused = at
        return killed
    except Exception as exc:  # noqa: BLE001 - counted, the load goes on
        name = type(exc).__name__
        rx.errors[name] = rx.errors.get(name, 0) + 1
        return False
    rx.seen.setdefault(sid, Seen()).last_accepted = at
    return False


def serve_load(rx: Receiver, board: Board, tokens: dict[str, str], rate: float) -> None:
    """One resource server's requests: a random live session's token at each tick, and
    the killed tokens it has not refused yet (up to PROBES_PER_TICK of them, in turns);
    after the stop, only those until refused (or the grace ends)."""
    interval = 1.0 / rate
    due = time.monotonic() + rx.rng.uniform(0, interval)
    refused: set[str] = set()
    tick = 0
    while True:
        tick += 1
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        else:
            rx.lateness.append(-pause)
        with board.lock:
            live = list(board.live)
            pending = [sid for sid in board.killed if sid not in refused]
        if board.stop.is_set():
            if not pending or time.monotonic() > board.grace_until:
                return
        elif live:
            sid = rx.rng.choice(live)
            _check(rx, sid, tokens[sid], killed=False)
        if len(pending) > PROBES_PER_TICK:  # a backlog: take turns, keep the load steady
            start = tick % len(pending)
            pending = (pending[start:] + pending[:start])[:PROBES_PER_TICK]
        for sid in pending:
            if _check(rx, sid, tokens[sid], killed=True):
                refused.add(sid)
        due = max(due + interval, time.monotonic())  # late: no burst to catch up


def _receiver(
    index: int, spec: dict[str, Any], claims: dict[str, dict[str, Any]], token: str
) -> Receiver:
    issuer, mode = spec["issuer"], spec["mode"]
    client_id, secret = spec["clients"][index]
    verifier = BenchVerifier(
        issuer,
        audience=AUDIENCE,
        client_id=client_id,
        client_secret=secret,
        signals=mode != "feed",
    )
    verifier.watch(claims)
    # Fetches the JWKS now, not during the load. A full `make test` run once saw this
    # first fetch fail at once with an OSError ("keys are unavailable"; not reproduced
    # alone, cause not found yet): a resource server starting up retries, as one would.
    for attempt in range(5):
        try:
            verifier.verify(token)
            break
        except InvalidToken as exc:
            if "unavailable" not in str(exc) or attempt == 4:
                raise
            # The cause (urllib's error, or the HTTP status) is what finding it needs.
            print(
                f"resource server {index}: JWKS fetch failed ({exc.__context__!r}), again",
                file=sys.stderr,
                flush=True,
            )
            time.sleep(0.5)
    rx = Receiver(index, client_id, verifier, random.Random(spec["seed"] * 1000 + index))
    if mode == "push":
        rx.endpoint = PushEndpoint(verifier)
        threading.Thread(target=rx.endpoint.serve_forever, daemon=True).start()
        create_push_stream(issuer, client_id, secret, rx.endpoint)
    else:
        verifier.start()  # makes its poll stream (signals) and follows in a thread
    return rx


def receivers_main(spec: dict[str, Any], conn: Connection) -> None:
    """A child process: the resource servers ``spec["indexes"]``, driven by messages
    from the killer (``go``, ``kill SID``, ``stop``); answers ``ready`` and then its
    results."""
    tokens: dict[str, str] = spec["tokens"]
    claims = {sid: jwt_claims(token) for sid, token in tokens.items()}
    any_token = next(iter(tokens.values()))
    try:
        receivers = [_receiver(i, spec, claims, any_token) for i in spec["indexes"]]
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which stops
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    board = Board(list(tokens))
    conn.send(("ready", None))
    kind, _ = conn.recv()
    assert kind == "go"
    cpu0, began = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    threads = [
        threading.Thread(target=serve_load, args=(rx, board, tokens, spec["rate"]), daemon=True)
        for rx in receivers
    ]
    for t in threads:
        t.start()
    while True:
        kind, sid = conn.recv()
        if kind == "kill":
            board.kill(sid)
        elif kind == "stop":
            board.grace_until = time.monotonic() + spec["grace"]
            board.stop.set()
            break
    for t in threads:
        t.join(spec["grace"] + 30)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    results = [
        {
            "index": rx.index,
            "client_id": rx.client_id,
            "seen": {
                sid: [s.last_accepted, s.first_refused, rx.verifier.learned.get(sid)]
                for sid, s in rx.seen.items()
                if sid in board.killed
            },
            "checks": rx.checks,
            "false_refusals": sum(
                1
                for sid, s in rx.seen.items()
                if s.first_refused is not None and sid not in board.killed
            ),
            "errors": rx.errors,
            "lateness": rx.lateness,
            "pushed": rx.verifier.pushed,
            "push_refused": rx.verifier.push_refused,
        }
        for rx in receivers
    ]
    cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    elapsed = time.monotonic() - began
    conn.send(("results", {"receivers": results, "cpu_seconds": cpu, "seconds": elapsed}))
    for rx in receivers:
        rx.verifier.stop()
        if rx.endpoint is not None:
            rx.endpoint.shutdown()


# --- the killer (the parent process) ---------------------------------------------------


@dataclass
class Kill:
    sid: str
    at: float  # ended_at as idp answered it (taken in the kill's transaction)
    sent: float  # the request left
    answered: float  # the answer came back


@dataclass
class ModeRun:
    mode: str
    kills: list[Kill]
    receivers: list[dict[str, Any]]
    cpu_seconds: float
    seconds: float  # the resource servers ran: the load, then until every kill was refused
    outbox: list[dict[str, Any]]  # push: ssf_events of the killed sessions


def _iso(value: str) -> float:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def kill_session(issuer: str, admin_token: str, sid: str) -> Kill:
    sent = time.time()
    status, got = _call(
        "POST",
        f"{issuer}/admin/api/sessions/{sid}/kill",
        body={"reason": "bench/ssf_latency.py"},
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    answered = time.time()
    if status != 200 or not got.get("killed"):
        raise BenchError(f"killing {sid} answered {status}: {got}")
    return Kill(sid, _iso(got["ended_at"]), sent, answered)


def login_sessions(base: str, accounts: Accounts, count: int) -> dict[str, str]:
    """``count`` browser sessions of the bench user (whole logins over HTTP): sid ->
    access token."""
    tokens = {}
    for _ in range(count):
        access = str(idp_login(base, accounts)["access_token"])
        tokens[str(jwt_claims(access)["sid"])] = access
    return tokens


def outbox_rows(database_url: str, sids: Sequence[str]) -> list[dict[str, Any]]:
    """idp's ssf_events rows about these sessions: when each was written (the kill's
    transaction), delivered, and in how many attempts."""
    from sqlalchemy import create_engine, select

    from idp.ssf.models import SsfEvent, SsfStream

    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(
                    SsfEvent.session_id,
                    SsfStream.client_id,
                    SsfEvent.created_at,
                    SsfEvent.delivered_at,
                    SsfEvent.attempts,
                    SsfEvent.status,
                )
                .join(SsfStream, SsfStream.id == SsfEvent.stream_id)
                .where(SsfEvent.session_id.in_(list(sids)))
            ).all()
    finally:
        engine.dispose()

    def stamp(value: dt.datetime | None) -> float | None:
        if value is None:
            return None
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp()

    return [
        {
            "sid": r[0],
            "client_id": r[1],
            "created": stamp(r[2]),
            "delivered": stamp(r[3]),
            "attempts": r[4],
            "status": r[5],
        }
        for r in rows
    ]


def run_mode(
    mode: str,
    opts: Options,
    base: str,
    accounts: Accounts,
    clients: list[tuple[str, str]],
    admin_secret: str,
    database_url: str,
) -> ModeRun:
    rng = random.Random(f"{opts.seed}:{mode}")
    expected = math.ceil(opts.seconds / opts.kill_every) + 2
    print(f"[{mode}] logging in {opts.sessions + expected} sessions", flush=True)
    tokens = login_sessions(base, accounts, opts.sessions + expected)
    ctx = multiprocessing.get_context("spawn")
    parts = [list(range(opts.receivers))[p :: opts.processes] for p in range(opts.processes)]
    children = []
    for indexes in filter(None, parts):
        ours, theirs = ctx.Pipe()
        spec = {
            "issuer": base,
            "mode": mode,
            "clients": clients,
            "indexes": indexes,
            "tokens": tokens,
            "rate": opts.rate,
            "grace": opts.grace,
            "seed": opts.seed,
        }
        proc = ctx.Process(target=receivers_main, args=(spec, theirs), daemon=True)
        proc.start()
        children.append((proc, ours))
    try:
        for _, conn in children:
            if not conn.poll(120):
                raise BenchError(f"[{mode}] a resource-server process did not start")
            kind, detail = conn.recv()
            if kind != "ready":
                raise BenchError(f"[{mode}] a resource-server process failed: {detail}")
        admin_token = client_token(base, ADMIN_ID, admin_secret, "idp:admin")
        print(f"[{mode}] {opts.receivers} resource servers ready; load for {opts.seconds:g} s")
        for _, conn in children:
            conn.send(("go", None))
        live = list(tokens)
        kills: list[Kill] = []
        started = time.monotonic()
        due = started + opts.kill_every
        while due < started + opts.seconds and len(live) > 1:
            time.sleep(max(0.0, due - time.monotonic()))
            sid = live.pop(rng.randrange(len(live)))
            kills.append(kill_session(base, admin_token, sid))
            for _, conn in children:
                conn.send(("kill", sid))
            due += opts.kill_every * rng.uniform(0.6, 1.4)
        time.sleep(max(0.0, started + opts.seconds - time.monotonic()))
        for _, conn in children:
            conn.send(("stop", None))
        receivers: list[dict[str, Any]] = []
        cpu, elapsed = 0.0, 0.0
        for _, conn in children:
            if not conn.poll(opts.grace + 120):
                raise BenchError(f"[{mode}] a resource-server process sent no results")
            kind, got = conn.recv()
            receivers += got["receivers"]
            cpu += got["cpu_seconds"]
            elapsed = max(elapsed, got["seconds"])
    finally:
        for proc, _ in children:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
    receivers.sort(key=lambda r: r["index"])
    outbox = outbox_rows(database_url, [k.sid for k in kills]) if mode == "push" else []
    if mode != "feed":  # the next mode's kills owe these streams nothing
        for client_id, secret in clients:
            delete_streams(base, client_id, secret)
    return ModeRun(mode, kills, receivers, cpu, elapsed, outbox)


# --- numbers ----------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (NaN for no values)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


@dataclass
class Summary:
    mode: str
    kills: int
    receivers: int
    exposure: list[float]  # per (kill, receiver): last accepted after the kill, or 0
    refused: list[float]  # first refusal after the kill
    learned: list[float]  # the verifier's deny state held it
    worst: list[float]  # per receiver: its slowest refusal
    never_refused: int
    checks: int
    seconds: float
    false_refusals: int
    errors: dict[str, int]
    lateness_p99: float
    kill_rtt: list[float]
    cpu_seconds: float
    delivered: list[float] = field(default_factory=list)  # push: kill -> POST answered
    # push: the receiver's deny state held it -> idp recorded the delivery
    to_receiver: list[float] = field(default_factory=list)
    attempts_over_one: int = 0
    undelivered: int = 0


def summarize(run: ModeRun) -> Summary:
    exposure, refused, learned, worst = [], [], [], []
    never = 0
    errors: dict[str, int] = {}
    for rx in run.receivers:
        slowest = 0.0
        for kill in run.kills:
            last, first, known = rx["seen"].get(kill.sid, [None, None, None])
            exposure.append(max(0.0, (last or 0.0) - kill.at))
            if first is None:
                never += 1
                continue
            refused.append(first - kill.at)
            slowest = max(slowest, first - kill.at)
            if known is not None:
                learned.append(known - kill.at)
        worst.append(slowest)
        for why, n in rx["errors"].items():
            errors[why] = errors.get(why, 0) + n
        if rx["push_refused"]:  # SETs the push endpoint answered 400
            errors["SET refused"] = errors.get("SET refused", 0) + rx["push_refused"]
    lateness = [x for rx in run.receivers for x in rx["lateness"]]
    summary = Summary(
        mode=run.mode,
        kills=len(run.kills),
        receivers=len(run.receivers),
        exposure=exposure,
        refused=refused,
        learned=learned,
        worst=worst,
        never_refused=never,
        checks=sum(rx["checks"] for rx in run.receivers),
        seconds=run.seconds,
        false_refusals=sum(rx["false_refusals"] for rx in run.receivers),
        errors=errors,
        lateness_p99=percentile(lateness, 99) if lateness else 0.0,
        kill_rtt=[k.answered - k.sent for k in run.kills],
        cpu_seconds=run.cpu_seconds,
    )
    if run.mode == "push":
        at = {k.sid: k.at for k in run.kills}
        learned_at = {
            (rx["client_id"], sid): seen[2]
            for rx in run.receivers
            for sid, seen in rx["seen"].items()
            if seen[2] is not None
        }
        for row in run.outbox:
            if row["delivered"] is None:
                summary.undelivered += 1
                continue
            summary.delivered.append(row["delivered"] - at[row["sid"]])
            summary.attempts_over_one += row["attempts"] > 1
            known = learned_at.get((row["client_id"], row["sid"]))
            if known is not None:
                summary.to_receiver.append(row["delivered"] - known)
    return summary


def ms(value: float) -> str:
    return "–" if math.isnan(value) else f"{value * 1000:,.0f} ms"


def triple(values: Sequence[float]) -> str:
    return " / ".join(ms(percentile(values, p)) for p in (50, 99, 100))


def render(summaries: Sequence[Summary], opts: Options, command: str, env: dict[str, str]) -> str:
    m = machine_info()
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "## Kill latency at resource servers: idp feed, SSF poll, SSF push",
        "",
        f"{opts.receivers} resource servers (threads with their own `idp.verifier`, in "
        f"{opts.processes} process(es)) each check a random live session's access token "
        f"{opts.rate:g} times a second for {opts.seconds:g} s while a session is killed "
        f"every ~{opts.kill_every:g} s through the admin API; each then also checks the "
        f"killed token at each tick until it refuses it (at most {PROBES_PER_TICK} killed "
        "tokens a tick, in turns, during a backlog). Times are from the kill (`ended_at`, "
        "taken in the kill's transaction) for every (kill, resource server) pair, as p50 / "
        "p99 / max; *accepted after* is the last request the token passed after the kill "
        "(0 if none), *refused* the first refusal (at the check rate's resolution), "
        "*learned* the moment the verifier's deny state held the session.",
        "",
        "| mode | kills | accepted after the kill | refused | learned | worst receiver "
        "(median / max of each one's slowest) | never refused |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in summaries:
        lines.append(
            f"| {MODE_LABELS[s.mode]} | {s.kills} | {triple(s.exposure)} | {triple(s.refused)} "
            f"| {triple(s.learned)} | {ms(percentile(s.worst, 50))} / "
            f"{ms(percentile(s.worst, 100))} | {s.never_refused} |"
        )
    lines += [
        "",
        "| mode | checks/s (target) | tick lateness p99 | resource servers' CPU | "
        "kill request p50 / p99 | live tokens refused | other refusals |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in summaries:
        other = ", ".join(f"{k}: {v}" for k, v in sorted(s.errors.items())) or "0"
        target = opts.receivers * opts.rate
        lines.append(
            f"| {MODE_LABELS[s.mode]} | {s.checks / s.seconds:,.0f} ({target:,.0f} + killed) "
            f"| {ms(s.lateness_p99)} | {s.cpu_seconds / s.seconds:.0%} of a core "
            f"| {ms(percentile(s.kill_rtt, 50))} / {ms(percentile(s.kill_rtt, 99))} "
            f"| {s.false_refusals} | {other} |"
        )
    push = [s for s in summaries if s.mode == "push"]
    for s in push:
        lines += [
            "",
            f"Push, idp's side (outbox rows of the killed sessions, {len(s.delivered)} "
            f"delivered, {s.undelivered} not, {s.attempts_over_one} after a retry): kill → "
            f"delivered (idp recorded the POST's answer) {triple(s.delivered)}; the "
            "receiver's deny state held the session → idp recorded the delivery "
            f"{triple(s.to_receiver)} (p50 / p99 / max).",
        ]
    busy = load_average()
    lines += [
        "",
        f"- date: {now}",
        f"- machine: {m['nproc']} CPUs ({m['cpu']}), Linux {m['kernel']}, Python {m['python']}; "
        f"load average {env.get('load_before', '?')} before the run, {busy:.2f} after"
        + (
            " (**the machine was busy** with other work: a CI run)"
            if env.get("busy") == "yes"
            else ""
        ),
        f"- idp: {env.get('server', '?')}, {env.get('setup', '?')}, "
        "`[outbound] allow_loopback = true`; everything on 127.0.0.1",
        f"- reproduce: `{command}`",
    ]
    return "\n".join(lines)


def print_summary(s: Summary) -> None:
    print(
        f"[{s.mode}] {s.kills} kills × {s.receivers} resource servers: accepted after "
        f"{triple(s.exposure)}, refused {triple(s.refused)}, learned {triple(s.learned)}, "
        f"never refused {s.never_refused}, live tokens refused {s.false_refusals}, "
        f"tick lateness p99 {ms(s.lateness_p99)}, {s.checks / s.seconds:,.0f} checks/s, "
        f"CPU {s.cpu_seconds / s.seconds:.0%}, kill request {triple(s.kill_rtt)}",
        flush=True,
    )
    if s.mode == "push":
        print(
            f"[push] kill → delivered {triple(s.delivered)}, learned → delivered "
            f"{triple(s.to_receiver)}, undelivered {s.undelivered}, retried "
            f"{s.attempts_over_one}",
            flush=True,
        )


# --- the whole run ----------------------------------------------------------------------


def receiver_clients(base: str, admin_token: str, count: int) -> list[tuple[str, str]]:
    """One client per resource server (client_credentials, scope ssf): each has its
    own streams and its own share of the feed's waiting polls."""
    clients = []
    for i in range(count):
        client_id = f"bench-rx-{i:03d}"
        status, got = _call(
            "POST",
            base + "/admin/api/clients",
            body={"client_id": client_id, "grant_types": ["client_credentials"], "scope": "ssf"},
            headers={"Authorization": f"Bearer {admin_token}"},
        )
        if status != 201:
            raise BenchError(f"creating {client_id} answered {status}: {got}")
        clients.append((client_id, str(got["client_secret"])))
    return clients


def run_setup(setup: Setup, opts: Options) -> tuple[list[Summary], list[ModeRun], dict[str, str]]:
    """Everything on one fresh database: seed, serve, run each mode."""
    info = {"load_before": f"{load_average():.2f}", "setup": setup.label}
    info["busy"] = "yes" if load_average() >= (os.cpu_count() or 1) * 0.75 else "no"
    port = free_port()
    env = idp_env(setup, port, {"IDP_OUTBOUND__ALLOW_LOOPBACK": "true"})
    print(f"[{setup.name}] seeding a fresh database", flush=True)
    accounts = seed_idp(env)
    out = idp_cli(env, "clients", "create", ADMIN_ID, "--admin-client").strip().splitlines()
    admin_secret = str(json.loads(out[-1])["client_secret"])
    log_path = OUT / f"idp-ssf-latency-{setup.name}.log"
    summaries, runs = [], []
    with start_idp(env, log_path=log_path, workers=opts.workers or None) as server:
        info["server"] = server.label
        print(f"[{setup.name}] {server.label} on {server.url}", flush=True)
        admin_token = client_token(server.url, ADMIN_ID, admin_secret, "idp:admin")
        clients = receiver_clients(server.url, admin_token, opts.receivers)
        for mode in opts.modes:
            run = run_mode(
                mode,
                opts,
                server.url,
                accounts,
                clients,
                admin_secret,
                env["IDP_DATABASE__URL"],
            )
            runs.append(run)
            summaries.append(summarize(run))
            print_summary(summaries[-1])
    problems = log_problems(log_path.read_text(errors="replace"))
    if problems:
        print(f"[{setup.name}] problems in {log_path}: {problems}", flush=True)
    return summaries, runs, info


def measure(opts: Options) -> tuple[list[Summary], list[ModeRun], dict[str, str]]:
    """The benchmark's core: a throwaway database of ``opts.setup``, idp, the modes."""
    OUT.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="idp-bench-ssf-") as tmp,
        SETUP_FACTORIES[opts.setup](Path(tmp)) as setup,
    ):
        return run_setup(setup, opts)


def parse_args(argv: Sequence[str] | None) -> tuple[Options, Path]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--receivers", type=int, default=50, help="resource servers (1-200)")
    p.add_argument("--seconds", type=float, default=30, help="seconds of load per mode (5-600)")
    p.add_argument("--mode", choices=[*MODES, "all"], default="all")
    p.add_argument("--setup", choices=sorted(SETUP_FACTORIES), default="postgresql")
    p.add_argument("--rate", type=float, default=10, help="checks/s per resource server (1-50)")
    p.add_argument("--kill-every", type=float, default=0.5, help="seconds between kills")
    p.add_argument("--sessions", type=int, default=20, help="live sessions the load uses")
    p.add_argument("--processes", type=int, default=2, help="processes for the servers (1-8)")
    p.add_argument(
        "--grace", type=float, default=300, help="most seconds to wait for the last refusals"
    )
    p.add_argument("--workers", type=int, default=0, help="idp workers (0: one per CPU)")
    p.add_argument("--results", type=Path, default=RESULTS, help="markdown file to update")
    p.add_argument("--no-results", action="store_true", help="print only")
    args = p.parse_args(argv)
    checks = [
        (1 <= args.receivers <= 200, "--receivers must be 1 to 200"),
        (5 <= args.seconds <= 600, "--seconds must be 5 to 600"),
        (1 <= args.rate <= 50, "--rate must be 1 to 50"),
        (0.1 <= args.kill_every <= 10, "--kill-every must be 0.1 to 10"),
        (2 <= args.sessions <= 500, "--sessions must be 2 to 500"),
        (1 <= args.processes <= 8, "--processes must be 1 to 8"),
        (1 <= args.grace <= 600, "--grace must be 1 to 600"),
        (args.workers >= 0, "--workers must not be negative"),
    ]
    for ok, why in checks:
        if not ok:
            p.error(why)
    opts = Options(
        receivers=args.receivers,
        seconds=args.seconds,
        modes=MODES if args.mode == "all" else (args.mode,),
        setup=args.setup,
        rate=args.rate,
        kill_every=args.kill_every,
        sessions=args.sessions,
        processes=min(args.processes, args.receivers),
        grace=args.grace,
        workers=args.workers,
    )
    return opts, (Path(os.devnull) if args.no_results else args.results)


def main(argv: Sequence[str] | None = None) -> int:
    opts, results = parse_args(argv)
    command = ".venv/bin/python -m bench.ssf_latency " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    summaries, _, info = measure(opts)
    if results != Path(os.devnull):
        write_results(SECTION, render(summaries, opts, command.strip(), info), results)
        print(f"written to {results}", flush=True)
    bad = [s.mode for s in summaries if s.never_refused]
    if bad:
        print(f"kills never refused everywhere in: {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    run_script(main)
