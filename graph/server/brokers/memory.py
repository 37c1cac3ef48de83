"""The in-process broker, the local fan-out every broker delivers through, and the wire format.

Brokers carry small wake-ups — (tenant, sequence number) — from writers to live streams.

Subscribers read the events themselves from the database, so a lost wake-up costs latency,
never an event. ``InProcessBroker`` is the default, for one process. Across processes and hosts,
``PostgresBroker`` (LISTEN/NOTIFY) and ``RedisBroker`` (pub/sub) put every wake-up on one
channel; each worker holds one subscription connection and hands what arrives to its own
listeners (``LocalFanout``).

A worker's subscription connection is watched: when it drops the broker turns unhealthy
(``/readyz`` answers 503), reconnects with exponential backoff and jitter, then wakes every local
listener once (``deliver_all``) so each live stream re-reads the log from its cursor — whatever
was published while it was deaf is found there. Publishing never raises: the mutation has
committed already, and a lost wake-up only costs latency.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable

from resolvers.wakeups import Listener

log = logging.getLogger("support_graph.broker")

#: The one channel every wake-up travels on (PostgreSQL NOTIFY channel, Redis pub/sub channel).
CHANNEL = "support_graph_events"


class LocalFanout:
    """This worker's listeners per tenant; every broker delivers through one of these."""

    def __init__(self) -> None:
        self._listeners: dict[str, set[Listener]] = defaultdict(set)

    def listen(self, tenant: str, listener: Listener) -> Callable[[], None]:
        self._listeners[tenant].add(listener)

        def unsubscribe() -> None:
            listeners = self._listeners.get(tenant)
            if listeners is not None:
                listeners.discard(listener)
                if not listeners:
                    del self._listeners[tenant]

        return unsubscribe

    def deliver(self, tenant: str, seq: int) -> None:
        for listener in list(self._listeners.get(tenant, ())):
            try:
                listener(tenant, seq)
            except Exception:
                log.exception("broker listener for tenant %r failed", tenant)

    def deliver_all(self) -> None:
        """Wake every listener (after a reconnect: they re-read the log from their cursor)."""
        for tenant in list(self._listeners):
            self.deliver(tenant, -1)

    @property
    def count(self) -> int:
        return sum(len(v) for v in self._listeners.values())


class InProcessBroker(LocalFanout):
    """The default broker: wake-ups go straight to this process's listeners."""

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def publish(self, tenant: str, seq: int) -> None:
        self.deliver(tenant, seq)
        await asyncio.sleep(0)

    @property
    def healthy(self) -> bool:
        return True


# --- wire format -----------------------------------------------------------------------------


def encode(tenant: str, seq: int) -> str:
    """``tenant:seq`` — the whole payload of a wake-up."""
    return f"{tenant}:{seq}"


def decode(payload: str | bytes) -> tuple[str, int] | None:
    """``(tenant, seq)`` from a payload, or None if it is not one (tenants may contain ``:``)."""
    if isinstance(payload, bytes):
        payload = payload.decode("utf-8", "replace")
    tenant, _, seq = payload.rpartition(":")
    if not tenant:
        return None
    try:
        return tenant, int(seq)
    except ValueError:
        return None
