"""What an operator sees of the server: ``GET /metrics`` (graph/server/metrics.py), one log line
per request (graph/server/logs.py) and, where the ``OTEL_*`` variables ask, traces
(graph/server/tracing.py) — installed on an app by ``install_observability``.

Each HTTP request is watched by ``ObservedRequests``, an ASGI middleware: it times the request
and, once answered, counts it and logs its line. What it came to is gathered on the way into
the request's record (``request.state.observed``): ``NotedOperations``, a schema extension, adds
each operation Strawberry ran (type, name, error codes); the request gate's refusal and its
caller come from ``request.state``. Operations over WebSocket are counted by the extension
(queries, mutations) and by ``metrics.open_subscription`` (subscriptions).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Generator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from graphql import GraphQLError
from starlette.applications import Starlette
from starlette.datastructures import QueryParams
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.extensions import SchemaExtension

from graph.server import logs, metrics, tracing
from graph.validation import operation_of, parsed
from models.db.engine import Database

GRAPHQL_PATH = "/graphql"
#: the state key of a request's record
RECORD = "observed"


@dataclass
class Operation:
    """One GraphQL operation as it was executed: its type, name and error codes."""

    kind: str
    name: str | None = None
    codes: tuple[str, ...] = ()


@dataclass
class RequestRecord:
    """What one HTTP request came to, filled in on the way (``request.state.observed``)."""

    operations: list[Operation] = field(default_factory=list)


class NotedOperations(SchemaExtension):
    """Notes each operation's type, name and error codes: on its HTTP request's record, or
    (over WebSocket) straight into the metrics. Runs outermost, so it sees the error codes the
    other extensions gave."""

    def on_operation(self) -> Generator[None, None, None]:
        started = time.perf_counter()
        yield
        context = self.execution_context
        try:
            kind = context.operation_type.value
        except Exception:  # nothing to run: a syntax error, no such operationName
            kind = "unknown"
        errors = getattr(context.result, "errors", None) or context.pre_execution_errors or ()
        operation = Operation(kind, context.operation_name, _codes(errors))
        request = getattr(context.context, "request", None)
        scope = getattr(request, "scope", None) or {}
        if scope.get("type") == "http":
            record = scope.get("state", {}).get(RECORD)
            if record is not None:
                record.operations.append(operation)
        elif scope.get("type") == "websocket" and kind != "subscription":
            outcome = "error" if operation.codes else "ok"
            metrics.request_answered(kind, outcome, time.perf_counter() - started)


def _codes(errors: Any) -> tuple[str, ...]:
    codes = []
    for error in errors:
        extensions = error.extensions if isinstance(error, GraphQLError) else None
        code = str((extensions or {}).get("code") or "BAD_USER_INPUT")
        if code not in codes:
            codes.append(code)
    return tuple(codes)


class ObservedRequests:
    """ASGI middleware: times each HTTP request, then counts it (``/graphql``) and logs it."""

    def __init__(self, app: ASGIApp, *, graphql_path: str = GRAPHQL_PATH) -> None:
        self.app, self.graphql_path = app, graphql_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = scope.setdefault("state", {})
        state[RECORD] = record = RequestRecord()
        status = 500  # unless an answer starts

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self._answered(scope, state, record, status, time.perf_counter() - started)

    def _answered(self, scope: Scope, state: dict, record: RequestRecord, status: int, seconds: float) -> None:
        path = scope.get("path", "")
        kind: str | None = None
        names: list[str] = []
        codes: list[str] = []
        verdict = _verdict(state, record.operations, status, scope) if path == self.graphql_path else None
        if verdict is not None:
            kind, outcome, names, codes = verdict
            metrics.request_answered(kind, outcome, seconds)
        principal = state.get("principal")
        logs.request_line(
            method=scope.get("method", ""), path=path, status=status, seconds=seconds, operation_type=kind,
            names=names, tenant=getattr(principal, "tenant", None), actor=getattr(principal, "actor", None),
            codes=codes, request_id=state.get("request_id"),
        )  # fmt: skip


def _verdict(
    state: dict, executed: list[Operation], status: int, scope: Scope
) -> tuple[str, str, list[str], list[str]] | None:
    """(operation type, outcome, operation names, error codes) of a ``/graphql`` request; None
    for one that asked for no operation and got an answer (GraphiQL's page)."""
    payload = state.get("payload")
    refused = state.get("refused")
    # none executed: refused before Strawberry (never parsed here: the door refuses hostile
    # documents before parsing them), or answered by the compiled path (parsed by the door)
    if executed or isinstance(payload, list):
        asked: list[Operation | None] = list(executed)
    else:
        asked = [Operation("unknown") if refused else _requested(payload, scope)]
    if asked == [None] and not refused and status < 400:
        return None
    operations = [o or Operation("unknown") for o in asked]
    kind = "batch" if isinstance(payload, list) else operations[0].kind if operations else "unknown"
    names = [o.name for o in operations if o.name]
    codes = list(dict.fromkeys(code for operation in executed for code in operation.codes))
    if refused:
        return kind, "refused", names, [refused]
    if executed:
        return kind, "error" if codes else "ok", names, codes
    if status >= 500:
        return kind, "error", names, ["UNAVAILABLE" if status == 503 else "INTERNAL"]
    return kind, "refused" if status >= 400 else "ok", names, codes


def _requested(payload: Any, scope: Scope) -> Operation | None:
    """The operation a request names, without running anything (parsing is cached); None where
    it sent no document at all."""
    if isinstance(payload, dict):
        query, name = payload.get("query"), payload.get("operationName")
    elif scope.get("method") == "GET":
        params = QueryParams(scope.get("query_string", b""))
        query, name = params.get("query"), params.get("operationName")
    else:
        return Operation("unknown")
    if query is None:
        return None
    if not isinstance(query, str) or not isinstance(name, str | None):
        return Operation("unknown")
    document = parsed(query)
    chosen = None if isinstance(document, GraphQLError) else operation_of(document, name)
    if chosen is None:
        return Operation("unknown", name)
    return Operation(chosen.operation.value, chosen.name.value if chosen.name else None)


def install_observability(
    app: Starlette, *, schema: Any, db: Database, metrics_route: bool = True, log_format: str = "text",
    tracer_provider: Any = None,
) -> None:  # fmt: skip
    """Watch ``app``: request metrics and lines, ``GET /metrics`` (``metrics_route``), events
    committed on ``db``, operations of ``schema``, and traces where the ``OTEL_*`` variables
    ask (or into ``tracer_provider``). Before the app starts; once per app."""
    if getattr(app.state, "observed", False):
        return
    app.state.observed = True
    if log_format == "json":
        logging.captureWarnings(True)
    app.add_middleware(ObservedRequests)
    # Strawberry reads ``extensions`` for each operation; first, so it sees the others' error codes
    schema.extensions = (NotedOperations, *schema.extensions)
    metrics.count_committed_events(db.engine.sync_engine)
    if metrics_route:
        app.add_route("/metrics", metrics.metrics_endpoint, methods=["GET"])
    own_provider = tracer_provider is None
    provider = tracing.provider_from_environment() if own_provider else tracer_provider
    if provider is not None:
        tracing.install_tracing(app, schema, db, provider)  # after the middleware above: outside it
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: Starlette) -> AsyncIterator[Any]:
        metrics.worker_started()
        try:
            async with inner(application) as state:
                yield state
        finally:
            if own_provider and provider is not None:
                provider.shutdown()  # sends the spans still batched

    app.router.lifespan_context = lifespan
