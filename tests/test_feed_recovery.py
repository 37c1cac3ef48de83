"""Live streams outlive database outages: nothing lost, nothing repeated, readiness tells.

Faults are caused for real: (a) every backend connection the shared test server holds on its
PostgreSQL database is terminated (``pg_terminate_backend``) again and again while tickets are
written; (b) a PostgreSQL cluster of the test's own (``initdb`` into a temporary directory,
``pg_ctl start`` on a free port) is stopped under a server (``pg_ctl stop -m fast``) and
started again — and, with feeds told to give up after a second, stopped until the feed ends
its streams with an error, from which clients resume with ``after``. Subscribers are real
WebSocket clients of both protocols, shared (live only) and resumable (``after``); what each
must receive is read back from the event log, and a sentinel written last proves nothing came
twice. Every wait is bounded polling, never sleep-then-assert.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator

import asyncpg
import httpx
import pytest

from graph.server.settings import Settings
from tests import ws_client as ws
from tests.conftest import UNTHROTTLED
from tests.live import LiveServer
from tests.procs import free_port
from tests.test_live import Api, ready, until
from tests.ws_client import LEGACY_WS, TRANSPORT_WS

#: The event's own fields only: what these tests check is delivery (related entities are read per
#: result, and a read that meets the fault fails that field, not the delivery).
FIELDS = "id type target sequence data"
EVENTS = f"subscription {{ events {{ {FIELDS} }} }}"
EVENTS_AFTER = f"subscription($after: ID) {{ events(after: $after) {{ {FIELDS} }} }}"
#: Seconds an outage's effects (readiness, recovery) may take to show.
RECOVERY_WAIT = 60.0
#: Times the shared server's connections are cut while tickets are written, and writers.
CUTS, WRITERS = 12, 4


def _sentinel() -> str:
    return f"sentinel {uuid.uuid4().hex[:8]}"


async def _subscribe_all(connections: list[ws.Connection], cursor: str) -> list[ws.Operation]:
    """On each connection: one shared live subscription and one resuming after ``cursor``."""
    operations = []
    for connection in connections:
        operations.append(await connection.subscribe(EVENTS, {}))
        operations.append(await connection.subscribe(EVENTS_AFTER, {"after": cursor}))
    return operations


async def _receive_exactly(operations: list[ws.Operation], expected: list[str], sentinel: str) -> None:
    """Each operation receives ``expected`` (event ids) in order, then the sentinel ticket's
    creation: nothing lost, nothing repeated, nothing out of order."""

    async def one(operation: ws.Operation) -> None:
        got = [r["events"]["id"] for r in await operation.take(len(expected), timeout=RECOVERY_WAIT)]
        assert got == expected, "events lost, repeated or out of order"
        following = (await operation.next(timeout=RECOVERY_WAIT))["events"]
        assert (following["type"], following["data"]["subject"]) == ("Ticket.Created", sentinel)

    await asyncio.gather(*(one(operation) for operation in operations))


async def _readiness(client: httpx.AsyncClient, status: int, live: str | None = None) -> dict:
    """Poll ``/readyz`` until it answers ``status`` (and, if given, ``"live": live``)."""
    deadline = time.monotonic() + RECOVERY_WAIT
    while True:
        response = await client.get("/readyz")
        body = response.json()
        if response.status_code == status and (live is None or body.get("live") == live):
            return body
        if time.monotonic() > deadline:
            pytest.fail(f"/readyz did not answer {status} (live: {live}); last: {response.status_code} {body}")
        await asyncio.sleep(0.05)


# --- (a) backends of the shared server terminated -------------------------------------------------------


async def _terminate_backends(database_url: str) -> int:
    """Terminate every connection to the server's database but this one; how many."""
    plain = database_url.replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(plain)
    try:
        return await connection.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await connection.close()


