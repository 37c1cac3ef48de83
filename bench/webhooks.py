"""Outgoing webhooks (issue #16): does one worker's sender keep up with its commits, how long
from commit to receipt, and what does a black-holed receiver cost the mutations?

Run from the repository root (a few minutes with the defaults)::

    .venv/bin/python -m bench.webhooks [--events 10000] [--concurrency 16] [--database sqlite|postgresql]

Runs on fresh databases with one real server process (uvicorn running
``create_app`` with the webhook sender in its lifespan, tests/test_webhook_workers.py; rate
limits lifted through ``LIMIT_RATE_*``), driven by ``--concurrency`` HTTP clients sending
``createTicket`` mutations (one ``Ticket.Created`` event each, plus what hooks add):

1. none against black hole, on one server in alternating segments (four of each, ``--mutations``
   in all): a webhook for ``Ticket.Created`` to a socket that listens and never answers (every
   attempt times out after ``WEBHOOK_TIMEOUT_SECONDS``, 10 s), switched off (none) and on
   (black hole) between segments. Mutations per second of each; goal: black hole ≥ 0.9 × none.
2. receiver (window 1, then window 8: ``WEBHOOK_IN_ORDER_WINDOW``, the first attempts of one
   webhook in flight at once, started in commit order, once more than that many are due; 8 is the
   default): a webhook for ``Ticket.Created`` to a receiver process (uvicorn, a bare ASGI app
   that notes each ``webhook-id`` and when it came). ``--events`` mutations; the commit rate is
   events over the time from the first to the last commit (the events' own timestamps, set in
   the committing transaction), the delivery rate deliveries over the time from the first to the
   last receipt; goal: delivery rate ≥ 1.0 × commit rate. Commit → receipt p50 and p99 per event.

Every count is checked (one receipt per event, no duplicate webhook-id). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import select

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from models.db.engine import Database  # noqa: E402
from models.event import Event  # noqa: E402
from tests.databases import create_postgres_database, drop_postgres_database  # noqa: E402
from tests.procs import free_port  # noqa: E402
from tests.test_webhook_workers import Worker  # noqa: E402

SERVER_ENV = {"LIMIT_RATE_PER_MINUTE": "1000000000", "LIMIT_RATE_BURST": "1000000000"}
KEEP_UP_GOAL, BLACK_HOLE_GOAL = 1.0, 0.9
TICKET = 'mutation { createTicket(input: {subject: "bench"}) { id } }'
CREATE = 'mutation($url: String!) { createWebhook(input: {url: $url, events: ["Ticket.Created"]}) { secret } }'
RECEIVER = """
import sys, time, orjson, uvicorn
received = []

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    if scope["method"] == "GET":
        body = orjson.dumps(received)
    else:
        hook_id = dict(scope["headers"]).get(b"webhook-id", b"").decode()
        received.append((hook_id, time.time()))
        body = b"ok"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


class ReceiverProcess:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.process = subprocess.Popen([sys.executable, "-c", RECEIVER, str(self.port)], cwd=ROOT)
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(f"http://127.0.0.1:{self.port}/", timeout=2)
                return
            assert time.monotonic() < deadline and self.process.poll() is None, "the receiver did not start"
            time.sleep(0.1)

    def received(self) -> list[tuple[str, float]]:
        return [tuple(r) for r in httpx.get(f"http://127.0.0.1:{self.port}/", timeout=30).json()]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(15)


async def drive(url: str, count: int, concurrency: int) -> tuple[float, float]:
    """``count`` createTicket mutations from ``concurrency`` clients: (seconds, mutations per second)."""
    left = iter(range(count))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def one_client() -> None:
            for _ in left:
                response = await client.post("/graphql", json={"query": TICKET})
                assert response.status_code == 200 and "errors" not in response.json(), response.text

        began = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(concurrency)))
        took = time.perf_counter() - began
    return took, count / took


async def commit_times(database_url: str) -> dict[str, float]:
    db = Database(database_url)
    try:
        async with db.reading() as session:
            table = Event.__table__
            rows = await session.execute(select(table.c.id, table.c.timestamp).where(table.c.type == "Ticket.Created"))
            return {id_: at.timestamp() for id_, at in rows}
    finally:
        await db.dispose()


@contextlib.contextmanager
def fresh(kind: str, workdir: Path, name: str):
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{workdir / f'{name}.db'}", "memory://"
        return
    url = create_postgres_database()
    try:
        yield url, url
    finally:
        drop_postgres_database(url)


SEGMENTS = 4
WARM_UP = 300
TOGGLE = "mutation($id: ID!, $on: Boolean!) { updateWebhook(id: $id, input: {active: $on}) { id } }"
CREATE_HOOK = CREATE.replace("{ secret }", "{ webhook { id } }")


