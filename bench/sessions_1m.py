#!/usr/bin/env python3
"""The admin sessions dashboard with 1,000,000 browser sessions on PostgreSQL, written to
bench/RESULTS.md (section ``sessions-1m``).

Fills a fresh, migrated PostgreSQL database (a throwaway ``idp_bench_*`` database from
bench/run.py, dropped at the end) with 100,000 users and 1,000,000 browser sessions over
the last 7 days (~10 % ended; realistic user agents and IPv4/IPv6 addresses; each
session linked to one or two of a few clients) using COPY, then with idp (``idp serve``)
and an admin logged in over HTTP measures GET /admin/sessions (first page, a page reached
through the next links, a deep keyset page, filtered by user) and POST
/admin/sessions/<sid>/kill, the memory one page takes (tracemalloc, in-process), and
runs EXPLAIN ANALYZE of the statements behind the page and the kill.

    .venv/bin/python bench/sessions_1m.py                      # 1M sessions, 50 requests each
    .venv/bin/python bench/sessions_1m.py --sessions 100000 --requests 20
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import random
import re
import secrets
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from refresh import CSRF_RE, browser_login, in_process_app  # noqa: E402
from run import (  # noqa: E402
    OUT,
    RESULTS,
    BenchError,
    environment_lines,
    fmt_ms,
    free_port,
    idp_cli,
    idp_env,
    load_average,
    log_problems,
    postgresql_setup,
    run_script,
    start_idp,
    write_results,
)

CLIENTS = ["web-portal", "mobile-app", "partner-crm", "support-desk"]
AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
    "like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.6478.71 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.68",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/125.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 16_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/16.6 Mobile/15E148 Safari/604.1",
]
DAY = 86400.0
WEEK = 7 * DAY


def _ts(t: float) -> str:
    # Naive UTC, as idp's UTCDateTime stores it.
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _ip(rng: random.Random) -> str:
    if rng.random() < 0.15:
        return f"2001:db8:{rng.getrandbits(16):x}:{rng.getrandbits(16):x}::{rng.getrandbits(16):x}"
    return (
        f"{rng.choice((81, 88, 93, 109, 151, 178, 185, 203))}.{rng.randrange(256)}."
        f"{rng.randrange(256)}.{rng.randrange(1, 255)}"
    )


# --- the data ---------------------------------------------------------------------------


def fill(dsn: str, n_users: int, n_sessions: int, seed: int = 1) -> dict[str, float]:
    """COPY users, browser_sessions and session_clients; returns seconds per table."""
    import psycopg

    rng = random.Random(seed)
    now = time.time()
    timings: dict[str, float] = {}
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        t0 = time.perf_counter()
        user_ids = [f"{rng.getrandbits(128):032x}" for _ in range(n_users)]
        with cur.copy(
            "COPY users (id, username, email, email_verified, name, password_hash, "
            "is_admin, disabled, attributes, created_at) FROM STDIN"
        ) as cp:
            buf = io.StringIO()
            for i, uid in enumerate(user_ids):
                buf.write(
                    f"{uid}\tuser{i:06d}\tuser{i:06d}@example.test\tt\tUser {i}\t"
                    f"!bench-no-login\tf\tf\t{{}}\t{_ts(now - 90 * DAY)}\n"
                )
            cp.write(buf.getvalue())
        conn.commit()
        timings["users"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        clients_rows = 0
        chunk = 100_000
        with (
            cur.copy(
                "COPY browser_sessions (id, token_hash, user_id, auth_time, ip, "
                "user_agent, created_at, last_seen_at, expires_at, ended_at, end_reason) "
                "FROM STDIN"
            ) as cp,
            io.StringIO() as links,
        ):
            for start in range(0, n_sessions, chunk):
                buf = io.StringIO()
                for _ in range(min(chunk, n_sessions - start)):
                    sid = f"{rng.getrandbits(128):032x}"
                    # Some users log in far more often than others.
                    uid = user_ids[int(n_users * rng.random() ** 1.6)]
                    created = now - rng.random() * WEEK
                    age = now - created
                    seen = created + rng.random() * min(age, 8 * 3600)
                    if rng.random() < 0.10:
                        ended, reason = (
                            _ts(seen),
                            rng.choice(("logout", "replaced by a new login", "killed by operator")),
                        )
                    else:
                        ended, reason = "\\N", "\\N"
                    c = _ts(created)
                    buf.write(
                        f"{sid}\t{rng.getrandbits(256):064x}\t{uid}\t{c}\t"
                        f"{_ip(rng)}\t{rng.choice(AGENTS)}\t{c}\t{_ts(seen)}\t"
                        f"{_ts(created + WEEK)}\t{ended}\t{reason}\n"
                    )
                    first = rng.choice(CLIENTS)
                    links.write(f"{sid}\t{first}\t{c}\n")
                    clients_rows += 1
                    if rng.random() < 0.2:
                        second = rng.choice([x for x in CLIENTS if x != first])
                        links.write(f"{sid}\t{second}\t{_ts(seen)}\n")
                        clients_rows += 1
                cp.write(buf.getvalue())
            link_text = links.getvalue()
        conn.commit()
        timings["browser_sessions"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        with cur.copy("COPY session_clients (session_id, client_id, first_at) FROM STDIN") as cp:
            cp.write(link_text)
        conn.commit()
        timings["session_clients"] = time.perf_counter() - t0
        timings["session_clients_rows"] = clients_rows
        t0 = time.perf_counter()
        conn.autocommit = True
        cur.execute("VACUUM ANALYZE users")
        cur.execute("VACUUM ANALYZE browser_sessions")
        cur.execute("VACUUM ANALYZE session_clients")
        timings["vacuum analyze"] = time.perf_counter() - t0
    return timings


# --- HTTP measurements -------------------------------------------------------------------


def percentile(xs: Sequence[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s)) - 1))]


def timed(
    n: int, fn: Callable[[int], requests.Response], ok: Callable[[requests.Response], bool]
) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        resp = fn(i)
        out.append((time.perf_counter() - t0) * 1000)
        if not ok(resp):
            raise BenchError(f"unexpected answer {resp.status_code}: {resp.text[:300]}")
    return out


NEXT_RE = re.compile(r'<a rel="next" href="([^"]+)"')


def _rows(html: str) -> int:
    return html.count("/admin/sessions/") - html.count("/admin/sessions/?")


# --- EXPLAIN -------------------------------------------------------------------------------

KEY = re.compile(
    r"(Scan|Sort|Limit|Nested Loop|Hash|Join|Index Cond|Filter|Rows Removed|"
    r"Execution Time|Planning Time|Update on|Insert on|Sort Key|Presorted|"
    r"Heap Fetches|InitPlan|SubPlan|Buffers)"
)


def capture(engine: Any, fn: Callable[[], Any]) -> tuple[Any, list[tuple[str, Any]]]:
    from sqlalchemy import event

    seen: list[tuple[str, Any]] = []

    def hook(_conn: Any, _cur: Any, statement: str, params: Any, _ctx: Any, _many: Any) -> None:
        seen.append((statement, params))

    event.listen(engine, "before_cursor_execute", hook)
    try:
        result = fn()
    finally:
        event.remove(engine, "before_cursor_execute", hook)
    return result, seen


def explain(engine: Any, statement: str, params: Any) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) inside a transaction that is rolled back."""
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, params).all()
        finally:
            trans.rollback()
    return [r[0] for r in rows]


