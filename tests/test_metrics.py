"""``GET /metrics``: what a real server counts, read back the way Prometheus reads it.

The servers are processes of their own (``create_app`` with observability installed — by
``create_app`` itself once it is wired there, else by the program here — under uvicorn), so that
each has the metrics of its own requests only; each test compares two scrapes around what it
does. The counts it expects come from what the test did and from the server's own records (the
event log, the receiver's requests), never from constants. ``--workers 2`` is a real
``python -m graph serve`` on Redis; the dead-worker sweep uses throwaway processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from graph.server import metrics
from tests import ws_client as ws
from tests.databases import POSTGRES_URL, REDIS_URL, fresh_database, postgres_unreachable, redis_unreachable, require
from tests.procs import ROOT, SETTINGS_ENV, Serve, free_port
from tests.test_webhook_receiver import Receiver

#: seconds a wait for something asynchronous (a webhook, a breach, a wake-up) may take
WAIT = 20.0
Samples = dict[tuple[str, frozenset], float]

#: a ticket no service-level policy here matches
TICKET = "mutation($s: String!) { createTicket(input: {subject: $s, priority: LOW, channel: EMAIL}) { id } }"
URGENT = "mutation($s: String!) { createTicket(input: {subject: $s, priority: URGENT, channel: API}) { id } }"
BREACHES = '{ events(where: {type: {eq: "Ticket.SlaBreached"}}, first: 1) { totalCount } }'
TWO_ORGANIZATIONS = """
mutation { a: createOrganization(input: {name: "%s a"}) { id } b: createOrganization(input: {name: "%s b"}) { id } }"""
WEBHOOK = "mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { webhook { id } } }"
POLICY = "mutation($input: CreateSlaPolicyInput!) { createSlaPolicy(input: $input) { id } }"
TICKET_EVENTS = "subscription { ticketEvents { event { id type } } }"


PROGRAM = """
import json, sys
import uvicorn
from graph.server.app import create_app
from graph.server.observability import install_observability
from graph.server.settings import Settings

app = create_app(Settings(**json.loads(sys.argv[1])))
install_observability(app, schema=app.state.graphql.schema, db=app.state.services.db)  # once create_app does not
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", ws_ping_interval=None)
"""


class Server:
    """One observed server process on 127.0.0.1."""

    def __init__(self, env: dict[str, str] | None = None, **settings: Any) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        inherited = {k: v for k, v in os.environ.items() if k not in SETTINGS_ENV}
        self.log = tempfile.NamedTemporaryFile(prefix="support-graph-metrics-", suffix=".log")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-c", PROGRAM, json.dumps(settings), str(port)], cwd=ROOT,
            env={**inherited, **(env or {}), "PYTHONUNBUFFERED": "1"}, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        self.http = httpx.Client(base_url=self.url, timeout=30)
        until(self._ready, f"the server ready ({self.output()})", wait=60)

    def _ready(self) -> bool:
        assert self.process.poll() is None, f"the server exited: {self.output()}"
        try:
            return self.http.get("/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")[-3000:]

    def post(self, query: str, variables: dict | None = None) -> dict:
        return self.http.post("/graphql", json={"query": query, "variables": variables or {}}).json()

    def data(self, query: str, variables: dict | None = None) -> dict:
        body = self.post(query, variables)
        assert not body.get("errors"), body
        return body["data"]

    def events(self) -> int:
        return self.data("{ events(first: 1) { totalCount } }")["events"]["totalCount"]

    def scrape(self) -> Samples:
        return scrape(self.http.get)

    def stop(self) -> None:
        self.http.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(15)
        self.log.close()


def scrape(get: Callable[[str], httpx.Response]) -> Samples:
    response = get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def grew(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def until(condition: Callable[[], bool], what: str, wait: float = WAIT) -> None:
    deadline = time.monotonic() + wait
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {wait} s")
        time.sleep(0.05)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def watched(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server on a fresh database of each kind; webhooks retried once, soon."""
    with fresh_database(request.param, tmp_path_factory.mktemp("metrics")) as url:
        env = {"WEBHOOK_RETRY_SCHEDULE": "0.2", "WEBHOOK_POLL_SECONDS": "0.5", "WEBHOOK_IN_ORDER_WINDOW": "1"}
        server = Server(env, database_url=url, limits={"rate_per_minute": 10**9, "rate_burst": 10**9})
        try:
            yield server
        finally:
            server.stop()


