"""Soak: reads, verbs and 100 resumable subscribers against one server for ten minutes.

Run from the repository root::

    .venv/bin/python -m bench.soak [--minutes 10] [--subscribers 100] [--database-url URL]

One ``python -m graph serve`` worker (SQLite in a temporary directory unless ``--database-url``)
is driven by one client process: ``--readers`` loops of list and single-ticket reads, ``--writers``
loops of ``createTicket`` + ``resolveTicket``, and ``--subscribers`` WebSocket subscribers of
``events(after:)`` that each close and resume from their last event every ``--resume-every``
messages (the path that leaked before the hardening issue). Every minute it prints the server's
RSS, the requests and deliveries of that minute and their p50/p99 latency; at the end, the RSS
growth after the first minute (goal: under 10 MB) and whether p99 trends upward (the slope of
the per-minute p99s). Every subscriber checks that it sees each event once, in order, across
its resumes: a gap or a repeat is reported.

Only 127.0.0.1 is used; every wait is bounded; the server is ended in a ``finally``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import websockets

from bench.http import ServerProcess, free_port

LIST = "{ tickets(first: 20) { nodes { id subject status requester { name } organization { name } } } }"
ONE = "query($id: ID!) { ticket(id: $id) { id subject status events(first: 5) { nodes { id type } } } }"
CREATE = "mutation($s: String!) { createTicket(input: {subject: $s}) { id } }"
RESOLVE = "mutation($id: ID!) { resolveTicket(id: $id) { id status } }"
EVENTS = "subscription($after: ID) { events(after: $after) { id sequence type } }"


def rss_kib(pid: int) -> int:
    """The resident set of ``pid`` in KiB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


