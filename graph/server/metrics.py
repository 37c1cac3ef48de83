"""Prometheus metrics of the server: what ``GET /metrics`` shows.

The metric objects live once per process (prometheus-client's default registry); the server's
parts report through the small functions below. With several uvicorn workers, ``serve`` points
``PROMETHEUS_MULTIPROC_DIR`` at a directory of its own before any worker starts
(``prepare_metrics_directory``): every worker writes its samples there, and ``/metrics`` — whichever
worker answers — adds up all of them; the open-subscription gauge of a worker that died (and
that uvicorn replaced) is dropped at the next scrape. Labels take a few fixed values each
(operation type, outcome, limit, broker kind): never a tenant, an id or a name.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import tempfile
import weakref
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from sqlalchemy import Engine, Insert
from sqlalchemy import event as sa_event
from sqlalchemy.sql.elements import TextClause
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from models.db.writes import watchers
from models.event import Event
from resolvers.unit_sql import EVENTS_INSERTED

#: the variable prometheus-client reads (at import) to share samples between processes
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

OPERATION_TYPES = ("query", "mutation", "subscription", "batch", "unknown")
#: ok: answered without errors; error: answered with errors (or failed); refused: turned away
#: before execution (authentication, rate limit, shape, size, complexity)
OUTCOMES = ("ok", "error", "refused")
#: a webhook delivery after an attempt: delivered, to be retried, or given up
WEBHOOK_OUTCOMES = ("delivered", "retrying", "failed")
#: which budget refused: an API key's (or an anonymous caller's), or a client address's
LIMITS = ("caller", "address")

# the ``_created`` series only double what a scrape shows; multiprocess mode has none either
disable_created_metrics()

REQUESTS = Counter("support_graph_requests", "GraphQL requests by operation type and outcome", ["operation", "outcome"])
REQUEST_SECONDS = Histogram(
    "support_graph_request_duration_seconds", "Time to answer a GraphQL request (not a subscription)", ["operation"]
)
OPEN_SUBSCRIPTIONS = Gauge(
    "support_graph_open_subscriptions", "Subscriptions open on WebSocket connections", multiprocess_mode="livesum"
)
EVENTS_COMMITTED = Counter("support_graph_events_committed", "Events committed to the event log")
BROKER_LAG = Histogram(
    "support_graph_broker_lag_seconds",
    "Time from a commit's wake-up being published to its arrival back at the worker through the broker server",
    ["broker"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
BROKER_DROPPED = Counter(
    "support_graph_broker_wakeups_dropped", "Wake-ups the broker could not publish (streams catch up by polling)",
    ["broker"],
)  # fmt: skip
WEBHOOK_ATTEMPTS = Counter(
    "support_graph_webhook_attempts", "Webhook delivery attempts by the delivery's state after them", ["outcome"]
)
WEBHOOK_SECONDS = Histogram(
    "support_graph_webhook_attempt_duration_seconds", "Time a webhook receiver took to answer an attempt"
)
SLA_BREACHES = Counter("support_graph_sla_breaches", "Service-level targets recorded as breached")
RATE_LIMITED = Counter("support_graph_rate_limit_refusals", "Requests refused by a rate limit", ["limit"])

for _operation in OPERATION_TYPES:  # every series exists from the start, at 0
    REQUEST_SECONDS.labels(_operation)
    for _outcome in OUTCOMES:
        REQUESTS.labels(_operation, _outcome)
for _outcome in WEBHOOK_OUTCOMES:
    WEBHOOK_ATTEMPTS.labels(_outcome)
for _limit in LIMITS:
    RATE_LIMITED.labels(_limit)


# --- what the server's parts report -------------------------------------------------------------


def request_answered(operation: str, outcome: str, seconds: float | None = None) -> None:
    """A GraphQL request came to ``outcome``; ``seconds`` it took (HTTP requests only)."""
    operation = operation if operation in OPERATION_TYPES else "unknown"
    REQUESTS.labels(operation, outcome if outcome in OUTCOMES else "error").inc()
    if seconds is not None:
        REQUEST_SECONDS.labels(operation).observe(seconds)


async def open_subscription(source: AsyncGenerator[Any, None]) -> AsyncGenerator[Any, None]:
    """``source`` (a subscription's results) counted: open while it runs, and one request
    answered with its first result (an error if that result is errors only) or its end."""
    OPEN_SUBSCRIPTIONS.inc()
    answered = False
    try:
        async with contextlib.aclosing(source):
            async for result in source:
                if not answered:
                    answered = True
                    failed = getattr(result, "errors", None) and getattr(result, "data", None) is None
                    request_answered("subscription", "error" if failed else "ok")
                yield result
    finally:
        OPEN_SUBSCRIPTIONS.dec()
        if not answered:
            request_answered("subscription", "ok")


def events_committed(count: int) -> None:
    """``count`` events are in the event log for good."""
    EVENTS_COMMITTED.inc(count)


def broker_lag(broker: str, seconds: float) -> None:
    BROKER_LAG.labels(broker).observe(seconds)


def wakeup_dropped(broker: str) -> None:
    BROKER_DROPPED.labels(broker).inc()


def webhook_attempted(outcome: str, seconds: float) -> None:
    """An attempt was recorded; ``outcome`` is its delivery's state now (``DELIVERED`` …)."""
    outcome = outcome.lower()
    WEBHOOK_ATTEMPTS.labels(outcome if outcome in WEBHOOK_OUTCOMES else "retrying").inc()
    WEBHOOK_SECONDS.observe(seconds)


def sla_breached(count: int) -> None:
    SLA_BREACHES.inc(count)


def rate_limited(limit: str) -> None:
    RATE_LIMITED.labels(limit if limit in LIMITS else "caller").inc()


# --- events committed, seen on the engine --------------------------------------------------------

#: events inserted per connection, until its transaction ends (not ``Connection.info``: reading
#: that on an invalidated connection tries to reconnect, in the middle of its rollback)
_PENDING: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
#: the engines already counted
_COUNTED: weakref.WeakSet[Engine] = weakref.WeakSet()


def count_committed_events(engine: Engine) -> None:
    """Count the rows inserted into the event log through ``engine`` once their transaction
    commits (a rolled-back unit of work counts nothing)."""
    log = Event.__table__

    def executed(conn: Any, statement: Any, multiparams: Any, params: Any, *_: Any) -> None:
        if isinstance(statement, Insert) and statement.table is log:
            _PENDING[conn] = _PENDING.get(conn, 0) + (len(multiparams) or 1)
        elif isinstance(statement, TextClause) and (inserted := statement.get_execution_options().get(EVENTS_INSERTED)):
            _PENDING[conn] = _PENDING.get(conn, 0) + inserted  # PostgreSQL's closing statement of a unit

    def committed(conn: Any) -> None:
        pending = _PENDING.pop(conn, 0)
        if pending:
            events_committed(pending)

    def rolled_back(conn: Any) -> None:
        _PENDING.pop(conn, None)

    if engine in _COUNTED:
        return
    _COUNTED.add(engine)
    watchers(engine).committed.append(events_committed)  # units past the engine (models/db/writes.py, sqlite_writes.py)
    sa_event.listen(engine, "after_execute", executed)
    sa_event.listen(engine, "commit", committed)
    sa_event.listen(engine, "rollback", rolled_back)


# --- GET /metrics ---------------------------------------------------------------------------------


async def metrics_endpoint(request: Request) -> Response:
    """The Prometheus text of this process, or of every worker in multiprocess mode."""
    return Response(await run_in_threadpool(exposition), media_type=CONTENT_TYPE_LATEST)


def exposition() -> bytes:
    directory = os.environ.get(MULTIPROC_ENV)
    if not directory:
        return generate_latest(REGISTRY)
    forget_dead_workers(directory)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)
    return generate_latest(registry)


