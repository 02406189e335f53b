"""``idp serve``: the production server, or ``--dev`` for a reloading development one.

The production server is granian (a Rust HTTP server, on PyPI) running idp's WSGI app
in ``workers`` processes of ``threads`` request threads each, plus ``[server]
feed_waits`` threads for long polls of ``/revocations`` (idp.revocations.waiting: a
hundred open polls leave the request threads to ``/token``); measured against
gunicorn's gthread workers on one core, it served the same app faster
(bench/RESULTS.md, "Which server"). A worker that dies is started again. With
``[admin] port`` set, the dashboard's app is served by a second granian on that port
only (never on the public one).
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Mapping

from idp import logs
from idp.config import Config

log = logging.getLogger(__name__)

# Seconds a worker gets to finish its requests after SIGTERM before it is killed.
GRACEFUL_SECONDS = 30


def cores() -> int:
    """CPUs this process may run on (respects taskset and cpusets, unlike cpu_count)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def worker_count(cfg: Config, override: int | None) -> int:
    return override or cfg.server.workers or cores()


def hash_slots(cfg: Config) -> int:
    """Password hashes one worker runs at once: its share of the cores it may use (one
    when there are as many workers as cores, the default; idp.accounts.passwords)."""
    return max(1, cores() // worker_count(cfg, None))


def private_metrics_dir() -> str | None:
    """A fresh directory, readable by this user only, for the metrics of this server's
    processes (idp.metrics), named in ``PROMETHEUS_MULTIPROC_DIR``: counts left by an
    earlier run must not be added to this one's. None (and each process shows only its
    own counts) when the temporary directory is not writable: metrics are no reason
    not to serve."""
    from idp import metrics

    try:
        path = tempfile.mkdtemp(prefix="idp-metrics-")
    except OSError as exc:
        log.error("no directory for the workers' metrics (%s): each shows only its own", exc)
        return None
    metrics.use_multiprocess(path)
    return path


def remove_metrics_dir(path: str | None) -> None:
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)


# glibc gives each thread that meets contention a malloc arena of its own, and an arena
# keeps what it once held. argon2id's 19 MiB per password check then stays in up to one
# arena per request thread: measured (bench/, one worker x 4 threads, 15 s of logins),
# worker RSS 266-342 MB with glibc's default, 189 MB with 2 arenas, 132 MB with 1,
# at the same login rate. Two: request threads hold the GIL most of the time anyway.
MALLOC_ARENAS = 2
M_ARENA_MAX = -8  # glibc's malloc.h


def limit_malloc_arenas(environ: Mapping[str, str] = os.environ) -> bool:
    """Caps glibc's malloc arenas at MALLOC_ARENAS in this process, before the workers
    are forked (they inherit it). An operator's ``MALLOC_ARENA_MAX`` wins (glibc read it
    at start). False where nothing was changed: that variable set, or not glibc."""
    if "MALLOC_ARENA_MAX" in environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_ARENA_MAX, MALLOC_ARENAS) == 1)


def granian(target: str, host: str, port: int, workers: int, threads: int) -> object:
    """``threads`` is the most threads a worker runs; granian starts them as requests
    need them and stops idle ones."""
    from granian import Granian
    from granian.constants import Interfaces

    return Granian(
        target,
        address=host,
        port=port,
        interface=Interfaces.WSGI,
        workers=workers,
        blocking_threads=threads,
        respawn_failed_workers=True,
        workers_kill_timeout=GRACEFUL_SECONDS,
        websockets=False,
        log_access=False,  # idp.access logs each request, with its request id
        log_dictconfig=logs.granian_dictconfig(),
    )


def _serve_admin(host: str, port: int, threads: int) -> None:
    granian("idp.admin.wsgi:app", host, port, 1, threads).serve()  # type: ignore[attr-defined]


def production(cfg: Config, host: str, port: int, workers: int, threads: int) -> None:
    """Serves until SIGTERM or SIGINT (each worker finishes its requests first)."""
    limit_malloc_arenas()
    admin = None
    if cfg.admin.port:
        admin = multiprocessing.Process(
            target=_serve_admin, args=(host, cfg.admin.port, threads), name="idp admin"
        )
        admin.start()
    try:
        per_worker = threads + cfg.server.feed_waits
        granian("idp.wsgi:app", host, port, workers, per_worker).serve()  # type: ignore[attr-defined]
    finally:
        if admin is not None:
            admin.terminate()
            admin.join(GRACEFUL_SECONDS)


def quiet_handler() -> type:
    """Werkzeug's request handler without its request lines: idp.access writes one per
    request (with the request id and the path without its query string: queries carry
    id_token_hint, codes, state and login hints, which must not reach a log)."""
    from werkzeug.serving import WSGIRequestHandler

    class Handler(WSGIRequestHandler):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            pass

    return Handler


def development(cfg: Config, host: str, port: int) -> None:
    """One process, Werkzeug's server, reloaded when the code changes."""
    from werkzeug.serving import run_simple

    from idp import configure_process, create_app

    configure_process(cfg)
    app = create_app(cfg)
    if cfg.admin.port:
        import threading

        from werkzeug.serving import make_server

        from idp import admin

        admin_server = make_server(
            host,
            cfg.admin.port,
            admin.create_app(app),
            threaded=True,
            request_handler=quiet_handler(),
        )
        threading.Thread(target=admin_server.serve_forever, daemon=True).start()
    run_simple(host, port, app, use_reloader=True, threaded=True, request_handler=quiet_handler())
