"""Outages: a database that cannot be reached or refuses writes answers ``UNAVAILABLE``.

Every failure is caused for real: a PostgreSQL cluster of the test's own (``initdb``,
``pg_ctl``) is stopped under a running server, killed in the middle of a write unit, and
started again; a SQLite database lives on a small tmpfs that the test fills up and frees.
Every answer must be HTTP 503 with ``Retry-After`` and a GraphQL body whose errors are all
``UNAVAILABLE`` — never a ``text/plain`` 500, never a trace — and after recovery everything works
and nothing was half-written.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import websockets
from sqlalchemy import event as sa_event

import resolvers.keys
from graph.server.settings import Settings
from tests.conftest import UNTHROTTLED
from tests.live import LiveServer
from tests.procs import free_port
from tests.ws_client import LEGACY_WS, TRANSPORT_WS, WAIT, connect, ws_url

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
#: what a client must never see in an error
LEAKS = ("Traceback", "asyncpg", "sqlalchemy", "sqlite3", "SELECT", "INSERT", "Errno", 'File "')

CREATE = "mutation($s: String!) { createTicket(input: {subject: $s}) { id version } }"
RESOLVE = "mutation($id: ID!) { resolveTicket(id: $id) { id status } }"
LIST = "{ tickets(first: 10) { nodes { id subject } } }"  # the compiled fast path
NODE = "query($id: ID!) { node(id: $id) { id ... on Ticket { subject } } }"  # Strawberry
TWO = (
    'mutation { o: createOrganization(input: {name: "Acme"}) { id } '
    't: createTicket(input: {subject: "two in one"}) { id } }'
)


# --- a PostgreSQL cluster of the test's own ----------------------------------------------------------


class Cluster:
    """A throwaway PostgreSQL cluster on a free port, run as ``postgres`` when we are root."""

    def __init__(self, root: Path) -> None:
        self.root, self.data, self.port = root, root / "data", free_port()
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{args[0]} failed: {done.stdout}\n{done.stderr}"

    def init(self) -> Cluster:
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        return self

    def start(self, *settings: str) -> None:
        """Start (again), with ``name=value`` settings of this run."""
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        options += "".join(f" -c {setting}" for setting in settings)
        self._run(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"), "-w", "-o", options, "start"
        )

    def stop(self) -> None:
        """Fast shutdown: every session is disconnected, open transactions roll back."""
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    if not (PG_BIN / "initdb").exists() or not (PG_BIN / "pg_ctl").exists():
        reason = f"PostgreSQL binaries (initdb, pg_ctl) not found in {PG_BIN} (set PG_BIN)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI must run the outage tests: {reason}")
        pytest.skip(reason)
    root = Path(tempfile.mkdtemp(prefix="sg-outage-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    own = Cluster(root).init()
    own.start()
    try:
        yield own
    finally:
        if own.running():
            own.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def servers(cluster: Cluster) -> Iterator[tuple[LiveServer, LiveServer]]:
    """An open server and one that requires keys, both on the cluster."""
    open_ = LiveServer(Settings(database_url=cluster.url, limits=UNTHROTTLED)).start()
    guarded = LiveServer(Settings(database_url=cluster.url, limits=UNTHROTTLED, require_auth=True)).start()
    yield open_, guarded
    for live in (open_, guarded):
        live.stop()


# --- what an outage answer looks like ------------------------------------------------------------------


def assert_unavailable(response: httpx.Response) -> list[dict]:
    """HTTP 503, ``Retry-After``, a JSON GraphQL body whose every error is ``UNAVAILABLE``."""
    assert response.status_code == 503, (response.status_code, response.text)
    assert int(response.headers["retry-after"]) > 0
    media = response.headers["content-type"].split(";")[0]
    assert media in ("application/json", "application/graphql-response+json"), media
    for leak in LEAKS:
        assert leak not in response.text, response.text
    body = response.json()
    answers = body if isinstance(body, list) else [body]
    errors = [error for answer in answers for error in answer["errors"]]
    assert errors
    for answer in answers:
        assert answer.get("data") is None or all(v is None for v in answer["data"].values()), answer
    for error in errors:
        assert error["extensions"]["code"] == "UNAVAILABLE", error
        assert error["extensions"]["requestId"]
        assert "retry" in error["message"].lower()
    return errors


def post(live: LiveServer, query: str, variables: dict | None = None, **headers: str) -> httpx.Response:
    return live.http.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)


def ws_errors(live: LiveServer, query: str, protocol: str, variables: dict | None = None) -> list[dict]:
    async def go() -> list[dict]:
        async with connect(live.url, protocol) as connection:
            operation = await connection.subscribe(query, variables)
            message = await operation.message()
            return message.errors

    return asyncio.run(go())


def legacy_connection_error(live: LiveServer, payload: dict) -> list[dict]:
    """``connection_init`` over graphql-ws (legacy): the ``connection_error`` it is refused with."""

    async def go() -> list[dict]:
        opening = websockets.connect(ws_url(live.url), subprotocols=[LEGACY_WS], ping_interval=None)
        socket = await asyncio.wait_for(opening, WAIT)
        try:
            await socket.send(json.dumps({"type": "connection_init", "payload": payload}))
            message = json.loads(await asyncio.wait_for(socket.recv(), WAIT))
        finally:
            await socket.close()
        assert message["type"] == "connection_error", message
        return [{"message": message["payload"]["message"], "extensions": {"code": message["payload"]["code"]}}]

    return asyncio.run(go())


# --- PostgreSQL stopped under a running server ------------------------------------------------------


def test_a_stopped_postgresql_answers_unavailable_on_every_path(cluster: Cluster, servers):
    live, guarded = servers
    ticket = live.data(CREATE, {"s": "before the outage"})["createTicket"]["id"]
    key = guarded.run(resolvers.keys.create_key(guarded.services.db, tenant=f"t{uuid.uuid4().hex[:8]}"))[1]
    event = live.data("{ events(first: 1) { nodes { id } } }")["events"]["nodes"][0]["id"]
    before = live.counts()

    cluster.stop()
    try:
        assert_unavailable(post(live, LIST))  # compiled path
        assert_unavailable(post(live, NODE, {"id": ticket}))  # Strawberry
        assert_unavailable(post(live, NODE, {"id": ticket}, accept="application/graphql-response+json"))
        assert_unavailable(live.http.get("/graphql", params={"query": "{ tickets { totalCount } }"}))
        assert_unavailable(live.http.post("/graphql", json=[{"query": LIST}, {"query": "{ tickets { totalCount } }"}]))
        assert_unavailable(post(live, CREATE, {"s": "during the outage"}))
        assert_unavailable(post(live, RESOLVE, {"id": ticket}))
        assert_unavailable(post(live, TWO))
        # the door's key check reads the database: a key it has not seen yet
        assert_unavailable(post(guarded, LIST, authorization=f"Bearer {key}"))
        assert_unavailable(post(guarded, CREATE, {"s": "keyed"}, authorization=f"Bearer {key}"))
        over_ws = ws_errors(live, NODE, TRANSPORT_WS, {"id": ticket}) + ws_errors(
            live, CREATE, TRANSPORT_WS, {"s": "ws"}
        )
        for protocol in (TRANSPORT_WS, LEGACY_WS):  # a subscription that replays from the log
            over_ws += ws_errors(live, "subscription($e: ID) { events(after: $e) { id } }", protocol, {"e": event})
        # a socket's key is checked at connection_init: the legacy protocol says why it refuses
        over_ws += legacy_connection_error(guarded, {"authorization": f"Bearer {key}"})
        assert over_ws
        for error in over_ws:
            assert error["extensions"]["code"] == "UNAVAILABLE", error
            assert not any(leak in str(error) for leak in LEAKS), error
        ready = live.http.get("/readyz")
        assert ready.status_code == 503 and ready.json()["database"] == "down"
    finally:
        cluster.start()

    assert live.http.get("/readyz").status_code == 200
    assert live.counts() == before  # nothing of the failed writes was written
    assert live.data(NODE, {"id": ticket})["node"]["subject"] == "before the outage"
    assert ticket in [n["id"] for n in live.data(LIST)["tickets"]["nodes"]]
    assert live.data(RESOLVE, {"id": ticket})["resolveTicket"]["status"] == "RESOLVED"
    assert live.data(CREATE, {"s": "after"})["createTicket"]["version"] == 1
    assert guarded.data(LIST, headers={"authorization": f"Bearer {key}"})["tickets"]["nodes"] == []
    after = live.counts()
    assert after["ticket"] == before["ticket"] + 1 and after["event"] > before["event"]


def test_postgresql_stopping_in_the_middle_of_a_write_unit_writes_nothing(cluster: Cluster, servers):
    """The unit has inserted its ticket and waits for the tenant's sequence row, which the
    test holds locked; the server shuts down under it."""
    live, _ = servers
    live.data(CREATE, {"s": "numbering starts"})
    before = live.counts()
    plain = cluster.url.replace("postgresql+asyncpg://", "postgresql://")
    answer: dict[str, httpx.Response] = {}

    async def hold_the_sequence_and_stop() -> None:
        holder, watcher = await asyncpg.connect(plain), await asyncpg.connect(plain)
        try:
            await holder.execute("BEGIN")
            await holder.execute("SELECT * FROM tenant_sequence WHERE tenant = 'default' FOR UPDATE")
            writer = threading.Thread(target=lambda: answer.update(r=post(live, CREATE, {"s": "half"})))
            writer.start()
            waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%tenant_sequence%'"
            async with asyncio.timeout(30):  # bounded wait for the unit to reach the lock
                while not await watcher.fetchval(waiting):
                    await asyncio.sleep(0.02)
            inserted = await watcher.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'transactionid' AND mode = 'ExclusiveLock'"
            )
            assert inserted >= 2  # ours and the unit's: it has written its rows, uncommitted
            await asyncio.to_thread(cluster.stop)
            await asyncio.to_thread(writer.join, 60)
        finally:
            for connection in (holder, watcher):
                connection.terminate()

    try:
        asyncio.run(hold_the_sequence_and_stop())
        assert_unavailable(answer["r"])
    finally:
        if not cluster.running():
            cluster.start()
    assert live.counts() == before
    assert "half" not in [n["subject"] for n in live.data(LIST)["tickets"]["nodes"]]
    live.data(CREATE, {"s": "whole"})
    assert live.counts()["ticket"] == before["ticket"] + 1


# --- a full disk under SQLite -----------------------------------------------------------------------


class Tmpfs:
    """The database on a 16 MiB tmpfs of its own; full once a file takes every byte left."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.url = f"sqlite+aiosqlite:///{directory / 'sg.db'}"
        self.filler = directory / "filler"

    def fill(self, live: LiveServer) -> None:
        chunk = b"\xff" * 65536
        with open(self.filler, "wb", buffering=0) as out:
            for size in (chunk, b"\xff"):
                with contextlib.suppress(OSError):
                    while True:
                        out.write(size)
        assert os.statvfs(self.directory).f_bavail == 0

    def free(self, live: LiveServer) -> None:
        self.filler.unlink()


