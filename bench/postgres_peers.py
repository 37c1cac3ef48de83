"""support-graph on PostgreSQL against its peers: PostGraphile 4 and raw Starlette + asyncpg.

Run from the repository root (about 12 minutes with the defaults, seeding included)::

    .venv/bin/python -m bench.postgres_peers [--rounds N] [--duration S] [--tickets N] [--keep]

1. Creates a database of its own on 127.0.0.1:5432 (``bench_peers_<random>``), seeds it with
   ``python -m graph seed`` (2,000 tickets, their requesters, organizations and conversations),
   adds what PostGraphile needs to answer like support-graph (``bench.postgres_setup.PEER_EXTRAS``),
   runs ``ANALYZE``; drops it at the end unless ``--keep``.
2. Starts three servers on it: (C) support-graph (``python -m graph serve --no-migrate``, rate limit
   raised, its pool of 30 opened at start: ``DATABASE_POOL_OPEN=30``); (P) PostGraphile 4 (``bench/postgraphile``, ``npm ci`` on first use) with
   ``--append-plugins @graphile-contrib/pg-simplify-inflector`` (fields named like ours:
   ``tickets``, ``requester``, ``organization``) and ``--no-setof-functions-contain-nulls``,
   default mutations on (its ``createTicket``/``updateTicket`` are a bare INSERT/UPDATE), pool 16;
   (R) ``bench.baseline_postgres``, the same SQL by hand, pool 16.
3. Checks that the three answer every read scenario with the same values in the same order.
4. Measures, closed loop with 16 connections (wrk), servers interleaved C, P, R per round:
   s1 the 50-ticket list with requester and organization; s2 the deep single-ticket document;
   s3 organizations → tickets → comments (20 × 5 × 5); s4 ``createTicket``; s5 a verb
   (``updateTicket`` of the subject, a different open ticket per request). Reported: req/s,
   p50/p99, CPU ms per request of the server and of PostgreSQL, and the PostgreSQL sessions opened
   during the measured runs (after warm-up).
5. Prints Markdown tables: per server, the ratios C/P and C/R, and the goals of issue 19.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import postgres_setup as setup
from bench.http import HOST, ROOT, LoadResult, Machine, ServerProcess, Workload, free_port, post_json, run_load
from bench.postgres_load import Meter, Sessions, run_rotating
from bench.read_write import code_state, log, wait_quiet

PEER_DIR = ROOT / "bench" / "postgraphile"
SERVERS = {"C": "support-graph", "P": "PostGraphile 4", "R": "raw Starlette + asyncpg"}
SCENARIOS = {
    "s1": "50 tickets + requester + organization",
    "s2": "deep single-ticket document",
    "s3": "organizations → tickets → comments (20×5×5)",
    "s4": "createTicket",
    "s5": "updateTicket (a verb)",
}
READS = ("s1", "s2", "s3")
#: (scenario, denominator) → the least C/denominator req/s issue 19 asks for
GOALS = {("s1", "P"): 1.2, ("s1", "R"): 0.6, ("s2", "P"): 1.2, ("s4", "R"): 0.5}


# --- servers -----------------------------------------------------------------------------------


def install_postgraphile() -> str:
    """``npm ci`` when node_modules is missing; the installed PostGraphile's version."""
    if not (PEER_DIR / "node_modules" / "postgraphile").exists():
        log("npm ci in bench/postgraphile")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=PEER_DIR, check=True, timeout=600,
                       capture_output=True)  # fmt: skip
    package = json.loads((PEER_DIR / "node_modules" / "postgraphile" / "package.json").read_text())
    return str(package["version"])


def make_servers(database: str, workdir: Path) -> dict[str, ServerProcess]:
    ports = {key: free_port() for key in SERVERS}
    argv = {
        "C": [sys.executable, "-m", "graph", "serve", "--host", HOST, "--port", str(ports["C"]), "--no-migrate",
              "--database-url", setup.sqlalchemy_url(database), "--log-level", "warning"],
        "P": ["node", str(PEER_DIR / "node_modules" / "postgraphile" / "cli.js"), "-c", setup.dsn(database),
              "--host", HOST, "--port", str(ports["P"]), "--max-pool-size", "16", "--disable-query-log",
              "--append-plugins", "@graphile-contrib/pg-simplify-inflector", "--no-setof-functions-contain-nulls"],
        "R": [sys.executable, "-m", "bench.baseline_postgres", "--port", str(ports["R"]), "--dsn", setup.dsn(database),
              "--pool", "16"],
    }  # fmt: skip
    # C's pool (30 connections, its default) opened at start, as P's and R's warm-ups fill theirs
    env = {"C": {"LIMIT_RATE_PER_MINUTE": "1000000000", "LIMIT_RATE_BURST": "1000000000", "DATABASE_POOL_OPEN": "30"}}
    return {
        key: ServerProcess(key, argv[key], ports[key], workdir / f"server-{key}.log", env.get(key)) for key in SERVERS
    }


