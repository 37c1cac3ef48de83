"""The PostgreSQL broker: wake-ups over LISTEN/NOTIFY on the database's own server."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from graph.server.brokers.supervisor import RemoteBroker, take_channel


class PostgresBroker(RemoteBroker):
    """LISTEN/NOTIFY: one dedicated asyncpg connection LISTENs, a small pool of its own NOTIFYs.

    URL: ``postgresql://``, ``postgres://`` or ``postgresql+asyncpg://`` (usually the database's
    own), optionally ``?channel=NAME``. NOTIFY reaches the sessions LISTENing on the same
    database. The LISTEN connection is pinged with ``LISTEN`` itself (a no-op when listening),
    so ``pg_stat_activity.query`` keeps showing ``LISTEN "channel"`` for it.
    """

    kind = "postgresql"

    def __init__(self, url: str, **options: Any) -> None:
        dsn, channel = take_channel(url)
        for prefix in ("postgresql+asyncpg://", "postgres+asyncpg://"):
            if dsn.startswith(prefix):
                dsn = "postgresql://" + dsn[len(prefix) :]
        options.setdefault("channel", channel)
        super().__init__(**options)
        self.dsn = dsn
        self._listener: Any = None  # asyncpg.Connection
        self._lost: asyncio.Event | None = None
        self._pool: Any = None  # asyncpg.Pool

    @property
    def _listen_sql(self) -> str:
        return 'LISTEN "' + self.channel.replace('"', '""') + '"'

    async def _subscribe(self) -> None:
        import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information

        lost = self._lost = asyncio.Event()
        self._listener = await asyncpg.connect(
            self.dsn, timeout=self.connect_timeout, server_settings={"application_name": self.name[:63]}
        )
        self._listener.add_termination_listener(lambda _connection: lost.set())
        await asyncio.wait_for(self._listener.add_listener(self.channel, self._on_notify), self.connect_timeout)

    def _on_notify(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        self._received(payload)

    async def _watch(self) -> None:
        assert self._lost is not None
        while not self._stopped.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), self.ping_interval)
                return
            if self._listener is None or self._listener.is_closed():
                return
            # A half-open connection never reports its death: ask it something.
            await asyncio.wait_for(self._listener.execute(self._listen_sql), self.connect_timeout)

    async def _unsubscribe(self) -> None:
        connection, self._listener = self._listener, None
        if connection is None or connection.is_closed():
            return
        try:
            await asyncio.wait_for(connection.close(), 2.0)
        except Exception:
            connection.terminate()

    async def _open_publisher(self) -> None:
        import asyncpg

        # min_size=0: creating the pool never fails; the first NOTIFY connects.
        self._pool = asyncpg.create_pool(
            self.dsn, min_size=0, max_size=4, timeout=self.connect_timeout,
            server_settings={"application_name": f"{self.name}-publish"[:63]},
        )  # fmt: skip
        await self._pool
        with contextlib.suppress(Exception):  # warm one connection up; fine if the server is down
            await asyncio.wait_for(self._pool.execute("SELECT 1"), self.connect_timeout)

    async def _send(self, payload: str) -> None:
        if self._pool is None:
            raise ConnectionError("the broker is not started")
        await self._pool.execute("SELECT pg_notify($1, $2)", self.channel, payload)

    async def _close_publisher(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), 5.0)
            except Exception:
                pool.terminate()
