"""Rate limits: a budget per caller, and the address a caller is counted by.

``RateLimiter`` is a token bucket per caller in this process: ``rate_per_minute`` sustained,
``burst`` at once, the least recently seen callers forgotten first. ``SharedRateLimiter`` keeps
the budget in Redis so that every worker draws on the same one, and falls back to a local
bucket while Redis cannot be reached (requests are never refused because Redis is down).
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from dataclasses import dataclass
from typing import Protocol

from cachetools import LRUCache
from limits import RateLimitItemPerSecond
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

from graph.server import metrics

log = logging.getLogger("support_graph.ratelimit")


@dataclass(frozen=True)
class Budget:
    """A caller's budget now: its size, the requests left, and the seconds until it is whole."""

    limit: int
    remaining: int
    whole_in: float


class Limiter(Protocol):
    async def wait(self, caller: str) -> float:
        """0 if the caller may go ahead now (and it is counted), else the seconds until it may."""
        ...

    async def budget(self, caller: str) -> Budget:
        """The caller's budget, read without counting anything."""
        ...

    async def close(self) -> None:
        """Let go of what the limiter holds (connections); called once, at shutdown."""
        ...


class RateLimiter:
    """A token bucket per caller: ``rate_per_minute`` sustained, ``burst`` at once. ``name``
    tells its refusals apart in the metrics (``caller`` or ``address``)."""

    def __init__(self, rate_per_minute: int, burst: int, *, max_callers: int = 100_000, name: str = "caller") -> None:
        self.name = name
        self.rate = rate_per_minute / 60.0
        self.burst = burst
        self.max_callers = max_callers
        #: caller → (tokens, when counted); past ``max_callers`` the least recently seen goes
        self._buckets: LRUCache[str, tuple[float, float]] = LRUCache(maxsize=max_callers)

    def acquire(self, caller: str) -> float:
        """0 if the caller may go ahead now, else the seconds until it may."""
        now = time.monotonic()
        tokens, then = self._buckets.get(caller, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.rate)
        if tokens >= 1:
            self._buckets[caller] = (tokens - 1, now)
            return 0.0
        self._buckets[caller] = (tokens, now)
        metrics.rate_limited(self.name)
        return math.ceil((1 - tokens) / self.rate * 10) / 10

    async def wait(self, caller: str) -> float:
        return self.acquire(caller)

    def standing(self, caller: str) -> Budget:
        """The caller's bucket now: whole again after ``(burst - tokens) / rate`` seconds."""
        now = time.monotonic()
        tokens, then = self._buckets.get(caller, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.rate)
        return Budget(self.burst, math.floor(tokens), (self.burst - tokens) / self.rate)

    async def budget(self, caller: str) -> Budget:
        return self.standing(caller)

    async def close(self) -> None:
        return None


class SharedRateLimiter:
    """The same budget for every worker, kept in Redis: at most ``burst`` requests in any
    ``60 * burst / rate_per_minute`` seconds (a moving window, so exact at any instant)."""

    #: seconds to use the local limiter after Redis failed, before trying Redis again
    RETRY_SECONDS = 5.0

    def __init__(self, url: str, rate_per_minute: int, burst: int, *, namespace: str, timeout: float = 0.5,
                 name: str = "caller") -> None:  # fmt: skip
        from redis.asyncio import ConnectionPool

        self.name = name
        #: our own pool, so that ``close`` can end its connections (limits' storage has no close)
        self.pool = ConnectionPool.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        storage = RedisStorage(
            f"async+{url}", implementation="redispy", key_prefix=f"support-graph:{namespace}:rate",
            wrap_exceptions=True, connection_pool=self.pool,  # type: ignore[arg-type]  # limits types its options narrowly; redis-py takes the pool
        )  # fmt: skip
        self.window = MovingWindowRateLimiter(storage)
        self.item = RateLimitItemPerSecond(burst, max(1, round(60 * burst / rate_per_minute)))
        self.local = RateLimiter(rate_per_minute, burst, name=name)
        self._down_until = 0.0

    async def wait(self, caller: str) -> float:
        if time.monotonic() < self._down_until:
            return self.local.acquire(caller)
        try:
            if await self.window.hit(self.item, caller):
                return 0.0
            stats = await self.window.get_window_stats(self.item, caller)
        except Exception as error:  # any failure of Redis: count locally for a while
            if not self._down_until:
                log.warning("rate limits: Redis unreachable (%s); counting per worker meanwhile", error)
            self._down_until = time.monotonic() + self.RETRY_SECONDS
            return self.local.acquire(caller)
        if self._down_until:
            log.warning("rate limits: Redis reachable again; limits shared by all workers")
            self._down_until = 0.0
        metrics.rate_limited(self.name)
        return max(0.1, math.ceil((stats.reset_time - time.time()) * 10) / 10)

    async def budget(self, caller: str) -> Budget:
        """The moving window in Redis: whole again once the newest request counted has left it;
        the local bucket's where Redis cannot be read (or is being avoided)."""
        if time.monotonic() >= self._down_until:
            try:
                stats = await self.window.get_window_stats(self.item, caller)
            except Exception:
                pass
            else:
                amount = self.item.amount
                whole_in = float(self.item.get_expiry()) if stats.remaining < amount else 0.0
                return Budget(amount, max(0, stats.remaining), whole_in)
        return self.local.standing(caller)

    async def close(self) -> None:
        await self.pool.aclose()


def limiter(broker_url: str, rate_per_minute: int, burst: int, *, name: str = "caller") -> Limiter:
    """Shared through Redis where the broker is Redis, else this process's own buckets;
    ``name`` labels its refusals in the metrics (``caller`` or ``address``)."""
    from graph.server.brokers.supervisor import take_channel

    if broker_url.split(":", 1)[0].lower() in ("redis", "rediss"):
        url, channel = take_channel(broker_url)
        return SharedRateLimiter(url, rate_per_minute, burst, namespace=channel, name=name)
    return RateLimiter(rate_per_minute, burst, name=name)


class Proxies:
    """The proxies whose ``X-Forwarded-For`` is believed: addresses and networks, ``*`` for any
    (``FORWARDED_ALLOW_IPS``, as uvicorn's option of that name)."""

    def __init__(self, spec: str | None) -> None:
        self.any = False
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for part in (spec or "").split(","):
            part = part.strip()
            if part == "*":
                self.any = True
            elif part:
                try:
                    self.networks.append(ipaddress.ip_network(part, strict=False))
                except ValueError:
                    raise ValueError(f"{part!r} is not an IP address, a network (10.0.0.0/8) or *") from None

    def trusts(self, host: str) -> bool:
        if self.any:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def client(self, peer: str | None, forwarded_for: list[str]) -> str:
        """The client's address: the peer's, unless the peer is a trusted proxy; then the
        right-most address in ``X-Forwarded-For`` that is not a trusted proxy's."""
        if peer is None:
            return "?"
        if not forwarded_for or not (self.any or self.networks) or not self.trusts(peer):
            return peer
        hops = [_host(hop.strip()) for value in forwarded_for for hop in value.split(",") if hop.strip()]
        for hop in reversed(hops):
            if not self.trusts(hop):
                return hop[:64]
        return hops[0][:64] if hops else peer


def _host(hop: str) -> str:
    """The address of an ``X-Forwarded-For`` hop without its port (``[::1]:80``, ``10.0.0.1:80``)."""
    if hop.startswith("[") and "]" in hop:
        return hop[1 : hop.index("]")]
    if hop.count(":") == 1:
        return hop.split(":", 1)[0]
    return hop