class PageCap:
    """SQLite's own limit: ``PRAGMA max_page_count`` set to the pages the database has now, on
    every connection (pooled ones are closed so that new ones take it); for hosts without tmpfs."""

    def __init__(self, directory: Path) -> None:
        self.url = f"sqlite+aiosqlite:///{directory / 'sg.db'}"
        self.pages: int | None = None

    def _cap(self, dbapi_connection, _record) -> None:
        if self.pages is not None:
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA max_page_count = {self.pages}")
            cursor.close()

    def fill(self, live: LiveServer) -> None:
        sa_event.listen(live.services.db.engine.sync_engine, "connect", self._cap)
        live.sql("PRAGMA wal_checkpoint(TRUNCATE)")
        assert live.sql("PRAGMA freelist_count") == [(0,)]  # every write must grow the file
        self.pages = live.sql("PRAGMA page_count")[0][0]
        live.run(live.services.db.engine.dispose())

    def free(self, live: LiveServer) -> None:
        self.pages = None
        live.run(live.services.db.engine.dispose())


@pytest.fixture(params=["tmpfs", "max_page_count"])
def disk(request: pytest.FixtureRequest) -> Iterator[Tmpfs | PageCap]:
    directory = Path(tempfile.mkdtemp(prefix="sg-outage-disk-"))
    if request.param == "max_page_count":
        yield PageCap(directory)
        shutil.rmtree(directory, ignore_errors=True)
        return
    mounted = (
        os.geteuid() == 0
        and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(directory)], capture_output=True
        ).returncode
        == 0
    )
    if not mounted:
        directory.rmdir()
        pytest.skip("mounting a tmpfs needs root (the max_page_count variant fills SQLite's own limit)")
    try:
        yield Tmpfs(directory)
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)
        directory.rmdir()


