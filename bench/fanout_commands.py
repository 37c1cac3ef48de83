"""The command loop of a fan-out client process, shared by both clients of bench/live_fanout.py.

A client process holds its share of the subscribers and answers, over a pipe, the commands the
benchmark sends to every client process in lock-step:

* ``("open", url, count, protocol, deflate, concurrency)`` → (subscribers opened, first failures,
  seconds, WebSocket extensions negotiated);
* ``("reset", per_subscriber)`` → True: forget what was received, expect ``per_subscriber``
  messages for each subscriber;
* ``("wait", timeout)`` → (messages, fewest of a live subscriber, subscribers ended, why, errors),
  once every expected message arrived or after ``timeout`` seconds;
* ``("collect",)`` → [(time received, event target)];
* ``("close",)`` → True, and the loop ends.

How subscribers are opened, what a record holds and how they are closed is each client's own
(``Client``); everything else is here, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from typing import Any, Protocol


class Counted(Protocol):
    """A subscriber as the loop sees it."""

    #: messages received since the last reset
    count: int
    #: why it ended, if it did
    ended: str | None


class Client:
    """One client process's subscribers and what they received; subclasses open and close them."""

    def __init__(self) -> None:
        self.subscribers: list[Counted] = []
        #: (time received, target) per message, appended by the readers (kept in place on reset)
        self.records: list[tuple[float, Any]] = []
        self.errors: list[str] = []
        self.total = 0
        self.goal = 0
        self.reached = asyncio.Event()

    def received(self, subscriber: Counted, at: float, target: Any) -> None:
        """Count one message of ``subscriber`` about ``target``."""
        self.records.append((at, target))
        subscriber.count += 1
        self.total += 1
        if self.total >= self.goal:
            self.reached.set()

    async def open(self, url: str, protocol: str, deflate: bool, gate: asyncio.Semaphore) -> None:
        """Open one subscriber (at most ``gate`` handshakes at once) and add it to ``subscribers``."""
        raise NotImplementedError

    def extensions(self) -> list[str]:
        return ["none"]

    def target(self, recorded: Any) -> str:
        """A recorded target as the benchmark reads it."""
        return str(recorded)

    async def close(self) -> None:
        raise NotImplementedError


async def serve(conn: Any, client: Client) -> None:
    """Answer the benchmark's commands on ``conn`` (a pipe end) until ``close``."""
    loop = asyncio.get_running_loop()
    while True:
        command, *args = await loop.run_in_executor(None, conn.recv)
        if command == "open":
            url, count, protocol, deflate, concurrency = args
            gate = asyncio.Semaphore(concurrency)
            started = time.monotonic()
            results = await asyncio.gather(
                *(client.open(url, protocol, deflate, gate) for _ in range(count)), return_exceptions=True
            )
            failures = [repr(r)[:200] for r in results if isinstance(r, BaseException)]
            gc.collect()
            gc.freeze()  # the connections are long-lived: keep the collector off them while measuring
            conn.send((len(client.subscribers), failures[:5], time.monotonic() - started, client.extensions()))
        elif command == "reset":
            (per_subscriber,) = args
            client.records.clear()  # in place: the readers hold this list
            client.errors.clear()
            for subscriber in client.subscribers:
                subscriber.count = 0
            client.total = 0
            client.goal = per_subscriber * len(client.subscribers)
            client.reached = asyncio.Event()
            if client.goal == 0:
                client.reached.set()
            conn.send(True)
        elif command == "wait":
            (timeout,) = args
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(client.reached.wait(), timeout)
            live = [s for s in client.subscribers if s.ended is None]
            ended = [s.ended for s in client.subscribers if s.ended is not None]
            least = min((s.count for s in live), default=0)
            conn.send((client.total, least, len(ended), ended[:3], client.errors[:3]))
        elif command == "collect":
            conn.send([(received, client.target(target)) for received, target in client.records])
        elif command == "close":
            await client.close()
            conn.send(True)
            return
