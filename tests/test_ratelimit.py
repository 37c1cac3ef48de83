"""Rate limits on real servers: counted per client address before any key is looked up, the
address taken from ``X-Forwarded-For`` only behind a trusted proxy, and shared by every worker
through Redis when the broker is Redis.

Budgets are tiny and refill slowly (one request a minute), so "the next request is refused"
holds however slow the machine. uvicorn's own proxy-header handling is switched off in these
servers (``FORWARDED_ALLOW_IPS=""`` when they are built), so the server's handling is what is
tested; each test gets addresses of its own through a trusted ``X-Forwarded-For``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import websockets

import resolvers.keys
from graph.server.ratelimit import Proxies, RateLimiter
from graph.server.settings import Settings
from graph.validation import Limits
from tests.live import LiveServer
from tests.ws_client import LEGACY_WS, WAIT, ws_url

#: per key (and per anonymous address): three at once, then one a minute
PER_KEY = Limits(rate_per_minute=1, rate_burst=3)
#: per address, whatever the key: five at once, then one a minute
ADDRESS = {"address_rate_per_minute": 1, "address_rate_burst": 5}
TICKETS = "{ tickets { totalCount } }"
REDIS = "redis://127.0.0.1:6379/0"


@contextmanager
def running(tmp_path: Path, **settings: object) -> Iterator[LiveServer]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FORWARDED_ALLOW_IPS", "")  # read by uvicorn.Config: trust nobody there
        live = LiveServer(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'rate.db'}", **settings))
    live.start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """``require_auth``, behind a trusted proxy at 127.0.0.1 (the test client)."""
    path = tmp_path_factory.mktemp("guarded")
    with running(path, require_auth=True, limits=PER_KEY, forwarded_allow_ips="127.0.0.1", **ADDRESS) as live:
        yield live


def client() -> str:
    """A fresh documentation address (RFC 5737), so each test has buckets of its own."""
    return f"198.51.{uuid.uuid4().int % 256}.{uuid.uuid4().int % 254 + 1}"


def post(live: LiveServer, *, key: str | None = None, forwarded: str | None = None) -> httpx.Response:
    headers = {}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    if forwarded is not None:
        headers["X-Forwarded-For"] = forwarded
    return live.http.post("/graphql", json={"query": TICKETS}, headers=headers)


def assert_throttled(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["RATE_LIMITED"]
    assert int(response.headers["retry-after"]) >= 1


def make_key(live: LiveServer) -> str:
    return live.run(resolvers.keys.create_key(live.services.db, tenant=f"t-{uuid.uuid4().hex[:8]}"))[1]


# --- every request counts against its address, before the key is looked up ---------------------


def test_invalid_keys_are_throttled_before_they_are_looked_up(guarded: LiveServer):
    address = client()
    for n in range(ADDRESS["address_rate_burst"]):
        bad = f"sgk_{uuid.uuid4().hex[:12]}_{uuid.uuid4().hex}{n}"  # well formed: each one is a read
        assert post(guarded, key=bad, forwarded=address).status_code == 401
    throttled = f"sgk_{uuid.uuid4().hex[:12]}_{uuid.uuid4().hex}"
    assert_throttled(post(guarded, key=throttled, forwarded=address))
    # every key looked up is remembered (valid or not): this one never was
    assert hashlib.sha256(throttled.encode()).digest() not in guarded.services.keys._cache
    assert hashlib.sha256(bad.encode()).digest() in guarded.services.keys._cache
    # the address is spent whatever it presents, a valid key included
    assert_throttled(post(guarded, key=make_key(guarded), forwarded=address))
    # another address is not
    assert post(guarded, key=make_key(guarded), forwarded=client()).status_code == 200


def test_a_valid_key_has_a_budget_of_its_own_across_addresses(guarded: LiveServer):
    key = make_key(guarded)
    for _ in range(PER_KEY.rate_burst):
        assert post(guarded, key=key, forwarded=client()).status_code == 200
    assert_throttled(post(guarded, key=key, forwarded=client()))
    assert post(guarded, key=make_key(guarded), forwarded=client()).status_code == 200


# --- the client's address --------------------------------------------------------------------


def test_a_trusted_proxy_gives_each_forwarded_client_its_own_budget(guarded: LiveServer):
    first, second = client(), client()
    for _ in range(ADDRESS["address_rate_burst"]):
        assert post(guarded, key="sgk_nope", forwarded=first).status_code == 401
    assert_throttled(post(guarded, key="sgk_nope", forwarded=first))
    assert post(guarded, key="sgk_nope", forwarded=second).status_code == 401


def test_the_right_most_untrusted_address_is_the_client(guarded: LiveServer):
    """A client cannot escape its budget by writing addresses of its own into the header: the
    trusted proxy appends the address it saw, and that one is counted."""
    real = client()
    for _ in range(ADDRESS["address_rate_burst"]):
        assert post(guarded, key="sgk_nope", forwarded=f"{client()}, {real}").status_code == 401
    assert_throttled(post(guarded, key="sgk_nope", forwarded=f"{client()}, {real}, 127.0.0.1"))


def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(tmp_path: Path):
    """The peer (127.0.0.1) is not among the proxies: every forwarded client is the peer."""
    with running(tmp_path, require_auth=True, limits=PER_KEY, forwarded_allow_ips="10.0.0.0/8", **ADDRESS) as live:
        for _ in range(ADDRESS["address_rate_burst"]):
            assert post(live, key="sgk_nope", forwarded=client()).status_code == 401
        assert_throttled(post(live, key="sgk_nope", forwarded=client()))
        assert_throttled(post(live, key="sgk_nope"))


@pytest.mark.parametrize(
    ("spec", "peer", "forwarded", "expected"),
    [
        (None, "127.0.0.1", ["203.0.113.9"], "127.0.0.1"),
        ("127.0.0.1", "127.0.0.1", ["203.0.113.9"], "203.0.113.9"),
        ("127.0.0.1", "10.1.1.1", ["203.0.113.9"], "10.1.1.1"),
        ("10.0.0.0/8", "10.1.1.1", ["6.6.6.6, 203.0.113.9, 10.2.2.2"], "203.0.113.9"),
        ("10.0.0.0/8", "10.1.1.1", ["6.6.6.6", "203.0.113.9:4711"], "203.0.113.9"),
        ("*", "192.0.2.1", ["203.0.113.9, 198.51.100.1"], "203.0.113.9"),
        ("10.0.0.0/8,::1", "::1", ["[2001:db8::1]:80"], "2001:db8::1"),
        ("127.0.0.1", "127.0.0.1", [], "127.0.0.1"),
    ],
)
def test_the_client_address(spec: str | None, peer: str, forwarded: list[str], expected: str):
    assert Proxies(spec).client(peer, forwarded) == expected


# --- the local buckets -----------------------------------------------------------------------


def test_past_max_callers_the_least_recently_seen_caller_is_forgotten():
    limiter = RateLimiter(rate_per_minute=1, burst=1, max_callers=2)
    assert limiter.acquire("a") == 0
    assert limiter.acquire("b") == 0
    assert limiter.acquire("a") > 0  # "a" is spent, and now the most recently seen
    assert limiter.acquire("c") == 0  # a third caller: "b" goes, not every bucket
    assert limiter.acquire("a") > 0, "a recent caller's spent bucket was forgotten"
    assert limiter.acquire("b") == 0  # forgotten, so a fresh bucket


# --- shared through Redis --------------------------------------------------------------------


def test_servers_on_one_redis_share_one_budget(tmp_path: Path):
    broker = f"{REDIS}?channel=rate-{uuid.uuid4().hex}"  # the channel names the budgets too
    settings = {"broker_url": broker, "limits": PER_KEY, "forwarded_allow_ips": "127.0.0.1"}
    with running(tmp_path / "a", **settings) as one, running(tmp_path / "b", **settings) as two:
        address = client()
        assert post(one, forwarded=address).status_code == 200
        assert post(two, forwarded=address).status_code == 200
        assert post(one, forwarded=address).status_code == 200
        assert_throttled(post(two, forwarded=address))
        assert_throttled(post(one, forwarded=address))
        assert post(two, forwarded=client()).status_code == 200


def test_an_unreachable_redis_falls_back_to_local_limits(tmp_path: Path):
    settings = {"broker_url": "redis://127.0.0.1:9/0", "limits": PER_KEY}  # nothing listens on 9
    with running(tmp_path, **settings) as live:
        for _ in range(PER_KEY.rate_burst):
            assert post(live).status_code == 200
        assert_throttled(post(live))


async def refusal_over_websocket(live: LiveServer, forwarded: str) -> str:
    """The code a legacy ``graphql-ws`` connection with a bad key is refused with."""
    opening = websockets.connect(
        ws_url(live.url), subprotocols=[LEGACY_WS], additional_headers={"X-Forwarded-For": forwarded},
        ping_interval=None,
    )  # fmt: skip
    async with await asyncio.wait_for(opening, WAIT) as socket:
        await socket.send(json.dumps({"type": "connection_init", "payload": {"authorization": "Bearer sgk_nope"}}))
        message = json.loads(await asyncio.wait_for(socket.recv(), WAIT))
    assert message["type"] == "connection_error", message
    return message["payload"]["code"]


async def test_bad_keys_over_websocket_count_against_the_address(guarded: LiveServer):
    address = client()
    codes = [await refusal_over_websocket(guarded, address) for _ in range(ADDRESS["address_rate_burst"] + 1)]
    assert codes == ["UNAUTHENTICATED"] * ADDRESS["address_rate_burst"] + ["RATE_LIMITED"]
    assert await refusal_over_websocket(guarded, client()) == "UNAUTHENTICATED"
