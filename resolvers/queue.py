"""Live ticket queues: a list query that stays open, evaluated once per event for all who watch it.

``Queues.follow`` is what the ``ticketQueue`` subscription iterates: a ``SNAPSHOT`` of the page,
then one message per change to it (``resolvers.queue_window``). Every follower of the same
``QueueSpec`` — tenant, ``where``, ``orderBy``, ``first`` — on this worker shares one
``SharedQueue``: one task that reads the tenant's events from its live feed in commit order,
applies each to one window (``resolvers.queue_reads.advance``) and hands the messages to every
follower. An event that cannot change the list costs the queue no read at all. A read that fails
because the database cannot be reached is retried with backoff, as a live feed does, until the
feed's ``give_up_after``; then the queue ends with ``UNAVAILABLE`` and its clients resume.

Resuming with ``after`` (an event id): a queue keeps the messages of its recent events (``RING``);
a cursor within them gets the messages after it. An older cursor, within ``CATCH_UP`` events,
has its messages computed afresh — the list as it stood at the cursor, then each event since —
and a cursor older still, or one that cannot be resumed, gets a ``SNAPSHOT`` instead. A follower
that falls ``BACKLOG`` messages behind is sent a ``SNAPSHOT`` of the page as it is then, in place
of the messages it had not read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlmodel import col

from models.entities import Ticket
from models.event import Event
from resolvers.errors import RETRY_AFTER_SECONDS, is_unavailable
from resolvers.live import CONSUMER, RETRY_FIRST, RETRY_LAST, FeedEnded, Live, Tap, read_after, seq_of
from resolvers.query import compile_where
from resolvers.queue_reads import advance, check_collation, window_at
from resolvers.queue_window import QueueSpec, QueueUpdate, QueueUpdateKind, Window

#: events whose messages a queue keeps for followers that resume
RING = 1_024
#: how many events a resuming follower may have missed and still get the messages, not a snapshot
CATCH_UP = 2_000
#: messages a follower may have waiting before it is sent a fresh snapshot instead
BACKLOG = 5_000

log = logging.getLogger("support_graph.queue")
T = TypeVar("T")

#: a batch of messages with the event they bring the page to
Batch = tuple[int, list[QueueUpdate]]


@dataclass
class Position:
    """Where a queue stream's messages stand, for whoever consumes it (a shared execution).

    Set in ``QUEUE_POSITION`` in the consuming task's context: before each message the stream
    sets ``seq`` to the event the message brings the page to, and ``stateful`` (its messages
    mean something only after a snapshot). ``snapshot_only`` asks a stream for the page of its
    running queue, alone: what a late subscriber of a shared execution starts from."""

    seq: int = 0
    stateful: bool = False
    snapshot_only: bool = False


QUEUE_POSITION: ContextVar[Position | None] = ContextVar("queue_position", default=None)


class Follower:
    """One subscriber's inbox on a shared queue."""

    def __init__(self) -> None:
        self.inbox: deque[Batch] = deque()
        self.waiting = 0
        self.ready = asyncio.Event()
        #: the event the page it starts from stands at, and that page (set once the queue is ready)
        self.since: int | None = None
        self.start: list[Ticket] = []
        self.start_cursor: str | None = None
        self.failure: BaseException | None = None

    def begin(self, queue: SharedQueue) -> None:
        self.since, self.start, self.start_cursor = queue.seq, queue.page, queue.cursor
        self.ready.set()

    def push(self, batch: Batch, queue: SharedQueue) -> None:
        if self.waiting + len(batch[1]) > BACKLOG:
            self.inbox.clear()
            snapshot = QueueUpdate(QueueUpdateKind.SNAPSHOT, queue.page, cursor=queue.cursor)
            self.inbox.append((queue.seq, [snapshot]))
            self.waiting = 1
        else:
            self.inbox.append(batch)
            self.waiting += len(batch[1])
        self.ready.set()

    def fail(self, error: BaseException) -> None:
        self.failure = error
        self.ready.set()


