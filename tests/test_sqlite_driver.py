"""The one-hop aiosqlite adapter (models/db/sqlite_driver.py) on real SQLite files.

Each statement must cost exactly one call on aiosqlite's connection thread, counted by wrapping
``aiosqlite.Connection._execute``, and behave as SQLAlchemy's own adapter does: same rows,
column names, row counts, last row ids, error types and transaction semantics.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sqlite3
from collections.abc import AsyncIterator

import aiosqlite
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import create_async_engine

from models.base import DEFAULT_TENANT
from models.db import engine as db_module
from models.db import migrate
from models.db.engine import Database
from models.db.sqlite_driver import OneHopConnection, OneHopCursor
from models.entities import Organization
from models.ids import new_id

metadata = MetaData()
item = Table(
    "item",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(40), nullable=False, unique=True),
    Column("qty", Integer, nullable=False),
)


class Hops:
    """Counts the functions queued on aiosqlite's connection threads."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    @property
    def count(self) -> int:
        return len(self.calls)

    def reset(self) -> None:
        self.calls.clear()


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> Hops:
    counter = Hops()
    original = aiosqlite.Connection._execute

    async def counting(self, fn, *args, **kwargs):
        counter.calls.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counting)
    return counter


@pytest.fixture
async def db(tmp_path) -> AsyncIterator[Database]:
    """A Database on a fresh file holding the ``item`` table (and one pooled connection)."""
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}")
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield database
    await database.dispose()


async def fill(db: Database, *rows: tuple[str, int]) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(insert(item), [{"name": name, "qty": qty} for name, qty in rows])


async def names(db: Database) -> list[str]:
    """The item names, as a fresh connection sees them."""
    async with db.engine.connect() as conn:
        return list((await conn.execute(select(item.c.name).order_by(item.c.id))).scalars())


async def test_the_engine_uses_the_one_hop_adapter(db: Database) -> None:
    async with db.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        assert type(raw.dbapi_connection) is OneHopConnection
        assert isinstance(raw.driver_connection, aiosqlite.Connection)
        assert type(raw.dbapi_connection.cursor()) is OneHopCursor
        # the connect-time pragmas ran through the adapter too
        assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
        assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1


async def test_the_counter_sees_the_stock_adapter_hop_several_times(tmp_path, hops: Hops) -> None:
    """Sanity check of the instrumentation: SQLAlchemy's own adapter hops more than once."""
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'stock.db'}")
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            hops.reset()
            assert (await conn.execute(text("SELECT 2"))).scalar() == 2
            assert hops.count > 1
    finally:
        await engine.dispose()


async def test_select_is_one_hop_with_rows_and_column_names(db: Database, hops: Hops) -> None:
    await fill(db, ("a", 1), ("b", 2), ("c", 3))
    async with db.engine.connect() as conn:
        hops.reset()
        result = await conn.execute(text("SELECT id, name, qty FROM item WHERE qty >= :low ORDER BY id"), {"low": 2})
        assert hops.count == 1
        assert list(result.keys()) == ["id", "name", "qty"]
        assert [tuple(row) for row in result] == [(2, "b", 2), (3, "c", 3)]

        hops.reset()
        result = await conn.execute(select(item.c.name.label("label"), item.c.qty).where(item.c.qty > 100))
        assert hops.count == 1
        assert list(result.keys()) == ["label", "qty"]
        assert result.all() == []


async def test_partial_fetches_and_scalars(db: Database) -> None:
    await fill(db, ("a", 1), ("b", 2), ("c", 3), ("d", 4))
    async with db.engine.connect() as conn:
        result = await conn.execute(select(item.c.name).order_by(item.c.id))
        assert result.fetchone() == ("a",)
        assert result.fetchmany(2) == [("b",), ("c",)]
        assert result.fetchall() == [("d",)]
        assert result.fetchone() is None
        assert (await conn.execute(select(func.count()).select_from(item))).scalar_one() == 4
        assert (await conn.execute(text("SELECT 1 WHERE 0"))).scalar() is None