# --- requests -------------------------------------------------------------------------------------


def test_requests_are_counted_by_operation_type_and_outcome(watched: Server) -> None:
    http = watched.http
    done: dict[tuple[str, str], int] = {}

    def sent(operation: str, outcome: str, response: httpx.Response) -> None:
        done[operation, outcome] = done.get((operation, outcome), 0) + 1

    before = scrape(http.get)
    sent("query", "ok", http.post("/graphql", json={"query": "query Few { tickets(first: 2) { totalCount } }"}))
    sent("query", "ok", http.get("/graphql", params={"query": "{ organizations(first: 1) { totalCount } }"}))
    sent("query", "error", http.post("/graphql", json={"query": "{ nope }"}))
    organization = f"m {uuid.uuid4().hex[:6]}"
    query = f'mutation {{ createOrganization(input: {{name: "{organization}"}}) {{ id }} }}'
    sent("mutation", "ok", http.post("/graphql", json={"query": query}))
    missing = 'mutation { updateTicket(id: "ticket_nope", input: {subject: "x"}) { id } }'
    sent("mutation", "error", http.post("/graphql", json={"query": missing}))
    batch = [{"query": "{ tickets(first: 1) { totalCount } }"}, {"query": "{ contacts(first: 1) { totalCount } }"}]
    sent("batch", "ok", http.post("/graphql", json=batch))
    refused = http.post("/graphql", content=b'{"query": ', headers={"content-type": "application/json"})
    assert refused.status_code == 400
    sent("unknown", "refused", refused)
    after = scrape(http.get)

    for operation in metrics.OPERATION_TYPES:
        for outcome in metrics.OUTCOMES:
            expected = done.get((operation, outcome), 0)
            got = grew(before, after, "support_graph_requests_total", operation=operation, outcome=outcome)
            assert got == expected, f"{operation}/{outcome}: {got} counted, {expected} sent"
        answered = sum(n for (kind, _), n in done.items() if kind == operation)
        timed = grew(before, after, "support_graph_request_duration_seconds_count", operation=operation)
        assert timed == answered, f"{operation}: {timed} timed, {answered} answered"
    assert grew(before, after, "support_graph_request_duration_seconds_sum", operation="mutation") > 0
    # labels take their values from small fixed sets: no tenant, id or operation name
    bounded = {
        "operation": set(metrics.OPERATION_TYPES), "outcome": set(metrics.OUTCOMES) | set(metrics.WEBHOOK_OUTCOMES),
        "limit": set(metrics.LIMITS), "broker": {"postgresql", "redis"},
    }  # fmt: skip
    for name, labels in after:
        if name.startswith("support_graph_"):
            assert all(v in bounded[k] for k, v in labels if k != "le"), (name, labels)


def test_events_committed_are_the_rows_the_event_log_gained(watched: Server) -> None:
    before, events = watched.scrape(), watched.events()
    name = uuid.uuid4().hex[:6]
    watched.data(TWO_ORGANIZATIONS % (name, name))  # one unit of work, two events
    watched.data(TICKET, {"s": f"metrics {name}"})
    assert watched.post('mutation { updateTicket(id: "ticket_nope", input: {subject: "x"}) { id } }')["errors"]
    after, gained = watched.scrape(), watched.events() - events
    assert gained >= 3
    assert grew(before, after, "support_graph_events_committed_total") == gained


# --- subscriptions ----------------------------------------------------------------------------------


