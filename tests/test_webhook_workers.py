"""Webhooks across real server processes: a ``kill -9`` between attempts loses nothing, and two
workers on one PostgreSQL database deliver each event exactly once, in commit order.

The processes are uvicorn running ``create_app`` with the webhook sender in its lifespan (the
app's own where app.py starts one, else added here), each in a session of its own so a
``SIGKILL`` takes the whole process with no chance to clean up.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.databases import create_postgres_database, drop_postgres_database, postgres_unreachable, require
from tests.procs import ROOT, SETTINGS_ENV, free_port
from tests.test_webhook_receiver import Receiver

PROGRAM = """
import sys
from contextlib import asynccontextmanager
import uvicorn
from graph.server.app import create_app
from graph.server.settings import Settings
from graph.server.webhook_sender import WebhookSender

app = create_app(Settings(database_url=sys.argv[1], broker_url=sys.argv[2]))
if getattr(app.state, "webhook_sender", None) is None:
    services = app.state.services
    sender = WebhookSender(services.db, services.broker, require_auth=services.settings.require_auth)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application):
        async with inner(application):
            await sender.start()
            try:
                yield
            finally:
                await sender.stop()

    app.router.lifespan_context = lifespan
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[3]), log_level="warning")
"""
CREATE = """
mutation($url: String!) { createWebhook(input: {url: $url, events: ["Ticket.Created"]}) { secret webhook { id } } }"""
TICKET = 'mutation { createTicket(input: {subject: "w"}) { id } }'
DELIVERIES = """
query($id: ID!) { webhook(id: $id) {
  deliveryCounts { delivered total }
  deliveries(first: 100) { nodes { status event { id sequence } attempts { responseStatus } } }
} }"""


class Worker:
    """One server process with a webhook sender."""

    def __init__(self, database_url: str, broker_url: str, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        inherited = {k: v for k, v in os.environ.items() if k not in SETTINGS_ENV}
        self.log = open(f"/tmp/webhook-worker-{self.port}.log", "wb")  # noqa: SIM115 - closed in stop
        self.process = subprocess.Popen(
            [sys.executable, "-c", PROGRAM, database_url, broker_url, str(self.port)],
            cwd=ROOT, env={**inherited, **env, "PYTHONUNBUFFERED": "1"}, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, f"the worker exited: {self.output()}"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200:
                    break
            assert time.monotonic() < deadline, f"the worker did not get ready: {self.output()}"
            time.sleep(0.1)
        self.http = httpx.Client(base_url=self.url, timeout=30)

    def output(self) -> str:
        with open(self.log.name, errors="replace") as log:
            return log.read()[-3000:]

    def data(self, query: str, variables: dict | None = None) -> dict:
        body = self.http.post("/graphql", json={"query": query, "variables": variables or {}}).json()
        assert not body.get("errors"), body
        return body["data"]

    def kill(self) -> None:
        """``kill -9``: no lifespan shutdown, no goodbye."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(15)

    def stop(self) -> None:
        self.http.close()
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.log.name)


@contextlib.contextmanager
def workers(database_url: str, broker_url: str, count: int, env: dict[str, str]) -> Iterator[list[Worker]]:
    started: list[Worker] = []
    try:
        for _ in range(count):  # one after another: the first migrates the schema
            started.append(Worker(database_url, broker_url, env))
        yield started
    finally:
        for worker in started:
            worker.stop()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    require(postgres_unreachable(), "multi-process")
    url = create_postgres_database()
    try:
        yield url
    finally:
        drop_postgres_database(url)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


