"""Live fan-out: one event to many WebSocket subscribers, support-graph against plain Strawberry.

Run from the repository root (about four minutes with the defaults; needs psutil, and py-spy for
``--profile``)::

    python -m bench.live_fanout --quiet-wait 600

Useful options: ``--subscribers 1000 --client lean --clients 1 --rounds 10 --burst 100 --bursts 3
--rss-burst 10000 --only support-graph --profile /tmp/prof --json /tmp/live_fanout.json`` (``--help`` for all).

For each target, one after the other, in the same run:

* ``support-graph``: ``python -m graph serve --port P --database-url sqlite+aiosqlite:///TMP/bench.db``
  (one worker, its per-caller rate limit lifted through ``LIMIT_RATE_*``); an event is
  ``updateTicket`` on a ticket made beforehand (exactly one event).
* ``plain-strawberry``: ``python -m bench.plain_strawberry_broadcast --port P``, the textbook
  asyncio-queue-per-subscriber broadcast; an event is ``POST /publish``.

``--clients`` client processes open ``--subscribers`` WebSockets between them (graphql-transport-ws),
all subscribed to ``subscription { events { id type sequence target } }``, and stamp every message
with ``time.time()`` on receipt. ``--client lean`` (the default; one process unless ``--clients``
says otherwise) reads raw frames on uvloop with a byte search for the target
(bench/fanout_client.py), so the clients take little of the machine's CPU; ``--client websockets``
uses the ``websockets`` library (two processes by default), which costs about as much CPU per
message as the server and alone can offer permessage-deflate. Measured:

(a) one event → every subscriber: latency from just before the POST to each receipt, ``--rounds`` times;
(b) ``--bursts`` bursts of ``--burst`` events (POSTed with ``--burst-concurrency`` in flight): messages
    delivered per second of wall time (first POST → last receipt), median of the bursts, and
    per-message latency;
(c) server CPU seconds (user + system, psutil) during the bursts per delivered message, and so the
    ceiling one core would reach if the server had it to itself;
(d) server RSS idle (subscribers connected and warmed up by one event, before the measured ones),
    right after the last burst and after ``--settle`` seconds more;
(e) with ``--rss-burst N``: RSS before a burst of N events (the prepared targets reused), right
    after it and after ``--settle`` seconds more, with its CPU per message (server, clients).

Clients and server share the machine's CPUs, so on a small box the clients' own cost is part of
every latency; the client CPU used during the bursts is printed next to the server's, and so is how
busy the whole machine was (``--quiet-wait`` waits for a quiet machine before each target).
With ``--client websockets``, permessage-deflate is offered as browsers do unless ``--no-deflate``
(``serve`` does not negotiate it; plain Strawberry's uvicorn does).
Only 127.0.0.1 is used; every wait is bounded; every subprocess is ended in a ``finally``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from bench.fanout_commands import Client, serve

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
QUERY = "subscription { events { id type sequence target } }"
NEXT = {"graphql-transport-ws": ("subscribe", "next"), "graphql-ws": ("start", "data")}
TARGETS = {
    "issue": {"single_p99_ms": 30.0, "messages_per_second": 40_000.0, "rss_back_within_mb": 5.0},
}

# ---------------------------------------------------------------------------------------------
# Client processes: each holds its share of the subscribers and answers commands over a pipe.
# ---------------------------------------------------------------------------------------------


class _Subscriber:
    __slots__ = ("count", "ended")

    def __init__(self) -> None:
        self.count = 0
        self.ended: str | None = None


class _Websockets(Client):
    """Subscribers on the ``websockets`` library; a record's target is the event's, decoded."""

    def __init__(self) -> None:
        super().__init__()
        self.sockets: list = []
        self.tasks: list[asyncio.Task] = []
        self.negotiated: set[str] = set()

    async def open(self, url: str, protocol: str, deflate: bool, gate: asyncio.Semaphore) -> None:
        from websockets.asyncio.client import connect

        subscribe_type, next_type = NEXT[protocol]
        async with gate:
            ws = await connect(
                url, subprotocols=[protocol], compression="deflate" if deflate else None, proxy=None,
                ping_interval=None, open_timeout=30, close_timeout=5, max_size=2**20,
            )  # fmt: skip
            self.sockets.append(ws)
            self.negotiated.add(ws.response.headers.get("Sec-WebSocket-Extensions", "") or "none")
            await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
            ack = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if ack.get("type") != "connection_ack":
                raise RuntimeError(f"no connection_ack: {ack}")
            await ws.send(json.dumps({"id": "1", "type": subscribe_type, "payload": {"query": QUERY}}))
        subscriber = _Subscriber()
        self.subscribers.append(subscriber)
        self.tasks.append(asyncio.create_task(self._read(ws, subscriber, next_type)))

    async def _read(self, ws, subscriber: _Subscriber, next_type: str) -> None:
        from websockets.exceptions import ConnectionClosed

        now, loads = time.time, json.loads
        try:
            async for raw in ws:
                received = now()
                message = loads(raw)
                kind = message.get("type")
                if kind == next_type:
                    payload = message.get("payload") or {}
                    if payload.get("errors") and len(self.errors) < 20:
                        self.errors.append(json.dumps(payload["errors"])[:300])
                    event = (payload.get("data") or {}).get("events")
                    self.received(subscriber, received, event["target"] if event else "?")
                elif kind == "ping":
                    await ws.send('{"type":"pong"}')
                elif kind in ("error", "complete", "connection_error"):
                    subscriber.ended = f"{kind}: {str(message.get('payload'))[:200]}"
                    return
            subscriber.ended = "closed by the server"
        except ConnectionClosed as closed:
            subscriber.ended = f"closed: {closed}"

    def extensions(self) -> list[str]:
        return sorted(self.negotiated)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            closing = asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)
            await asyncio.wait_for(closing, 10)


def client_main(conn) -> None:
    """Entry point of one client process (the ``websockets`` library)."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(conn, _Websockets()))


