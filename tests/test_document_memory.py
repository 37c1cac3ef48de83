"""Distinct large documents are not kept: a real ``serve`` process takes 150 documents of about
0.9 MB each, all different, and its resident memory barely grows.

Most are refused at the door for their tokens (after ``prescan``, whose cache kept them); one
in five is valid and answered, on the full path (a filter with a long string) or on the compiled
path (a plain list page after a long comment). Lexing 0.9 MB takes about a second, so answering
all 150 would make a slow test without testing more.

Work per document (prescan, parse, validation, compiled plans) is cached by a digest in bounded
caches that do not keep large documents (graph/documents.py). Caches keyed by the raw text kept
every one of them: 150 × 0.9 MB, several copies each (the text, its parsed string values).
The memory is read from /proc (VmRSS) after a warm-up with documents of the same shape, so the
allocator and the server's own caches have settled before the count starts, and each time after
a full garbage collection in the server: a request's objects form cycles that the collector
frees later (the server collects rarely, see ``tune_garbage_collector``), and what they hold is
garbage, not retention. The server is told to collect by SIGUSR1, through a ``sitecustomize``
only this test's process loads; it answers by writing how many collections it has made. Its
``malloc`` serves every block over 128 kB by ``mmap`` (glibc's default, before it adapts the
threshold to the large blocks it has seen), so a freed document goes back to the system instead
of leaving a hole in the heap that RSS would count.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.procs import Serve

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/PID/status")

DOCUMENTS = 75
SIZE = 900_000
#: every VALID_EVERY-th document is valid and answered; the others are refused for their tokens
VALID_EVERY = 5
#: what 75 documents may add (measured with 150: ~1 MB with bounded caches, >300 MB with caches
#: keyed by the text); generous for allocator noise, far below what keeping even 10 of them costs
GROWTH_LIMIT = 8 * 1024 * 1024


def rss(pid: int) -> int:
    """Resident memory of a process, in bytes."""
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    assert found, status
    return int(found.group(1)) * 1024


def long_string(i: int) -> str:
    """A query (the full Strawberry path: a filter) holding a ~0.9 MB string argument."""
    padding = f"{i:06d}" + "x" * (SIZE - 6)
    return f'{{ tickets(where: {{subject: {{eq: "{padding}"}}}}) {{ totalCount }} }}'


def long_comment(i: int) -> str:
    """A plain list page (the compiled path) after a ~0.9 MB comment: few tokens, all valid."""
    return f"# {i:06d}{'y' * (SIZE - 6)}\n{{ tickets(first: 1) {{ nodes {{ id subject }} }} }}"


def many_tokens(i: int) -> str:
    """Over the token limit (refused by ``prescan``, after 5,001 tokens), then ~0.9 MB of comment."""
    return "{ " + "a " * 6_000 + "}" + f"# {i:06d}" + "z" * (SIZE - 12_010)


#: loaded by the server process only (PYTHONPATH): SIGUSR1 → a full collection, then its count
COLLECT_ON_SIGNAL = """
import gc, os, signal

_done = 0


def _collect(*_):
    global _done
    gc.collect()
    _done += 1
    with open(os.environ["COLLECTED_FILE"] + ".tmp", "w") as out:
        out.write(str(_done))
    os.replace(os.environ["COLLECTED_FILE"] + ".tmp", os.environ["COLLECTED_FILE"])


signal.signal(signal.SIGUSR1, _collect)
"""


class Server:
    def __init__(self, process: Serve, collected: Path) -> None:
        self.process, self.collected, self.collections = process, collected, 0

    def settled_rss(self) -> int:
        """Resident memory after a full garbage collection in the server."""
        self.collections += 1
        os.kill(self.process.pid, signal.SIGUSR1)
        deadline = time.monotonic() + 30
        while not (self.collected.exists() and int(self.collected.read_text() or 0) >= self.collections):
            assert time.monotonic() < deadline, "the server did not collect"
            time.sleep(0.01)
        return rss(self.process.pid)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("memory")
    (folder / "sitecustomize.py").write_text(COLLECT_ON_SIGNAL)
    collected = folder / "collected"
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")])),
           "COLLECTED_FILE": str(collected), "MALLOC_MMAP_THRESHOLD_": str(128 * 1024)}  # fmt: skip
    url = f"sqlite+aiosqlite:///{folder / 'memory.db'}"
    process = Serve(url, "memory://", name="memory", log_level="warning", env=env).start()
    try:
        yield Server(process, collected)
    finally:
        process.cleanup()


def send(client: httpx.Client, query: str) -> dict:
    response = client.post("/graphql", json={"query": query})
    assert response.status_code == 200, response.text[:500]
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def refused(client: httpx.Client, query: str) -> None:
    response = client.post("/graphql", json={"query": query})
    assert response.status_code == 400, response.text[:500]
    assert response.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"


def test_distinct_large_documents_are_not_retained(server: Server):
    with httpx.Client(base_url=server.process.url, timeout=60) as client:
        # warm-up: the same shapes, so code paths, statement caches and the allocator settle
        for i in range(1, 5):
            assert send(client, long_string(-i)) == {"tickets": {"totalCount": 0}}
            assert send(client, long_comment(-i)) == {"tickets": {"nodes": []}}
            refused(client, many_tokens(-i))
        before = server.settled_rss()
        for i in range(DOCUMENTS):
            if i % VALID_EVERY:
                refused(client, many_tokens(i))
            else:
                make = long_string if i % (2 * VALID_EVERY) else long_comment
                send(client, make(i))
            if i % 15 == 14:  # garbage collected as it goes, as a server that collects often would
                server.settled_rss()
        after = server.settled_rss()
    grown = after - before
    print(f"RSS {before / 2**20:.1f} MB → {after / 2**20:.1f} MB after {DOCUMENTS} documents of {SIZE:,} bytes")
    assert grown < GROWTH_LIMIT, f"RSS grew by {grown / 2**20:.1f} MB over {DOCUMENTS} distinct documents"
