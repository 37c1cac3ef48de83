"""Brokers on real servers: PostgreSQL LISTEN/NOTIFY and Redis pub/sub, plus the in-process one.

Two broker instances stand for two workers. PostgreSQL brokers work on a fresh database of
this module (NOTIFY reaches only sessions of the same database); Redis brokers on a channel of
their own per test (``?channel=``), so concurrent runs sharing a Redis do not hear each other.
Connections are cut for real: ``pg_terminate_backend`` on the LISTEN backend, ``CLIENT KILL
TYPE pubsub``, or a TCP proxy in front of the server that drops everything and refuses new
connections until it is brought back. Where a server is unreachable its tests are skipped with
the reason — except in CI (``CI=true``), where that is a failure. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import redis.asyncio as aioredis

from graph.server.brokers.factory import broker_from_url
from graph.server.brokers.memory import CHANNEL, InProcessBroker, LocalFanout, decode, encode
from graph.server.brokers.postgres import PostgresBroker
from graph.server.brokers.redis import RedisBroker
from tests.databases import (
    REDIS_URL,
    create_postgres_database,
    drop_postgres_database,
    postgres_unreachable,
    redis_unreachable,
    require,
)

#: Seconds any single wait may take before the test fails instead of hanging.
WAIT = 20.0
KINDS = ("postgresql", "redis")


def with_channel(url: str, channel: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}channel={channel}"


def with_address(url: str, host: str, port: int) -> str:
    """``url`` pointing at ``host:port`` instead (keeping user, path and query)."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{host}:{port}" if userinfo else f"{host}:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres_database() -> str:
    require(postgres_unreachable(), "broker")
    url = create_postgres_database()
    yield url
    drop_postgres_database(url)


@pytest.fixture(scope="module")
def redis_server() -> str:
    require(redis_unreachable(), "broker")
    return REDIS_URL


@pytest.fixture(params=KINDS)
def broker_url(request: pytest.FixtureRequest) -> str:
    """A URL for a broker of each kind, private to the test."""
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_database")
    return with_channel(request.getfixturevalue("redis_server"), f"support_graph_test_{uuid.uuid4().hex[:12]}")


@pytest.fixture
async def brokers(broker_url: str):
    """``await brokers(url=None, **options)``: a started broker (a "worker"), stopped after the test."""
    made = []

    async def make(url: str | None = None, **options):
        broker = broker_from_url(url or broker_url, **options)
        made.append(broker)
        await asyncio.wait_for(broker.start(), WAIT)
        return broker

    yield make
    for broker in made:
        await asyncio.wait_for(broker.stop(), WAIT)


