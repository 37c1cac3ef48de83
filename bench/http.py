"""Shared helpers for HTTP benchmarks: server subprocesses, closed-loop load, machine facts.

Load is closed-loop with a fixed number of connections, each sending its next request as soon
as the previous answer arrived. Two generators produce the same numbers:

* ``wrk`` (preferred; ``apt-get install -y wrk``) driven by a Lua script written here, which
  also checks every answer (HTTP 200, a ``"data"`` key and no ``"errors"`` key);
* a fallback in a separate process (``python -m bench.http load SPEC.json``): asyncio + httpx.

Both understand two workloads (see ``Workload``): ``static`` (the same POST body every time) and
``writes`` (``createTicket`` then ``resolveTicket`` of a ticket created earlier, about 1:1: each
created id is resolved by the next request on the same wrk thread/client).

Only 127.0.0.1 is ever contacted; every wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent


# --- servers -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class ServerProcess:
    """A server subprocess, its log in a file; ``stop()`` always ends it (TERM, then KILL)."""

    def __init__(self, name: str, argv: list[str], port: int, log: Path, env: dict[str, str] | None = None):
        self.name, self.argv, self.port, self.log_path = name, argv, port, log
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen | None = None
        self._log = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/graphql"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, ready_timeout: float = 60.0) -> None:
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - open as long as the server runs
        self.proc = subprocess.Popen(
            self.argv, cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        self.wait_ready(ready_timeout)

    def wait_ready(self, timeout: float) -> None:
        """Until ``{ __typename }`` answers 200 (the raw baseline answers anything with 200)."""
        import httpx

        deadline = time.monotonic() + timeout
        last = None
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log_path}")
                try:
                    r = client.post(self.url, json={"query": "{ __typename }"})
                    if r.status_code == 200:
                        return
                    last = f"HTTP {r.status_code}"
                except httpx.HTTPError as error:
                    last = repr(error)
                time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s ({last}); see {self.log_path}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self._log is not None:
            self._log.close()
            self._log = None


def post_json(url: str, body: dict, timeout: float = 30.0) -> dict:
    """One POST, the decoded JSON answer (for preflight checks)."""
    import httpx

    r = httpx.post(url, json=body, timeout=timeout)
    r.raise_for_status()
    return r.json()


# --- workloads -----------------------------------------------------------------------------------


@dataclass
class Workload:
    """What each request is.

    ``static``: ``body`` every time. ``writes``: ``create`` (a JSON body in which ``{n}`` is
    replaced by a running number) whenever no created ticket waits; otherwise ``resolve`` (``{id}``
    replaced by the id a ``createTicket`` answer carried).
    """

    kind: str  # "static" | "writes"
    body: str = ""
    create: str = ""
    resolve: str = ""


@dataclass
class LoadResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int  # transport errors, non-200, or a GraphQL answer with "errors" / without "data"
    creates: int = 0
    resolves: int = 0
    tool: str = ""
    first_error: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def _lua_string(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


_LUA_COMMON = r"""
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
bad = 0
creates = 0
resolves = 0
first_bad = ""
local function check(status, body)
  if status ~= 200 or body == nil or (not string.find(body, '"data"', 1, true))
      or string.find(body, '"errors"', 1, true) then
    bad = bad + 1
    if first_bad == "" then first_bad = tostring(status) .. " " .. string.sub(body or "", 1, 300) end
    return false
  end
  return true
