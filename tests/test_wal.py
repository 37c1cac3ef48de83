"""SQLite's write-ahead log stays bounded while the server runs and is empty once it stops.

Each test writes real units of work through ``Database.writing`` on a SQLite file and looks at
the size of its ``-wal`` file.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, table, text

from models.db import engine as db_module
from models.db.engine import WAL_SIZE_LIMIT, Database

#: a row of a few pages, so that a few hundred units make a log of several megabytes
BODY = "x" * 64 * 1024


def wal_size(path: Path) -> int:
    """The size of the database's write-ahead log file (0 when there is none)."""
    wal = path.with_name(path.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "wal.db"


@pytest.fixture
async def db(path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{path}")
    async with database.writing() as session:
        await session.execute(text("CREATE TABLE note (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"))
        await session.commit()
    yield database
    await database.dispose()


async def write(db: Database, units: int) -> None:
    for _ in range(units):
        async with db.writing() as session:
            await session.execute(text("INSERT INTO note (body) VALUES (:body)"), {"body": BODY})
            await session.commit()


def notes(path: Path) -> int:
    """The rows the database file holds on its own (its log set aside)."""
    copy = path.with_name("copy.db")
    copy.write_bytes(path.read_bytes())
    with contextlib.closing(sqlite3.connect(copy)) as conn:
        return conn.execute("SELECT count(*) FROM note").fetchone()[0]


@pytest.mark.parametrize("one_hop", [True, False])
async def test_dispose_leaves_an_empty_log(path: Path, one_hop: bool) -> None:
    db = Database(f"sqlite+aiosqlite:///{path}", one_hop_sqlite=one_hop)
    async with db.writing() as session:
        await session.execute(text("CREATE TABLE note (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"))
        await session.commit()
    await write(db, db_module.CHECKPOINT_EVERY + 50)
    async with db.reading() as session:  # a reader of the engine's pool, left in the pool
        assert (await session.execute(text("SELECT count(*) FROM note"))).scalar() == 250
    assert (await db.plain.rows(db.plain.compile(select(func.count().label("n")).select_from(table("note"))), {}))[0][
        "n"
    ] == 250  # and a plain reader
    assert wal_size(path) > 0  # the last units are in the log
    await db.dispose()
    assert wal_size(path) == 0
    assert notes(path) == db_module.CHECKPOINT_EVERY + 50  # all of it in the file


async def test_the_periodic_checkpoint_empties_the_log(db: Database, path: Path) -> None:
    """Every CHECKPOINT_EVERY units the log is folded into the file and cut to nothing: it
    never grows past the units written since the last checkpoint."""
    most, checkpoints = 0, 0
    for unit in range(1, 3 * db_module.CHECKPOINT_EVERY + 1):
        await write(db, 1)
        most = max(most, wal_size(path))
        if db._commits % db_module.CHECKPOINT_EVERY == 0:
            await db._checkpointing
            checkpoints += 1
            assert wal_size(path) == 0, unit
            assert notes(path) == unit
    assert checkpoints == 3
    assert most > WAL_SIZE_LIMIT  # so that, without checkpoints, the log would pass the limit
    assert most < (db_module.CHECKPOINT_EVERY + 1) * (len(BODY) + 16 * 1024), most  # one period's units


async def test_a_log_a_reader_kept_is_cut_back_to_the_limit(db: Database, path: Path) -> None:
    """A reader still on the log keeps a checkpoint from emptying it; the next writer starts
    the log over, and SQLite cuts the file back to ``journal_size_limit``."""
    units = db_module.CHECKPOINT_EVERY - 2  # the fixture's unit made the table
    await write(db, units)
    assert db._checkpointing is None and wal_size(path) > WAL_SIZE_LIMIT
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as reader:
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM note").fetchone()[0] == units
        busy, pages, copied = await db.plain.checkpoint(truncate=True)
        assert busy == 1 and pages == copied > 0  # all copied into the file, the log kept for the reader
        assert wal_size(path) > WAL_SIZE_LIMIT
        reader.execute("COMMIT")
    await write(db, 1)
    assert 0 < wal_size(path) <= WAL_SIZE_LIMIT


async def test_a_checkpoint_does_not_wait_for_a_writer(db: Database, path: Path) -> None:
    """The periodic checkpoint waits for nobody: with another process's writer holding the lock
    it reports busy at once, and the log is emptied by a later one."""
    await write(db, 10)
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")
        busy, _, _ = await db.plain.checkpoint(truncate=True)
        assert busy == 1
        other.execute("ROLLBACK")
    assert wal_size(path) > 0
    assert (await db.plain.checkpoint(truncate=True))[0] == 0
    assert wal_size(path) == 0
