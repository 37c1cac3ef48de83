"""What the PostgreSQL and Redis brokers share: a supervised subscription connection.

Each worker holds one subscription connection, watched: when it drops the broker turns unhealthy
(``/readyz`` answers 503), reconnects with exponential backoff and jitter, then wakes every local
listener once (``deliver_all``) so each live stream re-reads the log from its cursor. Publishing
never raises: the mutation has committed already, and a lost wake-up only costs latency.
Each wake-up a worker publishes is timed until the broker server hands it back to the same
worker (``support_graph_broker_lag_seconds``: one clock, no skew between hosts).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import random
import time
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from graph.server import metrics
from graph.server.brokers.memory import CHANNEL, LocalFanout, decode, encode

log = logging.getLogger("support_graph.broker")
_instances = itertools.count(1)
#: wake-ups this worker published and has not heard back yet, at most (the oldest are forgotten)
IN_FLIGHT = 10_000


class Backoff:
    """Exponential backoff with jitter: ``first`` doubling up to ``cap``, each delay drawn from
    its upper half so that workers cut off together do not reconnect in lockstep."""

    def __init__(self, first: float = 0.1, cap: float = 5.0) -> None:
        self.first, self.cap = first, cap
        self._next = first

    def delay(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.cap)
        return random.uniform(delay / 2, delay)

    def reset(self) -> None:
        self._next = self.first


class RemoteBroker(LocalFanout):
    """What the PostgreSQL and Redis brokers share: a supervised subscription connection.

    ``start()`` returns once the first connection attempt has succeeded or failed; either way a
    supervisor task keeps the subscription alive from then on. Subclasses provide
    ``_subscribe`` (connect and subscribe; raise on failure), ``_watch`` (return or raise when the
    connection is lost), ``_unsubscribe`` (close it, never raising), ``_open_publisher``,
    ``_send`` and ``_close_publisher``; long waits end when ``_stopped`` is set.

    Options: ``channel``; reconnect backoff from ``first_backoff`` doubling to ``max_backoff``
    seconds, jittered (reset once a connection has stayed up that long); ``ping_interval`` for
    catching half-open connections; ``connect_timeout``; ``publish_timeout``, the most a
    mutation waits for its wake-up to be sent; ``name``, shown to the server.
    """

    kind = "remote"

    def __init__(
        self,
        *,
        channel: str = CHANNEL,
        first_backoff: float = 0.1,
        max_backoff: float = 5.0,
        ping_interval: float = 5.0,
        connect_timeout: float = 5.0,
        publish_timeout: float = 1.0,
        name: str | None = None,
    ) -> None:
        super().__init__()
        self.channel = channel
        self.first_backoff, self.max_backoff = first_backoff, max_backoff
        self.ping_interval, self.connect_timeout, self.publish_timeout = ping_interval, connect_timeout, publish_timeout
        #: shown to the server (application_name / CLIENT SETNAME) to tell the connections apart
        self.name = name or f"support-graph-broker-{os.getpid()}-{next(_instances)}"
        self._healthy = False
        self._task: asyncio.Task | None = None
        self._attempted: asyncio.Event | None = None
        self._stopped = asyncio.Event()
        self._publish_failing = False
        #: successful subscription connects, losses of one, wake-ups sent and dropped, received
        self.connects = self.disconnects = 0
        self.published = self.dropped = self.received = 0
        #: payload → when this worker published it (``time.monotonic``), until the broker
        #: server hands it back: the broker's lag, measured on one clock
        self._in_flight: dict[str, float] = {}

    @property
    def healthy(self) -> bool:
        """Subscribed right now: wake-ups from other workers reach this one."""
        return self._healthy

    async def start(self) -> None:
        if self._task is not None:
            return
        self._attempted, self._stopped = asyncio.Event(), asyncio.Event()
        await self._open_publisher()
        self._task = asyncio.create_task(self._supervise(), name=f"broker:{self.kind}")
        await self._attempted.wait()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            self._stopped.set()
            # Cancel until it is done: Python 3.11's wait_for can swallow a cancellation that
            # coincides with the awaited thing finishing; the loop also checks ``_stopped``.
            while not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=0.5)
        self._healthy = False
        await self._unsubscribe()
        await self._close_publisher()

    async def publish(self, tenant: str, seq: int) -> None:
        """Wake this worker's listeners at once, then every other worker through the server.

        Never raises: a failure is logged (once per outage) and the wake-up dropped."""
        self.deliver(tenant, seq)
        payload = encode(tenant, seq)
        self._sent(payload)
        try:
            await asyncio.wait_for(self._send(payload), self.publish_timeout)
        except Exception as error:
            self._in_flight.pop(payload, None)
            self.dropped += 1
            metrics.wakeup_dropped(self.kind)
            if not self._publish_failing:
                self._publish_failing = True
                log.warning("%s broker: could not publish a wake-up, dropping it (%s: %s); "
                            "streams on other workers catch up by polling", self.kind,
                            type(error).__name__, error)  # fmt: skip
            else:
                log.debug("%s broker: wake-up for %s:%s dropped (%r)", self.kind, tenant, seq, error)
        else:
            self.published += 1
            if self._publish_failing:
                self._publish_failing = False
                log.warning("%s broker: publishing again", self.kind)

    def _sent(self, payload: str) -> None:
        in_flight = self._in_flight
        in_flight.pop(payload, None)  # the same value again (a due time): timed from now
        if len(in_flight) >= IN_FLIGHT:  # lost on the way (a reconnect): forget the oldest
            del in_flight[next(iter(in_flight))]
        in_flight[payload] = time.monotonic()

    def _received(self, payload: str | bytes) -> None:
        wake = decode(payload)
        if wake is None:
            log.warning("%s broker: ignoring a malformed wake-up %r", self.kind, payload)
            return
        self.received += 1
        sent = self._in_flight.pop(payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload, None)
        if sent is not None:
            metrics.broker_lag(self.kind, time.monotonic() - sent)
        self.deliver(*wake)

    async def _pause(self, seconds: float) -> None:
        """Sleep, unless the broker is stopped meanwhile."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), seconds)

    async def _supervise(self) -> None:
        assert self._attempted is not None
        loop = asyncio.get_running_loop()
        backoff = Backoff(self.first_backoff, self.max_backoff)
        recovering = False
        while not self._stopped.is_set():
            try:
                await self._subscribe()
            except Exception as error:
                self._healthy = False
                recovering = True
                await self._unsubscribe()
                delay = backoff.delay()
                log.warning("%s broker: cannot subscribe (%s: %s); retrying in %.2fs",
                            self.kind, type(error).__name__, error, delay)  # fmt: skip
                self._attempted.set()
                await self._pause(delay)
                continue
            if self._stopped.is_set():
                break
            up_since = loop.time()
            self._healthy = True
            self.connects += 1
            if recovering:
                recovering = False
                log.warning("%s broker: subscribed again; waking every stream to catch up", self.kind)
            self._attempted.set()
            # Whatever was published while this worker was not subscribed is in the log only:
            # every stream re-reads from its cursor.
            self.deliver_all()
            try:
                await self._watch()
                reason = "connection closed"
            except Exception as error:
                reason = f"{type(error).__name__}: {error}"
            self._healthy = False
            await self._unsubscribe()
            if self._stopped.is_set():
                break
            self.disconnects += 1
            recovering = True
            if loop.time() - up_since >= self.max_backoff:
                backoff.reset()  # it had been stable: start over quickly; a flapping one backs off
            delay = backoff.delay()
            log.warning("%s broker: subscription lost (%s); reconnecting in %.2fs", self.kind, reason, delay)
            await self._pause(delay)
        self._attempted.set()

    # --- what a broker implements ---

    async def _subscribe(self) -> None:
        raise NotImplementedError

    async def _watch(self) -> None:
        raise NotImplementedError

    async def _unsubscribe(self) -> None:
        raise NotImplementedError

    async def _open_publisher(self) -> None:
        raise NotImplementedError

    async def _send(self, payload: str) -> None:
        raise NotImplementedError

    async def _close_publisher(self) -> None:
        raise NotImplementedError


def take_channel(url: str) -> tuple[str, str]:
    """The URL without our ``channel`` query parameter, and the channel (default ``CHANNEL``)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    channel = CHANNEL
    kept = []
    for key, value in query:
        if key == "channel":
            channel = value or CHANNEL
        else:
            kept.append((key, value))
    return urlunsplit(parts._replace(query=urlencode(kept))), channel
