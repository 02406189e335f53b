"""Alembic, driven from the idp command and the tests."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


def check(url: str) -> None:
    """Raises when the models and the migrations disagree (``alembic check``)."""
    command.check(alembic_config(url))


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL, made absolute against the working directory; None for
    other databases and in-memory SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    if parsed.query.get("uri"):
        return None  # a file: URI; sqlite3 resolves it
    return Path(parsed.database).resolve()


def current_revisions(url: str) -> frozenset[str]:
    """The alembic revisions the database at ``url`` is at; empty when it has no idp
    schema. A SQLite file that does not exist is not created. Raises SQLAlchemy's
    errors when the database cannot be reached."""
    file = sqlite_file(url)
    if file is not None and not file.is_file():
        return frozenset()
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return frozenset(MigrationContext.configure(conn).get_current_heads())
    finally:
        engine.dispose()


def head_revisions() -> frozenset[str]:
    """The revisions ``upgrade`` goes to."""
    return frozenset(ScriptDirectory.from_config(alembic_config("")).get_heads())


def is_behind(current: frozenset[str]) -> bool:
    """True when ``current`` is an older state of these migrations (``upgrade`` would
    change it); False at head and for a revision these migrations do not know, which a
    newer idp wrote and which this one may still read."""
    script = ScriptDirectory.from_config(alembic_config(""))
    if current == frozenset(script.get_heads()):
        return False
    for rev in current:
        try:
            script.get_revision(rev)
        except CommandError:
            return False
    return True