end
function done(summary, latency, requests)
  local b, c, r, fb = 0, 0, 0, ""
  for _, t in ipairs(threads) do
    b = b + t:get("bad")
    c = c + t:get("creates")
    r = r + t:get("resolves")
    if fb == "" then fb = t:get("first_bad") end
  end
  local e = summary.errors
  local transport = e.connect + e.read + e.write + e.timeout
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "bad": %d, '
    .. '"transport": %d, "creates": %d, "resolves": %d, "first_bad": "%s"}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    b, transport, c, r, string.gsub(fb, '[%c"\\]', ' ')))
end
"""


def lua_script(workload: Workload) -> str:
    head = 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
    if workload.kind == "static":
        return (
            head
            + f"wrk.body = {_lua_string(workload.body)}\n"
            + _LUA_COMMON
            + ("function response(status, headers, body)\n  check(status, body)\nend\n")
        )
    create_a, create_b = workload.create.split("{n}", 1)
    resolve_a, resolve_b = workload.resolve.split("{id}", 1)
    return (
        head
        + _LUA_COMMON
        + f"""
local create_a, create_b = {_lua_string(create_a)}, {_lua_string(create_b)}
local resolve_a, resolve_b = {_lua_string(resolve_a)}, {_lua_string(resolve_b)}
local queue = {{}}
local counter = 0
local tag = tostring(math.random(1, 1000000000))
function request()
  local n = #queue
  if n > 0 then
    local id = queue[n]
    queue[n] = nil
    return wrk.format(nil, nil, nil, resolve_a .. id .. resolve_b)
  end
  counter = counter + 1
  return wrk.format(nil, nil, nil, create_a .. tag .. "-" .. counter .. create_b)
end
function response(status, headers, body)
  if not check(status, body) then return end
  if string.find(body, '"createTicket"', 1, true) then
    local id = string.match(body, '"id":%s*"(ticket_[%w]+)"')
    if id then
      creates = creates + 1
      queue[#queue + 1] = id
    end
  elseif string.find(body, '"resolveTicket"', 1, true) then
    resolves = resolves + 1
  end
end
"""
    )


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def wrk_version() -> str:
    try:
        out = subprocess.run(["wrk", "--version"], capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).splitlines()[0].split(" Copyright")[0].strip()
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return "?"


def run_wrk(
    url: str, workload: Workload, *, seconds: float, connections: int, threads: int = 1,
    workdir: Path, cpu: int | None = None, extra_lua: str = "",
) -> LoadResult:  # fmt: skip
    """``workload`` under wrk; ``extra_lua`` is appended to its script (to override ``request``)."""
    script = Path(tempfile.mkstemp(suffix=".lua", dir=workdir)[1])
    script.write_text(lua_script(workload) + extra_lua)
    argv = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "30s",
        "-s", str(script), url,
    ]  # fmt: skip
    if cpu is not None and shutil.which("taskset"):
        argv = ["taskset", "-c", str(cpu), *argv]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    finally:
        script.unlink(missing_ok=True)
    line = next((x for x in out.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no summary (rc {out.returncode}): {out.stdout[-500:]} {out.stderr[-500:]}")
    data = json.loads(line[len("WRKJSON ") :])
    secs = data["duration_us"] / 1e6
    return LoadResult(
        requests=data["requests"], seconds=secs, rps=data["requests"] / secs if secs else 0.0,
        p50_ms=data["p50_us"] / 1000, p99_ms=data["p99_us"] / 1000, errors=data["bad"] + data["transport"],
        creates=data["creates"], resolves=data["resolves"], tool="wrk", first_error=data["first_bad"],
    )  # fmt: skip


# --- the fallback generator (separate process) ---------------------------------------------------


def run_python_load(
    url: str, workload: Workload, *, seconds: float, connections: int, workdir: Path, cpu: int | None = None
) -> LoadResult:
    spec = Path(tempfile.mkstemp(suffix=".json", dir=workdir)[1])
    spec.write_text(json.dumps({
        "url": url, "workload": asdict(workload), "seconds": seconds, "connections": connections,
    }))  # fmt: skip
    argv = [sys.executable, "-m", "bench.http", "load", str(spec)]
    if cpu is not None and shutil.which("taskset"):
        argv = ["taskset", "-c", str(cpu), *argv]
    try:
        out = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=seconds + 60)
    finally:
        spec.unlink(missing_ok=True)
    line = next((x for x in out.stdout.splitlines() if x.startswith("LOADJSON ")), None)
    if line is None:
        raise RuntimeError(f"load client failed (rc {out.returncode}): {out.stderr[-1000:]}")
    return LoadResult(**json.loads(line[len("LOADJSON ") :]))


async def _python_load(url: str, workload: Workload, seconds: float, connections: int) -> LoadResult:
    import httpx

    latencies: list[float] = []
    state = {"bad": 0, "creates": 0, "resolves": 0, "n": 0, "first": ""}
    queue: list[str] = []
    headers = {"content-type": "application/json"}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)

    def next_body() -> str:
        if workload.kind == "static":
            return workload.body
        if queue:
            return workload.resolve.replace("{id}", queue.pop())
        state["n"] += 1
        return workload.create.replace("{n}", f"py-{state['n']}")

    def check(status: int, text: str) -> bool:
        if status != 200 or '"data"' not in text or '"errors"' in text:
            state["bad"] += 1
            state["first"] = state["first"] or f"{status} {text[:300]}"
            return False
        return True

    async with httpx.AsyncClient(limits=limits, timeout=30.0) as client:
        start = time.perf_counter()
        deadline = start + seconds

        async def worker() -> None:
            while time.perf_counter() < deadline:
                body = next_body()
                t0 = time.perf_counter()
                try:
                    r = await client.post(url, content=body, headers=headers)
                    text = r.text
                    status = r.status_code
                except httpx.HTTPError as error:
                    status, text = 0, repr(error)
                latencies.append(time.perf_counter() - t0)
                if not check(status, text) or workload.kind != "writes":
                    continue
                data = json.loads(text)["data"]
                if "createTicket" in data:
                    state["creates"] += 1
                    queue.append(data["createTicket"]["id"])
                else:
                    state["resolves"] += 1

        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - start
    qs = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else [0.0] * 99
    return LoadResult(
        requests=len(latencies), seconds=elapsed, rps=len(latencies) / elapsed,
        p50_ms=qs[49] * 1000, p99_ms=qs[98] * 1000, errors=state["bad"], creates=state["creates"],
        resolves=state["resolves"], tool="python-httpx", first_error=state["first"],
    )  # fmt: skip


def run_load(
    url: str, workload: Workload, *, seconds: float, connections: int, workdir: Path,
    tool: str = "auto", cpu: int | None = None,
) -> LoadResult:  # fmt: skip
    """Closed-loop load with ``connections`` connections for ``seconds``; wrk when available."""
    if tool == "wrk" or (tool == "auto" and have_wrk()):
        return run_wrk(url, workload, seconds=seconds, connections=connections, workdir=workdir, cpu=cpu)
    return run_python_load(url, workload, seconds=seconds, connections=connections, workdir=workdir, cpu=cpu)


# --- machine -------------------------------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def versions(packages: list[str]) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for name in packages:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "-"
    return found


@dataclass
class Machine:
    nproc: int = field(default_factory=lambda: os.cpu_count() or 1)
    cpu: str = field(default_factory=cpu_model)
    system: str = field(default_factory=lambda: f"{platform.system()} {platform.release()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.http", description="the fallback load generator")
    sub = parser.add_subparsers(dest="command", required=True)
    load = sub.add_parser("load", help="run one closed-loop load from a JSON spec; prints LOADJSON {...}")
    load.add_argument("spec")
    args = parser.parse_args(argv)
    spec = json.loads(Path(args.spec).read_text())
    coroutine = _python_load(spec["url"], Workload(**spec["workload"]), spec["seconds"], spec["connections"])
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(coroutine)
    else:
        result = uvloop.run(coroutine)
    print("LOADJSON " + json.dumps(result.as_dict()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
