"""Shared results written straight to the socket (graph/server/ws_direct.py), both protocols.

Real server, real WebSocket clients (the ``websockets`` library, reading raw text messages), real
mutations. A subscriber's first result takes the ordinary path (Strawberry → Starlette → uvicorn);
later ones are written by the broadcast itself. So two subscribers that joined at different times
receive the same event one each way, and their messages must be identical to the byte.

Backpressure: uvicorn's protocol is told its transport's buffer is full by ``pause_writing`` and
drained by ``resume_writing`` (the transport calls them). The tests call them on the server's loop
for one subscriber's connection, which is what a client that stops reading leads to, without
having to fill the kernel's socket buffers first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import httpx
import pytest
import websockets

from graph.server import fanout
from tests.test_live import EVENTS, Api, ready
from tests.test_live import quiet as quiet  # each test starts with no live subscriber
from tests.ws_client import LEGACY_WS, PROTOCOLS, WAIT, ws_url

_START = {"graphql-transport-ws": "subscribe", "graphql-ws": "start"}


class Raw:
    """One connection, one subscription (id "1"), its messages kept as the text received."""

    def __init__(self, socket: websockets.ClientConnection, protocol: str) -> None:
        self.socket, self.protocol = socket, protocol

    async def message(self) -> str:
        """The next message of the operation (keep-alives and pings skipped)."""
        while True:
            raw = await asyncio.wait_for(self.socket.recv(), WAIT)
            assert isinstance(raw, str)
            kind = json.loads(raw).get("type")
            if kind == "ping":
                await self.socket.send('{"type":"pong"}')
            elif kind != "ka":
                return raw

    async def data(self, count: int) -> list[dict]:
        """The next ``count`` results' data (each checked to be a plain result)."""
        found = []
        for _ in range(count):
            message = json.loads(await self.message())
            assert message["type"] in ("next", "data") and "errors" not in message["payload"], message
            found.append(message["payload"]["data"]["events"])
        return found

    @property
    def port(self) -> int:
        return self.socket.local_address[1]


@contextlib.asynccontextmanager
async def raw_subscription(url: str, protocol: str, target: str) -> AsyncIterator[Raw]:
    # no permessage-deflate (the test server would accept it; `serve` does not offer it): see ws_direct
    async with websockets.connect(ws_url(url), subprotocols=[protocol], ping_interval=None, compression=None) as socket:
        await socket.send(json.dumps({"type": "connection_init", "payload": {}}))
        raw = Raw(socket, protocol)
        assert json.loads(await raw.message())["type"] == "connection_ack"
        payload = {"query": EVENTS, "variables": {"target": target}}
        await socket.send(json.dumps({"id": "1", "type": _START[protocol], "payload": payload}))
        yield raw


@pytest.fixture
async def api(server) -> AsyncIterator[Api]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield Api(client)


@contextlib.asynccontextmanager
async def fast_and_stalled(server, api: Api, protocol: str) -> AsyncIterator[tuple[str, Raw, Raw]]:
    """Two subscribers to one ticket's events, each past a first event; the second one's
    transport then paused, as a full socket buffer pauses it (the test resumes it)."""
    target = await api.create_ticket()
    async with (
        raw_subscription(server.url, protocol, target) as fast,
        raw_subscription(server.url, protocol, target) as stalled,
    ):
        await ready(server, taps=1, followers=2)
        await api.update_ticket(target, description="warm-up")
        await fast.data(1)
        await stalled.data(1)
        _transport(server, stalled.port, "pause_writing")
        yield target, fast, stalled


def _transport(server, port: int, call: str) -> None:
    """Call ``pause_writing``/``resume_writing`` on the server's protocol of the client at ``port``."""

    async def go() -> None:
        found = [p for p in server.server.server_state.connections if (getattr(p, "client", None) or (0, 0))[1] == port]
        assert len(found) == 1, found
        getattr(found[0], call)()

    server.run(go())


async def _written(server) -> int:
    async def read() -> int:
        return server.services.fanout.written

    return await asyncio.to_thread(server.run, read())


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_direct_writes_are_byte_identical_to_the_ordinary_path(server, api, protocol):
    target = await api.create_ticket()
    async with raw_subscription(server.url, protocol, target) as early:
        await ready(server, taps=1, followers=1)
        await api.update_ticket(target, description="first")
        first = json.loads(await early.message())
        assert first["type"] == ("data" if protocol == LEGACY_WS else "next"), first
        async with raw_subscription(server.url, protocol, target) as late:
            await ready(server, taps=1, followers=2)
            before = await _written(server)
            await api.update_ticket(target, description="second")
            direct, ordinary = await early.message(), await late.message()
            assert await _written(server) > before, "the early subscriber's result was not written directly"
            assert direct == ordinary  # the same event, one written directly, the other through Strawberry
            await api.update_ticket(target, description="third")
            assert await early.message() == await late.message()
            event = json.loads(direct)
            keys = ["type", "id", "payload"] if protocol == LEGACY_WS else ["id", "type", "payload"]
            assert list(event) == keys and event["id"] == "1", event
            assert event["payload"]["data"]["events"]["target"] == target


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_stalled_subscriber_holds_up_no_one_and_misses_nothing(server, api, protocol):
    async with fast_and_stalled(server, api, protocol) as (target, fast, stalled):
        try:
            for i in range(30):
                await api.update_ticket(target, description=f"burst {i}")
            heard_fast = await fast.data(30)  # all of them while the other one cannot take any
        finally:
            _transport(server, stalled.port, "resume_writing")
        heard_stalled = await stalled.data(30)  # its backlog, in order, nothing lost
        assert [e["id"] for e in heard_stalled] == [e["id"] for e in heard_fast]
        sequences = [e["sequence"] for e in heard_fast]
        assert sequences == sorted(sequences) and len(set(sequences)) == 30
        await api.update_ticket(target, description="after")  # and it is back on the direct path
        assert await fast.data(1) == await stalled.data(1)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_subscriber_too_far_behind_is_ended_while_others_go_on(server, api, protocol, monkeypatch):
    monkeypatch.setattr(fanout, "BACKLOG_LIMIT", 5)
    async with fast_and_stalled(server, api, protocol) as (target, fast, stalled):
        try:
            for i in range(8):
                await api.update_ticket(target, description=f"burst {i}")
            assert len(await fast.data(8)) == 8
        finally:
            _transport(server, stalled.port, "resume_writing")
        ended = json.loads(await stalled.message())
        while "errors" not in ended["payload"]:  # the one already on its way when it stalled
            ended = json.loads(await stalled.message())
        assert ended["payload"]["errors"][0]["extensions"]["code"] == "RATE_LIMITED", ended
        assert json.loads(await stalled.message())["type"] == "complete"
        await api.update_ticket(target, description="after")
        assert len(await fast.data(1)) == 1
