"""Writing a shared result straight to a subscriber's socket, framed once.

A shared execution (graph/server/fanout.py) resolves and encodes each result once; sending it
the ordinary way then costs every subscriber a trip through Strawberry's operation, Starlette's
``WebSocket`` and uvicorn's ASGI ``send`` (websockets' framing, one ``transport.write``) — about
two thirds of the server's time at 1,000 subscribers (bench/RESULTS.md, "Live fan-out"). A
``Sink`` skips that chain: the message's bytes are built once per result and operation id
(``{"id": …, "type": "next", "payload": {"data": …}}``, or graphql-ws's ``{"type": "data", …}``;
byte for byte what the ordinary path sends), framed as one unmasked text frame, and written to
the connection's transport.

Only where that is safe, else ``sink_for`` answers None and the ordinary path is used:

* uvicorn's ``websockets-sansio`` protocol only (``uvicorn.protocols.websockets.
  websockets_sansio_impl``, whose attributes this reads: ``transport``, ``conn``, ``writable``,
  ``close_sent``, as of uvicorn 0.54: pyproject is to keep uvicorn below 0.55), reached
  through Starlette's exception wrapper and nothing else (a middleware watching ``send``, such as
  tracing, would be bypassed);
* no permessage-deflate negotiated (each frame would need the connection's own compressor);
* at each result (``Sink.ready``): the operation is still the handler's (not completed, stopped or
  replaced), the connection is open and its transport is below its high-water mark. A paused
  transport is how uvicorn's ``send`` applies backpressure; here such a subscriber gets the
  result in its backlog instead, and its own task sends it the ordinary way once it can.

Frames are held until the end of the event loop's turn (graph/server/fanout_turn.py): the results
of a burst that are broadcast in one turn reach each socket in one write, not one each (on loopback
a ``send(2)`` of a 150-byte frame costs ~8 µs, most of the broadcast). ``Sink.send`` makes that
write with ``os.write`` on the connection's socket while the transport holds nothing (so nothing
can overtake what it holds; ~1 µs less per write than ``transport.write`` and its bookkeeping,
bench/RESULTS.md), on a plain TCP transport only (never TLS); what the socket does not take at
once, and any error, goes to ``transport.write``, which buffers it or closes the connection.

A turn with many such writes (``send_all``, from ``PARALLEL_FROM``) shares them with a helper
thread: on loopback each ``send(2)`` also runs the receiver's side of TCP (10–19 µs, most of one
event's fan-out to 1,000 subscribers), and the event loop's thread lets go of the GIL in each, so
two threads writing to different sockets at once halve the time before the last subscriber is
written to (the CPU spent stays the same). The loop waits for the helper: no callback runs
meanwhile, so no socket is closed or written to by anyone else; one socket's writes all go to one
thread (by descriptor), and once one of them is left partly unwritten, the rest of that socket's
go to its transport after it, in order, on the loop's thread.
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from functools import cache
from typing import Any

import orjson

try:  # the one protocol whose internals are known here
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
except ImportError:  # pragma: no cover - another uvicorn: the ordinary path only
    WebSocketsSansIOProtocol = None  # type: ignore[assignment,misc]

#: The operation being started in this task, as a sink for its shared results (set by the
#: WebSocket handlers of graph/server/fanout.py around running an operation).
SINK: ContextVar[Sink | None] = ContextVar("ws_direct_sink", default=None)

#: ``send`` wrappers known to pass WebSocket messages through untouched (Starlette's exception
#: handling only watches ``http.response.start``).
_TRANSPARENT = frozenset({"wrap_app_handling_exceptions.<locals>.wrapped_app.<locals>.sender"})


#: transports known to write to their socket itself, in order, once their buffer is empty: uvloop's
#: and asyncio's plain TCP transports (never TLS, whose socket carries records, not our bytes)
_PLAIN_TCP = frozenset({"uvloop.loop.TCPTransport", "asyncio.selector_events._SelectorSocketTransport"})


class Sink:
    """One operation on one WebSocket connection, written to directly."""

    __slots__ = ("_fd", "_key", "_owner", "_protocol", "_transport", "_value", "_writable", "prefix")

    def __init__(self, protocol: Any, prefix: bytes, owner: dict, key: str, value: Any) -> None:
        # uvicorn sets both once per connection (the transport when it is made)
        self._protocol, self._transport, self._writable = protocol, protocol.transport, protocol.writable
        #: the socket's descriptor for ``send``, or -1: through the transport only
        self._fd = _descriptor(self._transport)
        #: the message up to the payload: ``{"id":"1","type":"next","payload":``
        self.prefix = prefix
        # the operation is live while ``owner[key] is value`` (the handler's own bookkeeping)
        self._owner, self._key, self._value = owner, key, value

    def live(self) -> bool:
        """Whether the operation still runs on an open connection (a frame may be written)."""
        # a close frame received makes uvicorn close the transport, one sent sets close_sent
        return (
            self._owner.get(self._key) is self._value
            and not self._protocol.close_sent
            and not self._transport.is_closing()
        )

    def flowing(self) -> bool:
        """Whether the transport takes more (uvicorn's flag: not paused at its high-water mark)."""
        return self._writable.is_set()

    def ready(self) -> bool:
        """Whether a frame written now reaches the client in order, without buffering past the
        transport's high-water mark, for an operation that is still running."""
        return self._writable.is_set() and self.live()

    def frame(self, body: bytes) -> bytes:
        """The WebSocket frame of this operation's message with ``body`` (see ``body``)."""
        return frame(self.prefix + body)

    def frames(self, bodies: list[bytes]) -> bytes:
        """The frames of this operation's messages with ``bodies``, one after the other."""
        return frame(self.prefix + bodies[0]) if len(bodies) == 1 else b"".join(self.frame(b) for b in bodies)

    def send(self, data: bytes) -> None:
        """Write ``data`` after whatever the connection has written before (call only while
        ``live``): straight to the socket while the transport holds nothing, else through it."""
        fd = self.direct()
        if fd >= 0:
            sent = _written(fd, data)
            if sent == len(data):
                return
            data = data[sent:]
        self._transport.write(data)

    def direct(self) -> int:
        """The socket descriptor a write may go to now (the transport holds nothing), or -1:
        through the transport."""
        return self._fd if self._fd >= 0 and not self._transport.get_write_buffer_size() else -1

    def buffer(self, data: bytes) -> None:
        """Write ``data`` through the transport, after whatever it holds."""
        self._transport.write(data)


#: direct writes in one turn from which a helper thread takes half (below, handing them over
#: costs more than it saves: ~50 µs)
PARALLEL_FROM = 64


@cache
def _helper() -> ThreadPoolExecutor:
    """The thread that takes half of a turn's direct writes, made on first use."""
    return ThreadPoolExecutor(1, thread_name_prefix="fanout-write")


def send_all(pending: list[tuple[Sink, bytes]]) -> None:
    """``Sink.send`` each (sink, data) of a turn, in order per socket; many direct writes are
    shared with a helper thread (see the module docstring)."""
    if len(pending) < PARALLEL_FROM:
        for sink, data in pending:
            sink.send(data)
        return
    mine: list[tuple[int, int, bytes]] = []
    theirs: list[tuple[int, int, bytes]] = []
    through: list[tuple[int, bytes]] = []  # (position in pending, data)
    helps: dict[int, bool] = {}  # by descriptor: whether the helper writes to that socket
    for index, (sink, data) in enumerate(pending):
        fd = sink.direct()
        if fd < 0:
            through.append((index, data))
            continue
        helper = helps.get(fd)
        if helper is None:
            helper = helps[fd] = len(helps) % 2 == 1  # every other socket
        (theirs if helper else mine).append((index, fd, data))
    helped = _helper().submit(_write_each, theirs)
    try:
        through += _write_each(mine)
    finally:
        through += helped.result()
    for index, data in sorted(through, key=_first):
        pending[index][0].buffer(data)


def _write_each(writes: list[tuple[int, int, bytes]]) -> list[tuple[int, bytes]]:
    """``os.write`` each (position, descriptor, data); what a socket did not take, from there
    on (its later writes included), as (position, data left)."""
    left: list[tuple[int, bytes]] = []
    stuck: set[int] = set()
    for index, fd, data in writes:
        if fd in stuck:
            left.append((index, data))
            continue
        sent = _written(fd, data)
        if sent != len(data):
            stuck.add(fd)
            left.append((index, data[sent:]))
    return left


def _written(fd: int, data: bytes) -> int:
    """How much of ``data`` the socket ``fd`` took at once; 0 when it is full (EAGAIN) or broken:
    the transport then buffers the rest or meets the error itself."""
    try:
        return os.write(fd, data)
    except OSError:
        return 0


def _first(entry: tuple[int, bytes]) -> int:
    return entry[0]


def _descriptor(transport: Any) -> int:
    """The socket descriptor of a plain TCP ``transport``; -1 for any other transport."""
    kind = type(transport)
    if f"{kind.__module__}.{kind.__qualname__}" not in _PLAIN_TCP or transport.get_extra_info("sslcontext"):
        return -1
    socket = transport.get_extra_info("socket")
    return socket.fileno() if socket is not None else -1


def drain(backlog: deque[tuple[int, Any, bytes | None]], since: int, sink: Sink, most: int) -> bool:
    """Write the plain results at the head of a subscriber's ``backlog`` (up to ``most``; those
    at positions after ``since``) in one go, if its socket can take them now; whether any were
    taken off the backlog. Each entry: (position, result, its ``body`` or None)."""
    if backlog[0][2] is None or not sink.ready():
        return False
    frames: list[bytes] = []
    while backlog and len(frames) < most:
        position, _, message = backlog[0]
        if message is None:
            break
        backlog.popleft()
        if position > since:
            frames.append(sink.frame(message))
    if frames:
        sink.send(b"".join(frames))
    return True


def body(result: Any) -> bytes | None:
    """The part of a ``next`` message after ``"payload":`` for ``result`` (its data already an
    ``orjson.Fragment``), closing the message; None for a result the ordinary path must send
    (errors or extensions: Strawberry formats those)."""
    if getattr(result, "errors", None) or getattr(result, "extensions", None) or result.data is None:
        return None
    return orjson.dumps({"data": result.data}) + b"}"


def frame(message: bytes) -> bytes:
    """One final, unmasked text frame (RFC 6455 §5.2) carrying ``message``."""
    n = len(message)
    if n < 126:
        return bytes((0x81, n)) + message
    if n < 65536:
        return b"\x81\x7e" + n.to_bytes(2, "big") + message
    return b"\x81\x7f" + n.to_bytes(8, "big") + message


def sink_for(websocket: Any, operation_id: str, legacy: bool, owner: dict, value: Any) -> Sink | None:
    """A sink for operation ``operation_id`` on Strawberry's ``websocket`` adapter, live while
    ``owner[operation_id] is value``; None where only the ordinary path is safe."""
    protocol = _protocol(getattr(getattr(websocket, "ws", None), "_send", None))
    if protocol is None or protocol.conn.extensions:
        return None
    return Sink(protocol, _prefix(operation_id, legacy), owner, operation_id, value)


#: message prefixes by (operation id, legacy): one bytes object for every subscriber using an id,
#: so a broadcast's frames are looked up by a key already hashed and compared by identity
_PREFIXES: dict[tuple[str, bool], bytes] = {}


def _prefix(operation_id: str, legacy: bool) -> bytes:
    prefix = _PREFIXES.get((operation_id, legacy))
    if prefix is None:
        ident = orjson.dumps(operation_id)
        head = b'{"type":"data","id":' + ident if legacy else b'{"id":' + ident + b',"type":"next"'
        prefix = head + b',"payload":'
        if len(_PREFIXES) < 256 and len(operation_id) <= 64:  # client-chosen: kept only while few
            _PREFIXES[(operation_id, legacy)] = prefix
    return prefix


def _protocol(send: Any) -> Any:
    """The uvicorn protocol behind ``send``, through transparent wrappers only; else None."""
    for _ in range(4):
        owner = getattr(send, "__self__", None)
        if WebSocketsSansIOProtocol is not None and type(owner) is WebSocketsSansIOProtocol:
            return owner if getattr(send, "__name__", None) == "send" else None
        if getattr(send, "__qualname__", None) not in _TRANSPARENT:
            return None
        cells = dict(zip(send.__code__.co_freevars, send.__closure__ or ()))
        cell = cells.get("send")
        if cell is None:
            return None
        send = cell.cell_contents
    return None
