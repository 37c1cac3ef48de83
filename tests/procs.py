"""Real ``python -m graph serve`` processes for tests and benchmarks.

Each process binds port 0 (the kernel picks a free port, no race) and its address is read from
uvicorn's "Uvicorn running on …" line in the process's log file (at log levels quieter than
"info" that line is not printed, so a free port is picked beforehand instead). ``Serve.start()`` returns once
``/readyz`` answers 200; ``Serve.stop()`` ends the process (SIGTERM, then SIGKILL) and is safe to
call twice. Every wait is bounded; a process that dies or never gets ready fails with its log.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
#: Seconds a process may take to start (schema creation included) or to stop.
START_WAIT = 60.0
STOP_WAIT = 15.0
_RUNNING = re.compile(r"Uvicorn running on http://([\d.]+):(\d+)")
#: What the server reads from the environment: the process is told by flags, nothing leaks in.
SETTINGS_ENV = ("DATABASE_URL", "BROKER_URL", "HOST", "PORT", "WORKERS", "REQUIRE_AUTH")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_group(process: subprocess.Popen, wait: float = STOP_WAIT) -> None:
    """End a process started in a group of its own, and its children: SIGTERM, then SIGKILL
    after ``wait`` seconds."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(wait)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(wait)


class ServeFailed(RuntimeError):
    """The process exited or never became ready; the message carries its log."""


class Serve:
    """One ``serve`` process on 127.0.0.1."""

    def __init__(self, database_url: str, broker_url: str, *, name: str = "serve", env: dict | None = None,
                 log_level: str = "info") -> None:  # fmt: skip
        """``log_level`` "info" (or more) lets the process pick its port and print it; quieter
        levels (no access log: for benchmarks) get a free port chosen here."""
        self.database_url, self.broker_url, self.name = database_url, broker_url, name
        inherited = {k: v for k, v in os.environ.items() if k not in SETTINGS_ENV}
        self.env = {**inherited, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.log_level = log_level
        self.process: subprocess.Popen | None = None
        self.url = ""
        self.log_path = Path(tempfile.mkstemp(prefix=f"support-graph-{name}-", suffix=".log")[1])

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, wait: float = START_WAIT) -> Serve:
        port = 0 if self.log_level in ("info", "debug", "trace") else free_port()
        if port:
            self.url = f"http://127.0.0.1:{port}"
        command = [
            sys.executable, "-m", "graph", "serve", "--host", "127.0.0.1", "--port", str(port),
            "--database-url", self.database_url, "--broker-url", self.broker_url, "--log-level", self.log_level,
        ]  # fmt: skip
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + wait
        try:
            while not self.url:
                self._alive_or_fail()
                if found := _RUNNING.search(self.log()):
                    self.url = f"http://{found.group(1)}:{found.group(2)}"
                    break
                self._before(deadline, "print its address")
                time.sleep(0.05)
            while True:
                self._alive_or_fail()
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200:
                        return self
                self._before(deadline, "answer /readyz with 200")
                time.sleep(0.05)
        except BaseException:
            self.stop()
            raise

    def _alive_or_fail(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise ServeFailed(f"{self.name} exited with {self.process.returncode}:\n{self.log()[-4000:]}")

    def _before(self, deadline: float, what: str) -> None:
        if time.monotonic() > deadline:
            raise ServeFailed(f"{self.name} did not {what} in time:\n{self.log()[-4000:]}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def readyz(self) -> tuple[int, dict]:
        """``/readyz``'s status code and body."""
        response = httpx.get(f"{self.url}/readyz", timeout=10)
        return response.status_code, response.json()

    def stop(self) -> None:
        if self.process is not None:
            stop_group(self.process)

    def cleanup(self) -> None:
        """Stop, and remove the log file."""
        self.stop()
        with contextlib.suppress(FileNotFoundError):
            self.log_path.unlink()


@contextlib.contextmanager
def serving(database_url: str, broker_url: str, *names: str, env: dict | None = None,
            log_level: str = "info") -> Iterator[list[Serve]]:  # fmt: skip
    """Processes named ``names`` on one database and broker, started one after the other (the first
    creates the schema before the next starts); all of them ended on exit, whatever happens."""
    processes: list[Serve] = []
    try:
        for name in names:
            process = Serve(database_url, broker_url, name=name, env=env, log_level=log_level)
            processes.append(process)
            process.start()
        yield processes
    finally:
        for process in processes:
            process.stop()
        for process in processes:
            process.cleanup()
