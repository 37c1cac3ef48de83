"""The shared results of one turn of the event loop, written to each parked subscriber in one go.

A shared execution (graph/server/fanout.py) that broadcasts several results in one turn (a feed
read that brought several events) would cost every subscriber one ``send(2)`` per result. Instead
each result's body is added to the ``Turn`` once, and a subscriber that may be written to directly
is marked with where its share starts (``corked_at``), once per turn: it takes every later body of
the turn too, until something has to reach it through its backlog (``release`` writes its share
first). At the end of the turn (or once ``LIMIT`` bodies are held) each subscriber's share is
framed once per distinct (message prefix, start) and written with one ``Sink.send`` (through
``ws_direct.send_all``, which shares many with a helper thread): for the common case — every
subscriber parked since before the turn, the same operation id — one bytes object serves them
all, and the per-subscriber work is a liveness check and one write.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from graph.server.ws_direct import Sink, send_all

#: Bodies held in one turn at most before they are written (bounds what a subscriber is sent
#: past its transport's high-water mark: its readiness is checked once per turn).
LIMIT = 64


class Corked(Protocol):
    """A subscriber as a turn sees it."""

    #: where it may be written to directly
    sink: Sink | None
    #: the index of its first body in the current turn; -1: none held for it
    corked_at: int


class Turn:
    """The bodies broadcast in the current turn and the subscribers they are held for."""

    __slots__ = ("bodies", "corked", "scheduled")

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.corked: list[Corked] = []
        self.scheduled = False

    def add(self, body: bytes) -> int:
        """Hold ``body``; its index in the turn."""
        self.bodies.append(body)
        return len(self.bodies) - 1

    def cork(self, subscriber: Corked, index: int) -> None:
        """Hold the bodies from ``index`` on for ``subscriber`` (ready to be written to)."""
        subscriber.corked_at = index
        self.corked.append(subscriber)
        if not self.scheduled:
            self.scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def release(self, subscriber: Corked) -> None:
        """Write what is held for ``subscriber`` now (something is to follow it another way)."""
        start, subscriber.corked_at = subscriber.corked_at, -1
        sink = subscriber.sink
        if sink is not None and sink.live():
            sink.send(sink.frames(self.bodies[start:]))

    def settle(self) -> None:
        """After a broadcast: write now once ``LIMIT`` bodies are held; hold none for no one."""
        if not self.corked:
            self.bodies.clear()  # every subscriber took that result another way
        elif len(self.bodies) >= LIMIT:
            self.flush()

    def flush(self) -> None:
        """Write each corked subscriber's share, unless its operation ended or its connection is
        closing meanwhile; start a new turn."""
        bodies, corked = self.bodies, self.corked
        self.bodies, self.corked, self.scheduled = [], [], False
        shares: dict[bytes, bytes] = {}  # from the turn's start, by message prefix
        later: dict[tuple[bytes, int], bytes] = {}  # from later in the turn, by prefix and start
        pending: list[tuple[Sink, bytes]] = []
        for subscriber in corked:
            start = subscriber.corked_at
            sink = subscriber.sink
            if start < 0 or sink is None:
                continue  # released meanwhile (listed again if corked again)
            subscriber.corked_at = -1
            prefix = sink.prefix
            if start == 0:
                data = shares.get(prefix)
                if data is None:
                    data = shares[prefix] = sink.frames(bodies)
            else:
                data = later.get((prefix, start))
                if data is None:
                    data = later[(prefix, start)] = sink.frames(bodies[start:])
            if sink.live():  # else its operation ended or its connection is closing meanwhile
                pending.append((sink, data))
        send_all(pending)