_LIVE_FILE = re.compile(r"gauge_live\w+?_(\d+)\.db")


def forget_dead_workers(directory: str) -> None:
    """Drop the live gauges of workers that are gone (uvicorn replaces a worker that dies; the
    gauge files it left would otherwise keep counting its subscriptions)."""
    for path in Path(directory).glob("gauge_live*.db"):
        found = _LIVE_FILE.fullmatch(path.name)
        if found and not _alive(int(found.group(1))):
            multiprocess.mark_process_dead(int(found.group(1)), directory)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped by its parent, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (not Linux): existing is all we know
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def worker_started() -> None:
    """A new worker has no subscriptions open. With several workers its gauge file may be one a
    dead worker left under the same (recycled) pid, not yet swept: start it from 0."""
    if os.environ.get(MULTIPROC_ENV):
        OPEN_SUBSCRIPTIONS.set(0)


def prepare_metrics_directory(workers: int) -> str | None:
    """Where several workers' samples meet (``serve`` calls this before uvicorn starts them):
    the directory ``PROMETHEUS_MULTIPROC_DIR`` names, emptied of an earlier run's files; else,
    for more than one worker, a new one of our own, set in the environment the workers inherit
    and removed when this process exits. None: one worker, metrics in its memory."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        Path(given).mkdir(parents=True, exist_ok=True)
        for stale in Path(given).glob("*.db"):
            stale.unlink(missing_ok=True)
        return given
    if workers <= 1:
        return None
    directory = tempfile.mkdtemp(prefix="support-graph-metrics-")
    os.environ[MULTIPROC_ENV] = directory
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return directory
