"""The port through which committed units of work wake live feeds: the ``Broker`` protocol.

A wake-up is ``(tenant, sequence number)``; feeds read the events themselves from the log, so a
lost wake-up costs latency, never an event. The brokers that implement this protocol (in-process,
PostgreSQL LISTEN/NOTIFY, Redis pub/sub) are infrastructure and live in ``graph.server.brokers``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

#: ``listener(tenant, seq)``; ``seq`` is -1 for "re-read from your cursor" after a reconnect
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