async def test_streaming_still_works(db: Database) -> None:
    await fill(db, ("a", 1), ("b", 2), ("c", 3))
    async with db.engine.connect() as conn:
        result = await conn.stream(select(item.c.name).order_by(item.c.id))
        assert [row.name async for row in result] == ["a", "b", "c"]


async def test_insert_is_one_hop_and_gives_the_last_row_id(db: Database, hops: Hops) -> None:
    async with db.engine.connect() as conn:
        hops.reset()
        result = await conn.execute(text("INSERT INTO item (name, qty) VALUES (:n, :q)"), {"n": "a", "q": 1})
        assert hops.count == 1
        assert result.rowcount == 1
        assert result.lastrowid == 1

        hops.reset()
        result = await conn.execute(insert(item).values(name="b", qty=2))
        assert hops.count == 1
        assert result.inserted_primary_key == (2,)
        assert result.lastrowid == 2

        result = await conn.execute(insert(item).values(id=40, name="c", qty=3))
        assert result.inserted_primary_key == (40,)
        assert result.lastrowid == 40
        await conn.commit()
    assert await names(db) == ["a", "b", "c"]


async def test_insert_returning(db: Database, hops: Hops) -> None:
    async with db.engine.begin() as conn:
        hops.reset()
        result = await conn.execute(insert(item).values(name="a", qty=7).returning(item.c.id, item.c.qty))
        assert hops.count == 1
        assert list(result.keys()) == ["id", "qty"]
        assert result.all() == [(1, 7)]


async def test_update_is_one_hop_and_reports_its_row_count(db: Database, hops: Hops) -> None:
    await fill(db, ("a", 1), ("b", 1), ("c", 1), ("d", 2))
    async with db.engine.connect() as conn:
        for where, expected in ((item.c.qty == 99, 0), (item.c.name == "d", 1), (item.c.qty == 1, 3)):
            hops.reset()
            result = await conn.execute(update(item).where(where).values(qty=item.c.qty + 10))
            assert hops.count == 1
            assert result.rowcount == expected

        hops.reset()
        result = await conn.execute(text("UPDATE item SET qty = 0"))
        assert hops.count == 1
        assert result.rowcount == 4
        await conn.commit()


async def test_executemany_is_one_hop(db: Database, hops: Hops) -> None:
    async with db.engine.connect() as conn:
        hops.reset()
        result = await conn.execute(insert(item), [{"name": f"core{i}", "qty": i} for i in range(5)])
        assert hops.count == 1
        assert result.rowcount == 5

        hops.reset()
        result = await conn.execute(
            text("INSERT INTO item (name, qty) VALUES (:n, :q)"), [{"n": f"text{i}", "q": i} for i in range(3)]
        )
        assert hops.count == 1
        assert result.rowcount == 3

        hops.reset()
        result = await conn.execute(
            text("UPDATE item SET qty = qty + 100 WHERE name = :n"), [{"n": "core0"}, {"n": "text2"}, {"n": "nobody"}]
        )
        assert hops.count == 1
        assert result.rowcount == 2
        await conn.commit()

    async with db.engine.connect() as conn:
        rows = (await conn.execute(select(item.c.name, item.c.qty).order_by(item.c.id))).all()
    assert rows == [
        ("core0", 100), ("core1", 1), ("core2", 2), ("core3", 3), ("core4", 4),
        ("text0", 0), ("text1", 1), ("text2", 102),
    ]  # fmt: skip


async def test_a_unique_violation_is_an_integrity_error(db: Database) -> None:
    await fill(db, ("a", 1))
    async with db.engine.connect() as conn:
        with pytest.raises(IntegrityError) as raised:
            await conn.execute(insert(item).values(name="a", qty=2))
        assert isinstance(raised.value.orig, sqlite3.IntegrityError)
        assert "UNIQUE constraint failed: item.name" in str(raised.value.orig)

        await conn.rollback()
        await conn.execute(insert(item).values(name="b", qty=2))
        await conn.commit()
    assert await names(db) == ["a", "b"]