async def test_streams_survive_terminated_backends(server):
    if server.services.db.dialect != "postgresql":
        pytest.skip("terminating backend connections is a PostgreSQL fault (the sqlite run has none)")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        api = Api(client)
        start = await api.latest_event()
        async with (
            ws.connect(server.url, TRANSPORT_WS) as current,
            ws.connect(server.url, LEGACY_WS) as legacy,
        ):
            operations = await _subscribe_all([current, legacy], start["id"])
            await ready(server, taps=3, followers=2)  # one shared execution for both live ones
            await api.create_ticket()

            # writers keep writing while every connection is cut again and again, so that reads
            # of the tenant feed (one per commit) are in flight when their connection goes
            outcomes: list[bool] = []
            cutting = asyncio.Event()

            async def writer() -> None:
                while not cutting.is_set():
                    try:
                        await api.create_ticket()
                        outcomes.append(True)
                    except AssertionError:  # a write on a cut connection fails, writing nothing
                        outcomes.append(False)

            writers = [asyncio.create_task(writer()) for _ in range(WRITERS)]
            try:
                for _ in range(CUTS):
                    seen = len(outcomes)
                    await _terminate_backends(server.settings.database_url)
                    while len(outcomes) < seen + WRITERS:  # some writes went through between cuts
                        await asyncio.sleep(0.01)
            finally:
                cutting.set()
                await asyncio.wait_for(asyncio.gather(*writers), RECOVERY_WAIT)
            assert any(outcomes), f"no write succeeded after the cuts ({len(outcomes)} failed)"
            await _readiness(client, 200, live="ok")

            sentinel = _sentinel()
            expected = [e["id"] for e in await api.events_after(start["sequence"])]
            await api.create_ticket(sentinel)
            await _receive_exactly(operations, expected, sentinel)


# --- (b) a cluster of the test's own, stopped and started ---------------------------------------------


