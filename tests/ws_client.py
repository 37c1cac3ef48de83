"""WebSocket GraphQL clients for tests: both subprotocols, raw and through ``gql``.

``graphql-transport-ws`` (current) and ``graphql-ws`` (legacy, Apollo's) differ mostly in message
names, so one ``Connection`` speaks both: ``connection_init``/``connection_ack``, then
``subscribe``/``start`` per operation, ``next``/``data`` results, ``error``, ``complete``, and
``complete``/``stop`` from the client. A reader task routes every message to its operation's
queue, so several operations can share one socket. ``gql_subscription`` runs the same kind of
operation through the ``gql`` client's ``WebsocketsTransport``. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import websockets
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport

TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"
PROTOCOLS = (TRANSPORT_WS, LEGACY_WS)

#: Seconds any single wait may take before the test fails instead of hanging.
WAIT = 10.0

# What each protocol calls the same message.
_NAMES = {
    TRANSPORT_WS: {"subscribe": "subscribe", "stop": "complete", "next": "next"},
    LEGACY_WS: {"subscribe": "start", "stop": "stop", "next": "data"},
}


def ws_url(http_url: str) -> str:
    """``http://host:port`` → ``ws://host:port/graphql``."""
    return http_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1).rstrip("/") + "/graphql"


class OperationError(AssertionError):
    """An operation answered with errors where the test expected data."""

    def __init__(self, errors: list[dict]) -> None:
        super().__init__(errors)
        self.errors = errors


class Ended(AssertionError):
    """The operation completed (or its socket closed) where the test expected more."""


@dataclass
class Message:
    """One server message for an operation, the same whatever the protocol."""

    kind: str  # "next", "error" or "complete"
    payload: Any = None

    @property
    def errors(self) -> list[dict]:
        if self.kind == "error":
            # graphql-transport-ws sends a list of errors; graphql-ws a single error object
            return self.payload if isinstance(self.payload, list) else [self.payload]
        if self.kind == "next":
            return (self.payload or {}).get("errors") or []
        return []


class Results:
    """What an operation receives, read with bounded waits."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Message] = asyncio.Queue()

    async def message(self, timeout: float = WAIT) -> Message:
        """The next message, whatever it is."""
        return await asyncio.wait_for(self.queue.get(), timeout)

    async def next(self, timeout: float = WAIT) -> dict:
        """The next result's ``data``; fails on errors or on the end of the operation."""
        message = await self.message(timeout)
        if message.errors:
            raise OperationError(message.errors)
        if message.kind != "next":
            raise Ended(f"the operation ended: {message}")
        return message.payload["data"]

    async def take(self, count: int, timeout: float = WAIT) -> list[dict]:
        """The next ``count`` results' data."""
        return [await self.next(timeout) for _ in range(count)]

    async def error(self, timeout: float = WAIT) -> dict:
        """The first error the operation answers with (an ``error``, or a ``next`` with errors)."""
        message = await self.message(timeout)
        assert message.errors, f"expected an error, got {message}"
        return message.errors[0]

    async def completes(self, timeout: float = WAIT) -> None:
        """Assert that the next message ends the operation."""
        message = await self.message(timeout)
        assert message.kind == "complete", f"expected the operation to complete, got {message}"


class Operation(Results):
    """One operation on a raw ``Connection``."""

    def __init__(self, connection: Connection, id_: str) -> None:
        super().__init__()
        self.connection, self.id = connection, id_

    async def stop(self) -> None:
        """End this operation from the client (``complete`` / ``stop``); the socket stays open."""
        await self.connection.send({"id": self.id, "type": _NAMES[self.connection.protocol]["stop"]})


