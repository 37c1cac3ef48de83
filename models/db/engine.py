"""Engine, sessions and schema creation, for SQLite (default) and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.util import greenlet_spawn

import models.conversation
import models.entities
import models.event
import models.idempotency
import models.keys
import models.persisted
import models.service_levels
import models.webhooks  # noqa: F401
from models.db.plain import PlainReads
from models.db.sqlite_driver import OneHopConnection, OneHopDBAPI
from models.db.sqlite_writes import SqliteWriteConnection
from models.db.writes import WriteConnection

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./support-graph.db"
#: SQLite write units between two checkpoints of the write-ahead log (about what SQLite's own
#: 1,000-page default comes to for units of a few rows)
CHECKPOINT_EVERY = 200
#: the size SQLite cuts the write-ahead log file back to when it starts the log over, should a
#: checkpoint have been unable to empty it (a reader was still on it): the log's file never
#: stays at its high-water mark
WAL_SIZE_LIMIT = 8 * 1024 * 1024
log = logging.getLogger("support_graph")


def normalise_url(url: str) -> str:
    """Accept plain ``postgresql://`` and ``sqlite://`` URLs and pick the async drivers."""
    for plain, driver in (
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url


#: PostgreSQL connections each worker keeps open (``DATABASE_POOL_SIZE``); a request waits for
#: one when all are busy
POSTGRES_POOL_SIZE = 30


def _closed_on_checkout(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: Any) -> None:
    """Refuse a pooled asyncpg connection whose socket is already closed, so the pool replaces it.

    A restarted or terminated backend closes its end; asyncpg notices on the event loop and marks
    the connection closed, so a connection a database restart left stale is swapped for a new one
    at checkout without a round trip (the pool retries on ``DisconnectionError``). A connection
    cut while a request holds it fails that request, as it would with a ping."""
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the pooled PostgreSQL connection was closed by the server")


class Database:
    """One engine and its sessions.

    SQLite has one writer: write units of work take an in-process lock so they queue instead of
    failing with "database is locked", and readers keep going thanks to WAL.

    ``one_hop_sqlite`` (default on) runs SQLite through the one-hop adapter of
    models/db/sqlite_driver.py, whose write units checkpoint the log every ``CHECKPOINT_EVERY``
    commits; off, it is aiosqlite as SQLAlchemy ships it, and SQLite checkpoints on its own.
    """

    def __init__(
        self, url: str = DEFAULT_DATABASE_URL, *, echo: bool = False, one_hop_sqlite: bool = True,
        pool_size: int = POSTGRES_POOL_SIZE, pool_open: int = 0,
    ) -> None:  # fmt: skip
        self.url = normalise_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        self.one_hop_sqlite = one_hop_sqlite and self.url.startswith("sqlite+aiosqlite")
        kwargs: dict[str, Any] = {"echo": echo}
        if self.one_hop_sqlite:
            kwargs["module"] = OneHopDBAPI()
        if self.url.startswith("sqlite+aiosqlite") and make_url(self.url).database not in (None, "", ":memory:"):
            # one request's loaders read in parallel, each on a connection of its own: a pool
            # smaller than that opens (a thread, a file, the pragmas) and closes connections
            # on every request
            kwargs.update(pool_size=20, max_overflow=20)
        if not self.is_sqlite:
            # a fixed pool: a request's loaders read in parallel, and connections opened past the
            # pool (overflow) are closed again on return — a new PostgreSQL session, and asyncpg's
            # type set-up, for every burst. No ping per checkout (SQLAlchemy's costs asyncpg three
            # round trips): a checkout looks at the socket instead (``_closed_on_checkout``).
            kwargs.update(pool_size=pool_size, max_overflow=0)
        #: PostgreSQL connections :meth:`open_pool` opens at start (at most the pool's size)
        self.pool_open = 0 if self.is_sqlite else min(pool_open, pool_size)
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if self.is_sqlite:
            pragmas = _one_hop_pragmas if self.one_hop_sqlite else _sqlite_pragmas
            sa_event.listen(self.engine.sync_engine, "connect", pragmas)
        else:
            sa_event.listen(self.engine.sync_engine, "checkout", _closed_on_checkout)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        self._write_lock: asyncio.Lock | None = None
        self._commits = 0
        self._checkpointing: asyncio.Task[None] | None = None
        #: statements compiled once and run on the driver
        self.plain = PlainReads(self.engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def open_pool(self) -> None:
        """Open ``pool_open`` PostgreSQL connections now, and leave them in the pool.

        The pool opens a connection when a request finds none idle, and never closes one: under
        load it grows to the peak of concurrent checkouts, one PostgreSQL session (and asyncpg's
        type set-up) at a time, in the middle of requests. Opened at start, up to the pool's
        size, the sessions are all there before the first request."""
        if not self.pool_open:
            return
        opened = await asyncio.gather(
            *(greenlet_spawn(self.engine.sync_engine.raw_connection) for _ in range(self.pool_open)),
            return_exceptions=True,
        )
        for connection in opened:
            if not isinstance(connection, BaseException):
                await greenlet_spawn(connection.close)  # back to the pool, open
        failed = [error for error in opened if isinstance(error, BaseException)]
        if failed:  # the pool opens the rest on demand, as it would have without this
            log.warning("opened %d of %d pooled connections at start: %s", len(opened) - len(failed),
                        len(opened), failed[0])  # fmt: skip

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    @property
    def write_lock(self) -> asyncio.Lock:
        """The lock this process's SQLite writers take turns on."""
        if self._write_lock is None:
            self._write_lock = asyncio.Lock()
        return self._write_lock

    def unit_connection(self) -> WriteConnection | SqliteWriteConnection | None:
        """A connection for a unit of work straight on the driver (to ``open``): asyncpg's on
        PostgreSQL, the one-hop adapter's on SQLite; None where units go through a session
        (SQLite without the one-hop adapter)."""
        if not self.is_sqlite:
            return WriteConnection(self.engine, self.plain.listeners)
        if self.one_hop_sqlite:
            return SqliteWriteConnection(self.engine, self.plain.listeners, self.write_lock, self._committed)
        return None

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncSession]:
        """A session in a write transaction; committed by the caller, rolled back on error."""
        if self.is_sqlite:
            async with self.write_lock, self.sessions() as session:
                connection = await session.connection()
                raw = (await connection.get_raw_connection()).dbapi_connection
                if isinstance(raw, OneHopConnection):
                    async with raw.write_transaction(on_commit=self._committed):
                        yield session
                else:
                    yield session
        else:
            async with self.sessions() as session:
                yield session

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    def _committed(self) -> None:
        """After each SQLite write unit: every ``CHECKPOINT_EVERY`` commits, fold the
        write-ahead log into the database file and empty it, from a reader's thread. The
        connections do not do it themselves: SQLite would checkpoint inside a commit, syncing
        the disk while the unit still holds the write lock, and every other writer would wait."""
        self._commits += 1
        idle = self._checkpointing is None or self._checkpointing.done()
        if self._commits % CHECKPOINT_EVERY == 0 and idle:
            self._checkpointing = asyncio.get_running_loop().create_task(self._checkpoint())

    async def _checkpoint(self) -> None:
        """Copy the log into the file while writers go on (PASSIVE), then, between two units of
        this process, copy the few pages written meanwhile and empty the log (TRUNCATE). That
        waits for no other process's writer nor for any reader: should one be busy, the log
        stays, and SQLite cuts it back to ``WAL_SIZE_LIMIT`` when the next unit starts it over."""
        try:
            await self.plain.checkpoint()
            async with self.write_lock:
                await self.plain.checkpoint(truncate=True)
        except Exception:
            log.exception("SQLite checkpoint failed")

    async def dispose(self) -> None:
        """Close every connection. On SQLite, once the writers are closed, the whole log is
        folded into the database file and the log emptied (a TRUNCATE checkpoint that waits for
        any reader): a stopped server leaves its data in the file alone."""
        if self._checkpointing is not None:
            await self._checkpointing
        await self.engine.dispose()
        try:
            await self.plain.checkpoint(truncate=True, wait=True)
        except Exception:
            log.exception("SQLite checkpoint at shutdown failed")
        self.plain.close()


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
    cursor.close()


def _one_hop_pragmas(dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry) -> None:
    _sqlite_pragmas(dbapi_connection, record)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA wal_autocheckpoint=0")  # Database checkpoints besides (see _committed)
    cursor.close()
