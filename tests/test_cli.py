"""The command line, as real processes: ``export-schema``, ``seed`` and ``serve``."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from models.enums import ContactStage, DealStage, SubscriptionStatus, TicketStatus

ROOT = Path(__file__).resolve().parent.parent
#: what the CLI reads from the environment; the tests pass flags instead.
SETTINGS_ENV = ("DATABASE_URL", "BROKER_URL", "HOST", "PORT", "WORKERS", "REQUIRE_AUTH")


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in SETTINGS_ENV}


def cli(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run ``python -m graph ARGS`` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "graph", *args],
        cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Served:
    """A ``serve`` process and an HTTP client to it."""

    process: subprocess.Popen
    http: httpx.Client
    log: Path
    returncode: int | None = None

    def data(self, query: str, variables: dict | None = None) -> dict:
        body = self.http.post("/graphql", json={"query": query, "variables": variables or {}}).json()
        assert not body.get("errors"), body["errors"]
        return body["data"]


@contextmanager
def serving(database_url: str, workdir: Path) -> Iterator[Served]:
    """Start ``python -m graph serve`` and wait for /readyz; stop it on exit, whatever happened."""
    port, log = free_port(), workdir / f"serve-{time.monotonic_ns()}.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "graph", "serve", "--port", str(port), "--database-url", database_url,
             "--log-level", "warning"],
            cwd=workdir, env=_env(), stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    served = Served(process, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30), log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"serve exited with {process.returncode}:\n{log.read_text()}")
            try:
                if served.http.get("/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"serve was not ready within 60 s:\n{log.read_text()}")
            time.sleep(0.1)
        yield served
    finally:
        served.http.close()
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # what Ctrl-C does: a graceful shutdown
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        served.returncode = process.returncode


def seed(database_url: str, workdir: Path, *, tickets: int, contacts: int, organizations: int,
         random_seed: int = 7) -> dict[str, int]:  # fmt: skip
    """Run ``seed``; the counts it printed (``9 organizations, 30 contacts, …``)."""
    done = cli(
        "seed", "--tickets", str(tickets), "--contacts", str(contacts), "--organizations", str(organizations),
        "--seed", str(random_seed), "--database-url", database_url, cwd=workdir,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = done.stdout.strip().splitlines()[-1]
    return {kind: int(n) for n, kind in re.findall(r"(\d+) (\w+)", summary)}


def counts_by_state(server: Served) -> dict[str, int]:
    """How many tickets, subscriptions, deals and contacts are in each state."""
    fields = [
        ("tickets", "status", TicketStatus), ("subscriptions", "status", SubscriptionStatus),
        ("deals", "stage", DealStage), ("contacts", "stage", ContactStage),
    ]  # fmt: skip
    query = "{ " + " ".join(
        f"{plural}_{state.value}: {plural}(where: {{{field}: {{eq: {state.value}}}}}) {{ totalCount }}"
        for plural, field, enum in fields for state in enum
    ) + " }"  # fmt: skip
    return {alias: value["totalCount"] for alias, value in server.data(query).items()}


def test_export_schema_prints_the_schema_file(tmp_path: Path) -> None:
    done = cli("export-schema", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (ROOT / "schema.graphql").read_text()


def test_export_schema_federation_prints_the_subgraph_sdl(tmp_path: Path) -> None:
    from graph.schema import export_subgraph_sdl

    done = cli("export-schema", "--federation", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == export_subgraph_sdl()
    assert '@key(fields: "id")' in done.stdout and "type Ticket" in done.stdout


SEEDED = """
query Seeded {
  tickets(first: 100) {
    totalCount
    nodes {
      id version status priority satisfaction resolvedAt closedAt
      requester { id organization { id } }
      assignee { id }
      organization { id tier }
      issues { id }
      events(first: 1) { totalCount }
    }
  }
  organizations { totalCount }
  contacts { totalCount }
  subscriptions { totalCount }
  deals { totalCount }
  issues { totalCount }
  activities { totalCount }
  metrics { totalCount }
  events { totalCount }
  bySeed: events(where: {actor: {eq: "seed"}}) { totalCount }
}
"""


def test_seed_then_serve(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "x.db")
    printed = seed(url, tmp_path, tickets=60, contacts=30, organizations=8)
    assert (printed["tickets"], printed["contacts"]) == (60, 30)
    assert printed["organizations"] >= 8

    with serving(url, tmp_path) as server:
        data = server.data(SEEDED)
    assert server.returncode == 0, server.log.read_text()

    # What the server sees is what the seed said it made, and what was asked for.
    for kind, n in printed.items():
        assert data[kind]["totalCount"] == n, kind
    assert data["tickets"]["totalCount"] == 60
    assert data["contacts"]["totalCount"] == 30
    assert data["organizations"]["totalCount"] >= 8
    assert data["bySeed"]["totalCount"] == data["events"]["totalCount"] > 0

    tickets = data["tickets"]["nodes"]
    assert len(tickets) == 60
    for ticket in tickets:
        assert ticket["requester"] and ticket["organization"], ticket
        assert ticket["requester"]["organization"]["id"] == ticket["organization"]["id"], ticket
        # Every change was a verb with its event: one event per version.
        assert ticket["events"]["totalCount"] == ticket["version"], ticket
        if ticket["status"] in ("RESOLVED", "CLOSED") and ticket["satisfaction"] is not None:
            assert 1 <= ticket["satisfaction"] <= 5
        if ticket["status"] == "RESOLVED":
            assert ticket["resolvedAt"], ticket
        if ticket["status"] == "ESCALATED":
            assert ticket["issues"], f"an escalation raises an engineering issue: {ticket}"
        if ticket["organization"]["tier"] == "ENTERPRISE":
            assert ticket["priority"] in ("HIGH", "URGENT"), ticket

    statuses = {t["status"] for t in tickets}
    assert {"RESOLVED", "ESCALATED", "CLOSED"} <= statuses, statuses
    assert "OPEN" in statuses
    assert any(t["assignee"] for t in tickets) and any(not t["assignee"] for t in tickets)
    assert any(t["satisfaction"] for t in tickets)
    assert any(t["version"] > 3 for t in tickets)


def test_serve_creates_a_fresh_database(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    assert not path.exists()
    with serving(sqlite_url(path), tmp_path) as server:
        assert path.exists()
        data = server.data("{ tickets { totalCount nodes { id } } organizations { totalCount } }")
    assert server.returncode == 0, server.log.read_text()
    assert data == {"tickets": {"totalCount": 0, "nodes": []}, "organizations": {"totalCount": 0}}


def test_seed_is_deterministic(tmp_path: Path) -> None:
    shapes, printed = [], []
    for name in ("first", "second"):
        url = sqlite_url(tmp_path / f"{name}.db")
        printed.append(seed(url, tmp_path, tickets=80, contacts=40, organizations=10, random_seed=11))
        with serving(url, tmp_path) as server:
            shapes.append(counts_by_state(server))
    assert printed[0] == printed[1]
    assert shapes[0] == shapes[1]
    assert sum(n for alias, n in shapes[0].items() if alias.startswith("tickets_")) == 80
    # A real spread of states, not everything in one.
    assert sum(1 for alias, n in shapes[0].items() if alias.startswith("tickets_") and n) >= 4