def check_answers(servers: dict[str, ServerProcess], bodies: dict[str, dict[str, str]]) -> list[str]:
    """Each read scenario answered with the same values by the three; the writes work on each."""
    notes = []
    for scenario in READS:
        answers = {k: post_json(servers[k].url, json.loads(bodies[k][scenario])) for k in SERVERS}
        for key, got in answers.items():
            if "errors" in got or not got.get("data"):
                raise RuntimeError(f"{key} fails {scenario}: {json.dumps(got)[:600]}")
        reference = setup.normalise(answers["C"]["data"])
        size = len(json.dumps(answers["C"]))
        for key in "PR":
            same = setup.normalise(answers[key]["data"]) == reference
            notes.append(f"{scenario}: {key} {'identical to' if same else 'DIFFERS from'} C ({size} bytes)")
            if not same:
                log(f"WARNING {scenario}: {key} answers {json.dumps(answers[key])[:800]}")
                log(f"        C answers {json.dumps(answers['C'])[:800]}")
    for key in SERVERS:
        made = post_json(servers[key].url, json.loads(bodies[key]["s4"]))
        if "errors" in made or not made.get("data"):
            raise RuntimeError(f"{key} fails createTicket: {json.dumps(made)[:600]}")
    notes.append("s4: createTicket works on C, P and R")
    return notes


# --- measuring ---------------------------------------------------------------------------------


@dataclass
class Cell:
    runs: list[LoadResult] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)
    postgres_ms: list[float] = field(default_factory=list)
    others: list[float] = field(default_factory=list)
    sessions: int = 0

    def median(self, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in self.runs)


def one_run(server: ServerProcess, scenario: str, body: str, ids: list[str], seconds: float, args, workdir: Path):
    if scenario == "s5":
        return run_rotating(server.url, body, ids, seconds=seconds, connections=args.connections, workdir=workdir)
    return run_load(server.url, Workload("static", body=body), seconds=seconds, connections=args.connections,
                    workdir=workdir, tool="wrk")  # fmt: skip


def measure(servers, bodies, inputs, sessions: Sessions, scenarios: list[str], args, workdir: Path):
    cells: dict[tuple[str, str], Cell] = {}
    for scenario in scenarios:
        log(f"{scenario} ({SCENARIOS[scenario]}): warm-up {args.warmup:g} s each")
        for key in SERVERS:
            one_run(servers[key], scenario, bodies[key][scenario], inputs.updatable, args.warmup, args, workdir)
        for round_ in range(1, args.rounds + 1):
            for key in SERVERS:
                with Meter(servers[key].pid, sessions) as meter:
                    result = one_run(servers[key], scenario, bodies[key][scenario], inputs.updatable,
                                     args.duration, args, workdir)  # fmt: skip
                cell = cells.setdefault((scenario, key), Cell())
                cell.runs.append(result)
                cell.others.append(meter.others)
                cell.sessions += meter.new_sessions
                n = max(result.requests, 1)
                cell.server_ms.append(meter.server / n * 1000)
                cell.postgres_ms.append(meter.postgres / n * 1000)
                log(
                    f"  round {round_} {key}: {result.rps:8.1f} req/s  p50 {result.p50_ms:6.1f} ms  "
                    f"p99 {result.p99_ms:6.1f} ms  server {cell.server_ms[-1]:5.2f} ms/req  "
                    f"PostgreSQL {cell.postgres_ms[-1]:5.2f} ms/req  new sessions {meter.new_sessions}  "
                    f"other CPUs {meter.others:4.2f}  errors {result.errors}"
                    + (f"  first error: {result.first_error[:200]}" if result.errors else "")
                )
    return cells


# --- reporting ---------------------------------------------------------------------------------


def ratio(cells, scenario: str, den: str) -> tuple[float | None, list[float]]:
    c, d = cells.get((scenario, "C")), cells.get((scenario, den))
    if not c or not d or not d.median("rps"):
        return None, []
    return c.median("rps") / d.median("rps"), [x.rps / y.rps for x, y in zip(c.runs, d.runs) if y.rps]