class Clients:
    """The client processes, driven in lock-step: every command goes to all, every reply is awaited."""

    def __init__(self, processes: int, lean: bool = False) -> None:
        from bench.fanout_client import client_main as lean_main

        context = multiprocessing.get_context("spawn")
        self.pipes, self.processes = [], []
        for _ in range(processes):
            parent, child = context.Pipe()
            process = context.Process(target=lean_main if lean else client_main, args=(child,), daemon=True)
            process.start()
            self.pipes.append(parent)
            self.processes.append(process)

    def call(self, commands: list[tuple], timeout: float) -> list:
        for pipe, command in zip(self.pipes, commands):
            pipe.send(command)
        deadline = time.monotonic() + timeout
        replies = []
        for pipe in self.pipes:
            if not pipe.poll(max(0.0, deadline - time.monotonic())):
                raise TimeoutError(f"a client process did not answer {commands[0][0]!r} within {timeout} s")
            replies.append(pipe.recv())
        return replies

    def all(self, *command, timeout: float) -> list:
        return self.call([command] * len(self.pipes), timeout)

    def cpu_seconds(self) -> float:
        return sum(_cpu(p.pid) for p in self.processes if p.pid)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.all("close", timeout=20)
        for process in self.processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
            if process.is_alive():
                process.kill()


# ---------------------------------------------------------------------------------------------
# The two servers
# ---------------------------------------------------------------------------------------------

CREATE = "mutation($s: String!) { createTicket(input: {subject: $s}) { id } }"
UPDATE = "mutation($id: ID!, $d: String!) { updateTicket(id: $id, input: {description: $d}) { version } }"


@dataclass
class Target:
    name: str
    command: Callable[[int, str], list[str]]
    #: (http client, how many) → the targets of the events to come
    prepare: Callable[[httpx.Client, int], list[str]]
    #: (target id) → (path, JSON body) of the POST that makes one event
    trigger: Callable[[str], tuple[str, dict]]
    #: environment for the server on top of ours
    env: dict[str, str] = field(default_factory=dict)


def _graphql(http: httpx.Client, query: str, variables: dict) -> dict:
    body = http.post("/graphql", json={"query": query, "variables": variables}).json()
    if body.get("errors"):
        raise RuntimeError(f"GraphQL errors: {body['errors']}")
    return body["data"]


def _tickets(http: httpx.Client, count: int) -> list[str]:
    return [_graphql(http, CREATE, {"s": f"bench {i}"})["createTicket"]["id"] for i in range(count)]


SUPPORT_GRAPH = Target(
    name="support-graph",
    command=lambda port, tmp: [
        sys.executable,
        "-m",
        "graph",
        "serve",
        "--port",
        str(port),
        "--database-url",
        f"sqlite+aiosqlite:///{tmp}/bench.db",
        "--log-level",
        "warning",
    ],
    prepare=_tickets,
    trigger=lambda target: ("/graphql", {"query": UPDATE, "variables": {"id": target, "d": uuid.uuid4().hex}}),
    # The per-caller rate limit (1,200/min, bursts of 200) would refuse the bursts: lift it, as a load test must.
    env={"LIMIT_RATE_PER_MINUTE": "100000000", "LIMIT_RATE_BURST": "1000000"},
)
PLAIN_STRAWBERRY = Target(
    name="plain-strawberry",
    command=lambda port, tmp: [
        sys.executable,
        "-m",
        "bench.plain_strawberry_broadcast",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ],
    prepare=lambda http, count: [f"ticket_bench{i}" for i in range(count)],
    trigger=lambda target: ("/publish", {"type": "Ticket.Updated", "target": target}),
)