def key_lines(plan: Sequence[str]) -> list[str]:
    return [x if len(x) <= 220 else x[:220] + " …" for x in plan if KEY.search(x)]


def short_sql(statement: str) -> str:
    s = " ".join(statement.split())
    s = re.sub(r"SELECT .*? FROM", "SELECT … FROM", s, count=1)
    return s if len(s) < 400 else s[:400] + " …"


# --- the benchmark -----------------------------------------------------------------------


def main_run(args: argparse.Namespace, command: str) -> str:  # noqa: PLR0915 - one story
    load_before = load_average()
    lines: list[str] = []
    with (
        tempfile.TemporaryDirectory(prefix="idp-bench-1m-") as tmp,
        postgresql_setup(Path(tmp)) as setup,
    ):
        env = idp_env(setup, free_port())
        dsn = setup.settings["IDP_DATABASE__URL"].replace("postgresql+psycopg", "postgresql")
        print(f"idp db upgrade ({dsn.rsplit('/', 1)[1]})", flush=True)
        idp_cli(env, "db", "upgrade")
        password = secrets.token_urlsafe(16)
        idp_cli(
            env, "users", "create", "admin", "--admin", "--password-stdin", stdin=password + "\n"
        )
        for cid in CLIENTS:
            idp_cli(
                env,
                "clients",
                "create",
                cid,
                "--grant",
                "authorization_code",
                "--redirect-uri",
                f"https://{cid}.example.test/cb",
                "--scope",
                "openid",
                "--first-party",
            )
        print(f"COPY {args.users:,} users, {args.sessions:,} sessions", flush=True)
        t0 = time.perf_counter()
        timings = fill(dsn, args.users, args.sessions)
        fill_s = time.perf_counter() - t0
        print(f"  filled in {fill_s:.1f} s: {timings}", flush=True)
        import psycopg

        with psycopg.connect(dsn) as conn:
            size = conn.execute(
                "SELECT pg_size_pretty(pg_total_relation_size('browser_sessions'))"
            ).fetchone()[0]
            live = conn.execute(
                "SELECT count(*) FROM browser_sessions WHERE ended_at IS NULL"
            ).fetchone()[0]
            busy_user = conn.execute(
                "SELECT u.username, count(*) FROM browser_sessions s JOIN users u "
                "ON u.id = s.user_id WHERE s.ended_at IS NULL GROUP BY u.username "
                "ORDER BY count(*) DESC LIMIT 1"
            ).fetchone()
            mid = conn.execute(
                "SELECT created_at, id FROM browser_sessions WHERE ended_at IS NULL "
                "ORDER BY created_at DESC, id DESC OFFSET %s LIMIT 1",
                (live // 2,),
            ).fetchone()
            some_ip = conn.execute(
                "SELECT ip FROM browser_sessions WHERE ended_at IS NULL LIMIT 1"
            ).fetchone()[0]
            victims = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM browser_sessions WHERE ended_at IS NULL "
                    "ORDER BY random() LIMIT %s",
                    (args.requests,),
                )
            ]
        deep_cursor = f"{mid[0].replace(tzinfo=dt.UTC).isoformat()}|{mid[1]}"

        log_path = OUT / "idp-sessions-1m.log"
        results: list[tuple[str, list[float], str]] = []
        with start_idp(env, log_path=log_path) as server:
            base = server.url
            label = server.label
            print(f"{label} on {base}; admin login", flush=True)
            browser = browser_login(base, "admin", password, "/admin/sessions")
            html_ok: Callable[[requests.Response], bool] = lambda r: (  # noqa: E731
                r.status_code == 200 and "Live sessions" in r.text
            )

            first = browser.get(f"{base}/admin/sessions", timeout=60)
            if not html_ok(first) or _rows(first.text) < 50:
                raise BenchError(f"/admin/sessions: {first.status_code}, {first.text[:300]}")
            # Follow the next links: the URL of page args.follow + 1.
            url = f"{base}/admin/sessions"
            html = first.text
            for _ in range(args.follow):
                m = NEXT_RE.search(html)
                if not m:
                    raise BenchError("no next link")
                url = urljoin(base, m.group(1).replace("&amp;", "&"))
                html = browser.get(url, timeout=60).text
            followed = url
            deep = f"{base}/admin/sessions?" + requests.compat.urlencode({"after": deep_cursor})
            by_user = f"{base}/admin/sessions?user={busy_user[0]}"
            by_ip_client = f"{base}/admin/sessions?client=partner-crm"
            n = args.requests
            for label, target in (
                ("GET /admin/sessions (first page)", f"{base}/admin/sessions"),
                (f"GET /admin/sessions (page {args.follow + 1}, via next links)", followed),
                (f"GET /admin/sessions (deep keyset page, ~{live // 2:,} rows in)", deep),
                (f"GET /admin/sessions?user=… ({busy_user[1]} live sessions)", by_user),
                ("GET /admin/sessions?client=partner-crm", by_ip_client),
            ):
                print(f"  {label} × {n}", flush=True)
                results.append(
                    (
                        label,
                        timed(n, lambda _i, t=target: browser.get(t, timeout=60), html_ok),
                        target,
                    )
                )
            # Kills need a login younger than [admin] reauth_seconds: log in right before.
            browser = browser_login(base, "admin", password, "/admin/sessions")
            detail_ms: list[float] = []
            kill_ms: list[float] = []
            print(f"  kill × {len(victims)}", flush=True)
            for sid in victims:
                t0 = time.perf_counter()
                page = browser.get(f"{base}/admin/sessions/{sid}", timeout=60)
                detail_ms.append((time.perf_counter() - t0) * 1000)
                m = CSRF_RE.search(page.text)
                if page.status_code != 200 or not m:
                    raise BenchError(f"session page {page.status_code}: {page.text[:300]}")
                t0 = time.perf_counter()
                resp = browser.post(
                    f"{base}/admin/sessions/{sid}/kill",
                    allow_redirects=False,
                    timeout=60,
                    data={
                        "csrf_token": m.group(1),
                        "reason": "bench: stolen laptop",
                        "back": f"/admin/sessions/{sid}",
                    },
                )
                kill_ms.append((time.perf_counter() - t0) * 1000)
                if resp.status_code != 303:
                    raise BenchError(f"kill answered {resp.status_code}: {resp.text[:300]}")
            results.append(("GET /admin/sessions/<sid> (the kill form)", detail_ms, ""))
            results.append(("POST /admin/sessions/<sid>/kill", kill_ms, ""))
        with psycopg.connect(dsn) as conn:
            killed = conn.execute(
                "SELECT count(*) FROM browser_sessions WHERE id = ANY(%s) AND ended_at IS NOT NULL",
                (victims,),
            ).fetchone()[0]
        if killed != len(victims):
            raise BenchError(f"only {killed} of {len(victims)} sessions ended")
        problems = log_problems(log_path.read_text(errors="replace"))

        print("in-process: tracemalloc and EXPLAIN ANALYZE", flush=True)
        memory, plans = in_process(env, deep_cursor, busy_user[0], victims[0], some_ip)

    lines = [
        "## Admin sessions page with 1,000,000 sessions: PostgreSQL + Redis",
        "",
        f"{args.sessions:,} browser sessions of {args.users:,} users over the last 7 days "
        f"(~10 % ended; {live:,} live; skewed logins per user; 8 browser user agents; IPv4 "
        f"and 15 % IPv6), {int(timings['session_clients_rows']):,} session–client links to "
        f"{len(CLIENTS)} clients; loaded with COPY in {fill_s:.0f} s ("
        + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items() if k != "session_clients_rows")
        + f"); browser_sessions with its indexes: {size}. One admin logged in over HTTP "
        f"(/login with CSRF); {args.requests} sequential requests per row, keep-alive.",
        "",
        "| request | p50 | p95 | max |",
        "|---|---:|---:|---:|",
    ]
    for label, ms, _ in results:
        lines.append(
            f"| {label} | {fmt_ms(percentile(ms, 50))} | {fmt_ms(percentile(ms, 95))} "
            f"| {fmt_ms(max(ms))} |"
        )
    lines += [
        "",
        "The deep keyset page uses a cursor in the next link's own format "
        "(`after=<created_at>|<id>`) taken at the middle of the live sessions; following "
        f"next links from the first page for {args.follow} pages gives the "
        f"page-{args.follow + 1} row. Every kill was checked to have ended its session.",
        "",
        "Memory of one page, in-process (tracemalloc peak of `admin.queries.sessions_page` "
        "plus rendering sessions.html in the admin app's request context):",
        "",
        "| page | rows | peak | HTML |",
        "|---|---:|---:|---:|",
        *[
            f"| {k} | {v[0]} | {v[1] / 1024:,.0f} KiB | {v[2] / 1024:,.0f} KiB |"
            for k, v in memory.items()
        ],
        "",
        "EXPLAIN (ANALYZE, BUFFERS), key lines, of the statements SQLAlchemy sent "
        "(captured in-process, replayed with the same parameters in a rolled-back "
        "transaction):",
        "",
    ]
    for title, statement, plan in plans:
        if not plan:
            lines += [
                f"**{title}**: `{short_sql(statement)}` (not replayed: an INSERT "
                "with its own primary key; its plan is a bare `Insert on ...`)",
                "",
            ]
            continue
        lines += [f"**{title}**: `{short_sql(statement)}`", "", "```", *key_lines(plan), "```", ""]
    lines += [
        *[
            x
            for x in environment_lines(label, command, load_before)
            if not x.startswith("- client:")
        ],
    ]
    if problems:
        lines.append(
            "- **server log problems**: "
            + ", ".join(f"{k}: {v}" for k, v in sorted(problems.items()))
        )
    else:
        lines.append("- server log: no tracebacks, lock errors or worker timeouts")
    return "\n".join(lines)


