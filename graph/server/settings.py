"""Configuration: command-line flags over environment variables over defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from graph.validation import Limits
from models.db.engine import DEFAULT_DATABASE_URL


def _env_bool(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes", "on")


@dataclass
class Settings:
    """Everything the server can be told. See the configuration table in README.md."""

    database_url: str = field(default_factory=lambda: os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL))
    broker_url: str = field(default_factory=lambda: os.environ.get("BROKER_URL", "memory://"))
    host: str = field(default_factory=lambda: os.environ.get("HOST", "127.0.0.1"))
    port: int = field(default_factory=lambda: int(os.environ.get("PORT", "8000")))
    workers: int = field(default_factory=lambda: int(os.environ.get("WORKERS", "1")))
    require_auth: bool = field(default_factory=lambda: _env_bool("REQUIRE_AUTH"))
    graphiql: bool = True
    #: how often live feeds re-read the log when no wake-up came (a lost wake-up's worst latency)
    live_poll_seconds: float = field(default_factory=lambda: float(os.environ.get("LIVE_POLL_SECONDS", "10")))
    #: answer plain list pages through the compiled path (graph/fastpath.py)
    fast_path: bool = field(default_factory=lambda: os.environ.get("FAST_PATH", "true").lower() != "false")
    limits: Limits = field(default_factory=lambda: limits_from_environment())
    #: upgrade the schema on start (False: refuse to start unless it is current)
    migrate: bool = field(default_factory=lambda: os.environ.get("MIGRATE_ON_START", "true").lower() != "false")
    #: graphql-ws keep-alive ("ka") interval; WebSocket pings cover graphql-transport-ws
    keep_alive_seconds: float = field(default_factory=lambda: float(os.environ.get("KEEP_ALIVE_SECONDS", "15")))
    max_subscriptions_per_connection: int = field(
        default_factory=lambda: int(os.environ.get("MAX_SUBSCRIPTIONS_PER_CONNECTION", "50"))
    )


def limits_from_environment() -> Limits:
    """``Limits`` with any ``LIMIT_<NAME>`` variable applied (``LIMIT_MAX_DEPTH=15``)."""
    values = {}
    for name in Limits.__dataclass_fields__:
        raw = os.environ.get(f"LIMIT_{name.upper()}")
        if raw is not None:
            values[name] = int(raw)
    return Limits(**values)
