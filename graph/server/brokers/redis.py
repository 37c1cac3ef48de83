"""The Redis broker: wake-ups over pub/sub, for deployments that already run Redis."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from graph.server.brokers.supervisor import RemoteBroker, take_channel


class RedisBroker(RemoteBroker):
    """Redis pub/sub: one subscribed connection per worker, PUBLISH on the regular client.

    URL: ``redis://`` or ``rediss://`` (``redis://host:6379/0``), optionally ``?channel=NAME`` so
    that several deployments can share one Redis. redis-py's own silent reconnects are turned off
    on the subscription so that a drop is seen (and streams catch up after it).
    """

    kind = "redis"

    def __init__(self, url: str, **options: Any) -> None:
        url, channel = take_channel(url)
        options.setdefault("channel", channel)
        super().__init__(**options)
        self.url = url
        self._client: Any = None  # the subscription's redis.asyncio.Redis
        self._pubsub: Any = None
        self._publisher: Any = None

    def _redis(self, retries: int, name: str) -> Any:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        return Redis.from_url(
            self.url, retry=Retry(NoBackoff(), retries), socket_connect_timeout=self.connect_timeout,
            socket_keepalive=True, client_name=name,
        )  # fmt: skip

    async def _subscribe(self) -> None:
        self._client = self._redis(0, self.name)
        self._pubsub = self._client.pubsub()
        await asyncio.wait_for(self._pubsub.subscribe(self.channel), self.connect_timeout)
        # Subscribed only once the server says so: wake-ups published from then on reach us.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.connect_timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError("no subscribe confirmation")
            message = await self._pubsub.get_message(timeout=remaining)
            if message is None:
                continue
            if message["type"] == "subscribe":
                return
            self._handle(message)

    def _handle(self, message: dict) -> None:
        if message["type"] == "message":
            self._received(message["data"])

    async def _watch(self) -> None:
        pinged = False
        while not self._stopped.is_set():
            message = await self._pubsub.get_message(timeout=self.ping_interval)
            if message is not None:
                pinged = False  # anything heard proves the connection alive
                self._handle(message)
                continue
            if pinged:
                raise ConnectionError(f"no answer to PING within {self.ping_interval}s")
            await asyncio.wait_for(self._pubsub.ping(), self.connect_timeout)
            pinged = True

    async def _unsubscribe(self) -> None:
        pubsub, client = self._pubsub, self._client
        self._pubsub = self._client = None
        for closable in (pubsub, client):
            if closable is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(closable.aclose(), 2.0)

    async def _open_publisher(self) -> None:
        # One retry: a pooled connection the server closed is replaced once, at once.
        self._publisher = self._redis(1, f"{self.name}-publish")

    async def _send(self, payload: str) -> None:
        if self._publisher is None:
            raise ConnectionError("the broker is not started")
        await self._publisher.publish(self.channel, payload)

    async def _close_publisher(self) -> None:
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(publisher.aclose(), 2.0)
