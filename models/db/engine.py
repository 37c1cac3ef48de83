"""Engine, sessions and schema creation, for SQLite (default) and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import event as sa_event
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

import models.entities
import models.event
import models.keys  # noqa: F401
from models.db.plain import PlainReads
from models.db.sqlite_driver import OneHopConnection, OneHopDBAPI

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./support-graph.db"
#: SQLite write units between two checkpoints of the write-ahead log (about what SQLite's own
#: 1,000-page default comes to for units of a few rows)
CHECKPOINT_EVERY = 200
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


class Database:
    """One engine and its sessions.

    SQLite has one writer: write units of work take an in-process lock so they queue instead of
    failing with "database is locked", and readers keep going thanks to WAL.
    """

    def __init__(self, url: str = DEFAULT_DATABASE_URL, *, echo: bool = False) -> None:
        self.url = normalise_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        kwargs: dict = {"echo": echo}
        if self.is_sqlite and self.url.startswith("sqlite+aiosqlite"):
            kwargs["module"] = OneHopDBAPI()
            # one request's loaders read in parallel, each on a connection of its own: a pool
            # smaller than that opens (a thread, a file, the pragmas) and closes connections
            # on every request
            if make_url(self.url).database not in (None, "", ":memory:"):
                kwargs.update(pool_size=20, max_overflow=20)
        if not self.is_sqlite:
            kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if self.is_sqlite:
            sa_event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        self._write_lock: asyncio.Lock | None = None
        self._commits = 0
        self._checkpointing: asyncio.Task | None = None
        #: statements compiled once and run on the driver
        self.plain = PlainReads(self.engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncSession]:
        """A session in a write transaction; committed by the caller, rolled back on error."""
        if self.is_sqlite:
            if self._write_lock is None:
                self._write_lock = asyncio.Lock()
            async with self._write_lock, self.sessions() as session:
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
        write-ahead log into the database file, from a reader's thread. The connections do not
        do it themselves: SQLite would checkpoint inside a commit, syncing the disk while the
        unit still holds the write lock, and every other writer would wait for it."""
        self._commits += 1
        idle = self._checkpointing is None or self._checkpointing.done()
        if self._commits % CHECKPOINT_EVERY == 0 and idle:
            self._checkpointing = asyncio.get_running_loop().create_task(self._checkpoint())

    async def _checkpoint(self) -> None:
        try:
            await self.plain.checkpoint()
        except Exception:
            log.exception("SQLite checkpoint failed")

    async def dispose(self) -> None:
        if self._checkpointing is not None:
            await self._checkpointing
        await self._checkpoint()
        self.plain.close()
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA wal_autocheckpoint=0")  # Database checkpoints besides (see _committed)
    cursor.close()