class Connection:
    """An acknowledged WebSocket connection speaking ``protocol``."""

    def __init__(self, socket: websockets.ClientConnection, protocol: str) -> None:
        self.socket, self.protocol = socket, protocol
        self.operations: dict[str, Operation] = {}
        self._ids = itertools.count(1)
        self._reader: asyncio.Task | None = None

    async def send(self, message: dict) -> None:
        await self.socket.send(json.dumps(message))

    async def _receive(self) -> dict:
        return json.loads(await asyncio.wait_for(self.socket.recv(), WAIT))

    async def init(self, payload: dict | None = None) -> None:
        await self.send({"type": "connection_init", "payload": payload or {}})
        while (message := await self._receive())["type"] != "connection_ack":
            assert message["type"] in ("ka", "ping"), f"expected connection_ack, got {message}"
        self._reader = asyncio.create_task(self._read(), name=f"ws-reader:{self.protocol}")

    async def subscribe(self, query: str, variables: dict | None = None) -> Operation:
        """Start an operation; what it receives arrives on the returned ``Operation``."""
        operation = Operation(self, str(next(self._ids)))
        self.operations[operation.id] = operation
        payload = {"query": query, "variables": variables or {}}
        await self.send({"id": operation.id, "type": _NAMES[self.protocol]["subscribe"], "payload": payload})
        return operation

    async def _read(self) -> None:
        next_name = _NAMES[self.protocol]["next"]
        try:
            async for raw in self.socket:
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "ping":
                    await self.send({"type": "pong"})
                    continue
                operation = self.operations.get(message.get("id") or "")
                if operation is None:  # "ka", "pong", or an operation we forgot
                    continue
                operation.queue.put_nowait(Message("next" if kind == next_name else kind, message.get("payload")))
        except websockets.ConnectionClosed:
            pass
        finally:
            for operation in self.operations.values():
                operation.queue.put_nowait(Message("complete", {"socket": "closed"}))

    async def close(self) -> None:
        """Close cleanly (``connection_terminate`` first on the legacy protocol)."""
        if self.protocol == LEGACY_WS:
            with contextlib.suppress(websockets.ConnectionClosed):
                await self.send({"type": "connection_terminate"})
        await asyncio.wait_for(self.socket.close(), WAIT)
        await self._stop_reading()

    async def abort(self) -> None:
        """Drop the TCP connection without a closing handshake, as a crashed client would."""
        self.socket.transport.abort()
        await self._stop_reading()

    async def _stop_reading(self) -> None:
        if self._reader is not None:
            await asyncio.wait_for(self._reader, WAIT)


@contextlib.asynccontextmanager
async def connect(
    http_url: str, protocol: str = TRANSPORT_WS, payload: dict | None = None
) -> AsyncIterator[Connection]:
    """An acknowledged connection to the server at ``http_url``, closed on exit."""
    opening = websockets.connect(ws_url(http_url), subprotocols=[protocol], ping_interval=None)
    socket = await asyncio.wait_for(opening, WAIT)
    assert socket.subprotocol == protocol, f"the server chose {socket.subprotocol!r}, not {protocol!r}"
    connection = Connection(socket, protocol)
    try:
        await connection.init(payload)
        yield connection
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def subscription(
    http_url: str, query: str, variables: dict | None = None, protocol: str = TRANSPORT_WS
) -> AsyncIterator[Operation]:
    """One operation on a connection of its own: leaving the block disconnects."""
    async with connect(http_url, protocol) as connection:
        yield await connection.subscribe(query, variables)


# --- the gql client ----------------------------------------------------------------------------


class GqlOperation(Results):
    """A subscription through ``gql``'s session, pumped into a queue so reads stay bounded."""

    def __init__(self, session: Any, request: GraphQLRequest) -> None:
        super().__init__()
        self.task = asyncio.create_task(self._pump(session, request), name="gql-subscription")

    async def _pump(self, session: Any, request: GraphQLRequest) -> None:
        try:
            async for data in session.subscribe(request):
                self.queue.put_nowait(Message("next", {"data": data}))
            self.queue.put_nowait(Message("complete"))
        except TransportQueryError as error:
            self.queue.put_nowait(Message("error", error.errors or [{"message": str(error)}]))


@contextlib.asynccontextmanager
async def gql_subscription(
    http_url: str, query: str, variables: dict | None = None, protocol: str = TRANSPORT_WS
) -> AsyncIterator[GqlOperation]:
    """One subscription through ``gql``'s ``WebsocketsTransport`` on a connection of its own."""
    transport = WebsocketsTransport(url=ws_url(http_url), subprotocols=[protocol], ack_timeout=WAIT)
    async with Client(transport=transport) as session:
        assert transport.subprotocol == protocol, f"the server chose {transport.subprotocol!r}, not {protocol!r}"
        operation = GqlOperation(session, GraphQLRequest(query, variable_values=variables))
        try:
            yield operation
        finally:
            operation.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(operation.task, WAIT)


class HttpApi:
    """A server's GraphQL over HTTP, from an async test."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def data(self, query: str, variables: dict | None = None) -> dict:
        response = await self.client.post("/graphql", json={"query": query, "variables": variables or {}})
        body = response.json()
        assert not body.get("errors"), body["errors"]
        return body["data"]