@dataclass
class Minute:
    """What one minute of the soak measured."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    deliveries: int = 0


@dataclass
class Soak:
    url: str
    minutes: list[Minute] = field(default_factory=lambda: [Minute()])
    problems: list[str] = field(default_factory=list)
    stopping: bool = False

    @property
    def now(self) -> Minute:
        return self.minutes[-1]

    async def request(self, http: httpx.AsyncClient, query: str, variables: dict | None = None) -> dict | None:
        started = time.perf_counter()
        try:
            response = await http.post(self.url, json={"query": query, "variables": variables or {}})
            body = response.json()
        except (httpx.HTTPError, ValueError):
            self.now.errors += 1
            return None
        self.now.latencies.append(time.perf_counter() - started)
        if response.status_code != 200 or body.get("errors"):
            self.now.errors += 1
            return None
        return body["data"]

    async def reader(self, http: httpx.AsyncClient, ids: list[str]) -> None:
        turn = 0
        while not self.stopping:
            turn += 1
            if turn % 2 and ids:
                await self.request(http, ONE, {"id": ids[turn % len(ids)]})
            else:
                await self.request(http, LIST)

    async def writer(self, http: httpx.AsyncClient, ids: list[str]) -> None:
        n = 0
        while not self.stopping:
            n += 1
            created = await self.request(http, CREATE, {"s": f"soak {n}"})
            if created:
                ticket = created["createTicket"]["id"]
                ids.append(ticket)
                del ids[:-200]
                await self.request(http, RESOLVE, {"id": ticket})

    async def subscriber(self, number: int, after: str | None, resume_every: int) -> None:
        """Follow ``events``, resuming from the last event every ``resume_every`` messages."""
        ws_url = self.url.replace("http://", "ws://")
        last_seq: int | None = None
        while not self.stopping:
            try:
                async with websockets.connect(ws_url, subprotocols=["graphql-transport-ws"], open_timeout=30) as ws:
                    await ws.send(json.dumps({"type": "connection_init"}))
                    await asyncio.wait_for(ws.recv(), 30)
                    payload = {"query": EVENTS, "variables": {"after": after}}
                    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
                    for _ in range(resume_every):
                        message = json.loads(await asyncio.wait_for(ws.recv(), 60))
                        if message["type"] != "next":
                            self.problems.append(f"subscriber {number}: {message}")
                            return
                        event = message["payload"]["data"]["events"]
                        if last_seq is not None and event["sequence"] != last_seq + 1:
                            self.problems.append(f"subscriber {number}: {last_seq} then {event['sequence']}")
                        last_seq, after = event["sequence"], event["id"]
                        self.now.deliveries += 1
                        if self.stopping:
                            return
            except (OSError, TimeoutError, websockets.WebSocketException) as error:
                if not self.stopping:
                    self.problems.append(f"subscriber {number}: {type(error).__name__}: {error}")
                    await asyncio.sleep(1)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def slope(values: list[float]) -> float:
    """Least-squares slope of ``values`` over their index (0 for fewer than two)."""
    if len(values) < 2:
        return 0.0
    xs = range(len(values))
    mx, my = statistics.fmean(xs), statistics.fmean(values)
    return sum((x - mx) * (y - my) for x, y in zip(xs, values)) / sum((x - mx) ** 2 for x in xs)


async def soak(args: argparse.Namespace, server: ServerProcess) -> int:
    state = Soak(server.url)
    limits = httpx.Limits(max_connections=args.readers + args.writers + 4)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        first = await state.request(http, CREATE, {"s": "soak start"})
        assert first, "the server did not take the first ticket"
        ids = [first["createTicket"]["id"]]
        tasks = [asyncio.create_task(state.subscriber(n, None, args.resume_every)) for n in range(args.subscribers)]
        tasks += [asyncio.create_task(state.reader(http, ids)) for _ in range(args.readers)]
        tasks += [asyncio.create_task(state.writer(http, ids)) for _ in range(args.writers)]
        rss = [rss_kib(server.pid)]
        print(f"start: RSS {rss[0] / 1024:.1f} MB, {args.subscribers} subscribers")
        print("minute | RSS MB | requests | errors | p50 ms | p99 ms | deliveries")
        try:
            for minute in range(1, args.minutes + 1):
                await asyncio.sleep(args.minute_seconds)
                done = state.now
                state.minutes.append(Minute())
                rss.append(rss_kib(server.pid))
                print(
                    f"{minute:6} | {rss[-1] / 1024:6.1f} | {len(done.latencies):8} | {done.errors:6} | "
                    f"{percentile(done.latencies, 0.5) * 1000:6.1f} | {percentile(done.latencies, 0.99) * 1000:6.1f} | "
                    f"{done.deliveries:10}",
                    flush=True,
                )
        finally:
            state.stopping = True
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    p99s = [percentile(m.latencies, 0.99) * 1000 for m in state.minutes[:-1]]
    growth = (rss[-1] - rss[min(1, len(rss) - 1)]) / 1024
    print(f"end: RSS {rss[-1] / 1024:.1f} MB; growth after the first minute {growth:.1f} MB (goal < 10 MB)")
    print(f"p99 slope over minutes 2..{len(p99s)}: {slope(p99s[1:]):+.2f} ms/minute (goal: no upward trend)")
    for problem in state.problems[:20]:
        print("problem:", problem)
    return 1 if state.problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--minute-seconds", type=float, default=60.0, help="length of a reporting period")
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--resume-every", type=int, default=50, help="messages before a subscriber resumes")
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--writers", type=int, default=2)
    parser.add_argument("--database-url", help="default: SQLite in a temporary directory")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        port = free_port()
        url = args.database_url or f"sqlite+aiosqlite:///{tmp}/soak.db"
        argv_ = [sys.executable, "-m", "graph", "serve", "--port", str(port), "--database-url", url]
        env = {"LIMIT_RATE_PER_MINUTE": str(10**9), "LIMIT_RATE_BURST": str(10**9)}
        server = ServerProcess("support-graph", argv_, port, Path(tmp) / "server.log", env=env)
        server.start()
        try:
            return asyncio.run(soak(args, server))
        finally:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
