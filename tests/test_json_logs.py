"""``serve --log-format json``: every line the server writes, on stdout and on stderr, is one
JSON object — uvicorn's own lines and, with ``--workers 2``, its supervisor's included — and
each HTTP request gets exactly one line saying what it was and came to. No line carries the
API key a request presented, its ``Authorization`` header or a query string.

The servers are real ``python -m graph serve`` processes with stdout and stderr kept apart;
the key is made by ``python -m graph create-key``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests import ws_client as ws
from tests.databases import REDIS_URL, redis_unreachable, require
from tests.procs import ROOT, SETTINGS_ENV

WAIT = 60.0
RUNNING = re.compile(r"Uvicorn running on http://([\d.]+):(\d+)")
NAMED = "query OpenTickets($n: Int!) { tickets(first: $n) { totalCount } }"
OPEN = 'mutation OpenTicket { createTicket(input: {subject: "Printer on fire"}) { id } }'


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "graph", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def lines(path: Path) -> list[dict]:
    """Every line of ``path``, each parsed as one JSON object (or the test fails naming it)."""
    parsed = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            pytest.fail(f"{path.name} line {number} is not JSON: {line!r}")
        assert isinstance(record, dict), f"{path.name} line {number} is not an object: {line!r}"
        assert {"time", "level", "logger", "message"} <= record.keys(), record
        parsed.append(record)
    return parsed


@pytest.mark.parametrize("workers", [1, 2])
async def test_every_line_is_json_one_per_request_and_no_key_in_any(workers: int, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS_ENV and not k.startswith("OTEL_")}
    env["PYTHONUNBUFFERED"] = "1"
    database = f"sqlite+aiosqlite:///{tmp_path / 'logs.db'}"
    broker = "memory://"
    if workers > 1:
        require(redis_unreachable(), "Redis")
        broker = f"{REDIS_URL}?channel=support_graph_test_{uuid.uuid4().hex[:12]}"
    made = run("create-key", "--tenant", "acme", "--actor", "agent:robin", "--database-url", database, env=env)
    assert made.returncode == 0, made.stderr
    key = made.stdout.split()[-1]
    assert key.startswith("sgk_")
    stdout, stderr = tmp_path / "stdout.log", tmp_path / "stderr.log"
    command = [
        sys.executable, "-m", "graph", "serve", "--log-format", "json", "--port", "0", "--workers", str(workers),
        "--database-url", database, "--broker-url", broker,
    ]  # fmt: skip
    with stdout.open("wb") as out_file, stderr.open("wb") as err_file:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out_file, stderr=err_file, start_new_session=True)
    try:
        url = await asyncio.to_thread(_address, process, stderr)
        with_key = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            sent = [
                await http.post("/graphql", json={"query": NAMED, "variables": {"n": 3}}, headers=with_key),
                await http.post("/graphql", json={"query": OPEN}, headers=with_key),
                await http.get("/graphql", params={"query": NAMED, "variables": '{"n": 1}'}, headers=with_key),
                await http.post("/graphql", json={"query": "query Broken { nope }"}, headers=with_key),
                await http.post("/graphql", json={"query": NAMED}, headers={"Authorization": f"Bearer {key}x"}),
            ]
            probes = [await http.get("/healthz"), await http.get("/metrics")]
        assert [r.status_code for r in sent] == [200, 200, 200, 200, 401]
        async with ws.connect(url, payload={"authorization": f"Bearer {key}"}) as connection:  # uvicorn's lines
            answer = await (await connection.subscribe(NAMED, {"n": 2})).next()
            assert answer["tickets"]["totalCount"] == 1
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)

    out, err = lines(stdout), lines(stderr)
    for path in (stdout, stderr):
        text = path.read_text()
        assert key not in text and key[4:] not in text and "Bearer" not in text
    assert any(r["logger"].startswith("uvicorn") and "startup complete" in r["message"] for r in err)
    if workers > 1:  # the supervisor's own lines
        assert any("parent process" in r["message"] for r in err), [r["message"] for r in err]

    requests = [r for r in out if r["logger"] == "support_graph.requests" and r["path"] != "/readyz"]  # ours
    assert [r["path"] for r in requests] == ["/graphql"] * len(sent) + ["/healthz", "/metrics"]
    assert len(requests) == len(sent) + len(probes)  # one line each, and only ours (no access lines)
    named, opened, by_get, broken, refused = requests[: len(sent)]
    expected = {
        "level": "INFO", "method": "POST", "path": "/graphql", "status": 200, "operation_type": "query",
        "operation_name": "OpenTickets", "tenant": "acme", "actor": "agent:robin", "error_codes": [],
    }  # fmt: skip
    assert {field: named.get(field) for field in expected} == expected
    assert set(named) == {"time", "logger", "message", "duration_ms", "request_id", *expected}
    assert named["duration_ms"] > 0 and named["request_id"]
    assert (opened["operation_type"], opened["operation_name"]) == ("mutation", "OpenTicket")
    assert (by_get["method"], by_get["operation_name"], by_get["path"]) == ("GET", "OpenTickets", "/graphql")
    assert (broken["operation_name"], broken["error_codes"]) == ("Broken", ["BAD_USER_INPUT"])
    assert (refused["status"], refused["error_codes"], refused["tenant"]) == (401, ["UNAUTHENTICATED"], None)


def _address(process: subprocess.Popen, stderr: Path) -> str:
    """Where the server listens (its "Uvicorn running on" line), once it answers /readyz."""
    deadline = time.monotonic() + WAIT
    url = ""
    while True:
        assert process.poll() is None, f"serve exited: {stderr.read_text()[-3000:]}"
        if not url and (found := RUNNING.search(stderr.read_text())):
            url = f"http://{found.group(1)}:{found.group(2)}"
        if url:
            try:
                if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
        assert time.monotonic() < deadline, f"serve not ready: {stderr.read_text()[-3000:]}"
        time.sleep(0.1)
