"""Plain reads after PostgreSQL loses its backends, and per-request loaders freed without a full GC.

Faults are real: backends of a fresh PostgreSQL database are terminated with
``pg_terminate_backend``, one mid-read and all of them under a live server's load, and a read is
cancelled mid-query. A connection whose operation failed must never go back to the pool (it would
answer "another operation is in progress"): it is invalidated, its request answers
``UNAVAILABLE``, and every later read answers. Waits are bounded polling, never sleeps.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from graph.server.settings import Settings
from models.db import migrate
from models.db.engine import Database
from models.entities import Issue, Organization, Ticket
from resolvers.errors import is_unavailable
from resolvers.loaders import Loaders
from tests.conftest import UNTHROTTLED
from tests.databases import fresh_database
from tests.live import LiveServer, create_many

WAIT = 30.0  # seconds a condition polled for may take
ROUNDS = 8  # times every backend of the live server's database is terminated under load
IN_FLIGHT = 40  # reads in flight when they are
LIST = (
    "{ tickets(first: 20) { nodes { id subject requester { id name organization { id name } } "
    "organization { id name } } } }"
)  # the compiled fast path: plain reads
NODE = "query($id: ID!) { node(id: $id) { id ... on Ticket { subject requester { name } organization { name } } } }"


def _driver_url(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _terminate(url: str, pid: int | None = None) -> int:
    """Terminate backend ``pid`` (else every backend of the database but ours) and poll until
    those are gone from ``pg_stat_activity``; how many were terminated."""
    connection = await asyncpg.connect(_driver_url(url))
    try:
        which = "pid = $1" if pid is not None else "pid <> pg_backend_pid() AND $1::int IS NULL"
        terminated = await connection.fetchval(
            "WITH victim AS MATERIALIZED (SELECT pid FROM pg_stat_activity"
            f" WHERE datname = current_database() AND {which})"
            " SELECT array_agg(pid) FROM victim WHERE pg_terminate_backend(pid)",
            pid,
        )
        deadline = time.monotonic() + WAIT
        while await connection.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = any($1)", terminated):
            assert time.monotonic() < deadline, "terminated backends did not go"
            await asyncio.sleep(0.01)
        return len(terminated or [])
    finally:
        await connection.close()


def _terminate_blocking(url: str, pid: int) -> None:
    """``_terminate`` from another thread while this one (the event loop) waits: the connection
    being read on cannot see its backend go before it sends its next statement."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(_terminate(url, pid))
        except BaseException as error:  # re-raised below, on the test's thread
            failure.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(WAIT * 2)
    assert not thread.is_alive() and not failure, failure


@pytest.fixture(scope="module")
def pg_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with fresh_database("postgresql", tmp_path_factory.mktemp("recovery")) as url:
        yield url


@pytest.fixture
async def pg_db(pg_url: str) -> AsyncIterator[tuple[Database, list[int]]]:
    """A database on ``pg_url``, and the backend pids of the connections its pool invalidates."""
    db = Database(pg_url)
    pids: dict[int, int] = {}  # id of each pooled connection → its backend's pid
    invalidated: list[int] = []

    def connected(dbapi_connection: Any, _record: Any) -> None:
        pids[id(dbapi_connection)] = dbapi_connection.driver_connection.get_server_pid()

    def record(dbapi_connection: Any, _record: Any, _error: Any) -> None:
        invalidated.append(pids[id(dbapi_connection)])

    sa_event.listen(db.engine.sync_engine, "connect", connected)
    sa_event.listen(db.engine.sync_engine, "invalidate", record)
    try:
        yield db, invalidated
    finally:
        await db.dispose()


async def _pids(db: Database, reads: int) -> set[int]:
    """The backends ``reads`` concurrent plain reads ran on (each must answer)."""
    statement = db.plain.compile(select(func.pg_backend_pid().label("pid")))
    results = await asyncio.gather(*(db.plain.rows(statement, {}) for _ in range(reads)))
    return {rows[0]["pid"] for rows in results}


async def test_a_read_whose_backend_is_terminated_invalidates_its_connection(pg_db, pg_url):
    db, invalidated = pg_db
    statement = db.plain.compile(select(func.pg_backend_pid().label("pid")))
    pids: list[int] = []

    def read() -> Any:
        (row,) = yield statement, {}
        pids.append(row["pid"])
        _terminate_blocking(pg_url, row["pid"])  # between the read's two statements
        yield statement, {}

    with pytest.raises(DBAPIError) as raised:
        await db.plain.run(read())
    assert raised.value.connection_invalidated and is_unavailable(raised.value), raised.value
    assert invalidated == pids  # at once: the pool never hands that connection out again
    assert pids[0] not in await _pids(db, 12)  # every later read answers, on live backends
    assert invalidated == pids


