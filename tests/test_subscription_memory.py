"""Resumable subscriptions (``after``: an execution of their own each) hold no memory per event.

The server runs in a process of its own (``tests.procs``), so its resident set is its own: read
from ``/proc/PID/status``. After a warm-up round (caches, pools, the first executions), 20
subscribers resume with ``after`` — half over ``graphql-transport-ws``, half over ``graphql-ws``
— and each receives the same 600 events: 12,000 deliveries by executions that do not share.
Once the clients have closed, the server must have grown by less than ``GROWTH_LIMIT``.

(What leaked: graphql-core's per-event executors share the subscription's memo of collected
subfields, keyed by field lists made anew for every event, and each event's DataLoaders were
left in reference cycles — together ~2.8 KB per delivery, 33 MB per such round, and held after
the clients closed, until a rare full collection.)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time

import httpx
import pytest

from tests import ws_client as ws
from tests.procs import Serve

SUBSCRIBERS = 20
EVENTS = 600  # 300 tickets created: Ticket.Created and Activity.Created each
WARM_UP_EVENTS = 100
GROWTH_LIMIT_KB = 8 * 1024
#: Seconds a round (all deliveries) may take, and the clients' close may take to be released.
ROUND_WAIT = 300.0
SETTLE_WAIT = 30.0
DOCUMENT = "subscription($after: ID) { events(after: $after) { id type target sequence version entity { id } } }"
LATEST = "{ events(orderBy: [{field: SEQUENCE, direction: DESC}], first: 1) { nodes { id } } }"

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/PID/status")


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def _create_tickets(client: httpx.AsyncClient, count: int) -> None:
    """``count`` tickets, twenty aliased mutations per request."""
    for start in range(0, count, 20):
        size = min(20, count - start)
        body = " ".join(f'm{i}: createTicket(input: {{subject: "memory {start + i}"}}) {{ id }}' for i in range(size))
        answer = (await client.post("/graphql", json={"query": f"mutation {{ {body} }}"})).json()
        assert not answer.get("errors"), answer["errors"]


async def _latest(client: httpx.AsyncClient) -> str:
    nodes = (await client.post("/graphql", json={"query": LATEST})).json()["data"]["events"]["nodes"]
    return nodes[0]["id"]


async def _round(server: Serve, client: httpx.AsyncClient, events: int) -> None:
    """Every subscriber resumes after the newest event and receives the next ``events``, in order."""
    cursor = await _latest(client)
    async with contextlib.AsyncExitStack() as stack:
        operations = []
        for n in range(SUBSCRIBERS):
            protocol = ws.TRANSPORT_WS if n % 2 else ws.LEGACY_WS
            connection = await stack.enter_async_context(ws.connect(server.url, protocol))
            operations.append(await connection.subscribe(DOCUMENT, {"after": cursor}))
        await _create_tickets(client, events // 2)

        async def receive(operation: ws.Operation) -> list[int]:
            return [r["events"]["sequence"] for r in await operation.take(events, timeout=ROUND_WAIT)]

        received = await asyncio.wait_for(asyncio.gather(*(receive(op) for op in operations)), ROUND_WAIT)
    first = received[0]
    assert first == sorted(set(first)) and len(first) == events
    assert all(r == first for r in received), "every subscriber gets the same events, in order"


async def test_resumable_deliveries_leave_no_memory_behind(tmp_path):
    database = f"sqlite+aiosqlite:///{tmp_path / 'memory.db'}"
    server = Serve(database, "memory://", name="memory", log_level="warning").start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            await _create_tickets(client, 2)
            await _round(server, client, WARM_UP_EVENTS)
            before = rss_kb(server.pid)

            await _round(server, client, EVENTS)  # 20 × 600 = 12,000 deliveries

            # the clients closed: what the server held for them goes (bounded polling)
            deadline = time.monotonic() + SETTLE_WAIT
            while (growth := rss_kb(server.pid) - before) >= GROWTH_LIMIT_KB and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            print(f"resident set: {before} KB after the warm-up, +{growth} KB after 12,000 deliveries")
            assert growth < GROWTH_LIMIT_KB, f"the server grew by {growth} KB over 12,000 resumable deliveries"
            assert os.path.exists(f"/proc/{server.pid}"), "the server is still running"
    finally:
        server.cleanup()