def tables(cells, scenarios: list[str]) -> str:
    lines = [
        "| scenario | server | req/s (median) | min–max | p50 ms | p99 ms | server CPU ms/req "
        "| PostgreSQL CPU ms/req | new PG sessions | other CPUs busy | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for scenario in scenarios:
        for key, title in SERVERS.items():
            cell = cells.get((scenario, key))
            if cell is None:
                continue
            rps = [r.rps for r in cell.runs]
            lines.append(
                f"| {scenario} {SCENARIOS[scenario]} | {key} {title} | {cell.median('rps'):.1f} "
                f"| {min(rps):.0f}–{max(rps):.0f} | {cell.median('p50_ms'):.1f} | {cell.median('p99_ms'):.1f} "
                f"| {statistics.median(cell.server_ms):.2f} | {statistics.median(cell.postgres_ms):.2f} "
                f"| {cell.sessions} | {statistics.median(cell.others):.2f} | {sum(r.errors for r in cell.runs)} |"
            )
    lines += ["", "| scenario | C/P req/s | per round | goal | C/R req/s | per round | goal |",
              "|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for scenario in scenarios:
        parts = [f"{scenario} {SCENARIOS[scenario]}"]
        for den in "PR":
            value, rounds = ratio(cells, scenario, den)
            goal = GOALS.get((scenario, den))
            shown = "–" if value is None else f"{value:.2f}"
            if value is not None and goal is not None:
                shown += " ✓" if value >= goal else " ✗"
            parts += [shown, f"{min(rounds):.2f}–{max(rounds):.2f}" if rounds else "–", f"≥ {goal:g}" if goal else "–"]
        lines.append("| " + " | ".join(parts) + " |")
    return "\n".join(lines)


def goals(cells, scenarios: list[str]) -> str:
    lines = ["| goal (issue 19) | measured | met |", "|---|---:|:---:|"]
    for (scenario, den), goal in GOALS.items():
        value, _ = ratio(cells, scenario, den)
        if value is not None:
            lines.append(f"| {scenario} {SCENARIOS[scenario]}: C/{den} ≥ {goal:g} | {value:.2f} "
                         f"| {'✓' if value >= goal else '✗'} |")  # fmt: skip
    measured = [cell for (_, key), cell in cells.items() if key == "C"]
    if measured:  # nothing measured proves nothing
        opened = sum(cell.sessions for cell in measured)
        lines.append(
            f"| 0 new PostgreSQL sessions after warm-up (C, all scenarios) | {opened} | {'✓' if not opened else '✗'} |"
        )
    return "\n".join(lines)


def report(cells, scenarios, notes, args, peer_version: str, minutes: float) -> str:
    machine = Machine()
    load = " ".join(f"{x:.2f}" for x in args.loadavg)
    end = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return "\n".join([
        "## PostgreSQL: support-graph, PostGraphile and raw asyncpg",
        "",
        f"`python -m bench.postgres_peers --rounds {args.rounds} --duration {args.duration:g} --tickets {args.tickets}` "
        f"({minutes:.1f} min), {machine.nproc} CPUs ({machine.cpu}); load average at start {load}, at end {end}.",
        f"support-graph {args.code_state}; PostGraphile {peer_version}; wrk, {args.connections} connections, "
        f"{args.rounds} rounds × {args.duration:g} s after {args.warmup:g} s warm-up per server and scenario.",
        "Server CPU is the server's process tree; PostgreSQL CPU is every postgres process (backends, "
        "WAL writer…) during the run; new sessions are `pg_stat_database.sessions` of the benchmark's "
        "database opened during the measured runs.",
        "Checks: " + "; ".join(notes) + ".",
        "",
        tables(cells, scenarios),
        "",
        goals(cells, scenarios),
    ])  # fmt: skip


# --- main --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.postgres_peers", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measured run")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up per server and scenario")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--tickets", type=int, default=2000)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--keep", action="store_true", help="keep the database and the temporary directory")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="S")
    args = parser.parse_args(argv)
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    if not scenarios or set(scenarios) - set(SCENARIOS):
        parser.error(f"--scenarios takes some of {','.join(SCENARIOS)}")
    if shutil.which("wrk") is None:
        parser.error("wrk is needed (apt-get install -y wrk)")
    peer_version = install_postgraphile()
    wait_quiet(args.wait_quiet)
    args.loadavg, args.code_state = os.getloadavg(), code_state()
    log(f"load average {' '.join(f'{x:.2f}' for x in args.loadavg)}")
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    database = setup.create_database()
    servers: dict[str, ServerProcess] = {}
    sessions: Sessions | None = None
    try:
        setup.seed(database, args.tickets, workdir, log)
        inputs = setup.pick_inputs(database)
        bodies = {key: setup.bodies(key, inputs) for key in SERVERS}
        servers = make_servers(database, workdir)
        for key, server in servers.items():
            server.start(ready_timeout=90)
            log(f"{key} ({SERVERS[key]}) pid {server.pid} on {server.url}")
        notes = check_answers(servers, bodies)
        for note in notes:
            log(note)
        sessions = Sessions(setup.dsn(database), database)
        cells = measure(servers, bodies, inputs, sessions, scenarios, args, workdir)
        print()
        print(report(cells, scenarios, notes, args, peer_version, (time.monotonic() - started) / 60))
        return 0
    finally:
        if sessions is not None:
            sessions.close()
        for server in servers.values():
            server.stop()
        if args.keep:
            log(f"kept database {database} and {workdir}")
        else:
            setup.drop_database(database)
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
