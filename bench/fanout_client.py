"""A lean WebSocket subscriber client for bench/live_fanout.py: raw frames on uvloop, minimal parsing.

The ``websockets`` library costs about as much CPU per received message as the server spends
sending it (bench/RESULTS.md, "Live fan-out"), so on a small machine the clients, not the server,
set the pace. Here every connection is a bare ``asyncio.Protocol`` on uvloop: the opening handshake
is written by hand, server frames (never masked) are cut out of the byte stream, and of each
``next``/``data`` message only the event's ``target`` is looked up (a byte search, no JSON
decoding). Every chunk read from a socket is stamped once with ``time.time()``. Pings (WebSocket
and graphql-transport-ws) are answered; a close frame, ``error`` or ``complete`` ends the
subscriber. Driven over a pipe with the same commands as ``bench.live_fanout``'s own client
process (bench/fanout_commands.py).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import time
from typing import Any

from bench.fanout_commands import Client, serve

NEXT = {"graphql-transport-ws": ("subscribe", b'"type":"next"'), "graphql-ws": ("start", b'"type":"data"')}
_TARGET = b'"target":"'
_ENDED = (b'"type":"error"', b'"type":"complete"', b'"type":"connection_error"')


def _masked(opcode: int, payload: bytes) -> bytes:
    """One client frame (clients must mask theirs)."""
    key = os.urandom(4)
    n = len(payload)
    if n < 126:
        header = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        header = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    mask = (key * (n // 4 + 1))[:n]
    body = (int.from_bytes(payload, "big") ^ int.from_bytes(mask, "big")).to_bytes(n, "big") if n else b""
    return header + key + body


class _Lean(Client):
    """Bare protocols on uvloop; a record's target is the bytes found in the message."""

    async def open(self, url: str, protocol: str, deflate: bool, gate: asyncio.Semaphore) -> None:
        if deflate:
            raise ValueError("the lean client does not offer permessage-deflate (use --client websockets)")
        hostport, _, path = url.removeprefix("ws://").partition("/")
        host, _, port = hostport.partition(":")
        loop = asyncio.get_running_loop()
        async with gate:
            _, subscriber = await loop.create_connection(
                lambda: _Subscriber(self, hostport, "/" + path, protocol), host, int(port)
            )
            await asyncio.wait_for(subscriber.opened, 30)
            subscriber.send_json({"type": "connection_init", "payload": {}})
            await asyncio.wait_for(subscriber.acked, 30)
            subscriber.send_json({"id": "1", "type": NEXT[protocol][0], "payload": {"query": _QUERY}})
        self.subscribers.append(subscriber)

    def target(self, recorded: Any) -> str:
        return recorded.decode()

    async def close(self) -> None:
        for subscriber in self.subscribers:
            assert isinstance(subscriber, _Subscriber)
            if subscriber.transport is not None:
                subscriber._send(8, (1000).to_bytes(2, "big"))
                subscriber.transport.close()


class _Subscriber(asyncio.Protocol):
    """One WebSocket, one subscription."""

    def __init__(self, state: _Lean, host: str, path: str, protocol: str) -> None:
        self.state, self.host, self.path, self.protocol = state, host, path, protocol
        self.next_marker = NEXT[protocol][1]
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.upgraded = False
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.acked: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.count = 0
        self.ended: str | None = None

    # --- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            (
                f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {self.protocol}\r\n\r\n"
            ).encode()
        )

    def connection_lost(self, exc: Exception | None) -> None:
        if self.ended is None:
            self.ended = f"connection lost: {exc!r}"
        for future in (self.opened, self.acked):
            if not future.done():
                future.set_exception(ConnectionError(self.ended))

    def data_received(self, data: bytes) -> None:
        received = time.time()
        buffer = self.buffer
        buffer += data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buffer[:end]).split(b"\r\n", 1)[0]
            del buffer[: end + 4]
            if b" 101 " not in status + b" ":
                self.opened.set_exception(ConnectionError(status.decode(errors="replace")))
                return
            self.upgraded = True
            self.opened.set_result(None)
        start, size = 0, len(buffer)
        while size - start >= 2:
            opcode, n = buffer[start] & 0x0F, buffer[start + 1] & 0x7F
            head = 2
            if n == 126:
                if size - start < 4:
                    break
                n, head = int.from_bytes(buffer[start + 2 : start + 4], "big"), 4
            elif n == 127:
                if size - start < 10:
                    break
                n, head = int.from_bytes(buffer[start + 2 : start + 10], "big"), 10
            if size - start < head + n:
                break
            payload = bytes(buffer[start + head : start + head + n])
            start += head + n
            self._frame(opcode, payload, received)
        if start:
            del buffer[:start]

    # --- messages -----------------------------------------------------------------------------

    def _frame(self, opcode: int, payload: bytes, received: float) -> None:
        if opcode == 1:  # text (the server never fragments these small messages)
            self._message(payload, received)
        elif opcode == 9:  # ping
            self._send(10, payload)
        elif opcode == 8:  # close
            self.ended = self.ended or f"closed by the server: {payload[2:200]!r}"
            if self.transport is not None:
                self.transport.close()

    def _message(self, message: bytes, received: float) -> None:
        state = self.state
        if self.next_marker in message:
            at = message.find(_TARGET)
            target = message[at + 10 : message.index(b'"', at + 10)] if at >= 0 else b"?"
            if b'"errors"' in message and len(state.errors) < 20:
                state.errors.append(message[:300].decode(errors="replace"))
            state.received(self, received, target)
        elif b'"type":"connection_ack"' in message:
            if not self.acked.done():
                self.acked.set_result(None)
        elif b'"type":"ping"' in message:
            self._send(1, b'{"type":"pong"}')
        elif any(marker in message for marker in _ENDED):
            self.ended = message[:200].decode(errors="replace")

    def _send(self, opcode: int, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_masked(opcode, payload))

    def send_json(self, message: dict) -> None:
        self._send(1, json.dumps(message).encode())


_QUERY = "subscription { events { id type sequence target } }"


def client_main(conn: Any) -> None:
    """Entry point of one lean client process (uvloop)."""
    import uvloop

    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(serve(conn, _Lean()))
