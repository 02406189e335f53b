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
from flask import Flask
from sqlalchemy import delete

from idp import create_app, migrate
from idp.models import Base, SigningKey
from tests.support.auth import AuthActions
from tests.support.clock import FrozenClock
from tests.support.databases import REDIS_URL, clear_redis, postgres_database, redis_prefix

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
    app.extensions["idp"].db.dispose()


@pytest.fixture
def svc(app: Flask) -> Any:
    return app.extensions["idp"]


@pytest.fixture
def client(app: Flask) -> Any:
    return app.test_client()


@pytest.fixture
def auth(app: Flask, client: Any) -> AuthActions:
    return AuthActions(app, client)


@pytest.fixture
def live(backend: dict[str, Any], tmp_path: Path, app: Flask) -> Iterator[Any]:
    """idp over real HTTP on 127.0.0.1, sharing the ``app`` fixture's (emptied) storage.

    Its clock is the system clock: HTTP clients check ``exp``/``iat`` against real time.
    """
    from tests.support.live import live_server

    with live_server(make_config(backend, tmp_path)) as server:
        yield server