async def test_an_integrity_error_in_executemany(db: Database) -> None:
    async with db.engine.connect() as conn:
        with pytest.raises(IntegrityError):
            await conn.execute(insert(item), [{"name": "x", "qty": 1}, {"name": "x", "qty": 2}])
        await conn.rollback()
        assert (await conn.execute(select(func.count()).select_from(item))).scalar_one() == 0


async def test_a_syntax_error_is_an_operational_error(db: Database) -> None:
    await fill(db, ("a", 1))
    async with db.engine.connect() as conn:
        with pytest.raises(OperationalError) as raised:
            await conn.execute(text("SELEKT * FROM item"))
        assert isinstance(raised.value.orig, sqlite3.OperationalError)
        assert "syntax error" in str(raised.value.orig)

        with pytest.raises(OperationalError) as raised:
            await conn.execute(text("SELECT * FROM no_such_table"))
        assert "no such table" in str(raised.value.orig)

        await conn.rollback()
        assert (await conn.execute(select(item.c.name))).scalars().all() == ["a"]


async def test_an_error_mid_transaction_then_rollback_discards_the_transaction(db: Database) -> None:
    async with db.engine.connect() as conn:
        await conn.execute(insert(item).values(name="a", qty=1))
        with pytest.raises(OperationalError):
            await conn.execute(text("INSERT INTO item (nope) VALUES (1)"))
        await conn.rollback()
        await conn.execute(insert(item).values(name="b", qty=2))
        await conn.commit()
    assert await names(db) == ["b"]


async def test_a_rolled_back_transaction_writes_nothing(db: Database) -> None:
    async with db.engine.connect() as conn:
        await conn.execute(insert(item), [{"name": "a", "qty": 1}, {"name": "b", "qty": 2}])
        await conn.execute(update(item).values(qty=5))
        assert (await conn.execute(select(func.sum(item.c.qty)))).scalar_one() == 10
        await conn.rollback()
        assert (await conn.execute(select(func.count()).select_from(item))).scalar_one() == 0
    assert await names(db) == []


async def test_a_committed_transaction_is_visible_from_another_connection(db: Database) -> None:
    async with db.engine.connect() as writer, db.engine.connect() as reader:
        await writer.execute(insert(item).values(name="a", qty=1))
        assert (await reader.execute(select(item.c.name))).all() == []
        await reader.rollback()
        await writer.commit()
        assert (await reader.execute(select(item.c.name))).scalars().all() == ["a"]
    assert await names(db) == ["a"]


async def test_returning_a_committed_connection_makes_no_rollback_hop(db: Database, hops: Hops) -> None:
    await names(db)  # the pool holds a ready connection
    hops.reset()
    async with db.engine.connect() as conn:
        await conn.execute(insert(item).values(name="a", qty=1))
        await conn.commit()
    assert hops.count == 2, hops.calls  # the INSERT and the COMMIT; no rollback on return
    hops.reset()
    async with db.engine.connect() as conn:
        assert (await conn.execute(select(item.c.name))).scalars().all() == ["a"]
    assert hops.count == 1, hops.calls  # a read alone: no rollback on return either


async def test_closing_a_connection_in_a_transaction_rolls_it_back(db: Database, hops: Hops) -> None:
    await names(db)
    hops.reset()
    async with db.engine.connect() as conn:
        await conn.execute(insert(item).values(name="a", qty=1))
    assert hops.count == 2, hops.calls  # the INSERT and the ROLLBACK
    assert await names(db) == []


