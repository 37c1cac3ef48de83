"""Write transactions straight on SQLite's connection: SQLite's side of a unit of work.

Contract.

* Guarantees: what ``models.db.writes.WriteConnection`` gives PostgreSQL's units — a
  statement runs with exactly the SQL and parameter values ``connection.execute`` would send
  (compiled once by SQLAlchemy, its bind and result processors applied), everything run through
  one connection is one transaction, committed by ``commit`` or not at all, each statement is
  reported to ``listeners`` and run inside the watchers' context managers, and the events a
  committed transaction inserted are told to ``watchers(engine).committed``. The transaction
  is the one ``Database.writing`` gives a session: this process's writers take turns on the
  database's write lock, then ``BEGIN IMMEDIATE`` takes SQLite's (``OneHopConnection.begin_write``);
  statements run in place on the event loop's thread, ``COMMIT`` on the connection's thread,
  and the database's ``on_commit`` (its checkpoints) runs after each commit. A ``sqlite3``
  error (of a statement, the ``BEGIN`` or the ``COMMIT``) is raised as SQLAlchemy raises it
  (``IntegrityError``, ``OperationalError``… with ``orig``), so a unit treats both databases'
  errors alike. Unlike asyncpg's, a SQLite connection is never dropped: a failed statement
  leaves it as SQLite does, and the unit rolls back.
* Does not: run without the one-hop adapter (``ONE_HOP_SQLITE=false`` units go through a
  session), or apply SQLAlchemy's events (``before_cursor_execute``, ``commit``): hence the
  listeners and watchers.

Why: a unit's statements on SQLite are a few microseconds of SQLite each, and SQLAlchemy's
session, Core execution and result layers cost several times that per statement (a quarter of
the server's samples under bench.read_write's writes, py-spy; bench/RESULTS.md, #19 stop 27).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.util import greenlet_spawn

from models.db.plain import Compiled
from models.db.sqlite_driver import OneHopConnection
from models.db.writes import watchers


class SqliteWriteConnection:
    """One pooled one-hop SQLite connection in a write transaction, for one unit of work."""

    def __init__(
        self, engine: Any, listeners: list[Callable[[str], None]], lock: asyncio.Lock, on_commit: Callable[[], None]
    ) -> None:
        """``engine``: the ``AsyncEngine`` whose pool lends the connection; ``lock``: the one
        this process's SQLite writers take turns on; ``on_commit``: called after each commit."""
        self.engine = engine
        self.listeners = listeners
        self.watchers = watchers(engine.sync_engine)
        self._lock = lock
        self._on_commit = on_commit
        #: whether the transaction is open (from ``open`` until a commit or a rollback)
        self.begun = False
        #: events inserted in the open transaction (counted by the caller)
        self.events = 0
        #: whether this connection holds the write lock (from ``open`` until ``close``)
        self._holding = False
        self._pooled: Any = None
        self._adapted: OneHopConnection | None = None
        self._raw: sqlite3.Connection | None = None

    async def open(self) -> SqliteWriteConnection:
        await self._lock.acquire()
        self._holding = True
        try:
            self._pooled = await greenlet_spawn(self.engine.sync_engine.raw_connection)
            adapted = self._pooled.dbapi_connection
            assert isinstance(adapted, OneHopConnection), "SQLite units straight on the driver need the one-hop adapter"
            try:
                await adapted.begin_write(self._on_commit)
            except sqlite3.Error as error:
                raise self._wrapped("BEGIN IMMEDIATE", None, error) from error
        except BaseException:
            await self._release()
            raise
        self._adapted, self._raw = adapted, adapted._connection._conn
        self.begun = True
        return self

    async def fetch(self, statement: Compiled, values: dict[str, Any], *, writes: bool = False) -> list[Any]:
        """The raw rows of one statement (every statement is in the transaction)."""
        return self._run(statement.sql, statement.parameters(values))

    async def write_many(self, statement: Compiled, rows: list[dict[str, Any]]) -> None:
        """Run a statement that writes once per row."""
        self._run(statement.sql, [statement.parameters(row) for row in rows], many=True)

    async def alone(self, statement: Compiled, values: dict[str, Any], *, events: int = 0) -> list[Any]:
        raise AssertionError("a SQLite unit's transaction is open from the start: nothing runs alone")

    async def commit(self) -> None:
        if self.begun and self._adapted is not None:
            self.begun = False
            try:
                await self._adapted.commit_write()
            except sqlite3.Error as error:
                raise self._wrapped("COMMIT", None, error) from error
            self.watchers.tell_committed(self.events)
        self.events = 0

    async def rollback(self) -> None:
        self.events = 0
        if self.begun and self._adapted is not None:
            self.begun = False
            self._adapted.rollback_write()

    async def close(self) -> None:
        """Back to the pool (a transaction still open is rolled back) and the next writer's turn."""
        try:
            if self.begun:
                await self.rollback()
        finally:
            await self._release()

    async def _release(self) -> None:
        pooled, self._pooled, self._adapted, self._raw = self._pooled, None, None, None
        try:
            if pooled is not None:
                await greenlet_spawn(pooled.close)  # back to the pool
        finally:
            if self._holding:  # once: the lock may be another writer's by the next call
                self._holding = False
                self._lock.release()

    def _run(self, sql: str, parameters: Any, *, many: bool = False) -> list[Any]:
        raw = self._raw
        assert raw is not None, "the connection is not open"
        with self.watchers.watching(sql, self.listeners):
            try:
                cursor = raw.executemany(sql, parameters) if many else raw.execute(sql, parameters)
                try:
                    return cursor.fetchall() if cursor.description else []
                finally:
                    cursor.close()
            except sqlite3.Error as error:
                raise self._wrapped(sql, parameters, error) from error

    def _wrapped(self, sql: str, parameters: Any, error: sqlite3.Error) -> Exception:
        """``error`` as SQLAlchemy raises it (``IntegrityError``, ``OperationalError``…)."""
        wrapped: Exception = DBAPIError.instance(sql, parameters, error, sqlite3.Error, dialect=self.engine.dialect)
        return wrapped
