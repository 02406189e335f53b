"""Bulk copies of one real refresh-token family, so rotation can be timed with 1,000 or
1,000,000 families stored.

A login and one rotation over HTTP leave a template family with two links (one spent,
with its sealed child; one live). ``seed_families`` copies that family and its links N
times in plain SQL (``INSERT ... SELECT`` over a recursive CTE on SQLite,
``generate_series`` on PostgreSQL) with new ids, parent links and random token hashes,
spread over copies of the template's user (ten families each), then ANALYZEs. Every other
column is copied as it is, whatever columns the current schema has, so the copies stay
valid while the models change. Nobody knows the copies' token values: only the stored
hashes exist, as in production.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Connection

FAMILIES_PER_USER = 10


@dataclass(frozen=True)
class Dialect:
    """The few SQL pieces that differ between SQLite and PostgreSQL."""

    cte: str  # a row source seq(i) for i in 1..:n, before INSERT
    source: str  # ... and how the SELECT names it
    id_format: str  # a 32-character id: one letter, then {n} in hex
    random_hash: str  # 64 random hex digits

    def new_id(self, letter: str, n: str = "seq.i + :offset") -> str:
        return self.id_format.format(letter=letter, n=n)


SQLITE = Dialect(
    "WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < :n) ",
    "seq",
    "printf('{letter}%031x', {n})",
    "lower(hex(randomblob(32)))",
)
POSTGRESQL = Dialect(
    "",
    "generate_series(1, :n) AS seq(i)",
    "'{letter}' || lpad(to_hex({n}), 31, '0')",
    "md5(random()::text) || md5(random()::text)",
)


def _copy(
    conn: Connection,
    d: Dialect,
    table: str,
    overrides: Mapping[str, str],
    template: str,
    params: Mapping[str, object],
) -> None:
    """INSERT :n copies of the rows of ``table`` matching ``template`` (aliased t), with
    the ``overrides`` expressions for some columns and every other column as it is."""
    columns = [c["name"] for c in inspect(conn).get_columns(table)]
    select = ", ".join(overrides.get(c, f"t.{c}") for c in columns)
    conn.execute(
        text(
            # Table and column names come from the schema; every value is bound.
            f"{d.cte}INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608
            f"SELECT {select} FROM {d.source}, {table} AS t WHERE {template}"
        ),
        dict(params),
    )


def seed_families(
    database_url: str, total: int, batch: int = 100_000, log: Callable[[str], None] = print
) -> float:
    """Copies the newest live family with two links until ``total`` families are stored;
    returns the seconds it took."""
    engine = create_engine(database_url)
    d = SQLITE if engine.dialect.name == "sqlite" else POSTGRESQL
    t0 = time.perf_counter()
    try:
        with engine.connect() as conn:
            template = conn.execute(
                text(
                    "SELECT f.id, f.user_id FROM refresh_families f WHERE f.revoked_at IS NULL "
                    "AND (SELECT count(*) FROM refresh_tokens r WHERE r.family_id = f.id) = 2 "
                    "ORDER BY f.created_at DESC LIMIT 1"
                )
            ).one_or_none()
            stored = conn.execute(text("SELECT count(*) FROM refresh_families")).scalar() or 0
            copied_users = conn.execute(
                text("SELECT count(*) FROM users WHERE username LIKE 'bench-u%'")
            ).scalar_one()
        if template is None:
            raise RuntimeError("no live family with two links to copy (log in and rotate once)")
        users = max(1, total // FAMILIES_PER_USER)
        with engine.begin() as conn:
            if users > copied_users:
                _copy(
                    conn,
                    d,
                    "users",
                    {
                        "id": d.new_id("u"),
                        "username": "'bench-u' || (seq.i + :offset)",
                        # Unique too: the case-folded name ("Alice" and "alice" are one).
                        "username_key": "'bench-u' || (seq.i + :offset)",
                    },
                    "t.id = :user",
                    {"n": users - copied_users, "offset": copied_users, "user": template.user_id},
                )
        while stored < total:
            n = min(batch, total - stored)
            # Ids continue after the rows already stored, so a second call adds more.
            params = {"n": n, "offset": stored, "template": template.id, "users": users}
            owner = d.new_id("u", "(seq.i + :offset) % :users + 1")
            with engine.begin() as conn:
                family = {"id": d.new_id("f"), "user_id": owner}
                _copy(conn, d, "refresh_families", family, "t.id = :template", params)
                for generation, letter in enumerate("ab"):
                    link = {"id": d.new_id(letter), "family_id": d.new_id("f")}
                    link["token_hash"] = d.random_hash
                    if generation:
                        link["parent_id"] = d.new_id("a")
                    _copy(
                        conn,
                        d,
                        "refresh_tokens",
                        link,
                        "t.family_id = :template AND t.generation = (SELECT min(generation) "
                        "FROM refresh_tokens WHERE family_id = :template) + :generation",
                        {**params, "generation": generation},
                    )
            stored += n
            log(f"  {stored:,} families stored ({time.perf_counter() - t0:.0f} s)")
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
    finally:
        engine.dispose()
    return time.perf_counter() - t0
