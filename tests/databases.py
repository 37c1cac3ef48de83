"""The databases the suite runs on (SQLite always, PostgreSQL where it is reachable), and Redis.

PostgreSQL comes from ``TEST_POSTGRES_URL`` (default: the local server, database ``test``);
each test session works in a database of its own, created and dropped around it. Where
PostgreSQL is not reachable its tests are skipped with the reason — except in CI
(``CI=true``), where that is a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import Iterator

import asyncpg
import pytest
import redis

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def postgres_unreachable() -> str | None:
    """Why PostgreSQL cannot be used, or None when it can."""

    async def probe() -> None:
        connection = await asyncpg.connect(_plain(POSTGRES_URL), timeout=5)
        await connection.close()

    try:
        asyncio.run(probe())
    except (TimeoutError, OSError, asyncpg.PostgresError) as error:
        return f"PostgreSQL at {POSTGRES_URL} is not reachable ({error.__class__.__name__}: {error})"
    return None


def redis_unreachable() -> str | None:
    """Why Redis cannot be used, or None when it can."""
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5, socket_timeout=5)
        try:
            client.ping()
        finally:
            client.close()
    except redis.RedisError as error:
        return f"Redis at {REDIS_URL} is not reachable ({error.__class__.__name__}: {error})"
    return None


def create_postgres_database() -> str:
    """A fresh, empty database for this session; its SQLAlchemy URL."""
    name = f"support_graph_test_{uuid.uuid4().hex[:10]}"

    async def create() -> None:
        connection = await asyncpg.connect(_plain(POSTGRES_URL))
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()

    asyncio.run(create())
    base, _, _ = _plain(POSTGRES_URL).rpartition("/")
    return f"{base.replace('postgresql://', 'postgresql+asyncpg://')}/{name}"


def drop_postgres_database(url: str) -> None:
    name = url.rpartition("/")[2]

    async def drop() -> None:
        connection = await asyncpg.connect(_plain(POSTGRES_URL))
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()

    asyncio.run(drop())


def require(reason: str | None, suite: str = "PostgreSQL") -> None:
    """Skip where a service is absent (a laptop without it); in CI (``CI=true``) that fails."""
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI must run the {suite} suite: {reason}")
        pytest.skip(reason)


@contextlib.contextmanager
def fresh_database(kind: str, directory) -> Iterator[str]:
    """A new empty database of ``kind`` ("sqlite" or "postgresql") for one test; its URL.

    Skips where PostgreSQL is unreachable, except in CI, where that fails.
    """
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{directory / f'fresh-{uuid.uuid4().hex[:8]}.db'}"
        return
    require(postgres_unreachable())
    url = create_postgres_database()
    try:
        yield url
    finally:
        drop_postgres_database(url)
