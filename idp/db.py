"""Database plumbing: the declarative Base, shared column types, engines and sessions."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Annotated, Any

from sqlalchemy import JSON, Connection, DateTime, Engine, MetaData, String, create_engine, event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

from idp.outage import DATABASE

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


BUSY_TIMEOUT = 3.0  # seconds a SQLite writer waits for the write lock
WRITER = "idp.sqlite_writer"


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no offset)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.UTC)


def new_id() -> str:
    return uuid.uuid4().hex


def upsert_insert(dialect: str) -> Callable[..., Any]:
    """The dialect's ``insert`` (PostgreSQL's or SQLite's), which has ``ON CONFLICT``."""
    return pg_insert if dialect == "postgresql" else sqlite_insert


Timestamp = Annotated[dt.datetime, mapped_column(UTCDateTime())]
Id = Annotated[str, mapped_column(String(32), primary_key=True, default=new_id)]
Hash = Annotated[str, mapped_column(String(64))]  # hex SHA-256
Json = Annotated[Any, mapped_column(JSON)]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


@dataclass(frozen=True)
class Limits:
    """How long to wait for the database, and how many connections to keep
    (``[database]`` in the configuration)."""

    connect_timeout: int = 5
    statement_timeout: int = 30
    pool_size: int = 10
    pool_overflow: int = 20
    pool_timeout: int = 10

    def pool(self) -> dict[str, Any]:
        return {
            "pool_size": self.pool_size,
            "max_overflow": self.pool_overflow,
            "pool_timeout": self.pool_timeout,
        }

    def postgresql(self) -> dict[str, Any]:
        """libpq settings: a server that stops answering fails a request within about
        these many seconds instead of hanging it (tcp_user_timeout: sent data left
        unacknowledged; statement_timeout: the server's own limit)."""
        args: dict[str, Any] = {
            "connect_timeout": self.connect_timeout,
            "tcp_user_timeout": (self.statement_timeout or 30) * 1000,
            "keepalives": 1,
            "keepalives_idle": 30,
        }
        if self.statement_timeout:
            args["options"] = f"-c statement_timeout={self.statement_timeout * 1000}"
        return args


def make_engine(
    url: str,
    echo: bool = False,
    writers: threading.Lock | None = None,
    limits: Limits | None = None,
) -> Engine:
    """The engine; on SQLite, write transactions first take ``writers`` (see below)."""
    limits = limits or Limits()
    if url.startswith("sqlite"):
        pool = limits.pool() if ":memory:" not in url and url.rstrip("/") != "sqlite:" else {}
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"timeout": BUSY_TIMEOUT},
            hide_parameters=True,  # errors and logs never show values (tokens, hashes)
            **pool,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets several gunicorn workers read while one writes; foreign keys
            # are off by default in SQLite.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}")
            cur.close()

        # The threads of one process queue for SQLite's write lock here rather than in
        # SQLite's busy handler, which sleeps 1, 2, 5, 10... ms between tries: under
        # concurrent rotations (issue 8's bench) that put p50 at 35 ms for 1 ms of work.
        lock = writers or threading.Lock()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # Writing transactions BEGIN IMMEDIATE: they take the write lock up front, so
            # processes racing to consume one code or token serialise instead of failing
            # to upgrade a read lock. Read-only ones stay deferred: in WAL mode they
            # neither wait for writers nor hold them up.
            if conn.get_execution_options().get("idp_read_only", False):
                _begin(conn, "BEGIN")
                return
            # Past the busy timeout, SQLite decides (and times out) as it would have.
            conn.info[WRITER] = lock.acquire(timeout=BUSY_TIMEOUT)
            try:
                _begin(conn, "BEGIN IMMEDIATE")
            except BaseException:
                _release(conn)
                raise

        def _begin(conn: Any, sql: str) -> None:
            # Straight to the DBAPI connection: through conn.exec_driver_sql a BEGIN cost
            # as much CPU as the statement it opens for (execution context, events).
            # Errors come out as SQLAlchemy's, as they did from exec_driver_sql.
            error = engine.dialect.loaded_dbapi.Error
            try:
                conn.connection.dbapi_connection.execute(sql)
            except error as exc:
                raise DBAPIError.instance(sql, None, exc, error) from exc

        def _release(conn: Any) -> None:
            if conn.info.pop(WRITER, False):
                lock.release()

        event.listen(engine, "commit", _release)
        event.listen(engine, "rollback", _release)

        _disable_pysqlite_autobegin(engine)
        return engine
    return create_engine(
        url,
        echo=echo,
        pool_pre_ping=True,
        hide_parameters=True,  # errors and logs never show values (tokens, hashes)
        connect_args=limits.postgresql(),
        **limits.pool(),
    )