async def test_the_pool_rolls_back_a_connection_returned_in_a_transaction(db: Database, hops: Hops) -> None:
    """A write on the raw DBAPI connection (no SQLAlchemy transaction): the pool's reset undoes it."""
    await names(db)

    def write_raw(sync_conn) -> bool:
        dbapi = sync_conn.connection.dbapi_connection
        cursor = dbapi.cursor()
        cursor.execute("INSERT INTO item (name, qty) VALUES (?, ?)", ("raw", 1))
        assert cursor.rowcount == 1
        return dbapi._connection._conn.in_transaction

    hops.reset()
    async with db.engine.connect() as conn:
        assert await conn.run_sync(write_raw) is True
        sqlite_conn = (await conn.get_raw_connection()).driver_connection._conn
    assert hops.count == 2, hops.calls  # the INSERT and the pool's ROLLBACK
    assert sqlite_conn.in_transaction is False
    assert await names(db) == []


async def test_orm_insert_and_select(tmp_path, hops: Hops) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'orm.db'}")
    try:
        await migrate.upgrade(db)
        org_id = new_id("organization")
        async with db.writing() as session:
            session.add(
                Organization(
                    id=org_id, tenant=DEFAULT_TENANT, created_by="tester", name="Acme", slug="acme", employee_count=12
                )
            )
            await session.commit()

        hops.reset()
        async with db.reading() as session:
            org = (await session.execute(select(Organization).where(Organization.id == org_id))).scalar_one()
        assert hops.count == 1, hops.calls
        assert (org.id, org.tenant, org.created_by) == (org_id, DEFAULT_TENANT, "tester")
        assert (org.name, org.slug) == ("Acme", "acme")
        assert (org.version, org.status, org.employee_count, org.deleted_at) == (1, "ACTIVE", 12, None)
        assert org.created_at.tzinfo is not None

        async with db.writing() as session:
            duplicate = Organization(
                id=new_id("organization"), tenant=DEFAULT_TENANT, created_by="t", name="B", slug="acme"
            )
            session.add(duplicate)
            with pytest.raises(IntegrityError):
                await session.commit()
        async with db.reading() as session:
            count = (await session.execute(select(func.count()).select_from(Organization))).scalar_one()
        assert count == 1
    finally:
        await db.dispose()