async def test_open_subscriptions_follow_the_subscribers(watched: Server) -> None:
    get = watched.http.get

    def open_now() -> float:
        return value(scrape(get), "support_graph_open_subscriptions")

    def answered(samples: Samples) -> float:
        return value(samples, "support_graph_requests_total", operation="subscription", outcome="ok")

    base, before = open_now(), scrape(get)
    async with ws.connect(watched.url) as first, ws.connect(watched.url) as second:
        shared = [await first.subscribe(TICKET_EVENTS), await second.subscribe(TICKET_EVENTS)]  # one execution
        latest = watched.data("{ events(first: 1) { nodes { id } } }")["events"]["nodes"]
        resuming = await second.subscribe(
            "subscription($after: ID) { ticketEvents(after: $after) { event { id } } }",
            {"after": latest[0]["id"] if latest else None},
        )  # one of its own
        await asyncio.to_thread(until, lambda: open_now() == base + 3, "three subscriptions open")
        ticket = (await asyncio.to_thread(watched.data, TICKET, {"s": "live"}))["createTicket"]["id"]
        for operation in (*shared, resuming):
            assert (await operation.next())["ticketEvents"] is not None
        assert answered(scrape(get)) - answered(before) == 3, "each subscription answered once"
        await shared[0].stop()
        await asyncio.to_thread(until, lambda: open_now() == base + 2, "one stopped")
        assert ticket
    await asyncio.to_thread(until, lambda: open_now() == base, "all closed with their sockets")
    assert answered(scrape(get)) - answered(before) == 3


# --- the workers' own work -----------------------------------------------------------------------


def test_webhook_attempts_are_counted_by_what_became_of_the_delivery(watched: Server) -> None:
    receiver = Receiver().start()
    try:
        path = f"/hook-{uuid.uuid4().hex[:8]}"
        receiver.plan(path, statuses=[500, 200, 500, 500])  # first delivery: fails, then arrives; second: gives up
        before = watched.scrape()
        watched.data(WEBHOOK, {"input": {"url": receiver.url(path), "events": ["Ticket.Created"]}})
        watched.data(TICKET, {"s": "hooked 1"})
        until(lambda: len(receiver.received(path)) == 2, "the first delivery's two attempts")
        watched.data(TICKET, {"s": "hooked 2"})
        until(lambda: len(receiver.received(path)) == 4, "the second delivery's two attempts")

        def counted(outcome: str) -> float:
            return grew(before, watched.scrape(), "support_graph_webhook_attempts_total", outcome=outcome)

        until(lambda: counted("failed") == 1, "the second delivery given up")
        after = watched.scrape()
        attempts = {
            o: grew(before, after, "support_graph_webhook_attempts_total", outcome=o) for o in metrics.WEBHOOK_OUTCOMES
        }
        assert attempts == {"delivered": 1, "retrying": 2, "failed": 1}
        assert grew(before, after, "support_graph_webhook_attempt_duration_seconds_count") == 4
    finally:
        receiver.stop()


def test_sla_breaches_are_counted(watched: Server) -> None:
    before, breaches = watched.scrape(), watched.data(BREACHES)["events"]["totalCount"]
    name = f"metrics {uuid.uuid4().hex[:6]}"
    target = {"name": name, "priorities": ["URGENT"], "channels": ["API"], "firstResponseSeconds": 1}
    watched.data(POLICY, {"input": target})
    ticket = watched.data(URGENT, {"s": name})["createTicket"]["id"]
    query = "query($id: ID!) { ticket(id: $id) { sla { firstResponseBreachedAt } } }"
    until(lambda: watched.data(query, {"id": ticket})["ticket"]["sla"]["firstResponseBreachedAt"], "the breach")
    recorded = watched.data(BREACHES)["events"]["totalCount"] - breaches
    assert grew(before, watched.scrape(), "support_graph_sla_breaches_total") == recorded == 1


