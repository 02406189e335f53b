"""Alembic environment: the URL comes from idp's configuration (or the caller)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text

from idp.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from idp.config import load

    return load().database.url


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True,
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(_url())
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=True, compare_type=True)
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # Replicas that start together (`idp serve` upgrades first) take turns: the
                # later ones find the schema at head. Held until the migration commits.
                connection.execute(text("SELECT pg_advisory_xact_lock(hashtext('idp.migrate'))"))
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