def in_process(
    env: dict[str, str], deep_cursor: str, username: str, victim: str, ip: str
) -> tuple[dict[str, tuple[int, int, int]], list[tuple[str, str, list[str]]]]:
    from flask import g, render_template
    from sqlalchemy import select

    from idp.accounts.models import User
    from idp.admin import queries

    memory: dict[str, tuple[int, int, int]] = {}
    plans: list[tuple[str, str, list[str]]] = []
    with in_process_app(env) as app:
        svc = app.extensions["idp"]
        admin_app = app.extensions["idp.admin"]
        engine = svc.db.engine
        with svc.db.read() as s:
            admin_user = s.scalar(select(User).where(User.username == "admin"))
        for label, kw in (
            ("first page", {}),
            ("deep keyset page", {"after": deep_cursor}),
            ("filtered by user", {"user": username}),
        ):
            with admin_app.test_request_context("/sessions"):
                g.admin_user = admin_user
                # Warm-up outside the measurement (statement cache, template compilation).
                render_template(
                    "sessions.html",
                    page=queries.sessions_page(svc, **kw),
                    filters={},
                    first=not kw.get("after"),
                )
                tracemalloc.start()
                page = queries.sessions_page(svc, **kw)
                html = render_template(
                    "sessions.html", page=page, filters={}, first=not kw.get("after")
                )
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
            memory[label] = (len(page.rows), peak, len(html.encode()))
            _, seen = capture(engine, lambda kw=kw: queries.sessions_page(svc, **kw))
            for i, (statement, params) in enumerate(seen):
                what = "sessions" if i == 0 else "their clients"
                plans.append(
                    (
                        f"sessions page, {label}: {what}",
                        statement,
                        explain(engine, statement, params),
                    )
                )
        for label, kw in (
            ("filtered by IP", {"ip": ip}),
            ("filtered by client", {"client": "partner-crm"}),
        ):
            _, seen = capture(engine, lambda kw=kw: queries.sessions_page(svc, **kw))
            plans.append(
                (f"sessions page, {label}: sessions", seen[0][0], explain(engine, *seen[0]))
            )
        # The kill's statements: captured from a real kill of one (already killed) session
        # would skip the writes, so kill a fresh live one.
        with svc.db.read() as s:
            from idp.sessions.models import BrowserSession

            sid = s.scalar(
                select(BrowserSession.id)
                .where(BrowserSession.ended_at.is_(None), BrowserSession.id != victim)
                .limit(1)
            )
        _, seen = capture(
            engine,
            lambda: svc.killer.kill_session(
                sid, actor="admin", action="session.kill", reason="bench explain"
            ),
        )
        for statement, params in seen:
            head = statement.split(None, 1)[0].upper()
            # INSERTs carry their primary keys (replaying them would collide) and have no
            # plan beyond "Insert on ..."; they are listed, not explained.
            if head == "INSERT":
                plans.append((f"kill: {head}", statement, []))
            elif head in {"SELECT", "UPDATE", "DELETE"}:
                plans.append((f"kill: {head}", statement, explain(engine, statement, params)))
    return memory, plans


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sessions", type=int, default=1_000_000)
    p.add_argument("--users", type=int, default=100_000)
    p.add_argument("--requests", type=int, default=50, help="requests per measured row")
    p.add_argument("--follow", type=int, default=20, help="next links to follow")
    p.add_argument("--results", type=Path, default=RESULTS)
    a = p.parse_args(argv)
    if not (
        1_000 <= a.sessions <= 2_000_000
        and 100 <= a.users <= a.sessions
        and 1 <= a.requests <= 500
        and 1 <= a.follow <= 200
    ):
        p.error("a bound is out of range")
    return a


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    command = (
        ".venv/bin/python bench/sessions_1m.py " + " ".join(sys.argv[1:] if argv is None else argv)
    ).strip()
    OUT.mkdir(parents=True, exist_ok=True)
    body = main_run(args, command)
    write_results("sessions-1m", body, args.results)
    print(f"written to {args.results}", flush=True)
    return 0


if __name__ == "__main__":
    run_script(main, "temporary database dropped")
