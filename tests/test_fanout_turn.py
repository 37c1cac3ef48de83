"""A turn's shared results in one write per subscriber, and writes straight to the socket that
fall back to the transport when the socket is full (graph/server/fanout_turn.py, ws_direct.py).

Real server, real WebSocket clients, real mutations. The server's direct writes are watched by
wrapping the ``os.write`` that ``ws_direct`` calls (each call still writes, to the real socket):
what is observed is how many system calls carried which frames. A full socket is made for real:
the client shrinks its receive buffer and stops reading, so the kernel refuses more and the
server's transport has to buffer, pause and let the subscriber's backlog take over.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import types
from collections.abc import AsyncIterator

import httpx
import pytest
import websockets

from graph.server import ws_direct
from tests.test_fanout_direct import Raw, raw_subscription
from tests.test_live import EVENTS, Api, ready
from tests.test_live import quiet as quiet  # each test starts with no live subscriber
from tests.ws_client import LEGACY_WS, PROTOCOLS, WAIT, ws_url

_START = {"graphql-transport-ws": "subscribe", "graphql-ws": "start"}


@pytest.fixture
async def api(server) -> AsyncIterator[Api]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield Api(client)


class _Writes:
    """``os`` as ws_direct sees it, with every ``write`` recorded (and made)."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, bytes]] = []  # (descriptor, data)

    def write(self, fd: int, data: bytes) -> int:
        # recorded first: the server's thread lets go of the GIL in the call, and the test's
        # client may read the frames and look here before that thread runs on
        self.calls.append((fd, bytes(data)))
        return os.write(fd, data)


def _frames(data: bytes) -> list[dict]:
    """The messages of the unmasked server text frames in ``data``."""
    found, at = [], 0
    while at < len(data):
        assert data[at] == 0x81, data[at : at + 16]
        n, head = data[at + 1], 2
        if n == 126:
            n, head = int.from_bytes(data[at + 2 : at + 4], "big"), 4
        elif n == 127:
            n, head = int.from_bytes(data[at + 2 : at + 10], "big"), 10
        found.append(json.loads(data[at + head : at + head + n]))
        at += head + n
    return found


#: Fields resolved without awaiting (no loader): a feed read's events are resolved and broadcast
#: in one turn of the loop. (A field that awaits a loader lets the turn end between two events.)
PLAIN_EVENTS = "subscription { events { id type sequence target } }"


@contextlib.asynccontextmanager
async def plain_subscription(url: str, protocol: str) -> AsyncIterator[Raw]:
    """Every event of the tenant, as ``PLAIN_EVENTS`` (operation id "1")."""
    async with websockets.connect(ws_url(url), subprotocols=[protocol], ping_interval=None, compression=None) as socket:
        raw = Raw(socket, protocol)
        await socket.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await raw.message())["type"] == "connection_ack"
        await socket.send(json.dumps({"id": "1", "type": _START[protocol], "payload": {"query": PLAIN_EVENTS}}))
        yield raw


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_the_events_of_one_commit_reach_a_parked_subscriber_in_one_write(server, api, protocol, monkeypatch):
    target = await api.create_ticket()
    async with plain_subscription(server.url, protocol) as every:
        await ready(server, taps=1, followers=1)
        await api.update_ticket(target, description="warm-up")  # its first result: the ordinary path
        await every.data(1)
        writes = _Writes()
        monkeypatch.setattr(ws_direct, "os", types.SimpleNamespace(write=writes.write))
        # a ticket and the activity its hook makes commit together: one feed read, one turn
        created = await api.create_ticket()
        heard = await every.data(2)
        assert [e["type"] for e in heard] == ["Ticket.Created", "Activity.Created"], heard
        assert heard[0]["sequence"] < heard[1]["sequence"] and heard[0]["target"] == created
        # the subscriber to every event got both in one system call, byte for byte the messages read
        carrying = [data for _, data in writes.calls if len(_frames(data)) == 2]
        assert len(carrying) == 1, [_frames(d) for _, d in writes.calls]
        messages = _frames(carrying[0])
        assert [m["payload"]["data"]["events"] for m in messages] == heard
        assert all(m["type"] == ("data" if protocol == LEGACY_WS else "next") and m["id"] == "1" for m in messages)


async def _stalling_subscription(url: str, protocol: str, target: str) -> tuple[websockets.ClientConnection, Raw]:
    """A subscriber whose socket takes little and which reads only when asked: a small receive
    buffer set before connecting, and the client library's queue of one message."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    connection = await websockets.connect(
        ws_url(url), sock=sock, subprotocols=[protocol], ping_interval=None, compression=None, max_queue=1
    )
    raw = Raw(connection, protocol)
    await connection.send(json.dumps({"type": "connection_init", "payload": {}}))
    assert json.loads(await raw.message())["type"] == "connection_ack"
    payload = {"query": EVENTS, "variables": {"target": target}}
    await connection.send(json.dumps({"id": "1", "type": _START[protocol], "payload": payload}))
    return connection, raw


async def _backlogged(server) -> int:
    """Results waiting in subscribers' backlogs on the server (not written to their sockets)."""

    async def read() -> int:
        executions = server.services.fanout.executions.values()
        return sum(len(s.backlog) for e in executions for s in e.subscribers)

    return await asyncio.to_thread(server.run, read())


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_full_socket_makes_the_transport_buffer_then_the_backlog_in_order(server, api, protocol):
    target = await api.create_ticket()
    large = "x" * 60_000  # every event carries it (its data): loopback socket buffers take megabytes
    async with contextlib.AsyncExitStack() as stack:
        fast = await stack.enter_async_context(raw_subscription(server.url, protocol, target))
        connection, slow = await _stalling_subscription(server.url, protocol, target)
        stack.push_async_callback(connection.close)
        await ready(server, taps=1, followers=2)
        await api.update_ticket(target, description="warm-up")
        await fast.data(1)
        await slow.data(1)
        # the slow one reads no more: its socket, then its transport's buffer, fill up
        count, backlogged = 0, 0
        while count < 200 and not backlogged:
            await api.update_ticket(target, description=f"{count} {large}")
            count += 1
            assert len(await fast.data(1)) == 1  # the other one is held up by nothing
            backlogged = await _backlogged(server)
        assert backlogged, f"{count} large events never paused the stalled subscriber's transport"
        for i in range(3):  # more while it is behind: they queue behind the backlog, not beside it
            await api.update_ticket(target, description=f"after {i}")
            count += 1
        await fast.data(3)
        heard = await asyncio.wait_for(slow.data(count), WAIT * 3)  # reading again: everything, in order
        descriptions = [e["data"]["description"]["after"] for e in heard]
        assert descriptions == [f"{i} {large}" for i in range(count - 3)] + [f"after {i}" for i in range(3)]
        sequences = [e["sequence"] for e in heard]
        assert sequences == sorted(sequences) and len(set(sequences)) == count
        await api.update_ticket(target, description="caught up")
        assert await fast.data(1) == await slow.data(1)  # and both are written directly again
