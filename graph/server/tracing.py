"""OpenTelemetry traces, where the standard ``OTEL_*`` variables ask for them.

Traces are on when ``OTEL_TRACES_EXPORTER`` names an exporter (``otlp``, ``console``; not
``none``) or an OTLP endpoint is set (``OTEL_EXPORTER_OTLP_ENDPOINT``,
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``), and never with ``OTEL_SDK_DISABLED=true``. Everything
else — headers, sampler (``OTEL_TRACES_SAMPLER``), batching (``OTEL_BSP_*``), resource
(``OTEL_SERVICE_NAME``, default ``support-graph``; ``OTEL_RESOURCE_ATTRIBUTES``) — the SDK reads
itself. With traces off nothing of OpenTelemetry is imported; its packages are the extra
``otel`` (``pip install 'support-graph[otel]'``).

A request's trace: the ASGI instrumentation's server span (``POST /graphql``), under it the
operation's (``mutation CreateTicket``: graph/server/spans.py), a span per resolver under that,
and under those the SQL statements (OpenTelemetry's SQLAlchemy instrumentation).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette

from models.db.engine import Database

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

#: the modules traces need, all from the extra ``otel``
NEEDED = (
    "opentelemetry.sdk",
    "opentelemetry.instrumentation.asgi",
    "opentelemetry.instrumentation.sqlalchemy",
    "opentelemetry.exporter.otlp.proto.http",
)
#: paths whose requests are not traced: probes and scrapes
UNTRACED = "/healthz,/readyz,/metrics"


def requested(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the ``OTEL_*`` variables ask for traces."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = _exporters(environ)
    if exporters:
        return exporters != ["none"]
    return bool(environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def _exporters(environ: Mapping[str, str]) -> list[str]:
    return [name.strip().lower() for name in environ.get("OTEL_TRACES_EXPORTER", "").split(",") if name.strip()]


def problem(environ: Mapping[str, str] = os.environ) -> str | None:
    """Why traces asked for cannot be sent (a package missing, an exporter unknown), or None."""
    if not requested(environ):
        return None
    for module in NEEDED:
        if not _installed(module):
            return f"the OTEL_* variables ask for traces, which need {module}: pip install 'support-graph[otel]'"
    for exporter in _exporters(environ) or ["otlp"]:
        if exporter not in ("otlp", "console", "none"):
            return f"OTEL_TRACES_EXPORTER={exporter!r}: this server sends traces by otlp or console"
    protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
    if protocol and protocol != "http/protobuf":
        return f"OTLP protocol {protocol!r}: this server sends traces over http/protobuf"
    return None


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def provider_from_environment(environ: Mapping[str, str] = os.environ) -> TracerProvider | None:
    """The process's tracer provider, exporting as the ``OTEL_*`` variables say (and made the
    global one), or None where they do not ask for traces."""
    if not requested(environ):
        return None
    trouble = problem(environ)
    if trouble:
        raise RuntimeError(trouble)
    from opentelemetry import trace
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: "support-graph"}))
    provider = TracerProvider(resource=resource)
    for exporter in _exporters(environ) or ["otlp"]:
        if exporter == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        elif exporter == "console":
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider


#: the request attributes that hold the query string: a GET's document and variables
_QUERY_ATTRIBUTES = ("http.url", "http.target", "url.full", "url.query")


def _without_query(span: Any, scope: dict[str, Any]) -> None:
    """The server span's URL without its query string: over GET it holds the document and the
    variables, which can hold secrets and personal data (as arguments, never recorded)."""
    attributes = getattr(span, "attributes", None) or {}
    for name in _QUERY_ATTRIBUTES:
        value = attributes.get(name)
        if isinstance(value, str) and "?" in value:
            span.set_attribute(name, value.split("?", 1)[0])
        elif name == "url.query" and value:
            span.set_attribute(name, "")


def install_tracing(app: Starlette, schema: Any, db: Database, provider: Any) -> None:
    """Trace ``app`` into ``provider``: requests (ASGI), GraphQL operations and resolvers
    (``schema``'s extensions, checked by Strawberry for each operation), SQL on ``db``.
    Before the app starts; once per app."""
    if getattr(app.state, "traced", False):
        return
    app.state.traced = True
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    from graph.server.spans import OperationSpans, trace_sql

    # outermost: the server span covers everything else the request does
    app.add_middleware(
        OpenTelemetryMiddleware, tracer_provider=provider, excluded_urls=UNTRACED, exclude_spans=["receive", "send"],
        server_request_hook=_without_query,
    )  # fmt: skip
    schema.extensions = (partial(OperationSpans, tracer_provider=provider), *schema.extensions)
    trace_sql(db, provider)