def test_rate_limit_refusals_are_counted_by_limit(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'limits.db'}"
    server = Server(database_url=url, limits={"rate_per_minute": 1, "rate_burst": 2}, address_rate_burst=3)
    try:
        query = {"query": "{ tickets(first: 1) { totalCount } }"}
        before = server.scrape()
        statuses = [server.http.post("/graphql", json=query).status_code for _ in range(4)]
        after = server.scrape()
    finally:
        server.stop()
    # two within the caller's burst, the third over it, the fourth over the address's budget of three
    assert statuses == [200, 200, 429, 429]
    assert grew(before, after, "support_graph_rate_limit_refusals_total", limit="caller") == 1
    assert grew(before, after, "support_graph_rate_limit_refusals_total", limit="address") == 1
    assert grew(before, after, "support_graph_requests_total", operation="unknown", outcome="refused") == 2


@pytest.mark.parametrize("kind", ["redis", "postgresql"])
def test_broker_lag_is_timed_on_the_wake_ups_a_worker_publishes(kind: str, tmp_path: Path) -> None:
    require(redis_unreachable() if kind == "redis" else postgres_unreachable(), kind)
    channel = f"support_graph_test_{uuid.uuid4().hex[:12]}"
    broker = f"{REDIS_URL if kind == 'redis' else POSTGRES_URL}?channel={channel}"
    server = Server(database_url=f"sqlite+aiosqlite:///{tmp_path / 'lag.db'}", broker_url=broker)
    try:
        before = server.scrape()
        for n in range(3):
            server.data(TICKET, {"s": f"lag {n}"})  # each commit publishes one wake-up

        def timed() -> float:
            return grew(before, server.scrape(), "support_graph_broker_lag_seconds_count", broker=kind)

        until(lambda: timed() == 3, "three wake-ups back from the broker")
        after = server.scrape()
    finally:
        server.stop()
    assert grew(before, after, "support_graph_broker_lag_seconds_sum", broker=kind) > 0
    assert grew(before, after, "support_graph_broker_lag_seconds_bucket", broker=kind, le="+Inf") == 3


# --- several processes --------------------------------------------------------------------------------

CHILD = """
import os, sys, time
from graph.server import metrics
metrics.OPEN_SUBSCRIPTIONS.inc(int(sys.argv[1]))
metrics.events_committed(int(sys.argv[1]))
print("ready", flush=True)
if sys.argv[2] == "stay":
    time.sleep(60)
"""


def test_a_dead_workers_open_subscriptions_leave_the_sum_but_its_counts_stay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {**os.environ, metrics.MULTIPROC_ENV: str(tmp_path)}

    def child(count: int, mode: str) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(count), mode], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
        )
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        return process

    dead = child(2, "exit")
    assert dead.wait(30) == 0
    alive = child(5, "stay")
    try:
        monkeypatch.setenv(metrics.MULTIPROC_ENV, str(tmp_path))
        samples = {
            sample.name: sample.value
            for family in text_string_to_metric_families(metrics.exposition().decode())
            for sample in family.samples
            if not sample.labels
        }
        assert samples["support_graph_open_subscriptions"] == 5  # the living one's only
        assert samples["support_graph_events_committed_total"] == 2 + 5  # counters outlive their process
        assert not list(tmp_path.glob(f"gauge_live*_{dead.pid}.db"))
    finally:
        alive.kill()
        alive.wait(30)
        for process in (dead, alive):
            assert process.stdout is not None
            process.stdout.close()


def test_the_metrics_directory_is_ours_for_several_workers_and_emptied_when_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(metrics.MULTIPROC_ENV, raising=False)
    assert metrics.prepare_metrics_directory(1) is None
    assert metrics.MULTIPROC_ENV not in os.environ
    made = metrics.prepare_metrics_directory(4)
    assert made is not None and Path(made).is_dir() and os.environ[metrics.MULTIPROC_ENV] == made
    given = tmp_path / "given"
    given.mkdir()
    (given / "counter_123.db").write_bytes(b"stale")
    (given / "notes.txt").write_text("kept")
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(given))
    assert metrics.prepare_metrics_directory(4) == str(given)
    assert [p.name for p in given.iterdir()] == ["notes.txt"]


def worker_pids(supervisor: int) -> list[int]:
    """The uvicorn workers under ``supervisor`` (spawned processes; not multiprocessing's helpers)."""
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    return [
        int(child)
        for child in children
        if "spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes().decode(errors="replace")
    ]