def black_hole(kind: str, args: argparse.Namespace, workdir: Path) -> dict[str, dict]:
    """None against a black hole on one server, in alternating segments (so drift in the
    machine's load falls on both alike): the webhook is switched off and on between them."""
    with fresh(kind, workdir, "black-hole") as (database_url, broker_url):
        worker = Worker(database_url, broker_url, SERVER_ENV)
        hole = socket.socket()
        try:
            hole.bind(("127.0.0.1", 0))
            hole.listen(1)
            made = worker.data(CREATE_HOOK, {"url": f"http://127.0.0.1:{hole.getsockname()[1]}/hook"})
            hook = made["createWebhook"]["webhook"]["id"]
            asyncio.run(drive(worker.url, WARM_UP, args.concurrency))  # first requests are slower
            seconds = {"none": 0.0, "black hole": 0.0}
            per = args.mutations // (2 * SEGMENTS)
            for _ in range(SEGMENTS):
                for mode, on in (("none", False), ("black hole", True)):
                    worker.data(TOGGLE, {"id": hook, "on": on})
                    time.sleep(0.5)
                    seconds[mode] += asyncio.run(drive(worker.url, per, args.concurrency))[0]
            count = per * SEGMENTS
            return {
                m: {"mode": m, "mutations": count, "seconds": t, "mutations/s": count / t} for m, t in seconds.items()
            }
        finally:
            worker.stop()
            hole.close()


def delivered(kind: str, mode: str, args: argparse.Namespace, workdir: Path) -> dict:
    window = mode.partition("window ")[2].rstrip(")") or "1"
    with fresh(kind, workdir, mode.replace(" ", "-")) as (database_url, broker_url):
        worker = Worker(database_url, broker_url, SERVER_ENV | {"WEBHOOK_IN_ORDER_WINDOW": window})
        receiver = ReceiverProcess()
        try:
            worker.data(CREATE, {"url": receiver.url})
            count = args.events
            took, rate = asyncio.run(drive(worker.url, count, args.concurrency))
            result = {"mode": mode, "mutations": count, "seconds": took, "mutations/s": rate}
            deadline = time.monotonic() + args.wait
            while len(receiver.received()) < count and time.monotonic() < deadline:
                time.sleep(0.5)
            time.sleep(1)
            got = receiver.received()
            commits = asyncio.run(commit_times(database_url))
            ids = [i for i, _ in got]
            assert len(ids) == len(set(ids)) == len(commits) == count, (len(ids), len(set(ids)), len(commits))
            latencies = sorted(at - commits[i] for i, at in got)
            commit_span = max(commits.values()) - min(commits.values())
            receipt_span = max(at for _, at in got) - min(at for _, at in got)
            return result | {
                "commit/s": count / commit_span, "deliveries/s": count / receipt_span,
                "p50": statistics.median(latencies), "p99": latencies[int(0.99 * (len(latencies) - 1))],
            }  # fmt: skip
        finally:
            worker.stop()
            receiver.stop()


def report(results: dict[str, dict]) -> str:
    none, hole = results["none"], results["black hole"]
    receivers = [r for mode, r in results.items() if mode.startswith("receiver")]
    black = hole["mutations/s"] / none["mutations/s"]
    lines = [
        "| run | mutations | mutations/s | commits/s | deliveries/s | commit → receipt p50 | p99 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in (none, hole, *receivers):
        extra = (
            f"{r['commit/s']:.0f} | {r['deliveries/s']:.0f} | {r['p50'] * 1000:.0f} ms | {r['p99'] * 1000:.0f} ms"
            if "p50" in r else "– | – | – | –"
        )  # fmt: skip
        lines.append(f"| {r['mode']} | {r['mutations']:,} | {r['mutations/s']:.0f} | {extra} |")
    lines.append("")
    for r in receivers:
        keep_up = r["deliveries/s"] / r["commit/s"]
        mark = "✓" if keep_up >= KEEP_UP_GOAL else "✗"
        lines.append(
            f"- {r['mode']}: keeps up: deliveries/s ÷ commits/s = {keep_up:.3f} (goal ≥ {KEEP_UP_GOAL}) {mark}"
        )
    lines += [
        f"- black-holed receiver: mutations/s ÷ none = {black:.3f} (goal ≥ {BLACK_HOLE_GOAL}) {'✓' if black >= BLACK_HOLE_GOAL else '✗'}",
    ]  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000, help="mutations (and deliveries) of the receiver run")
    parser.add_argument("--mutations", type=int, default=10_000, help="mutations of the none and black-hole runs")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--wait", type=float, default=300.0, help="seconds to wait for the last delivery")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-webhooks-") as directory:
        print(f"{args.database}: none against a black-holed receiver, alternating…", flush=True)
        results = black_hole(args.database, args, Path(directory))
        for mode in ("receiver (window 1)", "receiver (window 8)"):
            print(f"{args.database}: {mode}…", flush=True)
            results[mode] = delivered(args.database, mode, args, Path(directory))
    print(
        f"\n`python -m bench.webhooks --database {args.database} --events {args.events}` ({time.strftime('%Y-%m-%d %H:%M')})\n"
    )
    print(report(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
