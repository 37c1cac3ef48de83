"""Live streams of the event log: listen first, replay after the cursor, then go live.

One ``TenantFeed`` per tenant per worker tails the log: a broker wake-up (or a slow poll, in
case a wake-up was lost) makes it read the new events once and hand them to every local
``Tap``. A stream replays what it missed from the database and then drains its tap, skipping
what it already sent, so nothing is lost or repeated across a reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import and_, func, select

from models.db.engine import Database
from models.event import Event
from models.ids import type_of
from resolvers.errors import BadInput
from resolvers.wakeups import Broker

BATCH = 500
#: A tap that falls this far behind drops its queue and catches up from the database.
TAP_LIMIT = 10_000


@dataclass(frozen=True)
class EventFilter:
    """Which events a stream wants; empty means all."""

    types: frozenset[str] = frozenset()
    entity_types: frozenset[str] = frozenset()
    target: str | None = None

    def matches(self, event: Event) -> bool:
        return (
            (not self.types or event.type in self.types)
            and (not self.entity_types or event.entity_type in self.entity_types)
            and (self.target is None or event.target == self.target)
        )

    def sql(self):
        conditions = []
        if self.types:
            conditions.append(Event.type.in_(self.types))
        if self.entity_types:
            conditions.append(Event.entity_type.in_(self.entity_types))
        if self.target is not None:
            conditions.append(Event.target == self.target)
        return and_(*conditions) if conditions else None


class Tap:
    """One stream's inbox on its tenant's feed."""

    def __init__(self, start: int) -> None:
        #: the feed's position when the tap opened: a live stream starts after it
        self.start = start
        self.queue: deque[Event] = deque()
        self.overflowed = False
        self.ready = asyncio.Event()

    def push(self, events: Sequence[Event]) -> None:
        if len(self.queue) + len(events) > TAP_LIMIT:
            self.queue.clear()
            self.overflowed = True
        else:
            self.queue.extend(events)
        self.ready.set()


class TenantFeed:
    """Tails one tenant's event log for every tap of this worker."""

    def __init__(self, db: Database, broker: Broker, tenant: str, poll_interval: float) -> None:
        self.db, self.broker, self.tenant, self.poll_interval = db, broker, tenant, poll_interval
        self.taps: set[Tap] = set()
        self.cursor = 0
        self.wake = asyncio.Event()
        self.task: asyncio.Task | None = None
        self._unlisten: Callable[[], None] | None = None

    async def start(self) -> None:
        self._unlisten = self.broker.listen(self.tenant, self._on_wake)
        self.cursor = await last_seq(self.db, self.tenant)
        self.task = asyncio.create_task(self._run(), name=f"feed:{self.tenant}")

    def _on_wake(self, tenant: str, seq: int) -> None:
        if seq < 0 or seq > self.cursor:
            self.wake.set()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_interval):
                    await self.wake.wait()
            self.wake.clear()
            while True:
                batch = await read_after(self.db, self.tenant, self.cursor)
                if batch:
                    self.cursor = batch[-1].seq
                    for tap in list(self.taps):
                        tap.push(batch)
                if len(batch) < BATCH:
                    break

    async def stop(self) -> None:
        if self._unlisten:
            self._unlisten()
            self._unlisten = None
        if self.task:
            self.task.cancel()
            await asyncio.wait({self.task})


class Live:
    """This worker's live streams: one feed per tenant with subscribers, made and ended on demand."""

    def __init__(self, db: Database, broker: Broker, *, poll_interval: float = 10.0) -> None:
        self.db, self.broker, self.poll_interval = db, broker, poll_interval
        self.feeds: dict[str, TenantFeed] = {}
        self._lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def tap(self, tenant: str) -> AsyncIterator[Tap]:
        async with self._lock:
            feed = self.feeds.get(tenant)
            if feed is None:
                feed = TenantFeed(self.db, self.broker, tenant, self.poll_interval)
                try:
                    await feed.start()
                except BaseException:  # cancelled or failed half-way: leave nothing behind
                    await asyncio.shield(feed.stop())
                    raise
                self.feeds[tenant] = feed
            tap = Tap(feed.cursor)
            feed.taps.add(tap)
        try:
            yield tap
        finally:
            feed.taps.discard(tap)
            if not feed.taps and self.feeds.get(tenant) is feed:
                del self.feeds[tenant]
                await feed.stop()

    async def stream(
        self, tenant: str, *, after: str | None = None, only: EventFilter = EventFilter()
    ) -> AsyncIterator[Event]:
        """Events of ``tenant`` matching ``only``, in commit order: those after the event ``after``
        first (replayed from the log), then live ones as they commit."""
        cursor = None if after is None else await seq_of(self.db, tenant, after)
        async with self.tap(tenant) as tap:
            if cursor is None:
                cursor = tap.start
            else:
                async for event in replay(self.db, tenant, cursor, only):
                    cursor = event.seq
                    yield event
            while True:
                if tap.overflowed:
                    tap.overflowed = False
                    tap.queue.clear()
                    async for event in replay(self.db, tenant, cursor, only):
                        cursor = event.seq
                        yield event
                while tap.queue:
                    event = tap.queue.popleft()
                    if event.seq <= cursor:
                        continue
                    cursor = event.seq
                    if only.matches(event):
                        yield event
                tap.ready.clear()
                if not tap.queue and not tap.overflowed:
                    await tap.ready.wait()

    async def stop(self) -> None:
        for feed in list(self.feeds.values()):
            await feed.stop()
        self.feeds.clear()

    @property
    def subscribers(self) -> int:
        return sum(len(feed.taps) for feed in self.feeds.values())


async def seq_of(db: Database, tenant: str, event_id: str) -> int:
    """The sequence number of a cursor event of this tenant; ``BadInput`` if there is none."""
    if type_of(event_id) != "Event":
        raise BadInput(f"after must be an event id (evt_…), not {event_id!r}", argument="after")
    async with db.reading() as session:
        seq = await session.scalar(select(Event.seq).where(Event.id == event_id, Event.tenant == tenant))
    if seq is None:
        raise BadInput(f"No event {event_id!r} to resume after", argument="after")
    return seq


async def last_seq(db: Database, tenant: str) -> int:
    async with db.reading() as session:
        return await session.scalar(select(func.coalesce(func.max(Event.seq), 0)).where(Event.tenant == tenant))


async def read_after(db: Database, tenant: str, seq: int, condition=None, limit: int = BATCH) -> list[Event]:
    statement = select(Event).where(Event.tenant == tenant, Event.seq > seq)
    if condition is not None:
        statement = statement.where(condition)
    async with db.reading() as session:
        return list((await session.execute(statement.order_by(Event.seq).limit(limit))).scalars())


async def replay(db: Database, tenant: str, seq: int, only: EventFilter) -> AsyncIterator[Event]:
    """Stored events after ``seq`` that match, in commit order, read in batches."""
    condition = only.sql()
    while True:
        batch = await read_after(db, tenant, seq, condition)
        for event in batch:
            yield event
        if len(batch) < BATCH:
            return
        seq = batch[-1].seq
