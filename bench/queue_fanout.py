"""Live-queue fan-out: one event to 1,000 ``ticketQueue`` subscribers over 20 distinct queues,
against the ``events`` fan-out of the same event to 1,000 subscribers, in the same run.

Run from the repository root (two to three minutes with the defaults; needs psutil)::

    python -m bench.queue_fanout --quiet-wait 300

Two servers run side by side, each ``python -m graph serve`` on a SQLite file of its own (one
worker, its per-caller rate limit lifted): **events**, whose subscribers all hold
``subscription { events { id type sequence target } }`` (one shared execution), and **queues**,
whose subscribers hold ``ticketQueue`` over 20 distinct (where, orderBy) pairs, 50 subscribers
each (20 shared evaluations, 20 shared executions). Both servers hold the same tickets; an event
is ``updateTicket`` of the description of a ticket that every queue's page holds, so each
subscriber of either server receives exactly one message per event (a queue's is a ``CHANGED``).

Rounds alternate between the servers (events, queues, events, …), ``--rounds`` each, with
``--pause`` seconds between: one POST, then every subscriber's message. Measured per server:
latency from just before the POST to each receipt (p50, p99 over all rounds) and the server's
CPU (user + system, psutil) per round, divided by the messages delivered. The ratios queues /
events are what to read on a shared machine: both sides see the same machine in the same minute.
``--clients`` client processes hold the WebSockets (graphql-transport-ws) and stamp each message
on receipt. Only 127.0.0.1 is used; every wait is bounded; every subprocess ends in a ``finally``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.live_fanout import _busy, _cpu, _free_port, _percentile, _stop, _wait_ready, machine, wait_for_quiet

ROOT = Path(__file__).resolve().parent.parent
EVENTS = "subscription { events { id type sequence target } }"
QUEUE = (
    "subscription($where: TicketWhere, $orderBy: [TicketOrder!], $first: Int) {"
    " ticketQueue(where: $where, orderBy: $orderBy, first: $first) {"
    " kind position cursor remaining tickets { id status priority version subject } } }"
)
CATEGORY = "bench-queue"
WHERES = [
    {},
    {"status": {"in": ["OPEN", "IN_PROGRESS"]}},
    {"priority": {"in": ["HIGH", "URGENT"]}},
    {"not": {"status": {"eq": "CLOSED"}}},
]
ORDERS = [
    [{"field": "PRIORITY", "direction": "DESC"}],
    [{"field": "SUBJECT", "direction": "ASC"}],
    [{"field": "CREATED_AT", "direction": "DESC"}],
    [{"field": "UPDATED_AT", "direction": "DESC"}],
    [{"field": "STATUS", "direction": "ASC"}, {"field": "CREATED_AT", "direction": "DESC"}],
]
#: the 20 distinct queues: every pair of a where and an order, pages of 20
QUEUES = [
    {"where": {**where, "category": {"eq": CATEGORY}}, "orderBy": order_by, "first": 20}
    for where in WHERES
    for order_by in ORDERS
]
CREATE = "mutation($i: CreateTicketInput!) { createTicket(input: $i) { id } }"
UPDATE = "mutation($id: ID!, $d: String!) { updateTicket(id: $id, input: {description: $d}) { version } }"

# ---------------------------------------------------------------------------------------------
# Client processes: each holds its share of the subscriptions and answers commands over a pipe.
# ---------------------------------------------------------------------------------------------


@dataclass
class _State:
    records: list[tuple[float, str]] = field(default_factory=list)
    sockets: list = field(default_factory=list)
    tasks: list[asyncio.Task] = field(default_factory=list)
    started: int = 0
    total: int = 0
    goal: int = 0
    errors: list[str] = field(default_factory=list)
    reached: asyncio.Event = field(default_factory=asyncio.Event)


async def _read(state: _State, ws, first: asyncio.Event) -> None:
    """Record (receipt time, event id) for every message that is a change (not a snapshot)."""
    from websockets.exceptions import ConnectionClosed

    now, loads = time.time, json.loads
    with contextlib.suppress(ConnectionClosed):
        async for raw in ws:
            received = now()
            message = loads(raw)
            if message.get("type") == "next":
                payload = message.get("payload") or {}
                if payload.get("errors") and len(state.errors) < 10:
                    state.errors.append(json.dumps(payload["errors"])[:300])
                data = payload.get("data") or {}
                if "events" in data:
                    event = data["events"]["id"]
                elif data.get("ticketQueue", {}).get("kind") == "SNAPSHOT":
                    first.set()
                    continue
                else:
                    event = data["ticketQueue"]["cursor"]
                state.records.append((received, event))
                state.total += 1
                if state.total >= state.goal:
                    state.reached.set()
            elif message.get("type") == "ping":
                await ws.send('{"type":"pong"}')
            elif message.get("type") in ("error", "complete"):
                state.errors.append(str(message)[:300])
                return


async def _open(state: _State, url: str, query: str, variables: dict, gate: asyncio.Semaphore) -> None:
    from websockets.asyncio.client import connect

    async with gate:
        ws = await connect(url, subprotocols=["graphql-transport-ws"], ping_interval=None, open_timeout=30,
                           max_size=2**22, proxy=None)  # fmt: skip
        state.sockets.append(ws)
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        ack = json.loads(await asyncio.wait_for(ws.recv(), 30))
        if ack.get("type") != "connection_ack":
            raise RuntimeError(f"no connection_ack: {ack}")
        first = asyncio.Event()
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query, "variables": variables}}))
        state.tasks.append(asyncio.create_task(_read(state, ws, first)))
        if query != EVENTS:  # a queue answers with its snapshot once it is live
            await asyncio.wait_for(first.wait(), 60)
        state.started += 1


async def _client(conn) -> None:
    state = _State()
    loop = asyncio.get_running_loop()
    while True:
        command, *args = await loop.run_in_executor(None, conn.recv)
        if command == "open":
            url, subscriptions = args
            gate = asyncio.Semaphore(50)
            results = await asyncio.gather(
                *(_open(state, url, q, v, gate) for q, v in subscriptions), return_exceptions=True
            )
            conn.send((state.started, [repr(r)[:200] for r in results if isinstance(r, BaseException)][:5]))
        elif command == "expect":
            (count,) = args
            state.records.clear()
            state.total, state.goal = 0, count
            state.reached = asyncio.Event()
            conn.send(True)
        elif command == "wait":
            (timeout,) = args
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.reached.wait(), timeout)
            conn.send((list(state.records), state.errors[:3]))
        elif command == "close":
            for task in state.tasks:
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.gather(*(ws.close() for ws in state.sockets)), 20)
            conn.send(True)
            return


def client_main(conn) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_client(conn))


class Clients:
    """Client processes driven in lock-step: a command to each, every reply awaited."""

    def __init__(self, count: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipes, self.processes = [], []
        for _ in range(count):
            parent, child = context.Pipe()
            process = context.Process(target=client_main, args=(child,), daemon=True)
            process.start()
            self.pipes.append(parent)
            self.processes.append(process)

    def call(self, commands: list[tuple], timeout: float) -> list:
        for pipe, command in zip(self.pipes, commands):
            pipe.send(command)
        deadline, replies = time.monotonic() + timeout, []
        for pipe in self.pipes:
            if not pipe.poll(max(0.0, deadline - time.monotonic())):
                raise TimeoutError(f"a client process did not answer {commands[0][0]!r} within {timeout} s")
            replies.append(pipe.recv())
        return replies

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.call([("close",)] * len(self.pipes), timeout=30)
        for process in self.processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()


# ---------------------------------------------------------------------------------------------
# The servers and the rounds
# ---------------------------------------------------------------------------------------------


@dataclass
class Side:
    """One server under test with its subscribers."""

    name: str
    subscriptions: list[tuple[str, dict]]
    process: subprocess.Popen | None = None
    url: str = ""
    ticket: str = ""
    clients: Clients | None = None
    #: each client process's share of the subscriptions
    shares: list[list[tuple[str, dict]]] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)
    delivered: int = 0
    problems: list[str] = field(default_factory=list)


def _graphql(http: httpx.Client, query: str, variables: dict) -> dict:
    body = http.post("/graphql", json={"query": query, "variables": variables}).json()
    if body.get("errors"):
        raise RuntimeError(f"GraphQL errors: {body['errors']}")
    return body["data"]


def start(side: Side, tmp: str, clients: int) -> None:
    port = _free_port()
    side.url = f"http://127.0.0.1:{port}"
    log = open(Path(tmp) / f"{side.name}.log", "wb")  # noqa: SIM115 - the server's, closed with it
    env = {**os.environ, "LIMIT_RATE_PER_MINUTE": "100000000", "LIMIT_RATE_BURST": "1000000"}
    database = f"sqlite+aiosqlite:///{tmp}/{side.name}.db"
    command = [sys.executable, "-m", "graph", "serve", "--port", str(port), "--database-url", database,
               "--log-level", "warning"]  # fmt: skip
    side.process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    _wait_ready(side.url, side.process)
    with httpx.Client(base_url=side.url, trust_env=False, timeout=60) as http:
        # the ticket every page holds (URGENT, OPEN, first by subject), and others around it
        side.ticket = _graphql(http, CREATE, {"i": {"subject": "a bench", "priority": "URGENT", "category": CATEGORY}})[
            "createTicket"
        ]["id"]
        for i, priority in enumerate(["LOW", "MEDIUM", "HIGH", "URGENT", "LOW", "HIGH", "MEDIUM", "LOW"]):
            _graphql(http, CREATE, {"i": {"subject": f"b{i}", "priority": priority, "category": CATEGORY}})
    side.clients = Clients(clients)
    ws_url = side.url.replace("http://", "ws://") + "/graphql"
    side.shares = [side.subscriptions[i::clients] for i in range(clients)]
    opened = side.clients.call([("open", ws_url, share) for share in side.shares], timeout=600)
    failures = [f for _, fails in opened for f in fails]
    if sum(n for n, _ in opened) != len(side.subscriptions) or failures:
        raise RuntimeError(f"[{side.name}] opened {sum(n for n, _ in opened)} of {len(side.subscriptions)}: {failures}")
    print(f"[{side.name}] {len(side.subscriptions)} subscribers connected", flush=True)


def round_(side: Side, http: httpx.Client, measured: bool) -> None:
    """One event; every subscriber's message; the latencies and the server's CPU for it."""
    assert side.clients is not None and side.process is not None
    count = len(side.subscriptions)
    side.clients.call([("expect", len(share)) for share in side.shares], timeout=30)
    cpu_before = _cpu(side.process.pid)
    sent = time.time()
    _graphql(http, UPDATE, {"id": side.ticket, "d": uuid.uuid4().hex})
    replies = side.clients.call([("wait", 30.0)] * len(side.clients.pipes), timeout=60)
    cpu = _cpu(side.process.pid) - cpu_before
    records = [record for share, _ in replies for record in share]
    events = {event for _, event in records}
    problems = [error for _, errors in replies for error in errors]
    if len(records) != count or len(events) != 1:
        problems.append(f"{len(records)} messages of {count}, for {len(events)} events")
    if measured:
        side.latencies_ms += [(received - sent) * 1000 for received, _ in records]
        side.cpu_seconds.append(cpu)
        side.delivered += len(records)
        side.problems += problems[:5]


def report(sides: list[Side], args: argparse.Namespace) -> dict:
    rows = {}
    for side in sides:
        cpu = sum(side.cpu_seconds)
        rows[side.name] = {
            "subscribers": len(side.subscriptions), "rounds": len(side.cpu_seconds), "delivered": side.delivered,
            "p50_ms": _percentile(side.latencies_ms, 50), "p99_ms": _percentile(side.latencies_ms, 99),
            "max_ms": max(side.latencies_ms, default=math.nan),
            "cpu_ms_per_round": 1000 * statistics.median(side.cpu_seconds) if side.cpu_seconds else math.nan,
            "cpu_us_per_message": 1e6 * cpu / max(side.delivered, 1), "problems": side.problems[:10],
        }  # fmt: skip
    events, queues = rows["events"], rows["queues"]
    print()
    print(f"Queue fan-out: {len(sides[1].subscriptions)} ticketQueue subscribers over {len(QUEUES)} queues against "
          f"{len(sides[0].subscriptions)} events subscribers; {args.rounds} rounds each, alternating")  # fmt: skip
    print("| metric | events | queues | queues / events |")
    print("|---|---:|---:|---:|")
    for name, key, fmt in [
        ("messages delivered", "delivered", "d"), ("p50 latency, ms", "p50_ms", ".1f"),
        ("p99 latency, ms", "p99_ms", ".1f"), ("max latency, ms", "max_ms", ".1f"),
        ("server CPU per round (median), ms", "cpu_ms_per_round", ".1f"),
        ("server CPU per delivered message, µs", "cpu_us_per_message", ".1f"),
    ]:  # fmt: skip
        ratio = queues[key] / events[key] if events[key] else math.nan
        print(f"| {name} | {events[key]:{fmt}} | {queues[key]:{fmt}} | {ratio:.2f}× |")
    goal = queues["cpu_us_per_message"] <= 2 * events["cpu_us_per_message"]
    print(f"\ngoal (CPU per delivered message ≤ 2× the events fan-out's): {'met' if goal else 'NOT met'}")
    for side in sides:
        if side.problems:
            print(f"  {side.name} problems: {side.problems[:5]}")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.queue_fanout", description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1000, help="per server; a multiple of 20")
    parser.add_argument("--clients", type=int, default=2, help="client processes per server")
    parser.add_argument("--rounds", type=int, default=30, help="measured events per server")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured events per server first")
    parser.add_argument("--pause", type=float, default=0.3, help="seconds between rounds")
    parser.add_argument("--quiet-wait", type=float, default=0.0, metavar="SECONDS",
                        help="wait up to this long for the machine to be < 25 %% busy before starting")  # fmt: skip
    parser.add_argument("--json", metavar="PATH", help="write every number here")
    args = parser.parse_args(argv)
    if args.subscribers % len(QUEUES) or args.subscribers < len(QUEUES):
        parser.error(f"--subscribers must be a positive multiple of {len(QUEUES)}")

    info = machine()
    info["loadavg_at_start"] = os.getloadavg()
    print(f"machine: {info}", flush=True)
    per_queue = args.subscribers // len(QUEUES)
    sides = [
        Side("events", [(EVENTS, {})] * args.subscribers),
        Side("queues", [(QUEUE, variables) for variables in QUEUES for _ in range(per_queue)]),
    ]
    with tempfile.TemporaryDirectory(prefix="bench-queue-") as tmp:
        try:
            for side in sides:
                start(side, tmp, args.clients)
            if args.quiet_wait > 0:
                print(f"machine busy {100 * wait_for_quiet(args.quiet_wait):.0f} % before the rounds", flush=True)
            busy_before, began = _busy(), time.time()
            clients = {side.name: httpx.Client(base_url=side.url, trust_env=False, timeout=60) for side in sides}
            try:
                for i in range(args.warmup + args.rounds):
                    for side in sides:
                        time.sleep(args.pause)
                        round_(side, clients[side.name], measured=i >= args.warmup)
            finally:
                for http in clients.values():
                    http.close()
            info["machine_busy_share"] = (_busy() - busy_before) / (os.cpu_count() or 1) / (time.time() - began)
        finally:
            for side in sides:
                if side.clients is not None:
                    side.clients.stop()
                if side.process is not None:
                    _stop(side.process)
        rows = report(sides, args)
    print(f"whole machine busy during the rounds: {100 * info['machine_busy_share']:.0f} % of all cores")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "args": vars(args), "results": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
