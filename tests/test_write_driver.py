"""PostgreSQL's units of work straight on asyncpg (models/db/writes.py, resolvers/unit_link.py).

A unit whose only write is its closing statement sends it alone (no BEGIN, no COMMIT), and it is
still all or nothing; a lock or an earlier write opens the transaction first, and its locks hold
until commit; numbers follow commit order when writers linger before COMMIT; a refused or
cancelled unit leaves its pooled connection fit for the next one; committed events are told to
the watchers, rolled-back ones are not.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy import update

from models.db import migrate
from models.db.engine import Database
from models.db.writes import watchers
from models.entities import Contact, Ticket
from resolvers.errors import BadInput
from resolvers.hooks import Change
from resolvers.live import read_after
from resolvers.reactions import shipped
from resolvers.unit import UnitOfWork
from tests.databases import fresh_database
from tests.test_event_order import LingeringUnit


@pytest.fixture
def url(tmp_path: Any) -> Iterator[str]:
    with fresh_database("postgresql", tmp_path) as found:
        yield found


@pytest.fixture
async def db(url: str) -> AsyncIterator[Database]:
    database = Database(url, pool_size=4)
    await migrate.upgrade(database)
    yield database
    await database.dispose()


@pytest.fixture
async def one(url: str, db: Database) -> AsyncIterator[Database]:
    """The same database through a pool of one connection: each unit gets the last one's."""
    database = Database(url, pool_size=1)
    yield database
    await database.dispose()


def dsn(db: Database) -> str:
    return db.url.replace("postgresql+asyncpg://", "postgresql://")