async def test_a_cancelled_read_does_not_go_back_to_the_pool_mid_query(pg_db, pg_url):
    db, invalidated = pg_db
    which = db.plain.compile(select(func.pg_backend_pid().label("pid")))
    sleep = db.plain.compile(select(func.pg_sleep(WAIT).label("slept")))
    pids: list[int] = []

    def read() -> Any:
        (row,) = yield which, {}
        pids.append(row["pid"])
        yield sleep, {}

    task = asyncio.create_task(db.plain.run(read()))
    watcher = await asyncpg.connect(_driver_url(pg_url))
    try:
        deadline = time.monotonic() + WAIT
        query = "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND state = 'active' AND query LIKE '%pg_sleep%'"
        while not (pids and await watcher.fetchval(query, pids[0])):  # the read is mid-query
            assert time.monotonic() < deadline and not task.done(), "the read never started its query"
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert invalidated == pids  # closed and dropped, not pooled with its query running
        assert pids[0] not in await _pids(db, 12)
        assert invalidated == pids
    finally:
        if pids:
            await watcher.execute("SELECT pg_terminate_backend($1)", pids[0])
        await watcher.close()


@pytest.fixture(scope="module")
def live(pg_url: str) -> Iterator[LiveServer]:
    server = LiveServer(Settings(database_url=pg_url, limits=UNTHROTTLED)).start()
    try:
        yield server
    finally:
        server.stop()
        if server.loop is not None and not server.thread.is_alive():
            server.loop.close()  # LiveServer leaves it to the garbage collector, which warns


async def test_reads_answer_after_every_backend_is_terminated_under_load(live, pg_url):
    orgs = create_many(live, "Organization", [{"name": f"org {i}"} for i in range(5)])
    contacts = create_many(
        live, "Contact", [{"name": f"contact {i}", "organization": orgs[i % 5]["id"]} for i in range(10)]
    )
    inputs = [
        {"subject": f"ticket {i}", "requester": contacts[i % 10]["id"], "organization": orgs[i % 5]["id"]}
        for i in range(30)
    ]
    tickets = [t["id"] for t in create_many(live, "Ticket", inputs)]

    # a kept-alive connection idle past uvicorn's 5 s may be closed by the server just as the client
    # reuses it (a ReadError on a slow machine): the client lets its own go after 1 s
    limits = httpx.Limits(keepalive_expiry=1.0)
    async with httpx.AsyncClient(base_url=live.url, timeout=WAIT, limits=limits) as client:

        async def ask(n: int) -> dict:
            if n % 2:
                return (await client.post("/graphql", json={"query": LIST})).json()
            variables = {"id": tickets[n % len(tickets)]}
            return (await client.post("/graphql", json={"query": NODE, "variables": variables})).json()

        expected = [await ask(n) for n in range(IN_FLIGHT)]
        assert not any(body.get("errors") for body in expected), expected
        for cut in range(ROUNDS):
            reads = [asyncio.create_task(ask(n)) for n in range(IN_FLIGHT)]
            if cut % 2:  # else at once, while the first are still being sent
                await asyncio.wait(reads, return_when=asyncio.FIRST_COMPLETED)
            terminated = await _terminate(pg_url)
            bodies = await asyncio.gather(*reads)
            failed = [body for body in bodies if body.get("errors")]
            codes = {error["extensions"]["code"] for body in failed for error in body["errors"]}
            assert codes <= {"UNAVAILABLE"}, [body["errors"] for body in failed]  # never INTERNAL
            assert len(failed) <= terminated  # at most one failed request per connection cut
            for n, body in enumerate(await asyncio.gather(*(ask(n) for n in range(IN_FLIGHT)))):
                assert body == expected[n], f"after cut {cut}: {body}"


async def test_a_loaders_is_freed_by_reference_counting(tmp_path):
    with fresh_database("sqlite", tmp_path) as url:
        db = Database(url)
        try:
            await migrate.upgrade(db)
            gc.disable()  # only reference counting frees anything from here
            try:
                loaders = Loaders(db, "tenant")
                assert await loaders.by_id(Ticket).load("ticket_none") is None
                assert await loaders.many_by(Issue, "ticket_id").load("ticket_none") == []
                (page,) = await loaders.pages(Ticket, "organization_id", first=5).load_many(["organization_none"])
                assert page.rows == [] and await page.count() == 0
                assert await loaders.current_subscription("organization_none") is None
                assert await loaders.by_id(Organization).load_many(["a", "b"]) == [None, None]
                freed = weakref.ref(loaders)
                del loaders
                assert freed() is None, gc.get_referrers(freed())
            finally:
                gc.enable()
        finally:
            await db.dispose()
