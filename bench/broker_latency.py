"""Cross-worker latency of live events, per broker: commit on one worker → receipt on another.

Run from the repository root (about a minute with the defaults; needs PostgreSQL, and Redis for
the Redis broker)::

    /tmp/venv/bin/python -m bench.broker_latency [--n 200] [--brokers redis,postgresql,memory]
                                                 [--json /tmp/broker_latency.json] [--no-results]

For each broker, on a fresh PostgreSQL database of its own (``tests.databases``):

* ``redis`` and ``postgresql``: two ``python -m graph serve`` processes, worker A and worker B
  (``tests.procs``, log level "warning" so no access log), sharing that database and the broker
  (Redis pub/sub on a private channel, or LISTEN/NOTIFY on the same database). A WebSocket client
  subscribes on A (graphql-transport-ws, ``events(after:, target:)``), and ``--n`` sequential
  ``updateTicket`` mutations go to B: each waits for its response *and* for its event to arrive on
  A before the next is sent, so nothing queues.
* ``memory``: the in-process broker, for reference: one worker, subscriber and mutations on it.

Each event is stamped with ``time.time()`` the moment its WebSocket message is read. Reported,
p50 / p99 / max in milliseconds:

* ``event→receipt``: receipt − the event's ``timestamp`` (taken by the server as the change is
  applied, inside the transaction; same machine, same clock): the commit, the broker hop, the
  subscriber's read of the log and the WebSocket delivery;
* ``request→receipt``: receipt − the moment the mutation was sent: the whole round, an upper bound;
* ``response→receipt``: receipt − the moment the mutation's response was read. The server publishes
  the wake-up before it answers, so an event can arrive *before* the response: this one can be
  negative (``early`` counts how often).

Only 127.0.0.1 is used; every wait is bounded; every server process is ended in a ``finally``.
If ``bench/RESULTS.md`` exists, a "Broker latency" section is appended at its end (never rewritten).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.databases import create_postgres_database, drop_postgres_database, postgres_unreachable  # noqa: E402
from tests.procs import serving  # noqa: E402

REDIS_URL = os.environ.get("BENCH_REDIS_URL", os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
RESULTS = ROOT / "bench" / "RESULTS.md"
WAIT = 30.0
WARMUP = 10
SUBSCRIPTION = (
    "subscription($after: ID, $target: ID) { events(after: $after, target: $target) { id sequence version timestamp } }"
)
UPDATE = "mutation($id: ID!, $d: String!) { updateTicket(id: $id, input: {description: $d}) { id version } }"
CREATE = "mutation($s: String!) { createTicket(input: {subject: $s}) { id } }"
NEWEST = "{ events(orderBy: [{field: SEQUENCE, direction: DESC}], first: 1) { nodes { id } } }"
LABELS = {
    "redis": "Redis pub/sub (2 workers)",
    "postgresql": "PostgreSQL LISTEN/NOTIFY (2 workers)",
    "memory": "in-process (1 worker, reference)",
}


@dataclass
class Run:
    broker: str
    n: int
    event: list[float] = field(default_factory=list)  # seconds
    request: list[float] = field(default_factory=list)
    response: list[float] = field(default_factory=list)

    @property
    def early(self) -> int:
        return sum(1 for value in self.response if value < 0)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def stats(values: list[float]) -> str:
    return f"{ms(percentile(values, 50))} / {ms(percentile(values, 99))} / {ms(max(values))}"


async def _data(client: httpx.AsyncClient, query: str, variables: dict | None = None) -> dict:
    body = (await client.post("/graphql", json={"query": query, "variables": variables or {}})).json()
    if body.get("errors"):
        raise RuntimeError(body["errors"])
    return body["data"]


async def _reader(socket, arrivals: asyncio.Queue) -> None:
    """Stamp every event the moment its message is read."""
    async for raw in socket:
        received = time.time()
        message = json.loads(raw)
        kind = message.get("type")
        if kind == "ping":
            await socket.send('{"type":"pong"}')
        elif kind == "next":
            payload = message.get("payload") or {}
            if payload.get("errors"):
                raise RuntimeError(payload["errors"])
            arrivals.put_nowait((received, payload["data"]["events"]))
        elif kind in ("error", "complete"):
            raise RuntimeError(f"the subscription ended: {message}")


async def measure(broker: str, subscriber_url: str, writer_url: str, n: int) -> Run:
    from websockets.asyncio.client import connect

    run = Run(broker, n)
    async with httpx.AsyncClient(base_url=writer_url, timeout=WAIT) as on_b:
        ticket = (await _data(on_b, CREATE, {"s": f"latency {uuid.uuid4().hex[:8]}"}))["createTicket"]["id"]
        after = (await _data(on_b, NEWEST))["events"]["nodes"][0]["id"]
        ws_url = subscriber_url.replace("http://", "ws://") + "/graphql"
        socket = await asyncio.wait_for(
            connect(ws_url, subprotocols=["graphql-transport-ws"], ping_interval=None, proxy=None), WAIT
        )
        reader = None
        try:
            await socket.send(json.dumps({"type": "connection_init", "payload": {}}))
            ack = json.loads(await asyncio.wait_for(socket.recv(), WAIT))
            assert ack["type"] == "connection_ack", ack
            variables = {"after": after, "target": ticket}
            await socket.send(json.dumps({"id": "1", "type": "subscribe",
                                          "payload": {"query": SUBSCRIPTION, "variables": variables}}))  # fmt: skip
            arrivals: asyncio.Queue = asyncio.Queue()
            reader = asyncio.create_task(_reader(socket, arrivals))
            for i in range(WARMUP + n):
                sent = time.time()
                result = (await _data(on_b, UPDATE, {"id": ticket, "d": f"update {i}"}))["updateTicket"]
                answered = time.time()
                received, event = await asyncio.wait_for(arrivals.get(), WAIT)
                if event["version"] != result["version"]:
                    raise RuntimeError(f"expected version {result['version']}, got {event}")
                if i < WARMUP:
                    continue
                committed = datetime.fromisoformat(event["timestamp"]).timestamp()
                run.event.append(received - committed)
                run.request.append(received - sent)
                run.response.append(received - answered)
        finally:
            if reader is not None:
                reader.cancel()
                with contextlib.suppress(BaseException):
                    await reader
            with contextlib.suppress(Exception):
                await asyncio.wait_for(socket.close(), 5)
    return run


def bench_one(broker: str, n: int) -> Run:
    database_url = create_postgres_database()
    try:
        if broker == "redis":
            broker_url = f"{REDIS_URL}?channel=support_graph_bench_{uuid.uuid4().hex[:10]}"
        elif broker == "postgresql":
            broker_url = database_url
        else:
            broker_url = "memory://"
        names = ("A",) if broker == "memory" else ("A", "B")
        env = {"LIVE_POLL_SECONDS": "3600"}
        with serving(database_url, broker_url, *names, env=env, log_level="warning") as workers:
            subscriber, writer = workers[0], workers[-1]
            return asyncio.run(measure(broker, subscriber.url, writer.url, n))
    finally:
        drop_postgres_database(database_url)


def table(runs: list[Run]) -> str:
    lines = [
        (
            "| broker | n | event→receipt p50 / p99 / max (ms) | request→receipt p50 / p99 / max (ms) "
            "| response→receipt p50 / p99 / max (ms) | early |"
        ),
        "|---|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        lines.append(
            f"| {LABELS[run.broker]} | {run.n} | {stats(run.event)} | {stats(run.request)} "
            f"| {stats(run.response)} | {run.early} |"
        )
    return "\n".join(lines)


def machine() -> str:
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average {load} at the end"
    )


def append_results(runs: list[Run], n: int) -> bool:
    """Append a "Broker latency" section at the end of ``bench/RESULTS.md`` if the file exists."""
    if not RESULTS.exists():
        return False
    section = (
        f"\n\n## Broker latency\n\n"
        f"`python -m bench.broker_latency --n {n}` ({time.strftime('%Y-%m-%d %H:%M')}, {machine()}; "
        "PostgreSQL and Redis on the same machine). A subscriber on worker A, N sequential "
        "`updateTicket` mutations on worker B (each waits for its event before the next); "
        "latency is the receipt time of the event on A minus the event's timestamp "
        "(taken inside the transaction, before commit), minus the mutation's send time, and minus the "
        "time its response was read (negative when the event beats the response: counted in *early*).\n\n"
        f"{table(runs)}\n"
    )
    with RESULTS.open("a", encoding="utf-8") as results:
        results.write(section)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200, help="measured mutations per broker (default 200)")
    parser.add_argument("--brokers", default="redis,postgresql,memory", help="comma-separated, in order")
    parser.add_argument("--json", help="also write the raw latencies (seconds) to this file")
    parser.add_argument("--no-results", action="store_true", help="do not append to bench/RESULTS.md")
    args = parser.parse_args(argv)
    brokers = [b.strip() for b in args.brokers.split(",") if b.strip()]
    unknown = [b for b in brokers if b not in LABELS]
    if unknown:
        parser.error(f"unknown broker(s) {unknown}; choose from {sorted(LABELS)}")
    reason = postgres_unreachable()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2

    runs = []
    for broker in brokers:
        print(f"{LABELS[broker]}: {args.n} mutations…", flush=True)
        runs.append(bench_one(broker, args.n))
    print()
    print(machine())
    print(table(runs))
    if args.json:
        Path(args.json).write_text(json.dumps(
            [{"broker": r.broker, "event": r.event, "request": r.request, "response": r.response} for r in runs]
        ))  # fmt: skip
    if not args.no_results:
        print(
            "appended to bench/RESULTS.md"
            if append_results(runs, args.n)
            else "(no bench/RESULTS.md: nothing appended)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