@pytest.fixture
def simple(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The statements without parameters the driver is sent (BEGIN, COMMIT, ROLLBACK)."""
    sent: list[str] = []
    execute = asyncpg.Connection.execute

    async def spy(self: asyncpg.Connection, query: str, *args: Any, **kwargs: Any) -> Any:
        if not args:
            sent.append(query)
        return await execute(self, query, *args, **kwargs)

    monkeypatch.setattr(asyncpg.Connection, "execute", spy)
    return sent


async def ticket(db: Database, tenant: str, subject: str = "printer on fire") -> Ticket:
    async with UnitOfWork(db, tenant=tenant, actor="test", hooks=shipped()) as uow:
        return await uow.create(Ticket, {"subject": subject})


async def last_seq(db: Database, tenant: str) -> int | None:
    connection = await asyncpg.connect(dsn(db))
    try:
        found: int | None = await connection.fetchval("SELECT last_seq FROM tenant_sequence WHERE tenant = $1", tenant)
        return found
    finally:
        await connection.close()


async def test_a_create_is_one_statement_alone_and_a_locking_verb_one_transaction(db: Database, simple: list[str]):
    made = await ticket(db, "t-alone")
    assert simple == []  # the closing statement went alone: PostgreSQL committed it as it ended
    async with UnitOfWork(db, tenant="t-alone", actor="test", hooks=shipped()) as uow:
        await uow.transition(Ticket, made.id, "update", values={"subject": "printer still on fire"})
    assert simple == ["BEGIN", "COMMIT"]
    events = await read_after(db, "t-alone", 0)
    assert [(e.seq, e.type) for e in events] == [(1, "Ticket.Created"), (2, "Activity.Created"), (3, "Ticket.Updated")]


async def test_a_closing_statement_alone_that_conflicts_writes_nothing(db: Database):
    tenant = "t-conflict"
    hooks = shipped()

    @hooks.after("Contact.Created")
    async def someone_else_takes_the_email(change: Change) -> None:
        if change.uow.actor == "first":  # checked free already; taken before the unit closes
            async with UnitOfWork(db, tenant=tenant, actor="second", hooks=shipped()) as other:
                await other.create(Contact, {"name": "Bo", "email": "same@example.com"})

    with pytest.raises(BadInput, match="conflicts with existing data"):
        async with UnitOfWork(db, tenant=tenant, actor="first", hooks=hooks) as uow:
            await uow.create(Contact, {"name": "Ada", "email": "same@example.com"})
    events = await read_after(db, tenant, 0)
    assert [(e.seq, e.actor) for e in events] == [(1, "second")]  # none of the first unit's
    assert await last_seq(db, tenant) == 1  # nor its bump of the counter
    connection = await asyncpg.connect(dsn(db))
    try:
        assert await connection.fetchval("SELECT count(*) FROM contact WHERE tenant = $1", tenant) == 1
    finally:
        await connection.close()


async def test_a_locked_row_stays_locked_until_the_unit_commits(db: Database):
    made = await ticket(db, "t-lock")
    outside = await asyncpg.connect(dsn(db))
    try:
        async with UnitOfWork(db, tenant="t-lock", actor="test", hooks=shipped()) as uow:
            await uow.load(Ticket, made.id)
            with pytest.raises(asyncpg.LockNotAvailableError):
                await outside.execute("SELECT 1 FROM ticket WHERE id = $1 FOR UPDATE NOWAIT", made.id)
            await uow.find(Contact, "contact_nobody")  # a read after the lock: in the same transaction
            with pytest.raises(asyncpg.LockNotAvailableError):
                await outside.execute("SELECT 1 FROM ticket WHERE id = $1 FOR UPDATE NOWAIT", made.id)
        await outside.execute("SELECT 1 FROM ticket WHERE id = $1 FOR UPDATE NOWAIT", made.id)  # free again
    finally:
        await outside.close()


async def test_numbers_follow_commit_order_when_writers_linger_before_commit(db: Database):
    tenant = f"order-{uuid.uuid4().hex[:8]}"
    tickets = [await ticket(db, tenant, f"ticket {n}") for n in range(8)]
    first = await last_seq(db, tenant)
    assert first == 16

    async def write(made: Ticket) -> None:
        for n in range(3):  # a lock first: each unit is a transaction, its COMMIT after a pause
            async with LingeringUnit(db, tenant=tenant, actor="writer", hooks=shipped()) as uow:
                await uow.transition(Ticket, made.id, "update", values={"subject": f"{made.subject} #{n}"})

    seen: list[int] = []
    writers = asyncio.gather(*(write(made) for made in tickets))
    cursor = first
    while not writers.done() or (batch := await read_after(db, tenant, cursor)):
        batch = await read_after(db, tenant, cursor)
        seen.extend(e.seq for e in batch)
        if batch:
            cursor = batch[-1].seq
        await asyncio.sleep(0.001)
    await writers
    assert seen == list(range(first + 1, first + 8 * 3 + 1)), "the tailing reader skipped or repeated an event"


async def test_a_refused_statement_leaves_the_connection_fit_for_the_next_unit(one: Database):
    made = await ticket(one, "t-refused")
    with pytest.raises(BadInput):  # NOT NULL violated: an IntegrityError, in the open transaction
        async with UnitOfWork(one, tenant="t-refused", actor="test", hooks=shipped()) as uow:
            await uow.load(Ticket, made.id)
            await uow.claim(Ticket, update(Ticket.__table__).values(subject=None).returning(Ticket.__table__.c.id))
    with pytest.raises(BadInput):  # the same as the unit's first statement
        async with UnitOfWork(one, tenant="t-refused", actor="test", hooks=shipped()) as uow:
            await uow.claim(Ticket, update(Ticket.__table__).values(subject=None).returning(Ticket.__table__.c.id))
    async with UnitOfWork(one, tenant="t-refused", actor="test", hooks=shipped()) as uow:  # the same connection
        again = await uow.transition(Ticket, made.id, "update", values={"subject": "fine"})
    assert again.version == 2
    assert [e.seq for e in await read_after(one, "t-refused", 0)] == [1, 2, 3]


async def test_a_unit_cancelled_mid_statement_leaves_the_pool_a_working_connection(one: Database):
    made = await ticket(one, "t-cancel")
    outside = await asyncpg.connect(dsn(one))
    try:
        async with outside.transaction():
            await outside.execute("SELECT 1 FROM ticket WHERE id = $1 FOR UPDATE", made.id)

            async def wait_for_the_lock() -> None:
                async with UnitOfWork(one, tenant="t-cancel", actor="test", hooks=shipped()) as uow:
                    await uow.load(Ticket, made.id)

            waiting = asyncio.create_task(wait_for_the_lock())
            await asyncio.sleep(0.3)  # BEGIN sent, SELECT … FOR UPDATE waiting on the lock
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
    finally:
        await outside.close()
    async with UnitOfWork(one, tenant="t-cancel", actor="test", hooks=shipped()) as uow:
        again = await uow.transition(Ticket, made.id, "update", values={"subject": "after the cancel"})
    assert again.version == 2


async def test_committed_events_are_told_to_the_watchers_and_rolled_back_ones_not(db: Database):
    told: list[int] = []
    watchers(db.engine.sync_engine).committed.append(told.append)
    made = await ticket(db, "t-told")  # alone: two events
    async with UnitOfWork(db, tenant="t-told", actor="test", hooks=shipped()) as uow:  # a transaction: one
        await uow.transition(Ticket, made.id, "update", values={"subject": "told"})
    with pytest.raises(RuntimeError):
        async with UnitOfWork(db, tenant="t-told", actor="test", hooks=shipped()) as uow:
            await uow.transition(Ticket, made.id, "update", values={"subject": "never"})
            raise RuntimeError("changed my mind")
    assert told == [2, 1]
    assert [e.seq for e in await read_after(db, "t-told", 0)] == [1, 2, 3]
