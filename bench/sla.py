"""Service levels (issue #15): what an idle worker's breach timer costs while it holds many open
tickets with running clocks, and what a burst of simultaneous breaches costs against plain writes.

Run from the repository root (about 5 minutes with the defaults, loading included; needs
PostgreSQL on 127.0.0.1:5432 for the PostgreSQL half)::

    .venv/bin/python -m bench.sla [--tickets 100000] [--breaches 10000] [--idle-seconds 30]
                                  [--databases sqlite,postgresql]

For each database (SQLite in a temporary directory; PostgreSQL in a fresh database of its own,
``tests.databases``, dropped at the end):

1. Migrate to head, create one policy that matches every ticket (first response 30 days,
   resolution 60 days, around the clock) through a ``UnitOfWork``, then load ``--tickets`` OPEN
   tickets with plain SQL (executemany on SQLite, COPY on PostgreSQL) whose clocks run under it,
   as the verb path would have set them: due times ``created_at`` + the targets, ``sla_state``
   ACTIVE, ``sla_due_at`` the first-response due time (all far in the future). PostgreSQL then
   gets ``VACUUM ANALYZE``.
2. Idle CPU: one real ``python -m graph serve`` process (``tests.procs``, in-process broker, log
   level "warning") on that database; after ``--settle`` seconds, its CPU time (psutil, user +
   system, children included) over ``--idle-seconds`` of no requests, as % of one core. Goal < 1 %.
3. Breaches against updates, in this process, with the shipped hooks (``resolvers.reactions
   .shipped()``, the clocks' hook included), no server running. ``--breaches`` tickets get their
   first-response due time (and ``sla_due_at``) set one second in the past, all at once, with
   plain SQL; then ``breach_due(db, hooks, None, now)`` (what a woken timer runs: ``BATCH`` = 500
   claims and their events per unit) is called until it returns 0, and ``--breaches`` plain
   updates of other tickets (``uow.transition(Ticket, id, "update", values={"priority": …})``,
   priority flipped, so the policy is chosen again) are committed in units of the same ``BATCH``.
   The two are interleaved call by call (one update unit, one ``breach_due``, …), so that a
   machine whose load changes during the run weighs on both alike; each call is timed on its
   own. The two sums and their ratio (breaches / updates) are reported. Goal ≤ 1.5×.
4. Reference, end to end: with no server running, ``--breaches`` more tickets are made due; then
   a server is started and the time from launching it (and from its ``/readyz``) until every one
   of them has its ``Ticket.SlaBreached`` event is measured (the "on start" catch-up).

Every count is checked against the database (one event per breach and per update). Prints one
Markdown table (for bench/RESULTS.md) and the goals with ✓/✗.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import psutil
from sqlalchemy import func, select, update

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from models.db import migrate  # noqa: E402
from models.db.engine import Database  # noqa: E402
from models.entities import Ticket  # noqa: E402
from models.event import Event  # noqa: E402
from models.ids import new_id  # noqa: E402
from models.service_levels import SlaPolicy  # noqa: E402
from models.types import utcnow  # noqa: E402
from resolvers.reactions import shipped  # noqa: E402
from resolvers.service_levels import BATCH, breach_due  # noqa: E402
from resolvers.unit import UnitOfWork  # noqa: E402
from tests.databases import create_postgres_database, drop_postgres_database, postgres_unreachable  # noqa: E402
from tests.procs import Serve  # noqa: E402

TENANT, ACTOR = "bench", "bench@support-graph"
FIRST_RESPONSE, RESOLUTION = 30 * 86400, 60 * 86400
IDLE_GOAL, RATIO_GOAL = 1.0, 1.5
WAIT = 300.0
COLUMNS = (  # noqa: SIM905
    "id tenant version created_at updated_at created_by deleted_at subject description status priority category "
    "channel tags requester_id assignee_id organization_id deal_id first_response_at resolved_at closed_at "
    "satisfaction merged_into_id sla_policy_id first_response_due_at resolution_due_at first_response_breached_at "
    "resolution_breached_at sla_paused_at sla_pauses sla_state sla_due_at"
).split()
PRIORITIES = ["LOW", "MEDIUM", "HIGH", "URGENT"]
_ticket, _event = Ticket.__table__, Event.__table__


def rows(n: int, policy: str, now: datetime, rng: random.Random) -> list[tuple]:
    """Open tickets created in the last hour, clocks running under ``policy`` (due in ~30 days)."""
    out = []
    for i in range(n):
        at = now - timedelta(seconds=rng.uniform(1, 3600))
        at = at.replace(microsecond=0)  # whole seconds: due = created_at + target exactly
        first, resolution = at + timedelta(seconds=FIRST_RESPONSE), at + timedelta(seconds=RESOLUTION)
        out.append((
            new_id("ticket"), TENANT, 1, at, at, ACTOR, None, f"SLA bench ticket {i}", "Waiting for a first answer.", "OPEN",
            rng.choice(PRIORITIES), None, rng.choice(["EMAIL", "CHAT", "PHONE", "WEB", "API"]), "[]", None, None,
            None, None, None, None, None, None, None,
            policy, first, resolution, None, None, None, None, "ACTIVE", first,
        ))  # fmt: skip
    return out


def load_sqlite(path: Path, records: list[tuple]) -> None:
    def naive(row: tuple) -> tuple:  # SQLAlchemy's SQLite DateTime format, UTC
        return tuple(v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(v, datetime) else v for v in row)

    connection = sqlite3.connect(path)
    try:
        statement = f"INSERT INTO ticket ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
        for start in range(0, len(records), 10_000):
            connection.executemany(statement, [naive(r) for r in records[start : start + 10_000]])
            connection.commit()
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()


async def load_postgres(url: str, records: list[tuple]) -> None:
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await connection.copy_records_to_table("ticket", records=records, columns=COLUMNS)
        await connection.execute("VACUUM ANALYZE")
    finally:
        await connection.close()


async def make_due(db: Database, ids: list[str], at: datetime) -> None:
    """Plain SQL: the first-response target of these tickets fell due at ``at``."""
    async with db.writing() as session:
        for start in range(0, len(ids), 1000):
            await session.execute(
                update(_ticket).where(_ticket.c.id.in_(ids[start : start + 1000]))
                .values(first_response_due_at=at, sla_due_at=at)
            )  # fmt: skip
        await session.commit()


async def count_events(db: Database, type_: str) -> int:
    async with db.reading() as session:
        query = select(func.count()).select_from(_event).where(_event.c.tenant == TENANT, _event.c.type == type_)
        return (await session.execute(query)).scalar_one()


def cpu_seconds(process: psutil.Process) -> float:
    total = 0.0
    for each in [process, *process.children(recursive=True)]:
        times = each.cpu_times()
        total += times.user + times.system
    return total


def idle_cpu(url: str, settle: float, seconds: float) -> dict:
    """% of a core a served worker uses with no requests, and its RSS."""
    server = Serve(url, "memory://", name="sla-idle", log_level="warning").start()
    try:
        process = psutil.Process(server.pid)
        time.sleep(settle)
        before, started = cpu_seconds(process), time.monotonic()
        time.sleep(seconds)
        used, elapsed = cpu_seconds(process) - before, time.monotonic() - started
        rss = sum(p.memory_info().rss for p in [process, *process.children(recursive=True)])
        return {"percent": 100 * used / elapsed, "cpu": used, "elapsed": elapsed, "rss": rss / 2**20}
    finally:
        server.cleanup()


async def writes(db: Database, updated: list[str], breached: list[str]) -> dict:
    """One burst of simultaneous breaches against as many plain updates, interleaved unit by unit."""
    hooks = shipped()
    flip = dict.fromkeys(updated, "LOW")
    warm = await count_events(db, "Ticket.Updated")
    await make_due(db, breached, utcnow() - timedelta(seconds=1))
    times = {"updates": 0.0, "breaches": 0.0}
    recorded, rounds, chunks = 0, 0, [updated[i : i + BATCH] for i in range(0, len(updated), BATCH)]
    breaching = True
    while breaching or chunks:
        if chunks:  # one unit of BATCH plain updates
            started = time.perf_counter()
            async with UnitOfWork(db, tenant=TENANT, actor=ACTOR, hooks=hooks) as uow:
                for id_ in chunks.pop(0):
                    flip[id_] = "HIGH" if flip[id_] == "LOW" else "LOW"
                    await uow.transition(Ticket, id_, "update", values={"priority": flip[id_]})
            times["updates"] += time.perf_counter() - started
        if breaching:  # one call of what a woken timer runs, until it finds nothing more due
            started = time.perf_counter()
            n = await breach_due(db, hooks, None, utcnow())
            times["breaches"] += time.perf_counter() - started
            recorded, rounds, breaching = recorded + n, rounds + 1, n > 0
    assert recorded == len(breached), (recorded, len(breached))
    assert await count_events(db, "Ticket.SlaBreached") == len(breached)
    assert await count_events(db, "Ticket.Updated") - warm == len(updated)
    return {**times, "rounds": rounds}


async def served_breaches(db: Database, url: str, ids: list[str], already: int) -> dict:
    """Make ``ids`` due with no server running, start one, time until each has its event."""
    await make_due(db, ids, utcnow() - timedelta(seconds=1))
    launched = time.perf_counter()
    server = Serve(url, "memory://", name="sla-catchup", log_level="warning").start()
    try:
        ready = time.perf_counter()
        deadline = ready + WAIT
        while (found := await count_events(db, "Ticket.SlaBreached") - already) < len(ids):
            if time.perf_counter() > deadline:
                raise RuntimeError(f"only {found} of {len(ids)} breaches after {WAIT} s:\n{server.log()[-3000:]}")
            await asyncio.sleep(0.1)
        done = time.perf_counter()
        await asyncio.sleep(2)  # nothing more comes
        assert await count_events(db, "Ticket.SlaBreached") - already == len(ids)
        return {"from_launch": done - launched, "from_ready": done - ready}
    finally:
        server.cleanup()


async def bench_database(kind: str, url: str, args: argparse.Namespace, workdir: Path) -> dict:
    rng = random.Random(15)
    db = Database(url)
    try:
        await migrate.upgrade(db)
        async with UnitOfWork(db, tenant=TENANT, actor=ACTOR, hooks=shipped()) as uow:
            policy = await uow.create(SlaPolicy, {
                "name": "everything", "first_response_seconds": FIRST_RESPONSE, "resolution_seconds": RESOLUTION,
            })  # fmt: skip
        records = rows(args.tickets, policy.id, utcnow(), rng)
        ids = [r[0] for r in records]
        print(f"{kind}: loading {len(records):,} open tickets with running clocks…", flush=True)
        started = time.monotonic()
        if kind == "sqlite":
            await asyncio.to_thread(load_sqlite, workdir / "sla.db", records)
        else:
            await load_postgres(url, records)
        loaded = time.monotonic() - started
        del records
        print(f"{kind}: loaded in {loaded:.1f} s; idle server for {args.settle:g} + {args.idle_seconds:g} s…", flush=True)  # fmt: skip
        idle = await asyncio.to_thread(idle_cpu, url, args.settle, args.idle_seconds)
        rng.shuffle(ids)
        n = args.breaches
        updated, breached, caught_up = ids[:n], ids[n : 2 * n], ids[2 * n : 3 * n]
        print(f"{kind}: {n:,} updates against {n:,} simultaneous breaches…", flush=True)
        result = await writes(db, updated, breached)
        print(f"{kind}: {n:,} breaches caught up by a starting server…", flush=True)
        served = await served_breaches(db, url, caught_up, already=n)
        return {"kind": kind, "loaded": loaded, "idle": idle, **result, "served": served}
    finally:
        await db.dispose()


def report(results: list[dict], args: argparse.Namespace) -> str:
    n = f"{args.breaches:,}"
    lines = [
        f"| database | open tickets | idle CPU, % of a core ({args.idle_seconds:g} s) | idle RSS | {n} updates "
        f"| {n} breaches (rounds) | breaches / updates | {n} breaches by a starting server: from launch / from ready |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        ratio = r["breaches"] / r["updates"]
        lines.append(
            f"| {'SQLite' if r['kind'] == 'sqlite' else 'PostgreSQL'} | {args.tickets:,} "
            f"| {r['idle']['percent']:.3f} % ({r['idle']['cpu'] * 1000:.0f} ms CPU) | {r['idle']['rss']:.0f} MiB "
            f"| {r['updates']:.2f} s | {r['breaches']:.2f} s ({r['rounds']}) | **{ratio:.2f}×** "
            f"| {r['served']['from_launch']:.2f} s / {r['served']['from_ready']:.2f} s |"
        )
    lines.append("")
    for r in results:
        ratio, idle = r["breaches"] / r["updates"], r["idle"]["percent"]
        lines.append(
            f"- {r['kind']}: idle {idle:.3f} % {'✓' if idle < IDLE_GOAL else '✗'} (goal < {IDLE_GOAL:g} %); "
            f"breaches / updates {ratio:.2f}× {'✓' if ratio <= RATIO_GOAL else '✗'} (goal ≤ {RATIO_GOAL}×); "
            f"per breach {r['breaches'] / args.breaches * 1000:.2f} ms, per update {r['updates'] / args.breaches * 1000:.2f} ms; "
            f"loaded in {r['loaded']:.1f} s"
        )  # fmt: skip
    return "\n".join(lines)


def machine() -> str:
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"SQLite {sqlite3.sqlite_version}, load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=100_000, help="open tickets with running clocks")
    parser.add_argument("--breaches", type=int, default=10_000, help="simultaneous breaches, and updates (each)")
    parser.add_argument("--idle-seconds", type=float, default=30.0, help="idle CPU measured over (default 30)")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds after start before measuring idle")
    parser.add_argument("--databases", default="sqlite,postgresql", help="comma-separated, in order")
    args = parser.parse_args(argv)
    kinds = [k.strip() for k in args.databases.split(",") if k.strip()]
    if unknown := [k for k in kinds if k not in ("sqlite", "postgresql")]:
        parser.error(f"unknown database(s) {unknown}; choose from sqlite, postgresql")
    if args.tickets < 3 * args.breaches:
        parser.error("--tickets must be at least 3 × --breaches (updated, breached, caught up on start)")
    if "postgresql" in kinds and (reason := postgres_unreachable()):
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="bench-sla-"))
    results = []
    try:
        for kind in kinds:
            url = f"sqlite+aiosqlite:///{workdir / 'sla.db'}" if kind == "sqlite" else create_postgres_database()
            try:
                results.append(asyncio.run(bench_database(kind, url, args, workdir)))
            finally:
                if kind == "postgresql":
                    drop_postgres_database(url)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    command = " ".join(["python -m bench.sla", *(argv if argv is not None else sys.argv[1:])])
    print(f"\n`{command}` ({time.strftime('%Y-%m-%d %H:%M')}; {machine()})\n")
    print(report(results, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