async def test_one_hop_off_is_aiosqlite_as_sqlalchemy_ships_it(tmp_path, hops: Hops) -> None:
    """``one_hop_sqlite=False``: the stock adapter (several hops a statement), SQLite's own
    checkpoints, and the same writes and reads."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'stock.db'}", one_hop_sqlite=False)
    try:
        await migrate.upgrade(db)
        org_id = new_id("organization")
        async with db.writing() as session:
            raw = (await (await session.connection()).get_raw_connection()).dbapi_connection
            assert not isinstance(raw, OneHopConnection)
            session.add(Organization(id=org_id, tenant=DEFAULT_TENANT, created_by="tester", name="Acme", slug="acme"))
            await session.commit()
        hops.reset()
        async with db.reading() as session:
            org = (await session.execute(select(Organization).where(Organization.id == org_id))).scalar_one()
            assert (await session.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await session.execute(text("PRAGMA wal_autocheckpoint"))).scalar() == 1000
            assert (await session.execute(text("PRAGMA journal_size_limit"))).scalar() == db_module.WAL_SIZE_LIMIT
        assert hops.count > 1
        assert (org.name, org.slug, org.version) == ("Acme", "acme", 1)
        rows = await db.plain.rows(db.plain.compile(select(Organization.__table__.c.name)), {})
        assert rows == [{"name": "Acme"}]
    finally:
        await db.dispose()


# --- write transactions: statements on the event loop's thread ------------------------------------


async def test_a_write_transaction_costs_one_hop_whatever_it_runs(db: Database, hops: Hops) -> None:
    async with db.writing() as session:
        for n in range(5):
            await session.execute(insert(item).values(name=f"w{n}", qty=n))
        await session.execute(update(item).where(item.c.qty > 2).values(qty=0))
        assert (await session.execute(select(func.count()).select_from(item))).scalar() == 5
        await session.commit()
    assert hops.calls == ["commit"]  # BEGIN IMMEDIATE (the lock was free) and statements in place
    assert await names(db) == ["w0", "w1", "w2", "w3", "w4"]


async def test_a_failed_write_transaction_writes_nothing_and_leaves_the_connection_usable(db: Database) -> None:
    await fill(db, ("taken", 1))
    with pytest.raises(IntegrityError):
        async with db.writing() as session:
            await session.execute(insert(item).values(name="fresh", qty=2))
            await session.execute(insert(item).values(name="taken", qty=3))
    async with db.writing() as session:
        await session.execute(insert(item).values(name="after", qty=4))
        await session.commit()
    assert await names(db) == ["taken", "after"]


async def test_a_write_transaction_waits_for_another_process_writer_without_blocking(db: Database, tmp_path) -> None:
    """Another connection (as another process would) holds SQLite's write lock: the unit waits
    for it on the connection's thread, while the event loop keeps running."""
    other = sqlite3.connect(tmp_path / "driver.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO item (name, qty) VALUES ('first', 1)")
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    async def write() -> None:
        async with db.writing() as session:
            await session.execute(insert(item).values(name="second", qty=2))
            await session.commit()

    ticker = asyncio.create_task(tick())
    writer = asyncio.create_task(write())
    # the loop keeps ticking while the writer waits for the lock another connection holds
    for _ in range(1000):
        if ticks >= 10 or writer.done():
            break
        await asyncio.sleep(0.01)
    assert ticks >= 10
    assert not writer.done()  # still waiting for the lock
    other.execute("COMMIT")
    await asyncio.wait_for(writer, 10)
    ticker.cancel()
    other.close()
    assert await names(db) == ["first", "second"]
    async with db.engine.connect() as conn:  # the pool's one connection, as the writer left it
        assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() == 10000


async def test_the_connection_leaves_inline_mode_with_its_transaction(db: Database) -> None:
    async with db.writing() as session:
        raw = (await (await session.connection()).get_raw_connection()).dbapi_connection
        assert raw.inline
        await session.commit()
        assert not raw.inline
    async with db.reading() as session:
        raw = (await (await session.connection()).get_raw_connection()).dbapi_connection
        assert not raw.inline


async def test_the_log_is_checkpointed_into_the_file_every_so_many_commits(
    db: Database, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connections do not checkpoint (a checkpoint inside a commit would hold the write lock):
    every CHECKPOINT_EVERY units the Database folds the write-ahead log into the file, on a
    reader's thread."""
    monkeypatch.setattr(db_module, "CHECKPOINT_EVERY", 5)
    checkpoints = 0
    original = db.plain.checkpoint
    await original()  # the file holds the table the fixture made

    async def counting(**mode) -> None:
        nonlocal checkpoints
        checkpoints += not mode  # the PASSIVE one; a TRUNCATE follows it
        return await original(**mode)

    monkeypatch.setattr(db.plain, "checkpoint", counting)

    def in_the_file_alone() -> list[str]:
        """The names a copy of the database file holds without its write-ahead log."""
        copy = tmp_path / "copy.db"
        shutil.copyfile(tmp_path / "driver.db", copy)
        with contextlib.closing(sqlite3.connect(copy)) as conn:
            return [name for (name,) in conn.execute("SELECT name FROM item ORDER BY id")]

    for n in range(4):
        async with db.writing() as session:
            await session.execute(insert(item).values(name=f"c{n}", qty=n))
            await session.commit()
    assert checkpoints == 0 and in_the_file_alone() == []  # all of it still in the log
    async with db.writing() as session:
        await session.execute(insert(item).values(name="c4", qty=4))
        await session.commit()
    await db._checkpointing
    assert checkpoints == 1
    assert in_the_file_alone() == ["c0", "c1", "c2", "c3", "c4"]
