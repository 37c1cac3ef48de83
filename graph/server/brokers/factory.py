"""Which broker a URL names: the one place a broker is chosen."""

from __future__ import annotations

import importlib.util
from typing import Any
from urllib.parse import urlsplit

from graph.server.brokers.memory import InProcessBroker
from graph.server.brokers.postgres import PostgresBroker
from graph.server.brokers.redis import RedisBroker
from resolvers.wakeups import Broker


def broker_from_url(url: str, **options: Any) -> Broker:
    """``memory://`` (the default, one process), ``postgresql://…`` / ``postgres://…`` /
    ``postgresql+asyncpg://…`` (LISTEN/NOTIFY) or ``redis://…`` / ``rediss://…`` (pub/sub);
    ``options`` go to the broker (backoff, ping interval, timeouts)."""
    if url in ("", "memory://", "memory"):
        return InProcessBroker()
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("postgresql", "postgres", "postgresql+asyncpg", "postgres+asyncpg"):
        require_extra("asyncpg", "postgres", "a PostgreSQL broker")
        return PostgresBroker(url, **options)
    if scheme in ("redis", "rediss"):
        require_extra("redis", "redis", "a Redis broker")
        return RedisBroker(url, **options)
    raise ValueError(
        f"Unsupported broker URL scheme {scheme or url!r}: use memory:// (one process), "
        "postgresql://… (LISTEN/NOTIFY) or redis://… (pub/sub)"
    )


class MissingExtra(RuntimeError):
    """An optional dependency is not installed; the message names the extra that brings it."""


def require_extra(module: str, extra: str, purpose: str) -> None:
    """Refuse, with the install command, when ``module`` (from extra ``extra``) is absent."""
    if importlib.util.find_spec(module) is None:
        raise MissingExtra(f"{purpose} needs the {module} package: pip install 'support-graph[{extra}]'")
