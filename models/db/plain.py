"""Plain reads: SQLAlchemy statements compiled once, run straight on the driver.

Contract.

* Guarantees: a plain read returns exactly the rows ``session.execute`` would — values go
  through the same bind and result processors — as plain dicts (``as_entity`` makes them
  session-less entities). A read of several statements, each depending on the rows of the
  last, runs in one go: on a SQLite file, in one hop to a reader thread with its own
  ``sqlite3`` connection, inside one read transaction (one snapshot); on PostgreSQL, on one
  pooled asyncpg connection, one round trip per statement (asyncpg prepares and caches each);
  on an in-memory SQLite database, on the engine's own connection (the only one that sees it).
  Each statement is reported to ``listeners`` before it runs, as SQLAlchemy's
  ``before_cursor_execute`` is, so statement counts include plain reads.
* Does not: write (the reader connections are ``query_only``), take part in a unit of work's
  transaction (a plain read sees what is committed, not what the unit is about to commit),
  load relationships, or apply SQLAlchemy's statement cache (``compiled`` caches by a key its
  caller chooses; statements whose literals vary per request must not be cached this way).
* When: the per-request loaders (resolvers/loaders.py, ``by_id`` and ``many_by``), the compiled
  path (graph/fastpath*.py: list pages, one entity by id, nested pages and lists), the live
  feeds' reads of the event log (resolvers/live.py ``read_after``), and SQLite's checkpoints
  (``checkpoint``).
* Off: no setting turns plain reads off as a whole — the loaders always use them; the compiled
  path's share goes with the ``fast_path`` setting (``FAST_PATH=false``), after which those
  documents take the Strawberry path and ``resolvers.query`` on a session.

Why: the ORM and Core execution layers cost more than the SQL itself on a hot read (statement
caching keys, greenlet switches, result objects, and for aiosqlite a thread hop per cursor
call).
"""

from __future__ import annotations

import asyncio
import contextvars
import sqlite3
import threading
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, replace
from functools import cache, cached_property, partial
from typing import Any, TypeVar, cast

import orjson
from sqlalchemy import String, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, InvalidRequestError
from sqlalchemy.orm import configure_mappers
from sqlalchemy.orm.base import manager_of_class
from sqlalchemy.orm.instrumentation import ClassManager
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql import Select
from sqlalchemy.sql.expression import column as sql_column
from sqlalchemy.types import TypeEngine
from sqlalchemy.util import greenlet_spawn

T = TypeVar("T")
#: how long a reader thread's connection waits for a lock (as the engine's connections do)
BUSY_TIMEOUT_MS = 10_000
#: a read: yields (statement, values) and is sent back each statement's rows; returns its result
Read = Generator[tuple["Compiled", dict[str, Any]], list[dict[str, Any]], T]


@dataclass(frozen=True)
class Compiled:
    """One statement in the dialect's SQL, with its parameter order and value converters."""

    sql: str
    compiled: Any
    names: tuple[str, ...]  # parameter names in positional order
    binds: tuple[Callable[[Any], Any] | None, ...]
    columns: tuple[str, ...]  # result keys
    results: tuple[Callable[[Any], Any] | None, ...]

    @classmethod
    def of(cls, statement: Select[*tuple[Any, ...]], dialect: Dialect) -> Compiled:
        compiled = statement.compile(dialect=dialect)
        names = tuple(compiled.positiontup or ())
        binds = tuple(compiled.binds[n].type.dialect_impl(dialect).bind_processor(dialect) for n in names)
        columns = tuple(statement.selected_columns.keys())  # deduplicated as a Result's keys are
        results = tuple(result_processor(c.type, dialect) for c in statement.selected_columns)
        return cls(compiled.string, compiled, names, binds, columns, results)

    def parameters(self, values: dict[str, Any]) -> list[Any]:
        """Positional driver parameters for ``values`` (literals the statement holds included)."""
        given = self.compiled.construct_params(values)
        return [
            value if bind is None else bind(value) for bind, value in zip(self.binds, (given[n] for n in self.names))
        ]

    def rows(self, raw: list[Any]) -> list[dict[str, Any]]:
        columns, converted = self.columns, self.converted
        if not converted:
            return [dict(zip(columns, row)) for row in raw]
        rows = []
        for row in raw:
            values = list(row)
            for index, convert in converted:
                values[index] = convert(values[index])
            rows.append(dict(zip(columns, values)))
        return rows

    def unconverted(self, prefix: str) -> Compiled:
        """This statement with its result columns named ``prefix…`` left as the driver gives
        them: for values nobody reads (a page's sort keys when no cursor is asked for; on
        SQLite, parsing a timestamp costs more than reading its row)."""
        results = tuple(None if c.startswith(prefix) else r for c, r in zip(self.columns, self.results))
        return replace(self, results=results)

    @cached_property
    def converted(self) -> tuple[tuple[int, Callable[[Any], Any]], ...]:
        """(position, converter) of the result columns that have one."""
        return tuple((i, convert) for i, convert in enumerate(self.results) if convert is not None)


