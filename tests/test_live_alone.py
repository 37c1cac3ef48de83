"""Subscriptions that resume from a cursor run alone, and end between two results (graph/server/alone.py).

``run_alone`` on a stream of its own making: cancelled while a result is being resolved, the
resolution runs to its end and the stream is closed after it; cancelled while it waits for an
event, it stops at once; an error it raises reaches the subscriber. Then through the real server
and real WebSocket clients: clients that leave while their replay is being resolved leave no
coroutine never awaited (what cancelling graphql-core in the middle of a result leaves behind, a
``RuntimeWarning`` at garbage collection) and every stream lets go of its tap.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from graph.server import alone
from graph.server.alone import run_alone
from resolvers.live import CONSUMER
from tests import ws_client as ws
from tests.test_live import EVENTS_AFTER, TICKET_EVENTS_AFTER, Api, released, until
from tests.test_live import quiet as quiet  # each test starts with no live subscriber

#: how often a client leaves mid-replay (each a chance to catch the stream mid-result)
LEAVES = 24


@pytest.fixture
async def api(server) -> AsyncIterator[Api]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield Api(client)


@pytest.fixture
def unawaited() -> Iterator[list[str]]:
    """The "never awaited" warnings and unraisable errors raised meanwhile, in any thread."""
    found: list[str] = []
    hook = sys.unraisablehook

    def record(unraisable: Any) -> None:
        found.append(f"{unraisable.exc_type.__name__}: {unraisable.exc_value}")

    sys.unraisablehook = record
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield found
            gc.collect()
            found += [str(w.message) for w in caught if "never awaited" in str(w.message)]
    finally:
        sys.unraisablehook = hook


async def settled(done: Callable[[], bool]) -> None:
    """Let the loop run until ``done()`` holds, a second at most (the test's assertions say
    whether it did)."""
    for _ in range(100):
        if done():
            return
        await asyncio.sleep(0.01)


class Stream:
    """A stream that resolves each event in two steps, marking itself busy as live streams do."""

    def __init__(self) -> None:
        self.resolving = asyncio.Event()  # set once a result is half resolved
        self.go_on = asyncio.Event()  # lets it finish
        self.steps: list[str] = []

    async def results(self) -> Any:
        consumer = CONSUMER.get()
        assert consumer is not None  # run_alone's task tells its stream it consumes it
        try:
            for n in range(3):
                if n == 1:
                    await asyncio.Event().wait()  # waiting for an event that never comes
                consumer.busy = True
                self.steps.append(f"start {n}")
                self.resolving.set()
                await self.go_on.wait()
                self.steps.append(f"end {n}")
                consumer.busy = False
                yield n
        finally:
            self.steps.append("closed")


async def test_a_stream_cancelled_mid_result_finishes_it_then_closes() -> None:
    stream = Stream()
    results = run_alone(stream.results())
    taking = asyncio.ensure_future(anext(results))
    await stream.resolving.wait()
    taking.cancel()  # what Strawberry does when the client leaves
    with pytest.raises(asyncio.CancelledError):
        await taking
    await results.aclose()
    stream.go_on.set()
    await settled(lambda: "closed" in stream.steps)
    assert stream.steps == ["start 0", "end 0", "closed"]


async def test_a_stream_waiting_for_an_event_stops_at_once() -> None:
    stream = Stream()
    stream.go_on.set()
    results = run_alone(stream.results())
    assert await anext(results) == 0
    taking = asyncio.ensure_future(anext(results))
    await asyncio.sleep(0.05)  # the stream waits for its next event
    taking.cancel()
    with pytest.raises(asyncio.CancelledError):
        await taking
    await results.aclose()
    await settled(lambda: "closed" in stream.steps)
    assert stream.steps == ["start 0", "end 0", "closed"]


async def test_a_stream_failing_after_its_subscriber_left_mid_result_still_ends() -> None:
    resolving, go_on = asyncio.Event(), asyncio.Event()
    closed: list[bool] = []

    async def failing() -> Any:
        consumer = CONSUMER.get()
        assert consumer is not None
        try:
            yield 0
            yield 1  # waits in the handover, never taken
            consumer.busy = True
            resolving.set()
            await go_on.wait()
            raise RuntimeError("the log is gone")
        finally:
            closed.append(True)

    results = run_alone(failing())
    assert await anext(results) == 0
    await resolving.wait()
    await results.aclose()  # the subscriber leaves while the next result is being resolved
    assert alone._ENDING  # its task goes on to finish the result
    go_on.set()
    await settled(lambda: not alone._ENDING)
    assert closed == [True]
    assert not alone._ENDING  # and ends: nothing holds it waiting for a taker of the error


async def test_an_error_of_the_stream_reaches_the_subscriber() -> None:
    async def failing() -> Any:
        yield 1
        raise RuntimeError("the log is gone")

    results = run_alone(failing())
    assert await anext(results) == 1
    with pytest.raises(RuntimeError, match="the log is gone"):
        await anext(results)


@pytest.mark.parametrize("protocol", ws.PROTOCOLS)
async def test_a_client_leaving_mid_replay_leaves_no_result_half_resolved(server, api, protocol, unawaited):
    start = await api.latest_event()
    ticket = await api.create_ticket()
    for n in range(30):
        await api.update_ticket(ticket, description=f"change {n}")
    for n in range(LEAVES):
        if n % 4 == 3:  # gone before the first result: mid-replay, whatever it awaits
            async with ws.connect(server.url, protocol) as connection:
                await connection.subscribe(EVENTS_AFTER, {"after": start["id"]})
                await asyncio.sleep(0.002 * (n % 8))
        elif n % 2:
            variables = {"where": {"id": {"eq": ticket}}, "after": start["id"]}
            async with ws.subscription(server.url, TICKET_EVENTS_AFTER, variables, protocol) as op:
                assert (await op.next())["ticketEvents"]["ticket"]["id"] == ticket
        else:
            async with ws.subscription(server.url, EVENTS_AFTER, {"after": start["id"]}, protocol) as op:
                assert (await op.next())["events"]["entity"]["id"] == ticket
        # left while the rest of the replay was being resolved
    await until(server, released, "every stream let go of its tap")
    gc.collect()
    assert unawaited == []