def _check(path: str, response: httpx.Response) -> None:
    response.raise_for_status()
    if path == "/graphql" and response.json().get("errors"):
        raise RuntimeError(f"GraphQL errors: {response.json()['errors']}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _wait_ready(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(trust_env=False, timeout=2) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if http.get(f"{url}/readyz").status_code == 200:
                    return
            time.sleep(0.1)
    raise TimeoutError(f"{url}/readyz not ready within {timeout} s")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _tree(pid: int) -> list[psutil.Process]:
    process = psutil.Process(pid)
    return [process, *process.children(recursive=True)]


def _cpu(pid: int) -> float:
    total = 0.0
    with contextlib.suppress(psutil.Error):
        for process in _tree(pid):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def _busy() -> float:
    """CPU seconds the whole machine has spent busy (all cores, all processes) since boot."""
    times = psutil.cpu_times()
    return sum(getattr(times, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq"))


def _rss(pid: int) -> int:
    return sum(p.memory_info().rss for p in _tree(pid))


# ---------------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------------


def _percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile of unsorted ``values`` (p in 0..100)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass
class Phase:
    """What the clients received for one set of triggered events."""

    sent: dict[str, float]
    delivered: int = 0
    expected: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    last_receipt: float = 0.0
    problems: list[str] = field(default_factory=list)


def _collect(clients: Clients, sent: dict[str, float], expected: int, timeout: float) -> Phase:
    phase = Phase(sent=sent, expected=expected)
    for total, _least, ended, why, errors in clients.all("wait", timeout, timeout=timeout + 30):
        phase.delivered += total
        if ended:
            phase.problems.append(f"{ended} subscriber(s) ended: {why}")
        if errors:
            phase.problems.append(f"errors: {errors}")
    for records in clients.all("collect", timeout=60):
        for received, target in records:
            start = sent.get(target)
            if start is None:
                if len(phase.problems) < 20:
                    phase.problems.append(f"message for unexpected target {target}")
                continue
            phase.latencies_ms.append((received - start) * 1000)
            phase.last_receipt = max(phase.last_receipt, received)
    if phase.delivered < expected:
        phase.problems.append(f"delivered {phase.delivered} of {expected}")
    return phase


def _single(clients: Clients, http: httpx.Client, target: Target, event_target: str, subscribers: int,
            timeout: float) -> Phase:  # fmt: skip
    clients.all("reset", 1, timeout=30)
    path, body = target.trigger(event_target)
    sent = time.time()
    _check(path, http.post(path, json=body))
    return _collect(clients, {event_target: sent}, subscribers, timeout)


async def _post_all(url: str, target: Target, event_targets: list[str], concurrency: int) -> dict[str, float]:
    sent: dict[str, float] = {}
    pending = iter(event_targets)

    async def worker(http: httpx.AsyncClient) -> None:
        for event_target in pending:
            path, body = target.trigger(event_target)
            sent[event_target] = time.time()
            _check(path, await http.post(path, json=body))

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, trust_env=False, timeout=60, limits=limits) as http:
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
    return sent


class Profiler:
    """``py-spy record`` on the server while the burst runs (``--profile``): raw collapsed stacks."""

    def __init__(self, directory: str | None, name: str, pid: int) -> None:
        self.process = None
        if directory:
            Path(directory).mkdir(parents=True, exist_ok=True)
            self.path = Path(directory) / f"{name}.txt"
            spy = Path(sys.executable).with_name("py-spy")
            self.process = subprocess.Popen(
                [str(spy), "record", "--pid", str(pid), "--rate", "200", "--format", "raw", "--nonblocking",
                 "--duration", "300", "-o", str(self.path)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            time.sleep(1.0)  # let it attach

    def stop(self) -> list[tuple[str, float]]:
        if self.process is None:
            return []
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        return _hottest(self.path)


#: Stages of a delivery, by a function on the stack (first match from the innermost frame wins).
STAGES = (
    ("permessage-deflate (websockets)", "PerMessageDeflate."),
    ("direct socket writes (graph/server/ws_direct.py: Sink.send)", "Sink.send "),
    ("direct writes: checks, framing, turns (ws_direct, fanout_turn)", "Sink."),
    ("direct writes: checks, framing, turns (ws_direct, fanout_turn)", "Turn."),
    ("uvicorn WebSocket send (framing + socket write)", "WebSocketsSansIOProtocol.send "),
    ("Strawberry/Starlette per-subscriber send", "_send_result_stream "),
    ("shared execution: resolve + encode + broadcast", "_SharedExecution._run "),
    ("HTTP request (the triggering POSTs)", "RequestResponseCycle.run_asgi "),
    ("live feed: reading new events (resolvers/live.py)", "TenantFeed._run "),
    ("SQLite thread (aiosqlite, busy)", "_connection_worker_thread "),
    ("WebSocket keep-alive pings", "send_keepalive_ping "),
)


def _hottest(path: Path, top: int = 15) -> dict:
    """From py-spy's raw stacks: self time per function, and the share of each of ``STAGES``.
    Samples of the aiosqlite thread idling in its queue are dropped."""
    own: dict[str, int] = {}
    stages: dict[str, int] = {}
    total = idle = 0
    for line in path.read_text().splitlines() if path.exists() else ():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames, n = stack.split(";"), int(count)
        innermost = frames[-1].rsplit(":", 1)[0] + ")"  # by function, not by line
        if innermost.startswith("_connection_worker_thread "):
            idle += n
            continue
        total += n
        own[innermost] = own.get(innermost, 0) + n
        stage = next((name for frame in reversed(frames) for name, marker in STAGES if marker in frame), None)
        if stage is None:
            loop = innermost.startswith("Runner.run ")  # uvloop's C code: epoll, socket reads, callbacks
            stage = "event loop (uvloop C code: epoll, reads, callbacks)" if loop else "other"
        stages[stage] = stages.get(stage, 0) + n
    if not total:
        return {}
    return {
        "samples": total, "idle_samples_dropped": idle,
        "own": [(frame, 100 * n / total) for frame, n in sorted(own.items(), key=lambda kv: -kv[1])[:top]],
        "stages": [(stage, 100 * n / total) for stage, n in sorted(stages.items(), key=lambda kv: -kv[1])],
    }  # fmt: skip


def wait_for_quiet(limit: float, threshold: float = 0.25) -> float:
    """Wait up to ``limit`` seconds for the machine to be busy below ``threshold`` of its cores
    (over 2 s samples); the busy share last seen."""
    deadline = time.monotonic() + limit
    while True:
        before = _busy()
        time.sleep(2.0)
        share = (_busy() - before) / 2.0 / (os.cpu_count() or 1)
        if share < threshold or time.monotonic() >= deadline:
            return share


@dataclass
class _Run:
    """One server under test with its subscribers connected."""

    target: Target
    args: argparse.Namespace
    pid: int
    url: str
    http: httpx.Client
    clients: Clients
    event_targets: list[str]
    subscribers: int = 0

    def connect(self, result: dict) -> None:
        args = self.args
        shares = [args.subscribers // args.clients + (i < args.subscribers % args.clients) for i in range(args.clients)]
        ws_url = self.url.replace("http://", "ws://") + "/graphql"
        opened = self.clients.call(
            [("open", ws_url, n, args.protocol, args.deflate, args.open_concurrency) for n in shares], timeout=300
        )
        self.subscribers = result["subscribers"] = sum(o[0] for o in opened)
        result["connect_seconds"] = max(o[2] for o in opened)
        result["ws_extensions"] = sorted({e for o in opened for e in o[3]})
        result["connect_failures"] = [f for o in opened for f in o[1]]
        print(f"[{self.target.name}] {self.subscribers} subscribers connected in {result['connect_seconds']:.1f} s "
              f"(extensions: {result['ws_extensions']})", flush=True)  # fmt: skip

    def warm_up(self, result: dict) -> None:
        """Until every subscription has heard one event: a subscribe is handled asynchronously."""
        for attempt in range(1, 6):
            phase = _single(self.clients, self.http, self.target, self.event_targets[0], self.subscribers, timeout=10)
            if phase.delivered >= self.subscribers and not phase.problems:
                break
            print(f"[{self.target.name}] warm-up {attempt}: {phase.problems}", flush=True)
        result["warmup_attempts"] = attempt

    def singles(self, result: dict) -> None:
        """(a) one event → every subscriber, --rounds times."""
        latencies, round_p99, cpu, problems = [], [], [], []
        for i in range(self.args.rounds):
            time.sleep(self.args.pause)
            before = _cpu(self.pid)
            event_target = self.event_targets[i % len(self.event_targets)]
            phase = _single(self.clients, self.http, self.target, event_target, self.subscribers, timeout=30)
            cpu.append(_cpu(self.pid) - before)
            latencies += phase.latencies_ms
            round_p99.append(_percentile(phase.latencies_ms, 99))
            problems += phase.problems
        result["single"] = {
            "samples": len(latencies), "p50_ms": _percentile(latencies, 50), "p99_ms": _percentile(latencies, 99),
            "max_ms": max(latencies, default=math.nan), "round_p99_ms": round_p99,
            "server_cpu_ms_per_round": 1000 * sum(cpu) / len(cpu), "problems": problems[:10],
        }  # fmt: skip
        print(f"[{self.target.name}] single: p50 {result['single']['p50_ms']:.1f} ms, "
              f"p99 {result['single']['p99_ms']:.1f} ms", flush=True)  # fmt: skip

    def burst(self, result: dict) -> None:
        """(b) --bursts bursts of --burst events each; (c) the CPU they cost; (d) RSS right after."""
        args, expected = self.args, self.subscribers * self.args.burst
        rates, latencies, walls, posts, busy_shares, problems = [], [], [], [], [], []
        delivered = cpu = client_cpu = 0.0
        profiler = Profiler(args.profile, self.target.name, self.pid)
        for i in range(args.bursts):
            time.sleep(2.0 if i else 0.0)
            self.clients.all("reset", args.burst, timeout=30)
            cpu_before, client_cpu_before, busy_before = _cpu(self.pid), self.clients.cpu_seconds(), _busy()
            started = time.time()
            sent = asyncio.run(_post_all(self.url, self.target, self.event_targets[: args.burst],
                                         args.burst_concurrency))  # fmt: skip
            posted = time.time()
            phase = _collect(self.clients, sent, expected, timeout=args.burst_timeout)
            cpu += _cpu(self.pid) - cpu_before
            client_cpu += self.clients.cpu_seconds() - client_cpu_before
            # the whole box (this run and anything else on it), from /proc/stat
            busy_shares.append((_busy() - busy_before) / (os.cpu_count() or 1) / max(time.time() - started, 1e-9))
            first = min(sent.values())
            walls.append(phase.last_receipt - first)
            posts.append(posted - first)
            rates.append(phase.delivered / walls[-1] if walls[-1] > 0 else math.nan)
            latencies += phase.latencies_ms
            delivered += phase.delivered
            problems += phase.problems
            print(f"[{self.target.name}] burst {i + 1}: {phase.delivered}/{expected} messages in {walls[-1]:.2f} s "
                  f"= {rates[-1]:,.0f}/s (machine {100 * busy_shares[-1]:.0f} % busy)", flush=True)  # fmt: skip
        result["rss_after_burst"] = _rss(self.pid)
        result["profile"] = profiler.stop()
        result["burst"] = {
            "events": args.burst, "bursts": args.bursts, "delivered": int(delivered),
            "expected": expected * args.bursts,
            "messages_per_second": statistics.median(rates), "best_messages_per_second": max(rates),
            "rates": rates, "wall_seconds": statistics.median(walls), "post_seconds": statistics.median(posts),
            "p50_ms": _percentile(latencies, 50), "p99_ms": _percentile(latencies, 99),
            "server_cpu_seconds": cpu, "server_cpu_us_per_message": 1e6 * cpu / max(delivered, 1),
            "client_cpu_seconds": client_cpu, "machine_busy_share": statistics.median(busy_shares),
            "server_busy_share": cpu / sum(walls), "problems": problems[:10],
        }  # fmt: skip

    def long_burst(self, result: dict) -> None:
        """(e) --rss-burst events as fast as they go (targets reused), RSS before, right after and
        after --settle seconds more; only deliveries are counted."""
        args, count = self.args, self.args.rss_burst
        targets = [self.event_targets[i % len(self.event_targets)] for i in range(count)]
        self.clients.all("reset", count, timeout=30)
        before, cpu_before, client_before = _rss(self.pid), _cpu(self.pid), self.clients.cpu_seconds()
        started = time.time()
        asyncio.run(_post_all(self.url, self.target, targets, args.burst_concurrency))
        delivered = sum(r[0] for r in self.clients.all("wait", args.burst_timeout, timeout=args.burst_timeout + 30))
        wall = time.time() - started
        after = _rss(self.pid)
        cpu, client_cpu = _cpu(self.pid) - cpu_before, self.clients.cpu_seconds() - client_before
        time.sleep(args.settle)
        burst = {
            "events": count, "delivered": delivered, "expected": count * self.subscribers, "seconds": wall,
            "rss_before": before, "rss_after": after, "rss_settled": _rss(self.pid),
            "server_cpu_us_per_message": 1e6 * cpu / max(delivered, 1),
            "client_cpu_us_per_message": 1e6 * client_cpu / max(delivered, 1),
        }  # fmt: skip
        result.setdefault("long_burst", burst)  # the first (the table's); --rss-repeat adds the others
        result.setdefault("long_bursts", []).append(burst)
        long = burst
        print(f"[{self.target.name}] {count}-event burst: {delivered}/{long['expected']} messages in {wall:.1f} s; "
              f"RSS {before / 2**20:.1f} → {after / 2**20:.1f} → {long['rss_settled'] / 2**20:.1f} MiB", flush=True)  # fmt: skip


def measure(target: Target, args: argparse.Namespace) -> dict:
    """Every measurement against one freshly started server."""
    result: dict = {"target": target.name}
    if args.quiet_wait > 0:
        result["machine_busy_before"] = share = wait_for_quiet(args.quiet_wait)
        print(f"[{target.name}] machine busy {100 * share:.0f} % before start", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as tmp:
        port = _free_port()
        url = f"http://{HOST}:{port}"
        log = open(Path(tmp) / "server.log", "wb")  # noqa: SIM115 - closed in finally
        server = subprocess.Popen(
            target.command(port, tmp), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **target.env}
        )
        clients = None
        try:
            _wait_ready(url, server)
            with httpx.Client(base_url=url, trust_env=False, timeout=60) as http:
                event_targets = target.prepare(http, max(args.burst, 1))
                clients = Clients(args.clients, lean=args.client == "lean")
                run = _Run(target, args, server.pid, url, http, clients, event_targets)
                run.connect(result)
                run.warm_up(result)
                time.sleep(1.0)
                result["rss_idle"] = _rss(server.pid)
                run.singles(result)
                time.sleep(1.0)
                result["rss_before_burst"] = _rss(server.pid)
                run.burst(result)
                time.sleep(args.settle)
                result["rss_settled"] = _rss(server.pid)
                for _ in range(args.rss_repeat if args.rss_burst else 0):
                    run.long_burst(result)
        finally:
            if clients is not None:
                clients.stop()
            _stop(server)
            log.close()
            result["server_log_tail"] = (Path(tmp) / "server.log").read_text(errors="replace")[-2000:]
    return result


# ---------------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------------


PACKAGES = ("strawberry-graphql", "graphql-core", "uvicorn", "uvloop", "websockets", "starlette", "orjson")


def machine() -> dict:
    from importlib.metadata import version

    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())  # fmt: skip

    def git(*command: str) -> str:
        done = subprocess.run(["git", *command], check=False, cwd=ROOT, capture_output=True, text=True, timeout=30)
        return done.stdout.strip()

    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "uncommitted_files": len(git("status", "--porcelain").splitlines()),
        "nproc": os.cpu_count(), "cpu": model, "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        **{name: version(name) for name in PACKAGES},
    }  # fmt: skip


def _row(name: str, values: list[float], fmt: str, target: str = "", better: str = "") -> str:
    cells = [format(v, fmt) if isinstance(v, (int, float)) and not math.isnan(v) else "n/a" for v in values]
    ratio = values[0] / values[1] if len(values) == 2 and values[1] else math.nan
    ratio_cell = "" if len(values) < 2 or math.isnan(ratio) else f"{ratio:.2f}×"
    return f"| {name} | " + " | ".join(cells) + f" | {ratio_cell} | {target} |"


def table(results: list[dict]) -> str:
    names = [r["target"] for r in results]
    issue = TARGETS["issue"]
    lines = [
        "| metric | " + " | ".join(names) + " | ratio (first / second) | target |",
        "|---" * (len(names) + 3) + "|",
    ]

    def column(get):
        return [get(r) for r in results]

    lines += [
        _row("subscribers connected", column(lambda r: r["subscribers"]), "d"),
        _row("(a) 1 event → all: p50 latency, ms", column(lambda r: r["single"]["p50_ms"]), ".1f"),
        _row("(a) 1 event → all: p99 latency, ms", column(lambda r: r["single"]["p99_ms"]), ".1f",
             f"≤ {issue['single_p99_ms']:.0f}"),
        _row("(a) 1 event → all: max latency, ms", column(lambda r: r["single"]["max_ms"]), ".1f"),
        _row("(a) server CPU per single event (1 event → all), ms",
             column(lambda r: r["single"]["server_cpu_ms_per_round"]), ".1f"),
        _row("(b) burst: messages delivered", column(lambda r: r["burst"]["delivered"]), "d"),
        _row("(b) burst: messages / s (median of bursts)", column(lambda r: r["burst"]["messages_per_second"]),
             ",.0f", f"≥ {issue['messages_per_second']:,.0f}"),
        _row("(b) burst: messages / s (best burst)", column(lambda r: r["burst"]["best_messages_per_second"]),
             ",.0f"),
        _row("(b) burst: wall time (first POST → last receipt), s, median",
             column(lambda r: r["burst"]["wall_seconds"]), ".2f"),
        _row("(b) burst: time to POST all events, s, median", column(lambda r: r["burst"]["post_seconds"]), ".2f"),
        _row("(b) burst: p50 latency per message (all bursts), ms", column(lambda r: r["burst"]["p50_ms"]), ".0f"),
        _row("(b) burst: p99 latency per message (all bursts), ms", column(lambda r: r["burst"]["p99_ms"]), ".0f"),
        _row("(c) server CPU per message, µs", column(lambda r: r["burst"]["server_cpu_us_per_message"]), ".1f"),
        _row("(c) ceiling on one core: 1 / CPU per message, messages / s",
             column(lambda r: 1e6 / r["burst"]["server_cpu_us_per_message"]), ",.0f"),
        _row("(c) server CPU, all bursts, s", column(lambda r: r["burst"]["server_cpu_seconds"]), ".2f"),
        _row("(c) client CPU, all bursts, s (all client processes)",
             column(lambda r: r["burst"]["client_cpu_seconds"]), ".2f"),
        _row("(c) client CPU per message, µs",
             column(lambda r: 1e6 * r["burst"]["client_cpu_seconds"] / max(r["burst"]["delivered"], 1)), ".1f"),
        _row("(c) server busy during bursts, % of one core", column(lambda r: 100 * r["burst"]["server_busy_share"]),
             ".0f"),
        _row("(c) whole machine busy during bursts, % of all cores (median)",
             column(lambda r: 100 * r["burst"]["machine_busy_share"]), ".0f"),
        _row("(d) RSS idle, MiB", column(lambda r: r["rss_idle"] / 2**20), ".1f"),
        _row("(d) RSS right after burst, MiB", column(lambda r: r["rss_after_burst"] / 2**20), ".1f"),
        _row("(d) RSS after settle, MiB", column(lambda r: r["rss_settled"] / 2**20), ".1f"),
        _row("(d) RSS after settle vs idle, %", column(lambda r: 100 * (r["rss_settled"] / r["rss_idle"] - 1)),
             "+.1f"),
        _row("(d) RSS after settle − idle, MiB", column(lambda r: (r["rss_settled"] - r["rss_idle"]) / 2**20), "+.1f",
             f"≤ +{issue['rss_back_within_mb']:.0f} MiB"),
    ]  # fmt: skip
    if all("long_burst" in r for r in results):
        lines += [
            _row("(e) long burst: events", column(lambda r: r["long_burst"]["events"]), "d"),
            _row("(e) long burst: messages delivered", column(lambda r: r["long_burst"]["delivered"]), "d"),
            _row("(e) long burst: messages / s",
                 column(lambda r: r["long_burst"]["delivered"] / r["long_burst"]["seconds"]), ",.0f"),
            _row("(e) long burst: server CPU per message, µs",
                 column(lambda r: r["long_burst"]["server_cpu_us_per_message"]), ".1f"),
            _row("(e) long burst: client CPU per message, µs",
                 column(lambda r: r["long_burst"]["client_cpu_us_per_message"]), ".1f"),
            _row("(e) RSS before the long burst, MiB", column(lambda r: r["long_burst"]["rss_before"] / 2**20), ".1f"),
            _row("(e) RSS right after it, MiB", column(lambda r: r["long_burst"]["rss_after"] / 2**20), ".1f"),
            _row("(e) RSS after settle, MiB", column(lambda r: r["long_burst"]["rss_settled"] / 2**20), ".1f"),
            _row("(e) RSS after settle − before, MiB",
                 column(lambda r: (r["long_burst"]["rss_settled"] - r["long_burst"]["rss_before"]) / 2**20), "+.1f",
                 f"≤ +{issue['rss_back_within_mb']:.0f} MiB"),
        ]  # fmt: skip
    return "\n".join(lines)


def verdicts(result: dict) -> list[str]:
    issue = TARGETS["issue"]
    checks = [
        ("1 event → all p99 ≤ 30 ms", result["single"]["p99_ms"] <= issue["single_p99_ms"]),
        ("≥ 40,000 messages/s", result["burst"]["messages_per_second"] >= issue["messages_per_second"]),
        (
            "RSS back within 5 MiB of idle",
            result["rss_settled"] - result["rss_idle"] <= issue["rss_back_within_mb"] * 2**20,
        ),
        ("every message delivered", result["burst"]["delivered"] >= result["burst"]["expected"]),
    ]
    if "long_burst" in result:
        long = result["long_burst"]
        checks += [
            (f"RSS within 5 MiB of before after {long['events']:,} events",
             long["rss_settled"] - long["rss_before"] <= issue["rss_back_within_mb"] * 2**20),
            ("every message of the long burst delivered", long["delivered"] >= long["expected"]),
        ]  # fmt: skip
    return [f"{name}: {'met' if ok else 'NOT met'}" for name, ok in checks]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.live_fanout", description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument(
        "--client",
        choices=("lean", "websockets"),
        default="lean",
        help="lean: raw frames on uvloop (bench/fanout_client.py, little CPU per message); websockets: the library",
    )
    parser.add_argument("--clients", type=int, help="client processes (default: 1 lean, 2 websockets)")
    parser.add_argument("--rounds", type=int, default=10, help="single-event rounds for (a)")
    parser.add_argument("--pause", type=float, default=0.3, help="seconds between single-event rounds")
    parser.add_argument("--burst", type=int, default=100, help="events in the burst")
    parser.add_argument("--bursts", type=int, default=3, help="bursts, one after the other (median reported)")
    parser.add_argument("--burst-concurrency", type=int, default=4, help="burst POSTs in flight")
    parser.add_argument("--burst-timeout", type=float, default=180.0, help="seconds to wait for the burst")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds before the settled RSS")
    parser.add_argument(
        "--rss-burst", type=int, default=0, metavar="EVENTS", help="then (e): RSS around a burst of this many events"
    )
    parser.add_argument(
        "--rss-repeat", type=int, default=1, metavar="N", help="(e) that many bursts back to back (does RSS level off?)"
    )
    parser.add_argument("--protocol", choices=sorted(NEXT), default="graphql-transport-ws")
    parser.add_argument(
        "--no-deflate",
        dest="deflate",
        action="store_false",
        help="do not offer permessage-deflate (browsers offer it; the default does too)",
    )
    parser.add_argument("--open-concurrency", type=int, default=50, help="handshakes in flight per client")
    parser.add_argument("--only", choices=[SUPPORT_GRAPH.name, PLAIN_STRAWBERRY.name], action="append")
    parser.add_argument("--profile", metavar="DIR", help="py-spy the server during the burst (perturbs it)")
    parser.add_argument("--json", metavar="PATH", help="write every number here")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each target, wait up to this long for the machine to be < 25 %% busy",
    )
    args = parser.parse_args(argv)
    if args.clients is None:
        args.clients = 1 if args.client == "lean" else 2
    if args.client == "lean" and args.deflate:
        args.deflate = False  # the lean client speaks plain frames only (the server does not negotiate deflate)
    if not 1 <= args.clients <= 16 or args.subscribers < args.clients or min(args.burst, args.bursts, args.rounds) < 1:
        parser.error("need 1–16 clients, a subscriber per client, and --burst, --bursts, --rounds ≥ 1")

    info = machine()
    info["loadavg_at_start"] = os.getloadavg()
    print(f"machine: {info}", flush=True)
    chosen = [t for t in (SUPPORT_GRAPH, PLAIN_STRAWBERRY) if not args.only or t.name in args.only]
    results = [measure(target, args) for target in chosen]

    print()
    print(f"Live fan-out: {args.subscribers} subscribers from {args.clients} client processes, {args.protocol}, "
          f"permessage-deflate {'offered' if args.deflate else 'off'}, {args.rounds} single rounds, "
          f"burst of {args.burst} ({args.burst_concurrency} in flight)")  # fmt: skip
    print(table(results))
    for result in results:
        print(f"\n{result['target']}: " + "; ".join(verdicts(result)))
        for kind in ("single", "burst"):
            if result[kind]["problems"]:
                print(f"  {kind} problems: {result[kind]['problems']}")
        if result["connect_failures"]:
            print(f"  connect failures: {result['connect_failures']}")
        if result["profile"]:
            profile = result["profile"]
            print(f"  server profile during the bursts ({profile['samples']} busy samples):")
            print("  where the time goes (stage on the stack, innermost first):")
            for stage, share in profile["stages"]:
                print(f"    {share:5.1f}%  {stage}")
            print("  hottest functions (own time):")
            for frame, share in profile["own"]:
                print(f"    {share:5.1f}%  {frame}")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "args": vars(args), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