class Heard:
    """A listener that records its wake-ups and lets a test wait for them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self._changed = asyncio.Event()

    def __call__(self, tenant: str, seq: int) -> None:
        self.calls.append((tenant, seq))
        self._changed.set()

    def seqs(self, tenant: str) -> list[int]:
        return [seq for t, seq in self.calls if t == tenant]

    async def until(self, condition: Callable[[], bool], what: str) -> None:
        await until(condition, what, self._changed)


async def until(condition: Callable[[], bool], what: str, changed: asyncio.Event | None = None) -> None:
    """Wait until ``condition()`` holds; fail after ``WAIT`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not condition():
        remaining = deadline - loop.time()
        if remaining <= 0:
            pytest.fail(f"timed out waiting for {what}")
        if changed is None:
            await asyncio.sleep(min(0.02, remaining))
        else:
            changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), min(0.5, remaining))


def tenant() -> str:
    return f"tenant-{uuid.uuid4().hex[:10]}"


# --- cutting connections for real ------------------------------------------------------------


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def kill_subscriptions(broker_url: str, name: str | None = None) -> int:
    """Cut the brokers' subscription connections on the server; how many were cut.

    PostgreSQL: ``pg_terminate_backend`` on the database's ``LISTEN`` backends (only the one of the
    broker called ``name`` if given). Redis: ``CLIENT KILL TYPE pubsub``.
    """
    if broker_url.startswith("redis"):
        client = aioredis.Redis.from_url(broker_url.partition("?")[0])
        try:
            return await client.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        finally:
            await client.aclose()
    connection = await asyncpg.connect(_plain(broker_url))
    try:
        return await connection.fetchval(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE 'LISTEN%'"
            " AND ($1::text IS NULL OR application_name = $1)) AS killed",
            name,
        )
    finally:
        await connection.close()


async def listen_backends(broker_url: str, name: str) -> int:
    connection = await asyncpg.connect(_plain(broker_url))
    try:
        return await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND query LIKE 'LISTEN%' AND application_name = $1",
            name,
        )
    finally:
        await connection.close()


class TcpProxy:
    """A TCP proxy in front of a real server: ``down()`` drops every connection and refuses new
    ones (the server is gone, as far as clients can tell); ``up()`` accepts again, same port."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.tasks: set[asyncio.Task] = set()

    async def up(self) -> TcpProxy:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", self.port, reuse_address=True)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def down(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            target_reader, target_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.writers.update((writer, target_writer))
        for source, sink in ((reader, target_writer), (target_reader, writer)):
            task = asyncio.create_task(self._pump(source, sink))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            sink.transport.abort()
            self.writers.discard(sink)


@contextlib.asynccontextmanager
async def proxy_for(url: str):
    """A ``TcpProxy`` in front of ``url``'s server, and ``url`` rewritten to go through it."""
    parts = urlsplit(url)
    proxy = await TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432).up()
    try:
        yield proxy, with_address(url, "127.0.0.1", proxy.port)
    finally:
        await proxy.down()


# --- no server needed ------------------------------------------------------------------------


def test_broker_from_url_picks_the_broker_by_scheme() -> None:
    assert isinstance(broker_from_url("memory://"), InProcessBroker)
    assert isinstance(broker_from_url(""), InProcessBroker)
    for url in ("postgresql://h/db", "postgres://h/db", "postgresql+asyncpg://u:p@h:5433/db"):
        broker = broker_from_url(url)
        assert isinstance(broker, PostgresBroker), url
        assert broker.dsn.startswith(("postgresql://", "postgres://")), broker.dsn
        assert broker.channel == CHANNEL
    assert broker_from_url("postgresql+asyncpg://u:p@h:5433/db").dsn == "postgresql://u:p@h:5433/db"
    for url in ("redis://127.0.0.1:6379/0", "rediss://h:6380/1"):
        assert isinstance(broker_from_url(url), RedisBroker), url
    # ``channel`` is ours and is taken off the URL; other parameters stay for the driver.
    redis_broker = broker_from_url("redis://h:6379/0?channel=other&socket_timeout=3")
    assert (redis_broker.channel, redis_broker.url) == ("other", "redis://h:6379/0?socket_timeout=3")
    pg_broker = broker_from_url("postgresql://h/db?sslmode=disable&channel=ours")
    assert (pg_broker.channel, pg_broker.dsn) == ("ours", "postgresql://h/db?sslmode=disable")


@pytest.mark.parametrize("url", ["kafka://h:9092", "http://example.com", "sqlite:///x.db", "nonsense"])
def test_broker_from_url_refuses_what_it_does_not_know(url: str) -> None:
    with pytest.raises(ValueError) as raised:
        broker_from_url(url)
    message = str(raised.value)
    assert "memory://" in message and "postgresql://" in message and "redis://" in message
    assert url.partition(":")[0] in message


def test_payload_round_trips_tenants_with_colons() -> None:
    for tenant_, seq in (("default", 1), ("acme:eu:1", 42), ("ü-tenant", 10**12)):
        assert decode(encode(tenant_, seq)) == (tenant_, seq)
        assert decode(encode(tenant_, seq).encode()) == (tenant_, seq)
    assert len(encode("default", 123456)) <= 20
    for junk in ("", "no-seq", ":5", "t:x"):
        assert decode(junk) is None


async def test_in_process_broker_delivers_routes_and_unsubscribes() -> None:
    broker = InProcessBroker()
    await broker.start()
    one, other = Heard(), Heard()
    stop_one = broker.listen("a", one)
    broker.listen("b", other)
    await broker.publish("a", 1)
    await broker.publish("b", 2)
    stop_one()
    await broker.publish("a", 3)
    assert one.calls == [("a", 1)]
    assert other.calls == [("b", 2)]
    assert broker.healthy and broker.count == 1
    broker.deliver_all()
    assert other.calls == [("b", 2), ("b", -1)]
    await broker.stop()


def test_a_failing_listener_does_not_starve_the_others() -> None:
    fanout = LocalFanout()
    heard = Heard()

    def broken(tenant_: str, seq: int) -> None:
        raise RuntimeError("listener bug")

    fanout.listen("t", broken)
    fanout.listen("t", heard)
    fanout.deliver("t", 5)
    fanout.deliver_all()
    assert heard.calls == [("t", 5), ("t", -1)]


# --- PostgreSQL and Redis --------------------------------------------------------------------


async def test_a_wakeup_published_on_one_worker_reaches_the_others(brokers, broker_url) -> None:
    a, b = await brokers(), await brokers()
    assert a.healthy and b.healthy
    t = tenant()
    on_a, on_b = Heard(), Heard()
    a.listen(t, on_a)
    b.listen(t, on_b)
    await b.publish(t, 7)
    # the publisher's own listeners are woken at once, before the round trip
    assert on_b.calls[0] == (t, 7)
    await on_a.until(lambda: on_a.calls, "the wake-up on the other worker")
    assert on_a.calls[0] == (t, 7)
    await a.publish(t, 8)
    await on_b.until(lambda: 8 in on_b.seqs(t), "the wake-up back on the first worker")
    assert b.published >= 1 and a.received >= 1 and a.dropped == b.dropped == 0


async def test_wakeups_are_routed_by_tenant(brokers) -> None:
    a, b = await brokers(), await brokers()
    first, second, colon, barrier = tenant(), tenant(), f"acme:{uuid.uuid4().hex[:6]}:eu", tenant()
    heard = {name: Heard() for name in (first, second, colon, barrier)}
    for name, listener in heard.items():
        a.listen(name, listener)
    unheard = tenant()  # published to, listened to by no one on ``a``
    for name, seq in ((first, 1), (second, 5), (unheard, 9), (colon, 3), (first, 2)):
        await b.publish(name, seq)
    await b.publish(barrier, 1)
    # one publisher's wake-ups arrive in order: once the barrier is heard, all the rest is too
    await heard[barrier].until(lambda: heard[barrier].calls, "the barrier wake-up")
    assert heard[first].calls == [(first, 1), (first, 2)]
    assert heard[second].calls == [(second, 5)]
    assert heard[colon].calls == [(colon, 3)]


async def test_unsubscribed_listeners_hear_nothing(brokers) -> None:
    a, b = await brokers(), await brokers()
    t, barrier = tenant(), tenant()
    gone, kept, at_barrier = Heard(), Heard(), Heard()
    unsubscribe = a.listen(t, gone)
    a.listen(t, kept)
    a.listen(barrier, at_barrier)
    assert a.count == 3
    unsubscribe()
    unsubscribe()  # twice is harmless
    assert a.count == 2
    await b.publish(t, 1)
    await b.publish(barrier, 1)
    await at_barrier.until(lambda: at_barrier.calls, "the barrier wake-up")
    assert gone.calls == []
    assert kept.calls == [(t, 1)]


async def test_healthy_while_subscribed(broker_url) -> None:
    broker = broker_from_url(broker_url)
    assert not broker.healthy
    await asyncio.wait_for(broker.start(), WAIT)
    try:
        assert broker.healthy and broker.connects == 1
    finally:
        await asyncio.wait_for(broker.stop(), WAIT)
    assert not broker.healthy


async def test_a_killed_subscription_reconnects_and_every_stream_catches_up(brokers, broker_url) -> None:
    a, b = await brokers(), await brokers()
    t, other = tenant(), tenant()
    heard, heard_other, on_b = Heard(), Heard(), Heard()
    a.listen(t, heard)
    a.listen(other, heard_other)
    b.listen(other, on_b)
    if broker_url.startswith("postgres"):
        assert await listen_backends(broker_url, a.name) == 1
    assert await kill_subscriptions(broker_url) >= 1
    await until(lambda: a.disconnects >= 1 and a.connects >= 2 and a.healthy, "the subscription to come back")
    # after the reconnect every listener is woken once, to re-read the log from its cursor
    await heard.until(lambda: (t, -1) in heard.calls, "the catch-up wake-up")
    assert (other, -1) in heard_other.calls
    # and wake-ups flow again
    await until(lambda: b.healthy, "the other worker's subscription to come back")
    await b.publish(t, 42)
    await heard.until(lambda: 42 in heard.seqs(t), "a wake-up after the reconnect")
    await a.publish(other, 43)
    await on_b.until(lambda: 43 in on_b.seqs(other), "a wake-up from the reconnected worker")
    if broker_url.startswith("postgres"):
        assert await listen_backends(broker_url, a.name) == 1  # the LISTEN is back, and only once


async def test_down_broker_is_unhealthy_publish_never_raises_and_streams_catch_up(brokers, broker_url) -> None:
    async with proxy_for(broker_url) as (proxy, through_proxy):
        a = await brokers(through_proxy)  # this worker reaches the server through the proxy
        b = await brokers()
        t = tenant()
        heard = Heard()
        a.listen(t, heard)
        assert a.healthy
        await proxy.down()
        await until(lambda: not a.healthy, "the broker to notice the server is gone")
        # publishing into the void: no exception, local listeners still woken, the wake-up dropped
        await asyncio.wait_for(a.publish(t, 1), WAIT)
        assert heard.calls[-1] == (t, 1)
        await until(lambda: a.dropped >= 1, "the dropped wake-up to be counted")
        await b.publish(t, 2)  # nobody on ``a`` can hear this one: it is in the log only
        assert not a.healthy
        await proxy.up()
        await until(lambda: a.healthy, "the broker to reconnect")
        await heard.until(lambda: (t, -1) in heard.calls, "the catch-up wake-up")
        await b.publish(t, 3)
        await heard.until(lambda: 3 in heard.seqs(t), "a wake-up after the server came back")
        await a.publish(t, 4)
        assert a.published >= 1


@pytest.mark.parametrize("kind", KINDS)
async def test_an_unreachable_broker_starts_unhealthy_and_publish_never_raises(kind: str) -> None:
    port = closed_port()
    url = f"postgresql://127.0.0.1:{port}/nothing" if kind == "postgresql" else f"redis://127.0.0.1:{port}/0"
    broker = broker_from_url(url)
    heard = Heard()
    broker.listen("t", heard)
    await asyncio.wait_for(broker.start(), WAIT)
    try:
        assert not broker.healthy
        for seq in (1, 2, 3):
            assert await asyncio.wait_for(broker.publish("t", seq), WAIT) is None
        assert heard.seqs("t") == [1, 2, 3]  # this worker's own streams still wake
        assert broker.dropped == 3 and broker.published == 0
        assert broker.connects == 0
    finally:
        await asyncio.wait_for(broker.stop(), WAIT)
    assert not broker.healthy
