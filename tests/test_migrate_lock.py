"""`idp db upgrade` run twice at once on PostgreSQL (two Kubernetes Jobs, a Job and a
replica that still migrates on start): the runs take turns on an advisory lock
(migrations/env.py), so neither fails on the other's half-made schema."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest

from idp import migrate
from tests.conftest import TEST_KEK
from tests.support.databases import PG_ADMIN, postgres_database
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow

LOCK = "hashtext('idp.migrate')"


def waiting_on_the_lock(url: str) -> int:
    """Sessions of the database at ``url`` waiting for the migration lock."""
    dbname = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
            "WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = %s",
            (dbname,),
        ).fetchone()
    return int(row[0]) if row else 0


def tables(url: str) -> set[str]:
    dbname = url.rsplit("/", 1)[1]
    dsn = PG_ADMIN.replace("dbname=postgres", f"dbname={dbname}")
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    return {r[0] for r in rows}


@pytest.mark.parametrize("kind", ["postgresql"])
def test_two_upgrades_at_once_take_turns_and_both_end_at_head(kind, tmp_path):
    with postgres_database() as url:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("IDP_")},
            "IDP_CONFIG": os.devnull,
            "IDP_DATABASE__URL": url,
            "IDP_SERVER__INSTANCE_PATH": str(tmp_path),
            "IDP_KEK": TEST_KEK,
            "IDP_SERVER__SECRET_KEY": "test-secret-key",
        }
        dbname = url.rsplit("/", 1)[1]
        holder = psycopg.connect(
            PG_ADMIN.replace("dbname=postgres", f"dbname={dbname}"), autocommit=True
        )
        try:
            # Someone is migrating: the test holds the lock both runs must take.
            holder.execute(f"SELECT pg_advisory_lock({LOCK})")
            runs = [
                subprocess.Popen(
                    [sys.executable, "-m", "idp.cli", "db", "upgrade"],
                    env=env,
                    cwd=tmp_path,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for _ in range(2)
            ]
            try:
                wait_for(lambda: waiting_on_the_lock(url) == 2, timeout=60)
                # Both wait: neither has written a table (their DDL waits behind the lock).
                assert all(run.poll() is None for run in runs)
                assert tables(url) == set()
                holder.execute(f"SELECT pg_advisory_unlock({LOCK})")
                outputs = [run.communicate(timeout=120) for run in runs]
            finally:
                for run in runs:
                    if run.poll() is None:
                        run.kill()
                        run.wait()
        finally:
            holder.close()
        for run, (out, err) in zip(runs, outputs, strict=True):
            assert run.returncode == 0, err
            assert "database is at head" in out
        assert migrate.current_revisions(url) == migrate.head_revisions()
        assert "alembic_version" in tables(url)
