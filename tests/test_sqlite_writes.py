"""SQLite's units of work straight on the driver (models/db/sqlite_writes.py, resolvers/unit_link.py).

A unit runs its statements on the pooled connection's ``sqlite3`` connection in place, one
transaction from ``BEGIN IMMEDIATE`` to its commit (the one hop to the connection's thread);
every statement is reported to the listeners; a refused statement is SQLAlchemy's error and
leaves the write lock and the connection fit for the next unit; committed events are told to the
watchers, rolled-back ones are not; a unit cancelled while it waits for another process's
writer leaves no transaction behind.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from models.db import migrate
from models.db.engine import Database
from models.db.writes import watchers
from models.entities import Contact, Ticket
from resolvers.errors import BadInput
from resolvers.live import read_after
from resolvers.reactions import shipped
from resolvers.unit import UnitOfWork
from resolvers.unit_link import DriverLink
from tests.test_sqlite_driver import Hops
from tests.test_sqlite_driver import hops as hops  # the fixture: functions queued on aiosqlite's threads
from tests.test_write_driver import ticket


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'units.db'}")
    await migrate.upgrade(database)
    yield database
    await database.dispose()


def rows(db: Database, sql: str, *parameters: Any) -> list[tuple[Any, ...]]:
    """What another connection (another process) sees, committed."""
    path = db.engine.url.database
    assert path is not None
    with sqlite3.connect(path) as connection:
        return connection.execute(sql, parameters).fetchall()


async def test_a_unit_runs_on_the_driver_in_place_and_hops_once_to_commit(db: Database, hops: Hops) -> None:
    await ticket(db, "t-warm")  # the pool's connection opened (its set-up hops) before counting
    hops.reset()
    seen: list[str] = []
    db.plain.listeners.append(seen.append)
    async with UnitOfWork(db, tenant="t-hops", actor="test", hooks=shipped()) as uow:
        assert isinstance(uow._link, DriverLink)
        made = await uow.create(Ticket, {"subject": "printer on fire"})
    async with UnitOfWork(db, tenant="t-hops", actor="test", hooks=shipped()) as uow:
        await uow.transition(Ticket, made.id, "resolve")
    assert hops.calls == ["commit", "commit"]
    written = [sql.split(None, 1)[0] for sql in seen]
    assert written.count("INSERT") >= 4 and "UPDATE" in written  # the rows, the counter, the events
    assert [e.type for e in await read_after(db, "t-hops", 0)] == [
        "Ticket.Created", "Activity.Created", "Ticket.Resolved", "Metric.Created",
    ]  # fmt: skip


async def test_a_refused_statement_is_sqlalchemys_error_and_the_next_unit_goes_on(db: Database) -> None:
    made = await ticket(db, "t-refused")
    with pytest.raises(BadInput, match="conflicts with existing data"):  # NOT NULL: an IntegrityError
        async with UnitOfWork(db, tenant="t-refused", actor="test", hooks=shipped()) as uow:
            await uow.transition(Ticket, made.id, "update", values={"subject": "first"})
            await uow.claim(Ticket, update(Ticket.__table__).values(subject=None).returning(Ticket.__table__.c.id))
    assert rows(db, "SELECT subject, version FROM ticket WHERE id = ?", made.id) == [("printer on fire", 1)]
    assert not db.write_lock.locked()
    async with UnitOfWork(db, tenant="t-refused", actor="test", hooks=shipped()) as uow:
        again = await uow.transition(Ticket, made.id, "update", values={"subject": "fine"})
    assert again.version == 2
    assert [e.seq for e in await read_after(db, "t-refused", 0)] == [1, 2, 3]


async def test_committed_events_are_told_to_the_watchers_and_rolled_back_ones_not(db: Database) -> None:
    told: list[int] = []
    watchers(db.engine.sync_engine).committed.append(told.append)
    made = await ticket(db, "t-told")  # the ticket and its support activity
    async with UnitOfWork(db, tenant="t-told", actor="test", hooks=shipped()) as uow:
        await uow.transition(Ticket, made.id, "update", values={"subject": "told"})
    with pytest.raises(RuntimeError):
        async with UnitOfWork(db, tenant="t-told", actor="test", hooks=shipped()) as uow:
            await uow.transition(Ticket, made.id, "update", values={"subject": "never"})
            await uow.create(Contact, {"name": "Ada"})  # written before the failure: rolled back too
            raise RuntimeError("changed my mind")
    assert told == [2, 1]
    assert [e.seq for e in await read_after(db, "t-told", 0)] == [1, 2, 3]
    assert rows(db, "SELECT count(*) FROM contact WHERE tenant = 't-told'") == [(0,)]


async def test_a_connection_closed_twice_leaves_the_next_writers_turn_alone(db: Database) -> None:
    first = db.unit_connection()
    assert first is not None
    await (await first.open()).close()
    second = db.unit_connection()
    assert second is not None
    await second.open()
    try:
        await first.close()  # again: the write lock is the second one's now
        assert db.write_lock.locked()
    finally:
        await second.close()
    assert not db.write_lock.locked()


async def test_a_unit_cancelled_waiting_for_another_writer_leaves_no_transaction(db: Database) -> None:
    made = await ticket(db, "t-cancel")
    path = db.engine.url.database
    assert path is not None
    other = sqlite3.connect(path, isolation_level=None)  # another process's writer
    other.execute("BEGIN IMMEDIATE")
    loop = asyncio.get_running_loop()
    try:

        async def wait_for_the_lock() -> None:
            async with UnitOfWork(db, tenant="t-cancel", actor="test", hooks=shipped()) as uow:
                await uow.transition(Ticket, made.id, "update", values={"subject": "never"})

        waiting = asyncio.create_task(wait_for_the_lock())
        await asyncio.sleep(0.3)  # BEGIN IMMEDIATE waiting on the connection's thread
        waiting.cancel()
        before = loop.time()
        await asyncio.sleep(0.05)
        waiting.cancel()  # and again, while it waits for its BEGIN to end
        await asyncio.sleep(0.05)
        # the loop went on: nothing ran in place on the connection its thread still waits with
        assert loop.time() - before < 1
        assert not waiting.done()  # it ends once its BEGIN has ended and been rolled back
    finally:
        other.execute("COMMIT")  # the waiting BEGIN gets the lock now
        other.close()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(waiting, 15)
    # the cancelled unit's connection holds no transaction: another process can write, and so can we
    outside = sqlite3.connect(path, isolation_level=None, timeout=2)
    try:
        outside.execute("BEGIN IMMEDIATE")
        outside.execute("ROLLBACK")
    finally:
        outside.close()
    async with UnitOfWork(db, tenant="t-cancel", actor="test", hooks=shipped()) as uow:
        again = await uow.transition(Ticket, made.id, "update", values={"subject": "after the cancel"})
    assert again.version == 2
