"""aiosqlite for SQLAlchemy with one thread hop per statement.

Contract.

* Guarantees: the same dialect, URLs (``sqlite+aiosqlite://``), connection setup, rows, column
  names, row counts, last row ids, error types and transaction semantics as SQLAlchemy's own
  aiosqlite adapter — with one call on the connection's thread per statement (execute, fetch
  and close together), and none for a rollback with no transaction open (the pool's reset of a
  committed connection). ``OneHopConnection.begin_write`` (and ``write_transaction`` around
  it) takes SQLite's write lock up front (``BEGIN IMMEDIATE``) and then runs the transaction's
  statements on the event loop's thread, calling back after each commit (the Database
  checkpoints the log from there); models/db/sqlite_writes.py runs units of work on it.
* Does not: speed up streaming (``stream()`` keeps the stock server-side cursor and its hops;
  a buffered statement's rows are fetched whole, as the stock buffered cursor does), serve any
  other driver or dialect, or let SQLite take more than one writer at a time.
  It relies on two aiosqlite internals, ``Connection._execute`` (queue a function on the
  connection's thread) and ``._conn`` (the ``sqlite3`` connection), which SQLAlchemy's own
  adapter also uses; tests/test_sqlite_driver.py pins the behaviour.
* When: every SQLite engine ``models.db.engine.Database`` makes, by default.
* Off: ``Database(url, one_hop_sqlite=False)`` (the server's ``one_hop_sqlite`` setting,
  ``ONE_HOP_SQLITE=false``) uses aiosqlite as SQLAlchemy ships it; SQLite then checkpoints its
  log by itself.

Why: aiosqlite runs each ``sqlite3`` call on its connection's own thread; SQLAlchemy's adapter
makes four such calls per SELECT (open a cursor, execute, fetch, close) and three per INSERT or
UPDATE. Every call is a round trip between the event loop and that thread, and on a verb of a
dozen statements the round trips cost more than SQLite itself.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

import aiosqlite
from sqlalchemy.connectors.asyncio import AsyncAdapt_dbapi_connection, AsyncIODBAPIConnection
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)  # fmt: skip
from sqlalchemy.util import EMPTY_DICT

#: a finished statement: description, rows, row count, last row id
_Finished = tuple[Any, Sequence[Any], int, int | None]


def _execute(connection: AsyncIODBAPIConnection, operation: str, parameters: Any, many: bool) -> _Finished:
    """On the connection's thread: run one statement to the end."""
    raw: sqlite3.Connection = connection._conn  # an aiosqlite.Connection's sqlite3 connection
    cursor = raw.executemany(operation, parameters) if many else raw.execute(operation, parameters or ())
    try:
        description = cursor.description
        rows = cursor.fetchall() if description else ()
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    """A cursor that holds a finished statement's results; no ``sqlite3`` cursor stays open."""

    __slots__ = ("_arraysize", "_description", "_lastrowid", "_rowcount")

    _adapt_connection: OneHopConnection
    _description: Any
    _rowcount: int
    _lastrowid: int | None
    _arraysize: int

    def __init__(self, adapt_connection: AsyncAdapt_dbapi_connection) -> None:
        # only OneHopConnection.cursor() makes these (its _cursor_cls)
        self._adapt_connection = cast("OneHopConnection", adapt_connection)
        self._connection = adapt_connection._connection
        # SQLAlchemy declares _cursor non-optional, though its close() allows None: no cursor stays open
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description = None
        self._rowcount = -1
        self._lastrowid = None
        self._arraysize = 1

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> Any:
        return self._lastrowid

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    async def _async_soft_close(self) -> None:
        return None

    def close(self) -> None:
        self._rows.clear()

    async def _run(self, operation: str, parameters: Any, many: bool) -> None:
        finished: _Finished
        async with self._adapt_connection._execute_mutex:
            if self._adapt_connection.inline:
                finished = _execute(self._connection, operation, parameters, many)
            else:
                finished = await self._connection._execute(_execute, self._connection, operation, parameters, many)
        self._description, rows, self._rowcount, self._lastrowid = finished
        self._rows = collections.deque(rows)

    async def _execute_async(self, operation: str, parameters: Any) -> None:
        await self._run(operation, parameters, False)

    async def _executemany_async(self, operation: str, seq_of_parameters: Any) -> None:
        await self._run(operation, seq_of_parameters, True)


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ("_busy_timeout", "_on_commit", "inline")
    _cursor_cls = OneHopCursor

    def __init__(self, dbapi: Any, connection: AsyncIODBAPIConnection) -> None:
        super().__init__(dbapi, connection)
        #: run statements on the calling (event loop) thread: see ``write_transaction``
        self.inline = False
        self._on_commit: Callable[[], None] | None = None
        self._busy_timeout: int | None = None

    @asynccontextmanager
    async def write_transaction(self, on_commit: Callable[[], None] | None = None) -> AsyncIterator[None]:
        """A write transaction whose statements run on the event loop's thread (``begin_write``).
        The caller commits or rolls back inside the block; either ends the inline mode."""
        await self.begin_write(on_commit)
        try:
            yield
        finally:
            self.inline, self._on_commit = False, None

    async def begin_write(self, on_commit: Callable[[], None] | None = None) -> None:
        """Open a write transaction whose statements run on the event loop's thread.

        ``BEGIN IMMEDIATE`` takes SQLite's write lock up front: in place when it is free (this
        process's writers take turns before they get here), else on the connection's thread,
        where waiting for another process's writer may take a while. Holding the lock, no
        statement of the transaction can wait for one, and each is CPU work on pages in memory,
        cheaper to run in place than to hand to a thread. COMMIT goes to the connection's
        thread (``commit`` or ``commit_write``): it writes a dozen pages or more to the log (and
        now and then checkpoints it), which on a second core overlaps with the event loop's
        work — measured faster than committing in place, hop included. ``on_commit`` is called
        after a successful commit. A commit or a rollback ends the inline mode.
        """
        raw: sqlite3.Connection = self._connection._conn
        if self._busy_timeout is None:
            (self._busy_timeout,) = raw.execute("PRAGMA busy_timeout").fetchone()
        raw.execute("PRAGMA busy_timeout=0")
        try:
            raw.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode != sqlite3.SQLITE_BUSY:
                raise
            busy = True
        else:
            busy = False
        finally:
            raw.execute(f"PRAGMA busy_timeout={int(self._busy_timeout)}")
        if busy:
            await self._begin_on_thread(raw)
        self.inline, self._on_commit = True, on_commit

    async def _begin_on_thread(self, raw: sqlite3.Connection) -> None:
        """``BEGIN IMMEDIATE`` on the connection's thread, where it waits for another process's
        writer. Cancelled meanwhile, it still waits for the ``BEGIN`` to end — on the event loop,
        not in it: the connection is busy until then, and the next statement run in place on
        it would block the loop — and rolls it back, so the connection goes back to the pool
        with no transaction open."""
        begin = asyncio.ensure_future(self._connection._execute(raw.execute, "BEGIN IMMEDIATE"))
        try:
            await asyncio.shield(begin)
        except asyncio.CancelledError:
            while not begin.done():  # however often cancelled meanwhile
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait({begin})
            if begin.exception() is None and raw.in_transaction:
                raw.rollback()
            raise

    async def commit_write(self) -> None:
        """``commit`` from the event loop without SQLAlchemy's greenlet: on the connection's
        thread, then ``on_commit``."""
        on_commit = self._on_commit if self.inline else None
        self.inline, self._on_commit = False, None
        await self._connection._execute(self._connection._conn.commit)
        if on_commit is not None:
            on_commit()

    def rollback_write(self) -> None:
        """``rollback`` in place (it only drops the transaction's pages), without a hop."""
        self.inline, self._on_commit = False, None
        raw: sqlite3.Connection = self._connection._conn
        if raw.in_transaction:
            raw.rollback()

    def commit(self) -> None:
        on_commit = self._on_commit if self.inline else None
        self.inline = False
        super().commit()
        if on_commit is not None:
            on_commit()

    def rollback(self) -> None:
        self.inline = False
        # the pool rolls back every connection it gets back, most of them already committed
        connection = self._connection._connection
        if connection is not None and connection.in_transaction:
            super().rollback()


class OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """The DBAPI module to give ``create_async_engine(..., module=...)`` for SQLite."""

    def __init__(self) -> None:
        super().__init__(aiosqlite, sqlite3)

    def connect(self, *args: Any, **kwargs: Any) -> OneHopConnection:
        kwargs["check_same_thread"] = False  # write transactions run statements on the loop's thread
        adapted = super().connect(*args, **kwargs)
        return OneHopConnection(self, adapted._connection)
