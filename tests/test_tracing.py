"""OpenTelemetry traces: a span per operation (named and typed), SQL spans under it, the HTTP
request's span over it; sent by OTLP where the ``OTEL_*`` variables ask, and nothing of
OpenTelemetry loaded where they do not.

In-process servers (``LiveServer``) trace into the SDK's ``InMemorySpanExporter``; a server
process traced through its environment sends OTLP/HTTP to a collector the test runs.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from graph.server import tracing
from graph.server.observability import install_observability
from graph.server.settings import Settings
from tests.conftest import UNTHROTTLED
from tests.databases import fresh_database
from tests.live import LiveServer
from tests.procs import ROOT, SETTINGS_ENV, free_port

WAIT = 20.0
OPEN_TICKET = 'mutation OpenTicket { createTicket(input: {subject: "Printer on fire"}) { id subject } }'
LIST = "query RecentTickets { tickets(first: 5) { totalCount nodes { id subject } } }"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def traced(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, InMemorySpanExporter]]:
    """A server tracing into memory; lists take the Strawberry path (their SQL through the engine)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with fresh_database(request.param, tmp_path_factory.mktemp("tracing")) as url:
        live = LiveServer(Settings(database_url=url, limits=UNTHROTTLED, fast_path=False))
        schema, db = live.app.state.graphql.schema, live.services.db
        install_observability(live.app, schema=schema, db=db)  # a no-op once create_app does it
        tracing.install_tracing(live.app, schema, db, provider)
        live.start()
        try:
            yield live, exporter
        finally:
            live.stop()
            provider.shutdown()


def spans_of(exporter: InMemorySpanExporter, operation: str) -> tuple[ReadableSpan, list[ReadableSpan]]:
    """The span of the operation named ``operation`` and every span of its trace, once the
    request's span has ended too (it ends after the answer has gone out)."""
    deadline = time.monotonic() + WAIT
    while True:
        finished = exporter.get_finished_spans()
        named = [s for s in finished if (s.attributes or {}).get("graphql.operation.name") == operation]
        if named:
            (span,) = named
            assert span.context is not None
            trace = [s for s in finished if s.context is not None and s.context.trace_id == span.context.trace_id]
            if any(s.parent is None for s in trace):
                return span, trace
        assert time.monotonic() < deadline, f"the trace of {operation} did not end"
        time.sleep(0.02)


def ancestors(span: ReadableSpan, trace: list[ReadableSpan]) -> list[ReadableSpan]:
    by_id = {s.context.span_id: s for s in trace if s.context is not None}
    found = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        found.append(span)
    return found


def sql_spans(trace: list[ReadableSpan]) -> list[ReadableSpan]:
    return [s for s in trace if s.kind == SpanKind.CLIENT and _statement(s)]


def _statement(span: ReadableSpan) -> str:
    attributes = span.attributes or {}
    return str(attributes.get("db.statement") or attributes.get("db.query.text") or "")


def test_a_mutation_is_a_span_with_its_name_and_type_over_its_sql(
    traced: tuple[LiveServer, InMemorySpanExporter],
) -> None:
    server, exporter = traced
    exporter.clear()
    server.data(OPEN_TICKET)
    operation, trace = spans_of(exporter, "OpenTicket")
    assert operation.name == "mutation OpenTicket"
    assert operation.attributes is not None and operation.attributes["graphql.operation.type"] == "mutation"
    assert operation.status.status_code != StatusCode.ERROR
    # under the request's span (the ASGI instrumentation's), the operation's
    (request,) = [s for s in trace if operation.parent is not None and s.context.span_id == operation.parent.span_id]
    assert request.kind == SpanKind.SERVER and request.name.startswith("POST")
    # the SQL the mutation ran: every statement in the trace descends from the operation
    statements = sql_spans(trace)
    # an INSERT (SQLite), or PostgreSQL's closing statement of the unit (WITH … INSERT INTO event)
    writes = [_statement(s).lstrip().upper() for s in statements]
    assert any(w.startswith(("INSERT", "WITH")) and "INSERT INTO" in w for w in writes), [s.name for s in statements]
    # the unit's statements go straight to the driver, and say which database they ran on
    assert {(s.attributes or {}).get("db.system") for s in statements} == {server.services.db.dialect}
    for statement in statements:
        assert operation in ancestors(statement, trace), f"{statement.name} is not under the operation"
    # neither the document nor resolver arguments (they can hold secrets) are recorded
    every = [value for s in trace for value in (s.attributes or {}).values()]
    assert not any("Printer on fire" in str(value) for value in every)


