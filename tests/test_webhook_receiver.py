"""A real HTTP receiver for the webhook tests (and the benchmark): ``http.server`` in a thread.

Each path keeps what reached it (headers, body, when) and answers by a plan: a list of statuses
used one per request (then 200), or a delay before answering. Also a test that the receiver
itself behaves, so this module is collected like the others.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Plan:
    statuses: list[int] = field(default_factory=list)
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


class Receiver:
    """``url(path)`` to send to; ``received(path)`` what came; ``plan(path, …)`` how to answer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._received: dict[str, list[Received]] = defaultdict(list)
        self._plans: dict[str, Plan] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                path = self.path
                with receiver._lock:
                    receiver._received[path].append(
                        Received(path, {k.lower(): v for k, v in self.headers.items()}, body, time.time())
                    )
                    plan = receiver._plans.get(path, Plan())
                    status = plan.statuses.pop(0) if plan.statuses else 200
                if plan.delay:
                    time.sleep(plan.delay)
                answer = b"x" * 5000 if status == 299 else b"ok"
                with contextlib.suppress(OSError):
                    self.send_response(status)
                    for name, value in plan.headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="webhook-receiver", daemon=True)

    def start(self) -> Receiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def plan(self, path: str, statuses: list[int] | None = None, delay: float = 0.0,
             headers: dict[str, str] | None = None) -> None:  # fmt: skip
        with self._lock:
            self._plans[path] = Plan(list(statuses or []), delay, dict(headers or {}))

    def received(self, path: str) -> list[Received]:
        with self._lock:
            return list(self._received[path])

    def wait_for(self, path: str, count: int, timeout: float = 20.0) -> list[Received]:
        """At least ``count`` requests on ``path``; fails after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.received(path)
            if len(got) >= count:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"{path}: {len(got)} of {count} requests after {timeout} s")
            time.sleep(0.02)


def test_the_receiver_answers_by_its_plan():
    receiver = Receiver().start()
    try:
        receiver.plan("/p", [500])
        first = httpx.post(receiver.url("/p"), content=b"a")
        second = httpx.post(receiver.url("/p"), content=b"b")
        assert (first.status_code, second.status_code) == (500, 200)
        assert [r.body for r in receiver.received("/p")] == [b"a", b"b"]
    finally:
        receiver.stop()