def held(worker: int) -> float:
    """The subscriptions ``worker`` has open, read from its own file in the metrics directory."""
    environ = Path(f"/proc/{worker}/environ").read_bytes().decode(errors="replace").split("\0")
    directory = Path(dict(v.split("=", 1) for v in environ if "=" in v)[metrics.MULTIPROC_ENV])
    files = [str(f) for f in directory.glob(f"gauge_livesum_{worker}.db")]
    return sum(
        sample.value
        for family in MultiProcessCollector.merge(files)
        for sample in family.samples
        if sample.name == "support_graph_open_subscriptions"
    )


async def test_two_workers_answer_with_the_sum_of_both_and_forget_the_dead(tmp_path: Path) -> None:
    require(redis_unreachable(), "Redis")
    broker = f"{REDIS_URL}?channel=support_graph_test_{uuid.uuid4().hex[:12]}"
    serve = Serve(f"sqlite+aiosqlite:///{tmp_path / 'workers.db'}", broker, name="two-workers", env={"WORKERS": "2"})
    await asyncio.to_thread(serve.start)
    try:
        first_workers = worker_pids(serve.pid)
        assert len(first_workers) == 2

        def scrape_anew() -> Samples:  # a connection of its own: either worker may answer
            return scrape(lambda path: httpx.get(serve.url + path, timeout=10))

        def post(query: str) -> dict:
            return httpx.post(f"{serve.url}/graphql", json={"query": query}, timeout=10).json()

        queries = 12
        for _ in range(queries):
            assert "errors" not in await asyncio.to_thread(post, "{ tickets(first: 1) { totalCount } }")
        async with contextlib.AsyncExitStack() as stack:
            connections = [await stack.enter_async_context(ws.connect(serve.url)) for _ in range(4)]
            operations = [await connection.subscribe(TICKET_EVENTS) for connection in connections]

            def opened() -> bool:
                return value(scrape_anew(), "support_graph_open_subscriptions") == len(operations)

            await asyncio.to_thread(until, opened, "four subscriptions open across the workers")
            ticket = 'mutation { createTicket(input: {subject: "two workers", priority: LOW}) { id } }'
            created = await asyncio.to_thread(post, ticket)
            assert "errors" not in created, created
            for operation in operations:
                await operation.next()

            def lag_timed() -> bool:
                return value(scrape_anew(), "support_graph_broker_lag_seconds_count", broker="redis") == 1

            await asyncio.to_thread(until, lag_timed, "the ticket's wake-up back from Redis")
            events = (await asyncio.to_thread(post, "{ events(first: 1) { totalCount } }"))["data"]["events"]
            for _ in range(6):  # whichever worker answers, the sum of both
                samples = await asyncio.to_thread(scrape_anew)
                assert value(samples, "support_graph_requests_total", operation="query", outcome="ok") == queries + 1
                assert value(samples, "support_graph_requests_total", operation="mutation", outcome="ok") == 1
                assert value(samples, "support_graph_requests_total", operation="subscription", outcome="ok") == 4
                assert value(samples, "support_graph_open_subscriptions") == 4
                assert value(samples, "support_graph_events_committed_total") == events["totalCount"]

            # the worker holding the most subscriptions dies; the other answers for both
            victim = max(first_workers, key=held)
            remaining = len(operations) - held(victim)
            assert remaining < len(operations)
            os.kill(victim, signal.SIGKILL)

            def forgotten() -> bool:
                return value(scrape_anew(), "support_graph_open_subscriptions") == remaining

            await asyncio.to_thread(until, forgotten, "the dead worker's subscriptions forgotten")
            samples = await asyncio.to_thread(scrape_anew)
            # what it counted stays counted
            assert value(samples, "support_graph_requests_total", operation="query", outcome="ok") == queries + 1
            assert value(samples, "support_graph_requests_total", operation="subscription", outcome="ok") == 4
    finally:
        await asyncio.to_thread(serve.cleanup)
