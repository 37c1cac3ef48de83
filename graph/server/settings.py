"""Configuration: command-line flags over environment variables over defaults.

``Settings()`` reads the environment (``PORT``, ``LIMIT_MAX_DEPTH`` …); ``Settings(port=…)``
takes values directly. ``from_environment()`` turns a bad value into a ``SettingsError`` whose
message is one line naming the variable.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from graph.server.ratelimit import Proxies
from graph.validation import Limits
from models.db.engine import DEFAULT_DATABASE_URL, POSTGRES_POOL_SIZE

LIMIT_PREFIX = "LIMIT_"


class SettingsError(ValueError):
    """A setting that cannot be used; the message is one line naming the variable."""


class Settings(BaseSettings):
    """Everything the server can be told. See the configuration table in README.md."""

    model_config = SettingsConfigDict(env_ignore_empty=True)

    database_url: str = DEFAULT_DATABASE_URL
    #: PostgreSQL connections per worker (workers × this must stay under max_connections)
    database_pool_size: int = Field(POSTGRES_POOL_SIZE, ge=1)
    #: PostgreSQL connections each worker opens at start (up to the pool's size; the rest open
    #: on demand and stay open)
    database_pool_open: int = Field(0, ge=0)
    broker_url: str = "memory://"
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1)
    require_auth: bool = False
    graphiql: bool = True
    #: answer ``GET /metrics`` (Prometheus text; graph/server/metrics.py)
    metrics: bool = True
    #: ``text`` (uvicorn's lines) or ``json`` (every line one JSON object; graph/server/logs.py)
    log_format: Literal["text", "json"] = "text"
    #: how often live feeds re-read the log when no wake-up came (a lost wake-up's worst latency)
    live_poll_seconds: float = Field(10.0, gt=0)
    #: how long a live feed retries an unreadable log before it ends its streams (clients resume with after:)
    live_give_up_seconds: float = Field(300.0, gt=0)
    #: answer the documents the compiled path can (list pages, one entity by id, nested pages and
    #: lists; graph/fastpath.py) without Strawberry
    fast_path: bool = True
    #: run only documents registered with ``support-graph register-documents`` (graph/server/persisted.py)
    persisted_only: bool = False
    #: SQLite through the one-hop adapter (models/db/sqlite_driver.py); False: aiosqlite as SQLAlchemy ships it
    one_hop_sqlite: bool = True
    limits: Limits = Field(default_factory=Limits)
    #: upgrade the schema on start (False: refuse to start unless it is current)
    migrate: bool = Field(True, validation_alias=AliasChoices("migrate", "migrate_on_start"))
    #: graphql-ws keep-alive ("ka") interval; WebSocket pings cover graphql-transport-ws
    keep_alive_seconds: float = Field(15.0, gt=0)
    max_subscriptions_per_connection: int = Field(50, ge=1)
    #: proxies whose X-Forwarded-For is believed: comma-separated addresses or networks, ``*``
    #: for any; None believes nobody (the peer's address is the client's)
    forwarded_allow_ips: str | None = None
    #: seconds a connection may take to send a request's headers (slowloris protection)
    header_timeout_seconds: float = Field(10.0, gt=0)
    #: the budget of one client address, whatever key it presents (valid, invalid or none);
    #: None: ten times the per-key ``limits.rate_per_minute`` / ``limits.rate_burst``
    address_rate_per_minute: int | None = Field(None, ge=1)
    address_rate_burst: int | None = Field(None, ge=1)
    #: how long the response of a request with an ``Idempotency-Key`` is kept for replays
    idempotency_ttl_seconds: float = Field(86400.0, gt=0)
    #: how long a claimed key waits for its request to answer before another request may take it
    #: over (the claim of a worker that died mid-request)
    idempotency_lease_seconds: float = Field(60.0, gt=0)

    @field_validator("limits", mode="before")
    @classmethod
    def _limits(cls, value: Any) -> Any:
        if isinstance(value, dict):  # from LIMIT_<NAME> variables: the defaults, overridden
            return {**dataclasses.asdict(Limits()), **value}
        return value

    @field_validator("limits")
    @classmethod
    def _positive_limits(cls, value: Limits) -> Limits:
        for name, number in dataclasses.asdict(value).items():
            if number < 1:
                raise ValueError(f"{LIMIT_PREFIX}{name.upper()} must be at least 1, got {number}")
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _proxies(cls, value: str | None) -> str | None:
        Proxies(value)  # refuses what is not an address, a network or *
        return value

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:  # fmt: skip
        return init_settings, env_settings, LimitsFromEnvironment(settings_cls)

    @property
    def address_rate(self) -> tuple[int, int]:
        """(per minute, burst) of one client address."""
        return (
            self.address_rate_per_minute or 10 * self.limits.rate_per_minute,
            self.address_rate_burst or 10 * self.limits.rate_burst,
        )


class LimitsFromEnvironment(PydanticBaseSettingsSource):
    """``limits`` from ``LIMIT_<NAME>`` variables (``LIMIT_MAX_DEPTH=15``)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        values = {}
        for name in Limits.__dataclass_fields__:
            raw = os.environ.get(f"{LIMIT_PREFIX}{name.upper()}", "").strip()
            if raw:
                values[name] = raw
        return {"limits": values} if values else {}


def from_environment(**values: Any) -> Settings:
    """``Settings(**values)`` over the environment; a bad value is a one-line ``SettingsError``."""
    from graph.server.webhook_sender import WebhookSettings  # the webhook sender's own variables

    try:
        WebhookSettings()
    except ValidationError as error:
        raise SettingsError(describe(error, prefix="WEBHOOK_")) from None
    try:
        return Settings(**values)
    except ValidationError as error:
        raise SettingsError(describe(error)) from None


def describe(error: ValidationError, prefix: str = "") -> str:
    """One line naming each bad variable (``prefix`` + its field), its value and what is wrong."""
    problems = []
    for problem in error.errors(include_url=False):
        loc = [str(part) for part in problem["loc"]]
        if loc[:1] == ["limits"] and len(loc) > 1:
            variable = f"{LIMIT_PREFIX}{loc[1].upper()}"
        elif loc[:1] == ["limits"]:
            problems.append(problem["msg"].removeprefix("Value error, "))
            continue
        elif loc[:1] == ["migrate"]:
            variable = "MIGRATE_ON_START"
        else:
            variable = prefix + (loc[0] if loc else "?").upper()
        value = problem.get("input")
        shown = f"={value!r}" if isinstance(value, str | int | float) else ""
        problems.append(f"{variable}{shown}: {problem['msg'].removeprefix('Value error, ')}")
    return "bad setting: " + "; ".join(problems)