class SharedQueue:
    """One queue evaluated for every follower of its spec on this worker."""

    def __init__(self, queues: Queues, spec: QueueSpec) -> None:
        self.queues, self.spec = queues, spec
        self.followers: set[Follower] = set()
        #: the event the page stands at, its id, and the page then
        self.seq = 0
        self.cursor: str | None = None
        self.page: list[Ticket] = []
        #: recent events' messages; every message of an event after ``ring_from`` is in it
        self.ring: deque[Batch] = deque()
        self.ring_from = 0
        self.started = False
        self.task = asyncio.create_task(self._run(), name=f"queue:{spec.tenant}")

    async def _run(self) -> None:
        db = self.queues.db
        try:
            async with self.queues.live.tap(self.spec.tenant) as tap:
                await self._retrying(lambda: check_collation(db))
                head = await self._retrying(lambda: window_at(db, self.spec))
                window = Window(self.spec, head.rows, head.bound)
                self.seq = self.ring_from = head.seq
                self.cursor, self.page, self.started = head.cursor, window.page(), True
                for follower in self.followers:
                    follower.begin(self)
                await self._follow(tap, window)
        except Exception as error:  # the feed or the queue gave up, or a bug: every follower hears it
            if not isinstance(error, FeedEnded):  # (one that gives up has said so)
                log.exception("live queue of tenant %r ended", self.spec.tenant)
            for follower in self.followers:
                follower.fail(error)
        finally:
            self.queues._drop(self)

    async def _follow(self, tap: Tap, window: Window) -> None:
        """Apply each event after the page's, in commit order, from the tap (or the log)."""
        db, tenant = self.queues.db, self.spec.tenant
        while True:
            if tap.failure is not None:
                raise tap.failure
            if tap.overflowed:  # the tap dropped its queue: read the log from where the page stands
                tap.overflowed = False
                tap.queue.clear()
                while batch := await self._retrying(lambda: read_after(db, tenant, self.seq)):
                    for event in batch:
                        await self._apply(window, event)
            while tap.queue:
                event = tap.queue.popleft()
                if _seq(event) > self.seq:
                    await self._apply(window, event)
            tap.ready.clear()
            if not tap.queue and not tap.overflowed and tap.failure is None:
                await tap.ready.wait()

    async def _apply(self, window: Window, event: Event) -> None:
        updates = await self._retrying(lambda: advance(self.queues.db, window, event))
        self.seq, self.cursor = _seq(event), event.id
        if not updates:
            return
        self.page = window.page()
        batch = (self.seq, updates)
        self.ring.append(batch)
        while len(self.ring) > RING:
            self.ring_from = self.ring.popleft()[0]
        for follower in list(self.followers):
            follower.push(batch, self)

    async def _retrying(self, read: Callable[[], Awaitable[T]]) -> T:
        """``read()``, again and again through an outage (the database cannot be reached), with
        backoff, as a live feed does; after the feed's ``give_up_after``, the queue ends."""
        loop = asyncio.get_running_loop()
        failing_since: float | None = None
        delay = RETRY_FIRST
        while True:
            try:
                result = await read()
            except Exception as error:
                if not is_unavailable(error):
                    raise
                now = loop.time()
                if failing_since is None:
                    failing_since = now
                    log.warning("live queue of tenant %r cannot read (%s); retrying", self.spec.tenant, error)
                elif now - failing_since >= self.queues.live.give_up_after:
                    raise FeedEnded(
                        f"The live queue could not read for {now - failing_since:.0f} s and was ended; resubscribe "
                        "with `after` set to the last cursor you applied to continue without loss.",
                        retryAfter=RETRY_AFTER_SECONDS,
                    ) from error
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_LAST)
                continue
            if failing_since is not None:
                log.warning("live queue of tenant %r reads again", self.spec.tenant)
            return result

    def stop(self) -> None:
        self.task.cancel()


