"""Whether the database takes writes: what ``/readyz`` reports beside "reachable".

A database that answers ``SELECT 1`` may still refuse every write (a full disk, a read-only file
or standby). Readiness therefore has two more checks:

- on SQLite, always: the room left to grow, in the file system under the database file and
  under ``PRAGMA max_page_count``; less than ``HEADROOM_BYTES`` is "refusing writes";
- remembered refusals: a write that failed because the database refused it
  (``resolvers.errors.refuses_writes``) makes the server not ready until a write succeeds or a
  write probe of ``/readyz`` itself succeeds (an empty ``BEGIN IMMEDIATE`` on SQLite; on
  PostgreSQL a transaction that is neither on a standby nor read-only commits a transaction
  id). The probe matters: a server out of rotation gets no writes that could clear the refusal.
"""

from __future__ import annotations

import logging
import os

from sqlalchemy import text
from sqlalchemy.engine import make_url

from models.db.engine import Database
from resolvers.errors import is_unavailable, refuses_writes

log = logging.getLogger("support_graph.outages")

#: free space below which a SQLite database counts as full: a write unit's pages, the
#: write-ahead log's growth until the next checkpoint, and the checkpoint itself need room
HEADROOM_BYTES = 1 << 20


class WriteHealth:
    """The refusals of one server's database, and the readiness check built on them."""

    def __init__(self) -> None:
        #: why the last write failed, while no write has succeeded since
        self.refused: str | None = None

    def failed(self, error: BaseException) -> None:
        """A write failed with ``error``: remember it if the database refused it."""
        if is_unavailable(error) and refuses_writes(error):
            reason = (str(error).splitlines() or [type(error).__name__])[0][:200]
            if self.refused is None:
                log.warning("the database refuses writes: %s", reason)
            self.refused = reason

    def succeeded(self) -> None:
        """A write committed: the database takes writes again."""
        if self.refused is not None:
            log.warning("the database takes writes again")
        self.refused = None

    async def refusal(self, db: Database) -> str | None:
        """Why ``db`` refuses writes now, or None (the database answers reads: see ``ping``)."""
        if db.is_sqlite:
            full = await _sqlite_room(db)
            if full is not None:
                return full
        if self.refused is None:
            return None
        try:
            await _write_probe(db)
        except StillRefused:
            return self.refused
        except Exception as error:
            if not is_unavailable(error):
                raise
            return self.refused
        self.succeeded()
        return None


async def _sqlite_room(db: Database) -> str | None:
    """Why the SQLite database cannot grow by ``HEADROOM_BYTES``, or None."""
    database = make_url(db.url).database
    if database in (None, "", ":memory:") or database.startswith("file:"):
        return None
    async with db.engine.connect() as conn:
        page_size, page_count, max_pages, free_pages = [
            (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar_one()
            for name in ("page_size", "page_count", "max_page_count", "freelist_count")
        ]
    if (max_pages - page_count + free_pages) * page_size < HEADROOM_BYTES:
        return f"the database is at its max_page_count ({max_pages} pages of {page_size} bytes)"
    stat = os.statvfs(os.path.dirname(os.path.abspath(database)))
    if stat.f_bavail * stat.f_frsize < HEADROOM_BYTES:
        return f"the file system of {database} has {stat.f_bavail * stat.f_frsize} bytes free"
    return None


class StillRefused(Exception):
    """The write probe found the database still refusing writes."""


async def _write_probe(db: Database) -> None:
    """Take the write lock (SQLite), or take and commit a transaction id in a transaction that
    may write (PostgreSQL: not a standby, not read-only); writes no row."""
    async with db.writing() as session:
        if db.is_sqlite:
            await session.rollback()
            return
        recovering, read_only = (
            await session.execute(text("SELECT pg_is_in_recovery(), current_setting('transaction_read_only')"))
        ).one()
        if recovering or read_only == "on":
            raise StillRefused("the server is a standby or read-only")
        await session.execute(text("SELECT txid_current()"))
        await session.commit()
