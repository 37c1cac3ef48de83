"""Two real ``python -m graph serve`` processes on one PostgreSQL database, for each broker.

Worker A and worker B are separate processes (``tests.procs``) sharing a fresh PostgreSQL
database and a broker: Redis pub/sub (on a channel of this module's own) or PostgreSQL
LISTEN/NOTIFY on that same database. A starts first and creates the schema; B starts once A is
ready. Subscriptions are real WebSocket clients (graphql-transport-ws, ``tests.ws_client``),
mutations go over HTTP to either worker, and the expected events are read back from the log.

Streams resume from a cursor (``after``), so a stream never depends on when the server got
around to registering it; once a stream has delivered one event it is live, and what follows
reaches it through a wake-up (or the slow poll, which ``LIVE_POLL_SECONDS`` pushes far out where
the server honours it). The test also listens on the broker's channel itself, to check that
every commit announced its sequence number there. Broker connections are cut for real:
``pg_terminate_backend`` on worker A's LISTEN backend, or ``CLIENT KILL TYPE pubsub``.
Every wait is bounded and every process is ended whatever happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import pytest
import redis
import redis.asyncio

from graph.server.brokers.memory import CHANNEL
from models.base import DEFAULT_TENANT
from tests import ws_client as ws
from tests.databases import (
    REDIS_URL,
    create_postgres_database,
    drop_postgres_database,
    postgres_unreachable,
    redis_unreachable,
    require,
)
from tests.procs import Serve, serving

#: Seconds a single event, request or state change may take before the test fails.
WAIT = 30.0
#: Writers per worker and updates per writer in the concurrency test (2 workers × 20 updates).
UPDATES_PER_WORKER = 20
#: Keeps the slow poll out of the way (where the server reads it), so wake-ups must do the work.
SERVER_ENV = {"LIVE_POLL_SECONDS": "3600"}

EVENT = "id type target sequence version"
EVENTS_AFTER = f"subscription($after: ID, $target: ID) {{ events(after: $after, target: $target) {{ {EVENT} }} }}"
UPDATE = "mutation($id: ID!, $input: UpdateTicketInput!) { updateTicket(id: $id, input: $input) { id version } }"
CREATE = "mutation($subject: String!) { createTicket(input: {subject: $subject}) { id version } }"
HISTORY = """
query($id: ID!) {
  ticket(id: $id) { version events(first: 100) { totalCount nodes { id version sequence } } }
}
"""
LOG_PAGE = f"""
query($after: String) {{
  events(orderBy: [{{field: SEQUENCE, direction: ASC}}], first: 100, after: $after) {{
    nodes {{ {EVENT} }} pageInfo {{ hasNextPage endCursor }}
  }}
}}
"""


@dataclass
class Cluster:
    kind: str
    database_url: str
    broker_url: str
    a: Serve
    b: Serve


@pytest.fixture(scope="module", params=["redis", "postgresql"])
def cluster(request: pytest.FixtureRequest):
    """Workers A and B on one fresh database and one broker of the kind."""
    require(postgres_unreachable(), "multi-process")
    if request.param == "redis":
        require(redis_unreachable(), "multi-process")
    database_url = create_postgres_database()
    try:
        if request.param == "redis":
            broker_url = f"{REDIS_URL}?channel=support_graph_test_{uuid.uuid4().hex[:12]}"
        else:
            broker_url = database_url  # LISTEN/NOTIFY on the application's own database
        with serving(database_url, broker_url, "A", "B", env=SERVER_ENV) as (a, b):
            yield Cluster(request.param, database_url, broker_url, a, b)
    finally:
        drop_postgres_database(database_url)


# --- talking to a worker ---------------------------------------------------------------------


class Api(ws.HttpApi):
    """One worker over HTTP."""

    async def create_ticket(self) -> str:
        return (await self.data(CREATE, {"subject": f"multi {uuid.uuid4().hex[:8]}"}))["createTicket"]["id"]

    async def update_ticket(self, id_: str, **fields) -> dict:
        return (await self.data(UPDATE, {"id": id_, "input": fields}))["updateTicket"]

    async def touch(self, id_: str) -> dict:
        """One update: exactly one event on the ticket."""
        return await self.update_ticket(id_, description=uuid.uuid4().hex)

    async def log(self) -> list[dict]:
        """The tenant's whole event log, in commit order."""
        events, cursor = [], None
        while True:
            page = (await self.data(LOG_PAGE, {"after": cursor}))["events"]
            events += page["nodes"]
            if not page["pageInfo"]["hasNextPage"]:
                return events
            cursor = page["pageInfo"]["endCursor"]

    async def newest_event_of(self, ticket: str) -> dict:
        nodes = (await self.data(HISTORY, {"id": ticket}))["ticket"]["events"]["nodes"]
        return max(nodes, key=lambda e: e["sequence"])

    async def newest_event(self) -> dict:
        """The newest event of the tenant."""
        query = f"{{ events(orderBy: [{{field: SEQUENCE, direction: DESC}}], first: 1) {{ nodes {{ {EVENT} }} }} }}"
        return (await self.data(query))["events"]["nodes"][0]

    async def readyz(self) -> tuple[int, dict]:
        response = await self.client.get("/readyz")
        return response.status_code, response.json()


