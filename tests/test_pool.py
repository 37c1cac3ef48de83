"""PostgreSQL's connection pool is fixed: however many reads run at once, a worker holds at most
``DATABASE_POOL_SIZE`` sessions and, once they are open, opens no new ones (overflow
connections used to be opened and closed on every burst)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from models.db import migrate
from models.db.engine import Database
from models.entities import Ticket
from resolvers.query import find
from tests.databases import fresh_database

POOL = 3
AT_ONCE = 12


@pytest.fixture
def url(tmp_path) -> str:
    with fresh_database("postgresql", tmp_path) as fresh:
        yield fresh


async def _sessions(monitor: asyncpg.Connection, url: str) -> tuple[int, int]:
    """(sessions ever opened on the database, backends connected to it now but ``monitor``)."""
    name = url.rpartition("/")[2]
    opened = await monitor.fetchval("SELECT sessions FROM pg_stat_database WHERE datname = $1", name)
    now = await monitor.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", name
    )
    return opened, now


def test_a_burst_of_reads_opens_no_session_past_the_pool(url: str):
    async def go() -> None:
        db = Database(url, pool_size=POOL)
        monitor = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            await migrate.upgrade(db)

            async def burst() -> None:  # many reads at once, each on a connection of its own
                await asyncio.gather(*(find(db, Ticket, tenant="t", first=5) for _ in range(AT_ONCE)))
                await asyncio.gather(*(db.ping() for _ in range(AT_ONCE)))

            await burst()  # warm-up: the pool opens its connections
            opened_before, _ = await _sessions(monitor, url)
            for _ in range(5):
                await burst()
            opened_after, connected = await _sessions(monitor, url)
            assert opened_after - opened_before == 0
            assert connected <= POOL
        finally:
            await monitor.close()
            await db.dispose()

    asyncio.run(go())


def test_a_pool_opened_at_start_opens_no_session_under_its_first_burst(url: str):
    async def go() -> None:
        db = Database(url, pool_size=POOL, pool_open=POOL + 2)  # asked for more: the pool's size
        monitor = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            await migrate.upgrade(db)
            await db.dispose()  # the pool starts empty, as a server's does
            await db.open_pool()
            opened_before, connected = await _sessions(monitor, url)
            assert connected == POOL
            await asyncio.gather(*(find(db, Ticket, tenant="t", first=5) for _ in range(AT_ONCE)))
            await asyncio.gather(*(db.ping() for _ in range(AT_ONCE)))
            opened_after, connected = await _sessions(monitor, url)
            assert (opened_after - opened_before, connected) == (0, POOL)
        finally:
            await monitor.close()
            await db.dispose()

    asyncio.run(go())


def test_sqlite_opens_nothing_at_start(tmp_path):
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'pool.db'}", pool_open=5)
    assert db.pool_open == 0