def test_a_kill_9_between_attempts_loses_nothing(tmp_path, receiver: Receiver):
    """The first attempt fails; the worker is killed before the retry is due; a new worker on
    the same database makes the retry (same webhook-id) and it is delivered."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'kill.db'}"
    env = {"WEBHOOK_RETRY_SCHEDULE": "4,4", "WEBHOOK_TIMEOUT_SECONDS": "2", "WEBHOOK_POLL_SECONDS": "1"}
    receiver.plan("/k", [500])
    with workers(url, "memory://", 1, env) as (first,):
        hook = first.data(CREATE, {"url": receiver.url("/k")})["createWebhook"]["webhook"]["id"]
        first.data(TICKET)
        receiver.wait_for("/k", 1)
        deadline = time.monotonic() + 20
        while first.data(DELIVERIES, {"id": hook})["webhook"]["deliveries"]["nodes"][0]["status"] != "RETRYING":
            assert time.monotonic() < deadline, "the failed attempt was not recorded"
            time.sleep(0.05)
        first.kill()  # between the attempts: the first is recorded, the retry not yet due
    killed_at = time.time()
    time.sleep(5)  # the retry was due meanwhile: nobody was there to make it
    assert len(receiver.received("/k")) == 1
    with workers(url, "memory://", 1, env) as (second,):
        got = receiver.wait_for("/k", 2)
        assert got[1].headers["webhook-id"] == got[0].headers["webhook-id"]
        assert got[1].at > killed_at
        deadline = time.monotonic() + 20
        while (found := second.data(DELIVERIES, {"id": hook})["webhook"])["deliveryCounts"]["delivered"] != 1:
            assert time.monotonic() < deadline, found
            time.sleep(0.1)
        assert [a["responseStatus"] for a in found["deliveries"]["nodes"][0]["attempts"]] == [500, 200]
    time.sleep(0.5)
    assert len(receiver.received("/k")) == 2


def test_an_attempt_cut_off_by_a_kill_9_is_made_again_after_its_lease(tmp_path, receiver: Receiver):
    """Killed while the receiver is still answering: the delivery's lease runs out and a new
    worker makes the attempt again (at least once)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'lease.db'}"
    env = {"WEBHOOK_RETRY_SCHEDULE": "1", "WEBHOOK_TIMEOUT_SECONDS": "1", "WEBHOOK_POLL_SECONDS": "1"}
    receiver.plan("/l", delay=3)
    with workers(url, "memory://", 1, env) as (first,):
        first.data(CREATE, {"url": receiver.url("/l")})
        first.data(TICKET)
        receiver.wait_for("/l", 1)
        first.kill()
    receiver.plan("/l")
    with workers(url, "memory://", 1, env):
        got = receiver.wait_for("/l", 2, timeout=30)  # lease: 2 × timeout + 5 s
        assert got[1].headers["webhook-id"] == got[0].headers["webhook-id"]


def test_two_workers_on_postgresql_deliver_each_event_once_in_order(postgres_url: str, receiver: Receiver):
    # one at a time even with a backlog: then first attempts also arrive in commit order
    env = {"WEBHOOK_TIMEOUT_SECONDS": "5", "WEBHOOK_POLL_SECONDS": "1", "WEBHOOK_IN_ORDER_WINDOW": "1"}
    with workers(postgres_url, postgres_url, 2, env) as (a, b):
        made = a.data(CREATE, {"url": receiver.url("/two")})["createWebhook"]
        hook = made["webhook"]["id"]
        time.sleep(0.5)  # both senders listen to the tenant

        def create(n: int) -> str:
            return (a if n % 2 else b).data(TICKET)["createTicket"]["id"]

        with ThreadPoolExecutor(8) as pool:
            tickets = list(pool.map(create, range(120)))
        got = receiver.wait_for("/two", len(tickets), timeout=60)
        time.sleep(3)  # nothing more comes
        got = receiver.received("/two")
        ids = [r.headers["webhook-id"] for r in got]
        assert len(ids) == len(tickets) == len(set(ids))
        sequences = [json.loads(r.body)["data"]["sequence"] for r in got]
        assert sequences == sorted(sequences)  # first attempts in commit order
        assert {json.loads(r.body)["data"]["target"] for r in got} == set(tickets)
        counts = b.data(DELIVERIES, {"id": hook})["webhook"]["deliveryCounts"]
        assert counts == {"delivered": len(tickets), "total": len(tickets)}