def test_a_full_sqlite_disk_refuses_writes_with_unavailable(disk: Tmpfs | PageCap):
    live = LiveServer(Settings(database_url=disk.url, limits=UNTHROTTLED)).start()
    try:
        ticket = live.data(CREATE, {"s": "before the disk filled"})["createTicket"]["id"]
        assert live.http.get("/readyz").status_code == 200
        before = live.counts()
        disk.fill(live)

        # a long description needs pages of its own: the write cannot fit in pages already there
        big = 'mutation($d: String) { createTicket(input: {subject: "big", description: $d}) { id } }'
        assert_unavailable(post(live, big, {"d": "x" * 65536}))
        if isinstance(disk, Tmpfs):  # not a byte left for the log: even small writes fail
            assert_unavailable(post(live, CREATE, {"s": "no room"}))
            assert_unavailable(post(live, RESOLVE, {"id": ticket}))
        ready = live.http.get("/readyz")
        assert ready.status_code == 503 and ready.json()["database"] == "refusing writes", ready.text
        # reads still work: the data is there, unchanged
        assert live.data(NODE, {"id": ticket})["node"]["subject"] == "before the disk filled"
        assert live.counts() == before

        disk.free(live)
        assert live.http.get("/readyz").status_code == 200
        assert live.data(RESOLVE, {"id": ticket})["resolveTicket"]["status"] == "RESOLVED"
        assert live.data(big, {"d": "x" * 65536})["createTicket"]["id"]
        after = live.counts()
        assert after["ticket"] == before["ticket"] + 1 and after["event"] > before["event"]
    finally:
        live.stop()


def test_a_read_only_postgresql_refuses_writes_and_is_not_ready_until_it_takes_them(cluster: Cluster, servers):
    """A server that answers reads but refuses writes (here ``default_transaction_read_only``,
    as a standby would): writes are UNAVAILABLE, reads work, ``/readyz`` says so until the
    database takes writes again — found by its own probe, with no write from outside."""
    live, _ = servers
    ticket = live.data(CREATE, {"s": "read-only soon"})["createTicket"]["id"]
    before = live.counts()
    cluster.stop()
    cluster.start("default_transaction_read_only=on")  # as a standby: reads, no writes
    try:
        assert_unavailable(post(live, CREATE, {"s": "refused"}))
        assert_unavailable(post(live, RESOLVE, {"id": ticket}))
        assert live.data(NODE, {"id": ticket})["node"]["subject"] == "read-only soon"
        ready = live.http.get("/readyz")
        assert ready.status_code == 503 and ready.json()["database"] == "refusing writes", ready.text
    finally:
        cluster.stop()
        cluster.start()
    assert live.http.get("/readyz").status_code == 200
    assert live.counts() == before
    assert live.data(RESOLVE, {"id": ticket})["resolveTicket"]["status"] == "RESOLVED"
