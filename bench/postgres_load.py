"""Load and meters of ``bench.postgres_peers``.

* ``run_rotating``: wrk with bodies that change per request (``{id}`` from a list in turn, ``{n}``
  a running number), for a verb that must touch a different row each time. It extends the Lua
  script ``bench.http`` writes for a static body (same answer checks, same summary line).
* ``Meter``: during one run, CPU of a server's process tree, CPU of every PostgreSQL process,
  the sessions PostgreSQL opened on the benchmark's database, and what the rest of the machine did.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import asyncpg
import psutil

from bench.http import LoadResult, Workload, run_wrk
from bench.read_write import busy_cpu_seconds, children_cpu_seconds

_ROTATE = """
local ids = {%s}
local template = %s
local counter = 0
local tag = tostring(math.random(1, 1000000000))
function request()
  counter = counter + 1
  local body = string.gsub(template, "{id}", ids[(counter %% #ids) + 1])
  body = string.gsub(body, "{n}", tag .. "-" .. counter)
  return wrk.format(nil, nil, nil, body)
end
"""


def _lua(s: str) -> str:
    return json.dumps(s)  # a JSON string is a valid Lua string literal for this ASCII text


def run_rotating(
    url: str, template: str, ids: list[str], *, seconds: float, connections: int, workdir: Path
) -> LoadResult:
    """Closed-loop wrk load whose every request is ``template`` with the next id and number."""
    rotate = _ROTATE % (", ".join(_lua(i) for i in ids), _lua(template))
    return run_wrk(
        url,
        Workload("static", body=template),
        seconds=seconds,
        connections=connections,
        workdir=workdir,
        extra_lua=rotate,
    )


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its live descendants (npx/node, uvicorn)."""
    total = 0.0
    try:
        root = psutil.Process(pid)
        for proc in [root, *root.children(recursive=True)]:
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                pass
    except psutil.NoSuchProcess:
        pass
    return total


def postgres_cpu() -> dict[int, float]:
    """CPU seconds of every PostgreSQL process (postmaster, background workers, backends)."""
    found = {}
    for proc in psutil.process_iter(["name", "cpu_times"]):
        if proc.info["name"] in ("postgres", "postmaster") and proc.info["cpu_times"] is not None:
            times = proc.info["cpu_times"]
            found[proc.pid] = times.user + times.system
    return found


class Sessions:
    """``pg_stat_database.sessions`` of one database, read over one connection kept open (so the
    reading itself opens none)."""

    def __init__(self, dsn: str, database: str) -> None:
        self.database = database
        self.loop = asyncio.new_event_loop()
        self.conn: Any = self.loop.run_until_complete(asyncpg.connect(dsn))

    def opened(self) -> int:
        statement = "SELECT sessions FROM pg_stat_database WHERE datname = $1"
        # the statistics a backend reports are cached per transaction; clear them to see new ones
        self.loop.run_until_complete(self.conn.execute("SELECT pg_stat_clear_snapshot()"))
        return int(self.loop.run_until_complete(self.conn.fetchval(statement, self.database)) or 0)

    def close(self) -> None:
        self.loop.run_until_complete(self.conn.close())
        self.loop.close()


class Meter:
    """What one measured run cost: server CPU, PostgreSQL CPU, new sessions, other processes."""

    def __init__(self, pid: int, sessions: Sessions) -> None:
        self.pid, self.sessions = pid, sessions

    def __enter__(self) -> Meter:
        self.opened0 = self.sessions.opened()
        self.t0, self.server0, self.pg0 = time.monotonic(), tree_cpu_seconds(self.pid), postgres_cpu()
        self.load0, self.busy0 = children_cpu_seconds(), busy_cpu_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = max(time.monotonic() - self.t0, 1e-9)
        self.server = tree_cpu_seconds(self.pid) - self.server0
        pg1 = postgres_cpu()
        # backends that ended during the run take their CPU with them: counted up to the last look
        self.postgres = sum(cpu - self.pg0.get(pid, 0.0) for pid, cpu in pg1.items())
        self.load = children_cpu_seconds() - self.load0
        busy = busy_cpu_seconds() - self.busy0
        self.others = max(busy - self.server - self.postgres - self.load, 0.0) / self.seconds
        self.new_sessions = self.sessions.opened() - self.opened0
