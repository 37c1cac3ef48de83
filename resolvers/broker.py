"""Brokers carry small wake-ups — (tenant, sequence number) — from writers to live streams.

Subscribers read the events themselves from the database, so a lost wake-up costs latency,
never an event. ``InProcessBroker`` is the default, for one process.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from typing import Protocol

Listener = Callable[[str, int], None]


class Broker(Protocol):
    """Publish wake-ups after commit; deliver them to this worker's listeners."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def publish(self, tenant: str, seq: int) -> None: ...
    def listen(self, tenant: str, listener: Listener) -> Callable[[], None]:
        """Call ``listener(tenant, seq)`` on every wake-up of ``tenant``; returns the unsubscribe."""
        ...

    @property
    def healthy(self) -> bool: ...


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
            listener(tenant, seq)

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


def broker_from_url(url: str) -> Broker:
    """``memory://`` (default); PostgreSQL and Redis brokers arrive with the Scale-out issue."""
    if url in ("", "memory://", "memory"):
        return InProcessBroker()
    raise ValueError(f"Unsupported broker URL {url!r}: use memory://")