def _postgres_binaries() -> str | None:
    """The directory of initdb and pg_ctl, or None."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return os.path.dirname(found)
    for directory in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.access(os.path.join(directory, "initdb"), os.X_OK):
            return directory
    return None


class Cluster:
    """A PostgreSQL cluster in a temporary directory, on a free port, run as ``postgres`` when
    the tests run as root (PostgreSQL refuses to run as root)."""

    def __init__(self, binaries: str) -> None:
        self.binaries = binaries
        self.directory = tempfile.mkdtemp(prefix="support-graph-cluster-")
        self.data = os.path.join(self.directory, "data")
        self.log = os.path.join(self.directory, "postgres.log")
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.directory, user="postgres", group="postgres")

    def _run(self, tool: str, *args: str, timeout: float = 120) -> None:
        command = [os.path.join(self.binaries, tool), *args]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{tool} failed ({result.returncode}): {result.stdout}\n{result.stderr}\n{self.tail()}")

    def tail(self) -> str:
        with contextlib.suppress(OSError), open(self.log) as log:
            return log.read()[-3000:]
        return ""

    def init(self) -> None:
        self._run("initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", self.data, "-l", self.log, "-o", options, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "60", "stop")

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def remove(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    binaries = _postgres_binaries()
    if binaries is None:
        reason = "PostgreSQL's server binaries (initdb, pg_ctl) are not installed"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI must run the outage tests: {reason}")
        pytest.skip(reason)
    own = Cluster(binaries)
    try:
        own.init()
        own.start()

        async def create() -> None:
            connection = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{own.port}/postgres")
            try:
                await connection.execute("CREATE DATABASE support_graph")
            finally:
                await connection.close()

        asyncio.run(create())
        yield own
    finally:
        own.remove()


async def _write_fails(api: Api) -> dict:
    """A write while the database is down: it fails (and, the database being down, writes nothing)."""
    body = await api.client.post("/graphql", json={"query": 'mutation { createTicket(input: {subject: "x"}) { id } }'})
    answer = body.json()
    assert answer.get("errors"), f"a write succeeded while the database was down: {answer}"
    return answer["errors"][0]


async def _recovery(cluster: Cluster) -> None:
    # the feed reads the log every half second when no wake-up comes, so it meets the outage
    settings = Settings(database_url=cluster.url("support_graph"), limits=UNTHROTTLED, live_poll_seconds=0.5)
    server = LiveServer(settings).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            api = Api(client)
            await _readiness(client, 200, live="ok")
            start = await api.latest_event()
            async with (
                ws.connect(server.url, TRANSPORT_WS) as current,
                ws.connect(server.url, LEGACY_WS) as legacy,
            ):
                old = await _subscribe_all([current, legacy], start["id"])
                await ready(server, taps=3, followers=2)
                first = await api.create_ticket()
                for operation in old:
                    assert (await operation.next())["events"]["target"] == first
                    assert (await operation.next())["events"]["type"] == "Activity.Created"
                before_outage = await api.latest_event()

                await asyncio.to_thread(cluster.stop, "fast")
                body = await _readiness(client, 503, live="down")  # the feeds noticed, too
                assert body["database"] != "ok"
                error = await _write_fails(api)
                assert error.get("extensions", {}).get("code") == "UNAVAILABLE", error

                await asyncio.to_thread(cluster.start)
                await _readiness(client, 200, live="ok")
                assert server.services.live.feeds, "the tenant's feed is still there, reading"

                # new subscribers, live and resuming, next to the old ones
                async with ws.connect(server.url, TRANSPORT_WS) as late:
                    new = await _subscribe_all([late], before_outage["id"])
                    await until(server, lambda s: s.taps >= 4 and s.followers >= 3, "the new subscribers are ready")
                    for _ in range(3):
                        await api.create_ticket()
                    sentinel = _sentinel()
                    expected = [e["id"] for e in await api.events_after(before_outage["sequence"])]
                    assert len(expected) == 6, "the write during the outage wrote nothing"
                    await api.create_ticket(sentinel)
                    await _receive_exactly([*old, *new], expected, sentinel)
    finally:
        server.stop()


async def test_streams_survive_a_database_restart(cluster):
    await _recovery(cluster)


async def test_a_feed_that_gives_up_ends_its_streams_and_they_resume(cluster):
    """A feed that cannot read for ``give_up_after`` seconds ends its streams with an error that
    tells clients to resume with ``after``; resuming once the database is back loses nothing."""
    settings = Settings(database_url=cluster.url("support_graph"), limits=UNTHROTTLED, live_poll_seconds=0.5)
    server = LiveServer(settings).start()
    server.services.live.give_up_after = 1.0  # the feeds made from now on give up after a second
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            api = Api(client)
            start = await api.latest_event()
            async with ws.connect(server.url, TRANSPORT_WS) as current, ws.connect(server.url, LEGACY_WS) as legacy:
                operations = await _subscribe_all([current, legacy], start["id"])
                await ready(server, taps=3, followers=2)
                await api.create_ticket()
                last = {}
                for operation in operations:
                    received = [r["events"] for r in await operation.take(2)]
                    last[operation] = received[-1]["id"]

                await asyncio.to_thread(cluster.stop, "fast")
                for operation in operations:
                    error = await operation.error(timeout=RECOVERY_WAIT)
                    assert error["extensions"]["code"] == "UNAVAILABLE", error
                    assert "after" in error["message"], error
                await until(server, lambda s: not s.feeds and s.taps == 0, "the ended feed and its streams are gone")

                await asyncio.to_thread(cluster.start)
                await _readiness(client, 200, live="ok")
                written = await api.latest_event()
                await api.create_ticket()
                resumed = [await current.subscribe(EVENTS_AFTER, {"after": last[op]}) for op in operations]
                sentinel = _sentinel()
                expected = [e["id"] for e in await api.events_after(written["sequence"])]
                assert len(expected) == 2
                await api.create_ticket(sentinel)
                await _receive_exactly(resumed, expected, sentinel)
    finally:
        server.stop()