#: type OIDs of PostgreSQL's numeric types, by the name SQLAlchemy renders them with
_PG_NUMERIC_OIDS = {"FLOAT": 701, "DOUBLE PRECISION": 701, "REAL": 700}  # any other: NUMERIC (1700)


def result_processor(type_: TypeEngine[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    impl = type_.dialect_impl(dialect)
    try:
        return impl.result_processor(dialect, None)
    except (TypeError, InvalidRequestError):
        # asyncpg's numeric types choose their conversion by the column's type OID, which a
        # result only tells after the fact; the declared type says it up front
        rendered = dialect.type_compiler_instance.process(type_).split("(")[0]
        return impl.result_processor(dialect, _PG_NUMERIC_OIDS.get(rendered, 1700))


class PlainReads:
    """Runs reads for one database; see the module docstring."""

    def __init__(self, engine: Any, *, readers: int = 2) -> None:
        self.engine = engine
        self.dialect = engine.dialect
        database = engine.url.database
        in_memory = database in (None, "", ":memory:")
        #: a SQLite file, read by threads of our own; None: PostgreSQL, or an in-memory SQLite
        #: database, which only the engine's own connection can see
        self._sqlite_path: str | None = database if engine.dialect.name == "sqlite" and not in_memory else None
        self._threads: ThreadPoolExecutor | None = None
        self._readers = readers
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._compiled: dict[Any, Compiled] = {}
        #: called with the SQL of each statement run past the engine, before it runs (as
        #: SQLAlchemy's before_cursor_execute is for the others)
        self.listeners: list[Callable[[str], None]] = []

    def compile(self, statement: Select[*tuple[Any, ...]]) -> Compiled:
        return Compiled.of(statement, self.dialect)

    def compiled(self, key: Any, build: Callable[[], Select[*tuple[Any, ...]]]) -> Compiled:
        """The statement ``build()`` makes, compiled the first time ``key`` is asked for."""
        statement = self._compiled.get(key)
        if statement is None:
            statement = self._compiled[key] = self.compile(build())
        return statement

    async def rows(self, statement: Compiled, values: dict[str, Any]) -> list[dict[str, Any]]:
        """The rows of one statement."""

        def read() -> Read[list[dict[str, Any]]]:
            return (yield statement, values)

        return await self.run(read())

    async def run(self, read: Read[T]) -> T:
        if self._sqlite_path is not None:
            # in the caller's context, as asyncio.to_thread does: listeners see its context variables
            run = partial(contextvars.copy_context().run, self._run_sqlite, read)
            return await asyncio.get_running_loop().run_in_executor(self._pool(), run)
        if self.dialect.name == "sqlite":  # in memory: through the engine's own connection
            return await self._run_in_memory(read)
        # a pooled connection straight from the engine: an AsyncConnection around it would cost
        # more than a statement (about 140 µs a checkout)
        pooled = await greenlet_spawn(self.engine.sync_engine.raw_connection)
        try:
            driver = pooled.driver_connection
            try:
                statement, values = next(read)
            except StopIteration as done:  # a read that needed no statement
                return cast(T, done.value)  # a Read[T] returns its T
            while True:
                for listener in self.listeners:
                    listener(statement.sql)
                raw = await _fetch(pooled, driver, statement.sql, statement.parameters(values))
                try:
                    statement, values = read.send(statement.rows(raw))
                except StopIteration as done:
                    return cast(T, done.value)  # a Read[T] returns its T
        finally:
            await greenlet_spawn(pooled.close)  # back to the pool (or gone, if invalidated)

    async def _run_in_memory(self, read: Read[T]) -> T:
        async with self.engine.connect() as connection:
            try:
                statement, values = next(read)
            except StopIteration as done:
                return cast(T, done.value)  # a Read[T] returns its T
            while True:
                parameters = tuple(statement.parameters(values))
                raw = (await connection.exec_driver_sql(statement.sql, parameters)).all()
                try:
                    statement, values = read.send(statement.rows(raw))
                except StopIteration as done:
                    return cast(T, done.value)  # a Read[T] returns its T

    def _connection(self) -> sqlite3.Connection:
        """This reader thread's own connection."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = self._open()
        return connection

    def _run_sqlite(self, read: Read[T]) -> T:
        connection = self._connection()
        connection.execute("BEGIN")
        try:
            try:
                statement, values = next(read)
            except StopIteration as done:
                return cast(T, done.value)  # a Read[T] returns its T
            while True:
                for listener in self.listeners:
                    listener(statement.sql)
                raw = connection.execute(statement.sql, statement.parameters(values)).fetchall()
                try:
                    statement, values = read.send(statement.rows(raw))
                except StopIteration as done:
                    return cast(T, done.value)  # a Read[T] returns its T
        finally:
            connection.execute("COMMIT")

    async def checkpoint(self, *, truncate: bool = False, wait: bool = False) -> tuple[int, int, int] | None:
        """Copy SQLite's write-ahead log into the database file, on a reader thread; SQLite's
        ``(busy, log pages, copied pages)``, or None when there is no file to checkpoint.

        PASSIVE by default: it takes no lock, so it waits for nobody; what a reader still needs
        stays in the log for next time. ``truncate``: then empty the log (TRUNCATE), which needs
        SQLite's write lock and no reader left on the log; without ``wait`` it does not wait
        for them (busy is 1 and the log stays, for the next checkpoint, or for SQLite to cut
        back to ``journal_size_limit`` when the next writer starts the log over); with ``wait``
        (at shutdown) it waits as long as the busy timeout allows."""
        if self._sqlite_path is None:
            return None
        mode = "TRUNCATE" if truncate else "PASSIVE"
        return await asyncio.get_running_loop().run_in_executor(self._pool(), self._checkpoint, mode, wait)

    def _pool(self) -> ThreadPoolExecutor:
        if self._threads is None:
            self._threads = ThreadPoolExecutor(self._readers, thread_name_prefix="plain-read")
        return self._threads

    def _checkpoint(self, mode: str, wait: bool) -> tuple[int, int, int]:
        connection = self._connection()
        if wait:
            result: tuple[int, int, int] = connection.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
            return result
        connection.execute("PRAGMA busy_timeout=0")
        try:
            result = connection.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
            return result
        finally:
            connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")

    def _open(self) -> sqlite3.Connection:
        assert self._sqlite_path is not None  # reader threads run only for a SQLite file
        connection = sqlite3.connect(self._sqlite_path, isolation_level=None, check_same_thread=False)
        connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        connection.execute("PRAGMA query_only=ON")
        self._connections.append(connection)
        return connection

    def close(self) -> None:
        if self._threads is not None:
            self._threads.shutdown(wait=True)
            self._threads = None
        for connection in self._connections:
            connection.close()
        self._connections.clear()
        self._local = threading.local()


async def _fetch(pooled: PoolProxiedConnection, driver: Any, sql: str, parameters: list[Any]) -> list[Any]:
    """``driver.fetch`` on a pooled asyncpg connection, which goes back to the pool only idle.

    A statement the server refused (a PostgreSQL error of a statement) leaves the connection
    ready for the next one. Any other failure — the backend gone, asyncpg out of step with it
    (terminated backends make it answer "another operation is in progress"), a cancelled or
    timed-out task mid-query — may leave an operation in progress on it: it is closed on the
    spot and invalidated, so the pool opens a new one rather than hand it out again. A lost
    connection is raised as SQLAlchemy raises one, ``connection_invalidated`` (an outage:
    ``UNAVAILABLE``); a cancellation goes on as it came."""
    try:
        return cast(list[Any], await driver.fetch(sql, *parameters))
    except BaseException as error:
        if refused(error) and not driver.is_closed():
            raise
        await drop(pooled, driver, error, sql, parameters)
        raise


async def drop(pooled: PoolProxiedConnection, driver: Any, error: BaseException, sql: str, parameters: Any) -> None:
    """Close a pooled asyncpg connection a statement failed on, not refused by the server, and
    take it out of the pool; raise a lost connection as SQLAlchemy raises one (``DBAPIError``,
    ``connection_invalidated``). Anything else (a cancellation, a value it could not encode) is
    the caller's to raise."""
    lost = not isinstance(error, (ValueError, TypeError))  # else: a value it could not encode
    driver.terminate()  # synchronous: no operation is left in progress, whatever comes next
    with suppress(Exception):  # the pool closes what it can; the driver's side is closed already
        await greenlet_spawn(pooled.invalidate, error)
    if isinstance(error, Exception) and lost:
        raise DBAPIError(sql, parameters, error, hide_parameters=True, connection_invalidated=True) from error


def refused(error: BaseException) -> bool:
    """Whether the server answered the statement with an error of its own, the connection fine."""
    state = getattr(error, "sqlstate", None)  # asyncpg's PostgresError, and only it, has one
    return isinstance(state, str) and not state.startswith(("08", "57P"))  # connection, shutdown


def in_ids(column: Any, dialect: str, single: bool = False) -> Any:
    """``column IN (:ids)`` as one statement whatever the number of ids: bind ``ids`` with
    :func:`ids_value` (the same ``single``).

    ``single``: exactly one id, compared with ``=``. PostgreSQL estimates an array parameter at
    ten elements, so for ``= ANY($1)`` the plan it could keep for every execution looks dearer
    than one planned for the values at hand, and it plans the statement anew each time (on a
    deep document's level, planning took three times as long as running); ``= $1`` it plans
    once per connection."""
    if single:
        return column == bindparam("ids")
    if dialect == "postgresql":
        return column == any_(bindparam("ids", type_=ARRAY(String)))
    return column.in_(select(sql_column("value")).select_from(func.json_each(bindparam("ids"))))


def ids_value(ids: Any, dialect: str, single: bool = False) -> Any:
    """``ids`` bound for :func:`in_ids` (``single``: the one id itself)."""
    if single:
        (only,) = ids
        return only
    return list(ids) if dialect == "postgresql" else orjson.dumps(list(ids)).decode()


def as_entity(kind: type[T], values: dict[str, Any]) -> T:
    """A row as an instance of its table's class, built the way the ORM builds the rows it loads:
    no ``__init__`` (whose pydantic and SQLAlchemy bookkeeping costs twenty times more) and no
    session. Reading its attributes is all such an entity is for; whoever changes one writes the
    change with a statement of its own (see resolvers/unit.py)."""
    entity: T = _manager(kind).new_instance()  # type: ignore[arg-type]  # a class is hashable; mypy cannot tell for type[T]
    entity.__dict__.update(values)
    return entity


@cache
def _manager(kind: type) -> ClassManager[Any]:
    configure_mappers()  # what the first __init__ or query would do
    return manager_of_class(kind)  # kind._sa_class_manager
