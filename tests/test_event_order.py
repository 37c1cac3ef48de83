"""Sequence numbers follow commit order: a reader tailing the log never skips an event, even
when writers linger between writing their events and committing."""

import asyncio
import random
import uuid

from models.entities import Ticket
from resolvers.live import read_after
from resolvers.unit import UnitOfWork

WRITERS = 12
ROUNDS = 3


class LingeringUnit(UnitOfWork):
    """A unit of work that sleeps after its events are written, before its commit (on
    PostgreSQL: between its closing statement and its COMMIT; also used by test_write_driver)."""

    async def __aenter__(self) -> "LingeringUnit":
        await super().__aenter__()
        commit = self._link.commit

        async def linger_then_commit() -> None:
            await asyncio.sleep(random.uniform(0, 0.03))
            await commit()

        self._link.commit = linger_then_commit  # type: ignore[method-assign]
        return self


def test_a_reader_never_skips_an_event(server):
    db = server.services.db
    tenant = f"order-{uuid.uuid4().hex[:8]}"

    async def write(n: int) -> None:
        for _ in range(ROUNDS):
            async with LingeringUnit(db, tenant=tenant, actor=f"writer-{n}", hooks=server.services.hooks) as uow:
                await uow.create(Ticket, {"subject": f"from writer {n}"})

    async def scenario() -> tuple[list[int], list[int]]:
        seen: list[int] = []
        writers = asyncio.gather(*(write(n) for n in range(WRITERS)))
        cursor = 0
        while not writers.done() or (batch := await read_after(db, tenant, cursor)):
            batch = await read_after(db, tenant, cursor)
            seen.extend(e.seq for e in batch)
            if batch:
                cursor = batch[-1].seq
            await asyncio.sleep(0.001)
        await writers
        stored = [e.seq for e in await read_after(db, tenant, 0, limit=10_000)]
        return seen, stored

    seen, stored = server.run(scenario())
    # each created ticket is two events: Ticket.Created and its hook's Activity.Created
    assert stored == list(range(1, 2 * WRITERS * ROUNDS + 1))
    assert seen == stored, "the tailing reader skipped or repeated an event"