@pytest.fixture
async def apis(cluster: Cluster) -> AsyncIterator[tuple[Api, Api]]:
    async with (
        httpx.AsyncClient(base_url=cluster.a.url, timeout=WAIT) as a,
        httpx.AsyncClient(base_url=cluster.b.url, timeout=WAIT) as b,
    ):
        yield Api(a), Api(b)


def since(log: list[dict], event_id: str, target: str | None = None) -> list[dict]:
    """The events after ``event_id`` in ``log`` (of ``target`` only, if given)."""
    position = next(i for i, e in enumerate(log) if e["id"] == event_id)
    return [e for e in log[position + 1 :] if target is None or e["target"] == target]


async def receive(operation: ws.Operation, count: int) -> list[dict]:
    return [(await operation.next(WAIT))["events"] for _ in range(count)]


def ids(events: list[dict]) -> list[str]:
    return [e["id"] for e in events]


# --- the broker's channel, heard by the test itself -------------------------------------------


class Channel:
    """The wake-ups on the cluster's broker channel, as payloads (``tenant:seq``)."""

    def __init__(self) -> None:
        self.payloads: list[str] = []
        self.changed = asyncio.Event()

    def heard(self, payload: str | bytes) -> None:
        self.payloads.append(payload.decode() if isinstance(payload, bytes) else payload)
        self.changed.set()

    async def until_heard(self, expected: list[str]) -> None:
        """Wait until every payload of ``expected`` has been heard; fail after ``WAIT`` seconds."""
        deadline = time.monotonic() + WAIT
        while missing := [p for p in expected if p not in self.payloads]:
            if time.monotonic() > deadline:
                pytest.fail(f"wake-ups never published on the broker channel: {missing}")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), 0.5)