def _disable_pysqlite_autobegin(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _no_autobegin(dbapi_conn: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy's "begin" event above.
        dbapi_conn.isolation_level = None


class Database:
    """Owns the engine and hands out sessions; one per app."""

    def __init__(
        self, url: str, echo: bool = False, limits: Limits | None = None, traced: bool = False
    ) -> None:
        self.url = url
        self.writers = threading.Lock()
        self.limits = limits or Limits()
        self.engine = make_engine(url, echo, self.writers, self.limits)
        # [tracing] on: a span per statement, those of RawCursor too (idp.tracing).
        self.statement_span: Callable[[str], AbstractContextManager[Any]] | None = None
        if traced:
            from idp import tracing

            self.statement_span = tracing.instrument(self.engine)
        # A connection handed out (pinged first on PostgreSQL) ends a logged outage.
        event.listen(self.engine, "checkout", DATABASE.ok)
        self._sqlite = self.engine.dialect.name == "sqlite"
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        self.read_engine = self.engine.execution_options(idp_read_only=True)
        self.read_sessionmaker = sessionmaker(self.read_engine, expire_on_commit=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session inside one transaction: committed on success, rolled back on error."""
        with self.sessionmaker() as session, session.begin():
            yield session

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A Core connection for reads only (no write lock on SQLite, as :meth:`read`)."""
        with self.read_engine.connect() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reads only. On SQLite it takes no write lock, so it may run while
        a writing transaction is open (it sees the last committed state)."""
        with self.read_sessionmaker() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def raw_transaction(self, read_only: bool = False) -> Iterator[RawCursor]:
        """One transaction on the DBAPI connection, for the few statements of a hot path
        (:class:`RawStatement`). Committed on success, rolled back on error; DBAPI
        errors come out as SQLAlchemy's (OperationalError and so on), as elsewhere.
        ``read_only``: takes no write lock on SQLite (as :meth:`read`) and commits
        nothing."""
        dbapi_error = self.engine.dialect.loaded_dbapi.Error
        try:
            # The pool hands out connections without wrapping DBAPI errors (unlike
            # engine.connect()): a database that is down must look the same here.
            conn = self.engine.raw_connection()
        except dbapi_error as exc:
            raise DBAPIError.instance(None, None, exc, dbapi_error) from exc
        locked = self._sqlite and not read_only and self.writers.acquire(timeout=BUSY_TIMEOUT)
        try:
            cursor = conn.cursor()
            if self._sqlite:
                cursor.execute("BEGIN" if read_only else "BEGIN IMMEDIATE")
            try:
                yield RawCursor(cursor, self.engine.dialect, self.statement_span)
                if read_only:
                    conn.rollback()
                else:
                    conn.commit()
            except BaseException:
                conn.rollback()
                raise
        except dbapi_error as exc:
            raise DBAPIError.instance(None, None, exc, dbapi_error) from exc
        finally:
            if locked:
                self.writers.release()
            conn.close()


class RawStatement:
    """A Core statement compiled once per dialect and run on a DBAPI cursor, with the
    column types' own bind and result processing (UTC datetimes, JSON, booleans).

    Only for the hot paths (the rotation; a login's counters, code and session): there
    SQLAlchemy's execution layer cost ~40 us a statement on top of SQLite's ~5, and an
    ORM session's transaction ~150 us more (issue 8's profiles), for statements that
    never change. Everywhere else, use sessions or Core connections."""

    def __init__(self, stmt: Any, column_keys: Iterable[str] | None = None) -> None:
        self.stmt = stmt
        self.column_keys = list(column_keys) if column_keys is not None else None
        self._compiled: dict[str, Compiled] = {}

    def _for(self, dialect: Any) -> Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = self.stmt.compile(dialect=dialect, column_keys=self.column_keys)
            # dialect_impl: the type as this dialect stores it (SQLite's DATETIME strings).
            binds = compiled.binds
            names = list(compiled.positiontup) if compiled.positional else list(binds)
            found = Compiled(
                str(compiled),
                compiled.positional,
                [(n, binds[n].type.dialect_impl(dialect).bind_processor(dialect)) for n in names],
                {n: b.effective_value for n, b in binds.items() if not b.required},
                [  # a SELECT's columns, or what INSERT/UPDATE ... RETURNING returns
                    (col.key, col.type.dialect_impl(dialect).result_processor(dialect, None))
                    for col in self.stmt.exported_columns
                ],
            )
            self._compiled[dialect.name] = found
        return found


@dataclass(frozen=True)
class Compiled:
    """A :class:`RawStatement` for one dialect."""

    sql: str
    positional: bool
    # The parameters in the order the SQL takes them, with their bind processors.
    params: list[tuple[str, Any]]
    # Values the statement gives itself, such as ``values(value=1)``.
    constants: dict[str, Any]
    # The result columns, with their result processors.
    columns: list[tuple[str, Any]]

    def args(self, given: dict[str, Any]) -> Any:
        values = {**self.constants, **given} if self.constants else given
        if self.positional:
            return [
                process(values[name]) if process else values[name] for name, process in self.params
            ]
        return {
            name: process(values[name]) if process else values[name]
            for name, process in self.params
        }


class RawCursor:
    def __init__(
        self,
        cursor: Any,
        dialect: Any,
        statement_span: Callable[[str], AbstractContextManager[Any]] | None = None,
    ) -> None:
        self.cursor = cursor
        self.dialect = dialect
        self.statement_span = statement_span

    def execute(self, statement: RawStatement, params: dict[str, Any]) -> int:
        """Runs the statement; the number of rows it changed."""
        compiled = statement._for(self.dialect)
        args = compiled.args(params)
        if self.statement_span is None:
            self.cursor.execute(compiled.sql, args)
        else:
            with self.statement_span(compiled.sql):
                self.cursor.execute(compiled.sql, args)
        return int(self.cursor.rowcount)

    def one_or_none(self, statement: RawStatement, params: dict[str, Any]) -> Any:
        """The one row the statement selects, as an object with one attribute a column."""
        self.execute(statement, params)
        row = self.cursor.fetchone()
        if row is None:
            return None
        columns = statement._for(self.dialect).columns
        return SimpleNamespace(
            **{
                key: (process(v) if process else v)
                for (key, process), v in zip(columns, row, strict=True)
            }
        )
