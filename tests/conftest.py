"""Fixtures: the app on every backend, a frozen clock, and flaskr-style helpers.

Backends: ``sqlite`` (the embedded default: SQLite file, SQL state store) and
``postgresql`` (production shape: PostgreSQL plus Redis for short-lived state).
Each gets its own database (and Redis key prefix), migrated once with alembic and
emptied between tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from flask import Flask
from sqlalchemy import delete

from idp import create_app, migrate
from idp.accounts import passwords
from idp.models import Base, SigningKey
from tests.support import fuzzing
from tests.support.auth import AuthActions
from tests.support.clock import FrozenClock
from tests.support.databases import REDIS_URL, clear_redis, postgres_database, redis_prefix
from tests.support.smtp import Sink, free_port, smtp_sink

fuzzing.load()  # before any test module builds its hypothesis settings

# What a test is parametrized with when it runs against a server of each kind.
BACKEND_PARAMS = {"sqlite": {"sqlite"}, "postgresql": {"postgresql", "redis"}}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        choices=sorted(BACKEND_PARAMS),
        default=None,
        help="Run only the tests of one storage backend (default: both). With "
        "--backend sqlite and -m 'not slow', the fast subset needs no PostgreSQL or Redis.",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = config.getoption("backend")
    if not wanted:
        return
    other = set().union(*(v for k, v in BACKEND_PARAMS.items() if k != wanted))
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        params = getattr(item, "callspec", None)
        values = params.params.values() if params else ()
        (drop if any(isinstance(v, str) and v in other for v in values) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


TEST_KEK = "T0-8bVqM2yQe1l4pHcS7rX9uWz3kJ5nA6dF0gB2hLxY"
ISSUER = "http://127.0.0.1:5000"


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """The storage a test runs against: database URL and Redis settings."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "idp.db"
        url = f"sqlite:///{path}"
        migrate.upgrade(url)
        yield {"name": "sqlite", "database": {"url": url}, "redis": {"url": ""}}
    else:
        prefix = redis_prefix()
        with postgres_database() as url:
            migrate.upgrade(url)
            yield {
                "name": "postgresql",
                "database": {"url": url},
                "redis": {"url": REDIS_URL, "prefix": prefix},
            }
        clear_redis(prefix)


def make_config(
    backend: dict[str, Any], instance: Path, **sections: dict[str, Any]
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "server": {
            "issuer": ISSUER,
            "instance_path": str(instance),
            "secret_key": "test-secret-key",
        },
        "database": dict(backend["database"]),
        "redis": dict(backend["redis"]),
        "keys": {"kek": TEST_KEK},
        # Reuse is shown by replaying a parent at once; the shipped grace interval (10 s,
        # which returns the same child instead) has tests of its own that set it.
        "tokens": {"refresh_reuse_grace_seconds": 0},
        # Tests run the relying apps that receive back-channel logouts on 127.0.0.1.
        "outbound": {"allow_loopback": True},
    }
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    return config


def _empty(app: Flask, backend: dict[str, Any]) -> None:
    svc = app.extensions["idp"]
    with svc.db.transaction() as s:
        for table in reversed(Base.metadata.sorted_tables):
            if table is not SigningKey.__table__:
                s.execute(delete(table))
    if backend["redis"].get("url"):
        clear_redis(backend["redis"]["prefix"])


# argon2id at the OWASP cost takes ~30 ms a hash or check, and the suite does thousands;
# tests hash at the lowest cost unless marked production_hashing. Processes the tests start
# (the CLI, idp serve) always hash at the production cost.
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
CHEAP_DUMMY = CHEAP_HASHER.hash("idp-dummy-password-for-unknown-users")


@pytest.fixture(autouse=True)
def cheap_password_hashing(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.node.get_closest_marker("production_hashing") is None:
        monkeypatch.setattr(passwords, "HASHER", CHEAP_HASHER)
        monkeypatch.setattr(passwords, "_DUMMY", CHEAP_DUMMY)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def config_overrides() -> dict[str, dict[str, Any]]:
    """Override in a test module to change settings: {"tokens": {...}}."""
    return {}


@pytest.fixture
def app(
    backend: dict[str, Any],
    tmp_path: Path,
    clock: FrozenClock,
    config_overrides: dict[str, dict[str, Any]],
) -> Iterator[Flask]:
    app = create_app(make_config(backend, tmp_path, **config_overrides), clock=clock)
    app.config["TESTING"] = True
    _empty(app, backend)
    yield app
    _empty(app, backend)
    app.extensions["idp"].close()


@pytest.fixture
def svc(app: Flask) -> Any:
    return app.extensions["idp"]


@pytest.fixture
def no_background_worker(
    request: pytest.FixtureRequest, svc: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Back-channel deliveries are driven by the test (``svc.notifier.deliver_due()``), not
    by the worker thread a kill starts; a test marked ``background_worker`` keeps the thread.
    Modules opt in with ``pytestmark = pytest.mark.usefixtures("no_background_worker")``."""
    if request.node.get_closest_marker("background_worker") is None:
        monkeypatch.setattr(svc.notifier, "kick", lambda: None)


@pytest.fixture(autouse=True)
def mail_by_hand(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Mail is sent when the test says so (``svc.mailer.deliver_due()``), not by the
    worker thread an action kicks; a test marked ``background_worker`` keeps the thread."""
    if "app" in request.fixturenames and not request.node.get_closest_marker("background_worker"):
        svc = request.getfixturevalue("svc")
        monkeypatch.setattr(svc.mailer, "kick", lambda: None)


@pytest.fixture(scope="session")
def mail_port() -> int:
    return free_port()


@pytest.fixture
def mail_config(mail_port: int) -> dict[str, dict[str, Any]]:
    """``config_overrides`` that send idp's mail to the ``mailbox`` server."""
    return {"mail": {"smtp_url": f"smtp://127.0.0.1:{mail_port}", "tls": "none"}}


@pytest.fixture
def mailbox(mail_port: int) -> Iterator[Sink]:
    """A real SMTP server on loopback (aiosmtpd) keeping what it receives."""
    with smtp_sink(mail_port) as sink:
        yield sink


@pytest.fixture
def client(app: Flask) -> Any:
    return app.test_client()


@pytest.fixture
def auth(app: Flask, client: Any) -> AuthActions:
    return AuthActions(app, client)


@pytest.fixture
def live(
    backend: dict[str, Any],
    tmp_path: Path,
    app: Flask,
    config_overrides: dict[str, dict[str, Any]],
) -> Iterator[Any]:
    """idp over real HTTP on 127.0.0.1, sharing the ``app`` fixture's (emptied) storage
    and its ``config_overrides``.

    Its clock is the system clock: HTTP clients check ``exp``/``iat`` against real time.
    """
    from tests.support.live import live_server

    with live_server(make_config(backend, tmp_path, **config_overrides)) as server:
        yield server
