"""A stream run alone (a subscription that resumes from a cursor), in a task of its own.

Strawberry ends an operation by cancelling the task that iterates its results. Iterated there,
a stream would be cancelled wherever it is — in the middle of graphql-core resolving an event
into a result too, which leaves that result's resolver coroutines created and never awaited
(a ``RuntimeWarning`` at garbage collection, and work cut off at an arbitrary await). Here the
stream is iterated by a producer task of its own and handed over one result at a time; when
the operation ends, the producer is cancelled at once if it is waiting for the next event or
for its result to be taken, else it ends right after the result it is resolving — as a shared
execution does (graph/server/fanout.py ``_SharedExecution.stop``). The stream is not run ahead
of its subscriber: at most one result waits to be taken.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from typing import Any

from resolvers.live import CONSUMER, Consumer

_END = object()
#: producers ending after their result, kept until they are done (a task needs a reference)
_ENDING: set[asyncio.Task[None]] = set()


async def run_alone(source: AsyncGenerator[Any, None]) -> AsyncGenerator[Any, None]:
    """The results of ``source``, iterated by a task of its own (see the module docstring); an
    error it raises is raised here."""
    handover: asyncio.Queue[Any] = asyncio.Queue(maxsize=1)
    consumer = Consumer()
    state = {"resolving": False, "stopping": False}

    async def produce() -> None:
        CONSUMER.set(consumer)  # in this task's context: the stream marks the events it hands out
        try:
            async with contextlib.aclosing(source):
                while True:
                    state["resolving"] = True
                    try:
                        result = await anext(source)
                    except StopAsyncIteration:
                        break
                    finally:
                        state["resolving"] = False
                    if state["stopping"]:
                        return  # closed here, between results
                    await handover.put(result)
        except Exception as error:
            outcome: Any = error
        else:
            outcome = _END
        if not state["stopping"]:  # else nobody takes it: a full handover would hold this task forever
            await handover.put(outcome)

    producer = asyncio.create_task(produce(), name="subscription:alone")
    try:
        while True:
            item = await handover.get()
            if item is _END:
                return
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        state["stopping"] = True
        if not (state["resolving"] and consumer.busy):
            producer.cancel()  # waiting for an event, or for its result to be taken
        if not producer.done():
            _ENDING.add(producer)
            producer.add_done_callback(_ENDING.discard)
