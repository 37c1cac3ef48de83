"""Live streams of the event log: listen first, replay after the cursor, then go live.

One ``TenantFeed`` per tenant per worker tails the log: a broker wake-up (or a slow poll, in
case a wake-up was lost) makes it read the new events once and hand them to every local
``Tap``. A stream replays what it missed from the database and then drains its tap, skipping
what it already sent, so nothing is lost or repeated across a reconnect.

A feed is supervised: a read that fails (the database restarting, a connection cut) is retried
with backoff, logged once per outage, and the feed reads on from its cursor once the database
answers again — every stream then gets exactly what committed meanwhile, as each skips what it
already sent. While a feed cannot read, ``Live.healthy`` is False (``/readyz`` answers 503). A
feed that cannot read for ``give_up_after`` seconds ends its streams with an ``UNAVAILABLE``
error telling clients to resubscribe with ``after`` (their last event id).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, and_, bindparam, func, select
from sqlmodel import col

from models.db.engine import Database
from models.db.plain import as_entity
from models.event import Event
from models.ids import type_of
from resolvers.errors import RETRY_AFTER_SECONDS, BadInput, DomainError
from resolvers.wakeups import Broker

BATCH = 500
#: A tap that falls this far behind drops its queue and catches up from the database.
TAP_LIMIT = 10_000
#: Backoff between the reads of a feed that cannot read: from the first to the last, doubling.
RETRY_FIRST, RETRY_LAST = 0.05, 2.0
#: How long a feed keeps retrying before it ends its streams (they resume with ``after``).
GIVE_UP_AFTER = 300.0

log = logging.getLogger("support_graph.live")


class Consumer:
    """Whoever iterates a stream, told whether it holds an event it has not finished with.

    Set in ``CONSUMER`` (in the consuming task's context), it lets a shared execution stop
    between results rather than in the middle of resolving one."""

    busy = False


CONSUMER: ContextVar[Consumer | None] = ContextVar("live_consumer", default=None)


class FeedEnded(DomainError):
    """A stream ended because its feed gave up reading the log: ``UNAVAILABLE``, with its own
    message (how to resume), which the generic outage answer would replace."""

    code = "UNAVAILABLE"


def _gave_up(seconds: float) -> FeedEnded:
    return FeedEnded(
        f"The live feed could not read the event log for {seconds:.0f} s and was ended; resubscribe with "
        "`after` set to the last event id you received to continue without loss.",
        retryAfter=RETRY_AFTER_SECONDS,
    )


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

    def sql(self) -> ColumnElement[bool] | None:
        conditions: list[ColumnElement[bool]] = []
        if self.types:
            conditions.append(col(Event.type).in_(self.types))
        if self.entity_types:
            conditions.append(col(Event.entity_type).in_(self.entity_types))
        if self.target is not None:
            conditions.append(col(Event.target) == self.target)
        return and_(*conditions) if conditions else None


class Tap:
    """One stream's inbox on its tenant's feed."""

    def __init__(self, start: int) -> None:
        #: the feed's position when the tap opened: a live stream starts after it
        self.start = start
        self.queue: deque[Event] = deque()
        self.overflowed = False
        self.ready = asyncio.Event()
        #: why the feed ended this tap (it gave up reading), if it did
        self.failure: Exception | None = None

    def push(self, events: Sequence[Event]) -> None:
        if len(self.queue) + len(events) > TAP_LIMIT:
            self.queue.clear()
            self.overflowed = True
        else:
            self.queue.extend(events)
        self.ready.set()

    def fail(self, error: Exception) -> None:
        self.queue.clear()
        self.failure = error
        self.ready.set()


class TenantFeed:
    """Tails one tenant's event log for every tap of this worker."""

    def __init__(
        self, db: Database, broker: Broker, tenant: str, poll_interval: float, give_up_after: float = GIVE_UP_AFTER
    ) -> None:
        self.db, self.broker, self.tenant, self.poll_interval = db, broker, tenant, poll_interval
        self.give_up_after = give_up_after
        self.taps: set[Tap] = set()
        self.cursor = 0
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self._unlisten: Callable[[], None] | None = None
        #: False while reads fail (an outage), until one succeeds again
        self.healthy = True
        #: the feed gave up: it reads no more, and its tenant gets a new feed
        self.ended = False
        self.on_end: Callable[[TenantFeed], None] | None = None

    async def start(self) -> None:
        self._unlisten = self.broker.listen(self.tenant, self._on_wake)
        self.cursor = await last_seq(self.db, self.tenant)
        self.task = asyncio.create_task(self._run(), name=f"feed:{self.tenant}")

    def _on_wake(self, tenant: str, seq: int) -> None:
        if seq < 0 or seq > self.cursor:
            self.wake.set()

    async def _run(self) -> None:
        """Read on every wake-up (or poll) until stopped; retry failed reads with backoff."""
        loop = asyncio.get_running_loop()
        failing_since: float | None = None
        delay = RETRY_FIRST
        while True:
            wait = self.poll_interval if failing_since is None else delay
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self.wake.wait()
            self.wake.clear()
            try:
                await self._read_new()
            except Exception as error:  # an outage (or a bug): the feed must outlive it
                now = loop.time()
                if failing_since is None:
                    failing_since = now
                    self.healthy = False
                    log.warning(
                        "live feed of tenant %r cannot read the event log (%s: %s); retrying",
                        self.tenant, type(error).__name__, error,
                    )  # fmt: skip
                elif now - failing_since >= self.give_up_after:
                    log.error(
                        "live feed of tenant %r gave up after %.0f s without reading the event log; "
                        "its %d streams were ended",
                        self.tenant, now - failing_since, len(self.taps),
                    )  # fmt: skip
                    self._give_up(_gave_up(now - failing_since))
                    return
                delay = min(delay * 2, RETRY_LAST)
                continue
            if failing_since is not None:
                log.warning(
                    "live feed of tenant %r reads the event log again after %.1f s",
                    self.tenant, loop.time() - failing_since,
                )  # fmt: skip
                failing_since, delay = None, RETRY_FIRST
                self.healthy = True

    async def _read_new(self) -> None:
        """Hand every event after the cursor to each tap, in batches."""
        while True:
            batch = await read_after(self.db, self.tenant, self.cursor)
            if batch:
                self.cursor = _seq(batch[-1])
                for tap in list(self.taps):
                    tap.push(batch)
            if len(batch) < BATCH:
                return

    def _give_up(self, error: Exception) -> None:
        self.ended = True
        self.healthy = True  # nothing of it is left to wait for; its tenant starts over
        for tap in list(self.taps):
            tap.fail(error)
        if self.on_end is not None:
            self.on_end(self)

    async def stop(self) -> None:
        if self._unlisten:
            self._unlisten()
            self._unlisten = None
        if self.task:
            self.task.cancel()
            await asyncio.wait({self.task})


class Live:
    """This worker's live streams: one feed per tenant with subscribers, made and ended on demand."""

    def __init__(
        self, db: Database, broker: Broker, *, poll_interval: float = 10.0, give_up_after: float = GIVE_UP_AFTER
    ) -> None:
        self.db, self.broker, self.poll_interval = db, broker, poll_interval
        #: how long a feed retries reading before it ends its streams
        self.give_up_after = give_up_after
        self.feeds: dict[str, TenantFeed] = {}
        self._lock = asyncio.Lock()

    @property
    def healthy(self) -> bool:
        """Every feed of this worker can read the event log (False during an outage)."""
        return all(feed.healthy for feed in self.feeds.values())

    def _ended(self, feed: TenantFeed) -> None:
        if self.feeds.get(feed.tenant) is feed:
            del self.feeds[feed.tenant]
            if feed._unlisten:
                feed._unlisten()
                feed._unlisten = None

    @contextlib.asynccontextmanager
    async def tap(self, tenant: str) -> AsyncIterator[Tap]:
        async with self._lock:
            feed = self.feeds.get(tenant)
            if feed is None:
                feed = TenantFeed(self.db, self.broker, tenant, self.poll_interval, self.give_up_after)
                feed.on_end = self._ended
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
            elif feed.ended and not feed.taps:
                await feed.stop()

    async def stream(
        self, tenant: str, *, after: str | None = None, only: EventFilter = EventFilter()
    ) -> AsyncIterator[Event]:
        """Events of ``tenant`` matching ``only``, in commit order: those after the event ``after``
        first (replayed from the log), then live ones as they commit."""
        cursor = None if after is None else await seq_of(self.db, tenant, after)
        consumer = CONSUMER.get()
        async with self.tap(tenant) as tap:
            if cursor is None:
                cursor = tap.start
            else:
                async for event in replay(self.db, tenant, cursor, only):
                    cursor = _seq(event)
                    if consumer is not None:
                        consumer.busy = True
                    yield event
                    if consumer is not None:
                        consumer.busy = False
            while True:
                if tap.failure is not None:
                    raise tap.failure
                if tap.overflowed:
                    tap.overflowed = False
                    tap.queue.clear()
                    async for event in replay(self.db, tenant, cursor, only):
                        cursor = _seq(event)
                        if consumer is not None:
                            consumer.busy = True
                        yield event
                        if consumer is not None:
                            consumer.busy = False
                while tap.queue:
                    event = tap.queue.popleft()
                    seq = _seq(event)
                    if seq <= cursor:
                        continue
                    cursor = seq
                    if only.matches(event):
                        if consumer is not None:
                            consumer.busy = True
                        yield event
                        if consumer is not None:
                            consumer.busy = False
                tap.ready.clear()
                if not tap.queue and not tap.overflowed and tap.failure is None:
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
        seq = await session.scalar(select(col(Event.seq)).where(col(Event.id) == event_id, col(Event.tenant) == tenant))
    if seq is None:
        raise BadInput(f"No event {event_id!r} to resume after", argument="after")
    return seq


async def last_seq(db: Database, tenant: str) -> int:
    async with db.reading() as session:
        # ``func.coalesce`` is typed Any by SQLAlchemy; with a 0 fallback it is always an int
        last: int = await session.scalar(
            select(func.coalesce(func.max(col(Event.seq)), 0)).where(col(Event.tenant) == tenant)
        )
    return last


async def read_after(
    db: Database, tenant: str, seq: int, condition: ColumnElement[bool] | None = None, limit: int = BATCH
) -> list[Event]:
    """The first ``limit`` events of ``tenant`` after ``seq`` (that meet ``condition``), in order.

    Without a condition — what every live feed reads on each wake-up — a plain read
    (models/db/plain.py) compiled once per ``limit``: a session around it cost more than the
    read itself, on the event loop between a commit and its subscribers' results."""
    if condition is None:
        statement = db.plain.compiled(("events after", limit), partial(_events_after, limit))
        return [as_entity(Event, row) for row in await db.plain.rows(statement, {"tenant": tenant, "seq": seq})]
    filtered = _events_after(limit).where(condition)
    async with db.reading() as session:  # a filtered replay: its statement (an IN list…) differs per stream
        found = await session.execute(filtered, {"tenant": tenant, "seq": seq})
        return [as_entity(Event, row._asdict()) for row in found]


def _events_after(limit: int) -> Select[Any]:
    table = Event.__table__
    return (
        select(*table.columns)
        .where(table.c.tenant == bindparam("tenant"), table.c.seq > bindparam("seq"))
        .order_by(table.c.seq)
        .limit(limit)
    )


async def replay(db: Database, tenant: str, seq: int, only: EventFilter) -> AsyncIterator[Event]:
    """Stored events after ``seq`` that match, in commit order, read in batches."""
    condition = only.sql()
    while True:
        batch = await read_after(db, tenant, seq, condition)
        for event in batch:
            yield event
        if len(batch) < BATCH:
            return
        seq = _seq(batch[-1])


def _seq(event: Event) -> int:
    """A stored event's sequence number: assigned on append, never NULL in the log (only an
    event not yet appended has none, and none of those reaches a feed or a replay)."""
    return cast(int, event.seq)