class Queues:
    """This worker's live queues, one ``SharedQueue`` per spec with followers."""

    def __init__(self, live: Live) -> None:
        # weakly: ``queues_for`` keeps the queues of a ``Live`` only as long as it lives
        self._live, self.db = weakref.ref(live), live.db
        self.shared: dict[QueueSpec, SharedQueue] = {}

    def spec(
        self, tenant: str, *, where: dict[str, Any] | None, order: Sequence[tuple[str, bool]], first: int
    ) -> QueueSpec:
        """The spec of a queue; ``BadInput`` for a ``first`` out of range or a bad ``where``."""
        compile_where(Ticket, where, self.db.dialect)  # refuses what the list query refuses, before any read
        return QueueSpec.of(tenant, where, order, first)

    async def follow(self, spec: QueueSpec, *, after: str | None = None) -> AsyncIterator[QueueUpdate]:
        """The queue's messages: a ``SNAPSHOT`` (or, with ``after``, the changes since that
        event), then each change as its event commits. Where a ``Position`` is set (a shared
        execution), each message's event is told in it before the message is handed out."""
        resume = None if after is None else await seq_of(self.db, spec.tenant, after)
        position = QUEUE_POSITION.get()
        queue = self.shared.get(spec)
        if position is not None and position.snapshot_only and resume is None and queue and queue.started:
            position.seq = queue.seq
            yield QueueUpdate(QueueUpdateKind.SNAPSHOT, queue.page, cursor=queue.cursor)
            return
        if queue is None:
            queue = self.shared[spec] = SharedQueue(self, spec)
        follower = Follower()
        queue.followers.add(follower)
        if queue.started:
            follower.begin(queue)
        consumer = CONSUMER.get()  # told when a message is out, so a shared execution stops between them
        try:
            await follower.ready.wait()
            if follower.failure is not None:
                raise follower.failure
            assert follower.since is not None
            pending = deque(await self._opening(queue, follower, resume))
            skip = follower.since if resume is None else max(follower.since, resume)
            while True:
                while pending:
                    seq, update = pending.popleft()
                    if position is not None:
                        position.seq, position.stateful = seq, True
                    if consumer is not None:
                        consumer.busy = True
                    yield update
                    if consumer is not None:
                        consumer.busy = False
                while follower.inbox:
                    seq, updates = follower.inbox.popleft()
                    follower.waiting -= len(updates)
                    if seq > skip or updates[0].kind is QueueUpdateKind.SNAPSHOT:
                        pending.extend((seq, update) for update in updates)
                if pending:
                    continue
                if follower.failure is not None:
                    raise follower.failure
                follower.ready.clear()
                await follower.ready.wait()
        finally:
            queue.followers.discard(follower)
            if not queue.followers:
                self._drop(queue)
                queue.stop()

    async def _opening(
        self, queue: SharedQueue, follower: Follower, resume: int | None
    ) -> list[tuple[int, QueueUpdate]]:
        """What a follower gets first, each with its event: the page, or the messages since ``resume``."""
        since = follower.since
        assert since is not None
        snapshot = [(since, QueueUpdate(QueueUpdateKind.SNAPSHOT, follower.start, cursor=follower.start_cursor))]
        if resume is None or resume >= since:
            return [] if resume is not None else snapshot
        if resume >= queue.ring_from:
            return [(seq, update) for seq, updates in list(queue.ring) if resume < seq <= since for update in updates]
        if since - resume > CATCH_UP:
            return snapshot
        return await self.catch_up(queue.spec, resume, since)

    async def catch_up(self, spec: QueueSpec, start: int, end: int) -> list[tuple[int, QueueUpdate]]:
        """The messages of the events after ``start`` up to ``end``, each with its event, from
        the list as it stood at ``start``: what a follower that stopped there missed."""
        head = await window_at(self.db, spec, seq=start)
        window = Window(spec, head.rows, head.bound)
        updates: list[tuple[int, QueueUpdate]] = []
        seq = start
        only_tickets = col(Event.entity_type) == "Ticket"
        while seq < end and (batch := await read_after(self.db, spec.tenant, seq, only_tickets)):
            for event in batch:
                seq = _seq(event)
                if seq > end:
                    return updates
                updates += [(seq, update) for update in await advance(self.db, window, event)]
        return updates

    def _drop(self, queue: SharedQueue) -> None:
        if self.shared.get(queue.spec) is queue:
            del self.shared[queue.spec]

    @property
    def live(self) -> Live:
        live = self._live()
        assert live is not None, "the worker's live streams outlive its queues"
        return live

    @property
    def subscribers(self) -> int:
        return sum(len(queue.followers) for queue in self.shared.values())

    async def stop(self) -> None:
        """End every queue (the server is stopping)."""
        queues = list(self.shared.values())
        self.shared.clear()
        for queue in queues:
            queue.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*(queue.task for queue in queues), return_exceptions=True)


_BY_LIVE: weakref.WeakKeyDictionary[Live, Queues] = weakref.WeakKeyDictionary()


def queues_for(live: Live) -> Queues:
    """The queues of the worker whose live streams are ``live`` (made on first use)."""
    queues = _BY_LIVE.get(live)
    if queues is None:
        queues = _BY_LIVE[live] = Queues(live)
    return queues


def _seq(event: Event) -> int:
    assert event.seq is not None  # numbered at commit: every event read from the log has one
    return event.seq
