"""gunicorn settings for idp: ``gunicorn -c deploy/gunicorn.conf.py idp.wsgi:app``.

Every knob can be set from the environment, so one file serves a laptop, a
container and a Kubernetes pod:

  IDP_BIND          address to listen on                    (127.0.0.1:8000)
  IDP_WORKERS       worker processes               (2 * cores + 1, at most 8)
  IDP_WORKER_CLASS  sync or gthread                                 (gthread)
  IDP_THREADS       threads per gthread worker                            (2)
  IDP_TIMEOUT       seconds before a silent worker is killed             (30)
  IDP_GRACEFUL_TIMEOUT  seconds in-flight requests get on SIGTERM        (30)
  IDP_ACCESS_LOG    "-" for stdout or a file path; empty means off       ("")
  IDP_LOG_LEVEL     gunicorn's own log level                          (info)
  IDP_CONTROL_SOCKET  path of gunicorn's control socket (gunicorn >= 25); empty: none

idp's own settings (database, Redis, issuer, keys) are read by each worker
from config.toml / IDP_CONFIG and IDP_<SECTION>__<KEY>; see idp/config.py.
"""

from __future__ import annotations

import os


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise SystemExit(f"gunicorn.conf.py: {name} must be an integer, got {value!r}") from None
    if number <= 0:
        raise SystemExit(f"gunicorn.conf.py: {name} must be positive, got {number}")
    return number


def _cores() -> int:
    # CPUs this process may run on (respects taskset/cpusets, unlike os.cpu_count()).
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# A container often sees every CPU of the host; the cap keeps one pod from opening
# dozens of database connections. Set IDP_WORKERS to match the CPU limit.
MAX_DEFAULT_WORKERS = 8

bind = [os.environ.get("IDP_BIND", "127.0.0.1:8000")]
workers = _int("IDP_WORKERS", min(2 * _cores() + 1, MAX_DEFAULT_WORKERS))
worker_class = os.environ.get("IDP_WORKER_CLASS", "gthread")
if worker_class not in {"sync", "gthread"}:
    raise SystemExit(
        f"gunicorn.conf.py: IDP_WORKER_CLASS must be sync or gthread, not {worker_class!r}"
    )
threads = _int("IDP_THREADS", 2) if worker_class == "gthread" else 1

# No preload: every worker imports idp.wsgi itself, so each builds its own app,
# SQLAlchemy engine and Redis client after the fork (no sockets shared across forks).
preload_app = False

timeout = _int("IDP_TIMEOUT", 30)
graceful_timeout = _int("IDP_GRACEFUL_TIMEOUT", 30)
keepalive = 5

# Requests are small (idp refuses bodies above [server] max_body_bytes anyway).
limit_request_line = 8190
limit_request_fields = 100

accesslog = os.environ.get("IDP_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("IDP_LOG_LEVEL", "info")
proc_name = "idp"

# gunicorn >= 25 opens a control socket at one fixed per-user path by default, which
# several idp instances on a machine would fight over; only on request here.
# (Older gunicorn ignores these two names.)
control_socket_disable = not os.environ.get("IDP_CONTROL_SOCKET")
if os.environ.get("IDP_CONTROL_SOCKET"):
    control_socket = os.environ["IDP_CONTROL_SOCKET"]

# Heartbeat files on tmpfs, so a slow disk cannot make the arbiter kill healthy workers
# (gunicorn creates them with mkstemp, so a shared directory is safe).
SHM = "/dev/shm"  # noqa: S108
if os.path.isdir(SHM):
    worker_tmp_dir = SHM