@contextlib.asynccontextmanager
async def listening(cluster: Cluster) -> AsyncIterator[Channel]:
    """Subscribe the test itself to the broker's channel (LISTEN, or SUBSCRIBE) for the block."""
    channel = Channel()
    if cluster.kind == "redis":
        name = parse_qs(urlsplit(cluster.broker_url).query)["channel"][0]
        client = redis.asyncio.Redis.from_url(REDIS_URL)
        pubsub = client.pubsub()
        await pubsub.subscribe(name)
        # subscribed once the server confirms; from then on ``pump`` reads every message
        confirmed = await asyncio.wait_for(pubsub.get_message(timeout=WAIT), WAIT)
        assert confirmed and confirmed["type"] == "subscribe", confirmed

        async def pump() -> None:
            async for message in pubsub.listen():
                if message["type"] == "message":
                    channel.heard(message["data"])

        task = asyncio.create_task(pump())
        try:
            yield channel
        finally:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            await pubsub.aclose()
            await client.aclose()
        return
    connection = await asyncpg.connect(cluster.database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await connection.add_listener(CHANNEL, lambda _c, _pid, _channel, payload: channel.heard(payload))
        yield channel
    finally:
        await connection.close()


def wakeups(events: list[dict]) -> list[str]:
    """The wake-ups that announce ``events`` (each commit publishes its last sequence number)."""
    return [f"{DEFAULT_TENANT}:{e['sequence']}" for e in events]


# --- cutting worker A's broker connection ----------------------------------------------------


async def cut_subscription(cluster: Cluster) -> int:
    """Cut worker A's subscription on the broker server; how many connections were cut."""
    if cluster.kind == "redis":
        client = redis.asyncio.Redis.from_url(REDIS_URL)
        try:
            return await client.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        finally:
            await client.aclose()
    connection = await asyncpg.connect(cluster.database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return await connection.fetchval(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
            " WHERE datname = current_database() AND query LIKE 'LISTEN%' AND application_name LIKE $1) AS cut",
            f"support-graph-broker-{cluster.a.pid}-%",
        )
    finally:
        await connection.close()


async def cut_until_not_ready(cluster: Cluster, api: Api) -> dict:
    """Cut A's broker connection (again, while it keeps coming back before it is seen down) until
    A's ``/readyz`` answers 503; that answer's body."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        await cut_subscription(cluster)
        for _ in range(50):
            status, body = await api.readyz()
            if status == 503:
                return body
            await asyncio.sleep(0.01)
    pytest.fail(f"worker A's /readyz never answered 503 after its broker connection was cut ({cluster.kind})")


async def until_ready(api: Api) -> None:
    deadline = time.monotonic() + WAIT
    while True:
        status, body = await api.readyz()
        if status == 200:
            assert body["broker"] == "ok"
            return
        if time.monotonic() > deadline:
            pytest.fail(f"/readyz stayed {status}: {body}")
        await asyncio.sleep(0.05)


# --- the tests -------------------------------------------------------------------------------


async def test_both_workers_are_ready_on_one_database(cluster: Cluster, apis) -> None:
    for api in apis:
        status, body = await api.readyz()
        assert (status, body["broker"], body["database"]) == (200, "ok", "ok")
    a, b = apis
    ticket = await b.create_ticket()
    assert (await a.data("query($id: ID!) { ticket(id: $id) { id } }", {"id": ticket}))["ticket"]["id"] == ticket


async def test_a_mutation_on_one_worker_reaches_a_subscriber_on_the_other(cluster: Cluster, apis) -> None:
    a, b = apis
    ticket = await b.create_ticket()
    start = await b.newest_event_of(ticket)
    async with (
        listening(cluster) as channel,
        ws.subscription(cluster.a.url, EVENTS_AFTER, {"after": start["id"], "target": ticket}) as stream,
    ):
        first = await b.touch(ticket)
        (event,) = await receive(stream, 1)
        assert (event["target"], event["version"]) == (ticket, first["version"])
        # the stream is live now: each of these reaches A as a wake-up B publishes on the broker
        live = []
        for _ in range(5):
            version = (await b.touch(ticket))["version"]
            (event,) = await receive(stream, 1)
            assert (event["target"], event["version"], event["type"]) == (ticket, version, "Ticket.Updated")
            live.append(event)
        await channel.until_heard(wakeups(live))
    assert ids(since(await a.log(), start["id"], ticket)) == ids(since(await b.log(), start["id"], ticket))


async def test_resume_on_the_other_worker_gets_exactly_what_was_missed(cluster: Cluster, apis) -> None:
    a, b = apis
    ticket = await a.create_ticket()
    start = await a.newest_event()  # after the ticket's creation and what its hooks did
    async with ws.subscription(cluster.a.url, EVENTS_AFTER, {"after": start["id"]}) as stream:
        for _ in range(3):
            await b.touch(ticket)
        seen = await receive(stream, 3)
    assert [e["target"] for e in seen] == [ticket] * 3
    cursor = seen[-1]["id"]
    # missed while disconnected, written on both workers
    for api in (b, a, b, a, b):
        await api.touch(ticket)
    missed = since(await b.log(), cursor)
    assert len(missed) == 5
    async with ws.subscription(cluster.b.url, EVENTS_AFTER, {"after": cursor}) as resumed:
        assert ids(await receive(resumed, len(missed))) == ids(missed)
        # and then live, from the other worker: the very next event, nothing repeated
        version = (await a.touch(ticket))["version"]
        (event,) = await receive(resumed, 1)
        assert (event["target"], event["version"]) == (ticket, version)
        assert event["sequence"] == missed[-1]["sequence"] + 1


async def test_concurrent_writers_on_both_workers_lose_no_update(cluster: Cluster, apis) -> None:
    a, b = apis
    ticket = await a.create_ticket()
    created = await a.newest_event_of(ticket)
    total = 2 * UPDATES_PER_WORKER
    async with (
        listening(cluster) as channel,
        ws.subscription(cluster.a.url, EVENTS_AFTER, {"after": created["id"], "target": ticket}) as stream,
    ):
        limits = httpx.Limits(max_connections=UPDATES_PER_WORKER, max_keepalive_connections=0)
        async with (
            httpx.AsyncClient(base_url=cluster.a.url, timeout=WAIT * 4, limits=limits) as on_a,
            httpx.AsyncClient(base_url=cluster.b.url, timeout=WAIT * 4, limits=limits) as on_b,
        ):
            results = await asyncio.gather(*(
                Api(client).update_ticket(ticket, description=f"writer {name} {i}")
                for name, client in (("a", on_a), ("b", on_b))
                for i in range(UPDATES_PER_WORKER)
            ))  # fmt: skip
        assert sorted(r["version"] for r in results) == list(range(2, total + 2))
        streamed = await receive(stream, total)
        # every commit, on either worker, announced its own sequence number on the broker
        await channel.until_heard(wakeups(streamed))
    history = (await b.data(HISTORY, {"id": ticket}))["ticket"]
    assert history["version"] == 1 + total
    assert history["events"]["totalCount"] == history["version"]
    assert sorted(e["version"] for e in history["events"]["nodes"]) == list(range(1, total + 2))
    # the stream saw every update once, in commit order
    assert [e["version"] for e in streamed] == list(range(2, total + 2))
    assert [e["sequence"] for e in streamed] == sorted(e["sequence"] for e in streamed)
    # the tenant's sequence numbers are gapless, whichever worker committed
    log = await a.log()
    assert [e["sequence"] for e in log] == list(range(1, len(log) + 1))
    assert ids(log) == ids(await b.log())


async def test_a_stream_survives_its_worker_losing_the_broker(cluster: Cluster, apis) -> None:
    a, b = apis
    ticket = await b.create_ticket()
    start = await b.newest_event_of(ticket)
    async with ws.subscription(cluster.a.url, EVENTS_AFTER, {"after": start["id"], "target": ticket}) as stream:
        for _ in range(2):
            await b.touch(ticket)
        before = await receive(stream, 2)
        body = await cut_until_not_ready(cluster, a)
        assert (body["status"], body["broker"], body["database"]) == ("unavailable", "down", "ok")
        during = [await b.touch(ticket) for _ in range(3)]  # committed while A may be deaf
        await until_ready(a)
        after = [await b.touch(ticket) for _ in range(2)]
        delivered = await receive(stream, len(during) + len(after))
    expected = since(await b.log(), start["id"], ticket)
    assert ids(before + delivered) == ids(expected)
    assert [e["version"] for e in delivered] == [r["version"] for r in during + after]
    assert (await b.readyz())[0] == 200
    if cluster.kind == "postgresql":
        # A listens again, on exactly one connection
        connection = await asyncpg.connect(cluster.database_url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            listening = await connection.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND query LIKE 'LISTEN%' AND application_name LIKE $1",
                f"support-graph-broker-{cluster.a.pid}-%",
            )
        finally:
            await connection.close()
        assert listening == 1
