"""A turn's many direct writes shared with a helper thread (graph/server/ws_direct.py ``send_all``).

Real server, real WebSocket clients: enough parked subscribers that one event's turn crosses
``PARALLEL_FROM``, two operations on some connections (one socket, two sinks). Every subscriber
must get exactly its messages, whole and in order; one socket's writes all come from one thread,
and both threads wrote. The partial-write path is driven on a real socket pair whose receiver
does not read: once a socket takes only part of a write, the rest of that socket's writes are
handed back in order, and other sockets' writes go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import threading
import types
from collections.abc import AsyncIterator

import httpx
import pytest
import websockets

from graph.server import ws_direct
from tests.test_fanout_direct import Raw
from tests.test_live import EVENTS, Api, ready
from tests.test_live import quiet as quiet  # each test starts with no live subscriber
from tests.ws_client import WAIT, ws_url

PROTOCOL = "graphql-transport-ws"
#: connections, and how many of them run the subscription twice (operation ids "1" and "2")
CONNECTIONS, DOUBLED = 48, 24


@pytest.fixture
async def api(server) -> AsyncIterator[Api]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield Api(client)


class _Threads:
    """``os`` as ws_direct sees it: each ``write`` made, and the thread and socket it came from."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self._lock = threading.Lock()

    def write(self, fd: int, data: bytes) -> int:
        with self._lock:
            self.calls.append((threading.current_thread().name, fd))
        return os.write(fd, data)


class _Operations:
    """One connection's messages by operation id, as text received."""

    def __init__(self, socket: websockets.ClientConnection, ids: list[str]) -> None:
        self.socket, self.ids = socket, ids
        self.raw = Raw(socket, PROTOCOL)

    async def results(self, per_operation: int) -> dict[str, list[dict]]:
        found: dict[str, list[dict]] = {id_: [] for id_ in self.ids}
        while any(len(results) < per_operation for results in found.values()):
            message = json.loads(await self.raw.message())
            assert message["type"] == "next" and "errors" not in message["payload"], message
            found[message["id"]].append(message["payload"]["data"]["events"])
        return found


@contextlib.asynccontextmanager
async def subscribed(url: str, target: str, ids: list[str]) -> AsyncIterator[_Operations]:
    async with websockets.connect(ws_url(url), subprotocols=[PROTOCOL], ping_interval=None, compression=None) as ws:
        operations = _Operations(ws, ids)
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await operations.raw.message())["type"] == "connection_ack"
        for id_ in ids:
            payload = {"query": EVENTS, "variables": {"target": target}}
            await ws.send(json.dumps({"id": id_, "type": "subscribe", "payload": payload}))
        yield operations


async def test_many_parked_subscribers_are_written_from_two_threads_each_socket_in_order(server, api, monkeypatch):
    sinks = CONNECTIONS + DOUBLED
    assert sinks >= ws_direct.PARALLEL_FROM
    target = await api.create_ticket()
    async with contextlib.AsyncExitStack() as stack:
        connections = [
            await stack.enter_async_context(subscribed(server.url, target, ["1", "2"] if n < DOUBLED else ["1"]))
            for n in range(CONNECTIONS)
        ]
        await ready(server, taps=1, followers=sinks)
        await api.update_ticket(target, description="warm-up")  # each first result: the ordinary path
        await asyncio.gather(*(c.results(1) for c in connections))
        threads = _Threads()
        monkeypatch.setattr(ws_direct, "os", types.SimpleNamespace(write=threads.write))
        for n in range(3):
            await api.update_ticket(target, description=f"change {n}")
        heard = await asyncio.wait_for(asyncio.gather(*(c.results(3) for c in connections)), WAIT)
    expected = [f"change {n}" for n in range(3)]
    for results in heard:  # every operation: its three results, whole and in order
        for events in results.values():
            assert [e["data"]["description"]["after"] for e in events] == expected
    # each socket written by one thread only; both threads wrote
    by_socket: dict[int, set[str]] = {}
    for name, fd in threads.calls:
        by_socket.setdefault(fd, set()).add(name)
    assert all(len(names) == 1 for names in by_socket.values()), by_socket
    names = {name for name, _ in threads.calls}
    assert any(n.startswith("fanout-write") for n in names) and any(not n.startswith("fanout-write") for n in names)


def test_a_socket_that_takes_part_of_a_write_gets_the_rest_of_its_writes_back_in_order() -> None:
    full_a, full_b = socket.socketpair()
    free_a, free_b = socket.socketpair()
    try:
        for end in (full_a, full_b, free_a):
            end.setblocking(False)
        full_a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        big, small = b"x" * 1_000_000, b"after"
        writes = [(0, full_a.fileno(), big), (1, free_a.fileno(), b"one"), (2, full_a.fileno(), small)]
        writes.append((3, free_a.fileno(), b"two"))
        left = ws_direct._write_each(writes)
        # the full socket took part of the big write: its rest, then the small one, are handed back
        assert [index for index, _ in left] == [0, 2]
        assert 0 < len(big) - len(left[0][1]) < len(big) and left[1][1] == small
        assert free_b.recv(100) == b"onetwo"  # the other socket's writes went on, in order
    finally:
        for end in (full_a, full_b, free_a, free_b):
            end.close()