def test_a_get_leaves_its_document_and_variables_out_of_the_span(
    traced: tuple[LiveServer, InMemorySpanExporter],
) -> None:
    server, exporter = traced
    exporter.clear()
    secret = "ceo-secret@customer.example"
    query = "query FindContact($email: String!) { contacts(where: {email: {eq: $email}}) { totalCount } }"
    response = httpx.get(
        f"{server.url}/graphql",
        params={"query": query, "variables": json.dumps({"email": secret})},
        headers={"accept": "application/json"},
    )
    assert response.status_code == 200 and "errors" not in response.json(), response.text
    _, trace = spans_of(exporter, "FindContact")
    values = [str(value) for span in trace for value in (span.attributes or {}).values()]
    assert values and not [value for value in values if secret in value or "FindContact(" in value]
    (server_span,) = [span for span in trace if span.parent is None]
    assert str((server_span.attributes or {}).get("http.url", "")).endswith("/graphql")


def test_a_query_and_a_failed_one(traced: tuple[LiveServer, InMemorySpanExporter]) -> None:
    server, exporter = traced
    exporter.clear()
    server.data(LIST)
    assert server.error("query Broken { ticket(id: 5) { nope } }")["extensions"]["code"] == "BAD_USER_INPUT"
    listed, trace = spans_of(exporter, "RecentTickets")
    assert listed.name == "query RecentTickets"
    selects = [s for s in sql_spans(trace) if _statement(s).lstrip().upper().startswith(("SELECT", "WITH"))]
    assert selects and all(listed in ancestors(s, trace) for s in selects)
    broken, _ = spans_of(exporter, "Broken")
    assert broken.attributes is not None and broken.attributes["graphql.operation.type"] == "query"
    assert broken.status.status_code == StatusCode.ERROR
    assert list(broken.attributes["graphql.error.codes"]) == ["BAD_USER_INPUT"]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("environ", "wanted"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "support"}, False),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}, False),
    ],
)
def test_the_otel_variables_decide(environ: dict[str, str], wanted: bool) -> None:
    assert tracing.requested(environ) is wanted


def test_what_cannot_be_sent_is_named() -> None:
    assert tracing.problem({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}) is None
    assert "zipkin" in (tracing.problem({"OTEL_TRACES_EXPORTER": "zipkin"}) or "")
    assert "grpc" in (tracing.problem({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}) or "")


UNTRACED = """
import sys
from graph.server.app import create_app
from graph.server.observability import install_observability
from graph.server.settings import Settings

app = create_app(Settings(database_url=sys.argv[1]))
install_observability(app, schema=app.state.graphql.schema, db=app.state.services.db)
loaded = sorted(name for name in sys.modules if name.startswith("opentelemetry"))
print(",".join(loaded) or "none")
"""


def test_without_the_variables_nothing_of_opentelemetry_is_loaded(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", UNTRACED, f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "none"


# --- a process traced by its environment, sending OTLP to a collector -------------------------------

SERVED = """
import sys
import uvicorn
from graph.server.app import create_app
from graph.server.observability import install_observability
from graph.server.settings import Settings

app = create_app(Settings(database_url=sys.argv[1]))
install_observability(app, schema=app.state.graphql.schema, db=app.state.services.db)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""


def received(request: ExportTraceServiceRequest, path: str) -> list[dict]:
    """Each span of an export: its name, string attributes, service and where it was sent."""
    spans = []
    for resource in request.resource_spans:
        service = {a.key: a.value.string_value for a in resource.resource.attributes}.get("service.name")
        for scope in resource.scope_spans:
            for span in scope.spans:
                attributes = {a.key: a.value.string_value for a in span.attributes}
                spans.append({"name": span.name, "attributes": attributes, "service": service, "path": path})
    return spans


class Collector:
    """An OTLP/HTTP trace receiver: the spans of every export it was sent."""

    def __init__(self) -> None:
        self.spans: list[dict] = []
        self.lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                encoding = self.headers.get("content-encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                request = ExportTraceServiceRequest.FromString(body)
                with collector.lock:
                    collector.spans += received(request, self.path)
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_server_told_by_otel_variables_sends_its_spans_to_the_collector(tmp_path: Path) -> None:
    import httpx

    collector = Collector()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS_ENV and not k.startswith("OTEL_")}
    env |= {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "OTEL_BSP_SCHEDULE_DELAY": "100"}
    log = tmp_path / "served.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", SERVED, f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", str(port)], cwd=ROOT,
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        body = httpx.post(f"{url}/graphql", json={"query": OPEN_TICKET}).json()
        assert "errors" not in body, body
        deadline = time.monotonic() + WAIT
        while not any(s["name"] == "mutation OpenTicket" for s in list(collector.spans)):
            assert time.monotonic() < deadline, f"no operation span exported: {json.dumps(collector.spans)[:2000]}"
            time.sleep(0.1)
    finally:
        process.terminate()
        process.wait(30)
        collector.stop()
    (operation,) = [s for s in collector.spans if s["name"] == "mutation OpenTicket"]
    assert operation["attributes"]["graphql.operation.type"] == "mutation"
    assert operation["service"] == "support-graph" and operation["path"] == "/v1/traces"
    assert any(s["name"].startswith("INSERT") for s in collector.spans), [s["name"] for s in collector.spans]
    assert not any(s["name"].startswith("GET /readyz") for s in collector.spans)  # probes are not traced
