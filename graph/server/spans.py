"""The spans of a traced server (imported only where traces are on: graph/server/tracing.py).

``OperationSpans`` is Strawberry's OpenTelemetry extension with the operation's span named and
described as OpenTelemetry's GraphQL conventions say (``query TicketsPage``, attributes
``graphql.operation.type`` and ``graphql.operation.name``) and its error codes on it; resolver
arguments and the document's text are left out, since they can hold secrets (a webhook's
``secret``, a customer's e-mail). SQL through SQLAlchemy's engine gets its spans from
OpenTelemetry's SQLAlchemy instrumentation; plain reads (models/db/plain.py) go past the engine
and become events on the span that asked for them.
"""

from __future__ import annotations

from collections.abc import Generator
from contextlib import AbstractContextManager
from functools import partial
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.trace import SpanKind, Status, StatusCode, TracerProvider
from strawberry.extensions import LifecycleStep
from strawberry.extensions.tracing import OpenTelemetryExtension

from models.db.engine import Database
from models.db.writes import watchers


class OperationSpans(OpenTelemetryExtension):
    """A span per GraphQL operation, with a span per resolver of its own under it."""

    def __init__(self, *, tracer_provider: TracerProvider | None = None, **kwargs: Any) -> None:
        super().__init__(arg_filter=_no_arguments, tracer_provider=tracer_provider, **kwargs)

    def on_operation(self) -> Generator[None, None, None]:
        context = self.execution_context
        span = self._tracer.start_span("GraphQL operation", kind=SpanKind.INTERNAL)
        span.set_attribute("component", "graphql")
        self._span_holder[LifecycleStep.OPERATION] = span
        try:
            yield
        finally:
            try:
                kind = context.operation_type.value
            except Exception:  # no operation to run (a syntax error, an unknown operationName)
                kind = "unknown"
            name = context.operation_name
            span.update_name(f"{kind} {name}" if name else kind)
            span.set_attribute("graphql.operation.type", kind)
            if name:
                span.set_attribute("graphql.operation.name", name)
            codes = sorted(_codes(context))
            if codes:
                span.set_attribute("graphql.error.codes", codes)
                span.set_status(Status(StatusCode.ERROR, ",".join(codes)))
            span.end()


def _no_arguments(arguments: dict[str, Any], info: Any) -> dict[str, Any]:
    return {}


def _codes(context: Any) -> set[str]:
    errors = getattr(context.result, "errors", None) or context.pre_execution_errors or ()
    return {str((getattr(error, "extensions", None) or {}).get("code") or "BAD_USER_INPUT") for error in errors}


def trace_sql(db: Database, provider: TracerProvider) -> None:
    """SQL spans for ``db``: one per statement through the engine, an event per plain read."""
    tracer = trace.get_tracer("support_graph.sql", tracer_provider=provider)
    usage = NoOpMeterProvider().get_meter("support_graph.sql").create_up_down_counter("db.client.connections.usage")
    EngineTracer(tracer, db.engine.sync_engine, usage)
    db.plain.listeners.append(_plain_read)
    direct = partial(_direct_write, tracer, db.dialect, db.engine.url.database)
    watchers(db.engine.sync_engine).statements.append(direct)


def _direct_write(tracer: trace.Tracer, system: str, database: str | None, sql: str) -> AbstractContextManager[Any]:
    """The span of a statement a unit of work runs straight on the driver (models/db/writes.py,
    models/db/sqlite_writes.py), named and described as the SQLAlchemy instrumentation's are."""
    attributes = {"db.system": system, "db.statement": sql, "db.name": database or ""}
    name = f"{sql.split(None, 1)[0]} {database}" if database else sql.split(None, 1)[0]
    return tracer.start_as_current_span(name, kind=SpanKind.CLIENT, attributes=attributes)


def _plain_read(sql: str) -> None:
    span = trace.get_current_span()
    if span.is_recording():
        span.add_event("plain read", {"db.statement": sql})
