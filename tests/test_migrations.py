"""Migrations are code: `alembic check` is clean, and down to base and back up works with
rows present (STYLE rule 7)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from idp import migrate
from idp.accounts.models import User
from tests.support.databases import postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/m.db"
    else:
        with postgres_database() as url:
            yield url


def test_models_and_migrations_agree(empty_db):
    migrate.upgrade(empty_db)
    migrate.check(empty_db)


def test_downgrade_to_base_and_upgrade_again_with_rows(empty_db):
    migrate.upgrade(empty_db)
    engine = create_engine(empty_db)
    with Session(engine) as s, s.begin():
        s.add(
            User(
                username="keep",
                username_key="keep",
                password_hash="x",
                created_at=dt.datetime.now(dt.UTC),
                attributes={},
            )
        )
    engine.dispose()
    migrate.downgrade(empty_db, "base")
    migrate.upgrade(empty_db)
    engine = create_engine(empty_db)
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(User)) == 0
    engine.dispose()
    migrate.check(empty_db)


def test_usernames_that_collide_once_normalised_keep_the_older_one(empty_db):
    """Migration 0008: existing 'Alice' and 'alice' cannot both keep the one key."""
    from sqlalchemy import text

    migrate.upgrade(empty_db, "0007")
    engine = create_engine(empty_db)
    with engine.begin() as conn:
        for i, name in enumerate(["alice", "Alice", "bob"]):
            conn.execute(
                text(
                    "INSERT INTO users (id, username, email_verified, password_hash, is_admin,"
                    " disabled, attributes, created_at) VALUES (:id, :name, false, 'x', false,"
                    " false, '{}', :at)"
                ),
                {"id": f"u{i}", "name": name, "at": dt.datetime(2026, 1, 1 + i, tzinfo=dt.UTC)},
            )
    migrate.upgrade(empty_db)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT username, username_key FROM users")).all()
        keys = {str(name): str(key) for name, key in rows}
    engine.dispose()
    assert keys == {"alice": "alice", "Alice": "alice#u1", "bob": "bob"}
    migrate.check(empty_db)
