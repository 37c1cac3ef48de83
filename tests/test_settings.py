"""Settings from the environment, and what ``support-graph serve`` makes of them: a bad value is
one line naming the variable and exit code 2; the proxies named are believed by uvicorn too;
a connection that dawdles over its request headers is closed.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from graph.server.settings import Settings, SettingsError, from_environment
from graph.validation import Limits
from tests.procs import Serve

ROOT = Path(__file__).resolve().parent.parent
SUPPORT_GRAPH = Path(sys.executable).with_name("support-graph")
#: every variable the settings read; cleared so the machine's environment does not leak in
VARIABLES = (
    "DATABASE_URL", "BROKER_URL", "HOST", "PORT", "WORKERS", "REQUIRE_AUTH", "LIVE_POLL_SECONDS", "FAST_PATH",
    "MIGRATE_ON_START", "KEEP_ALIVE_SECONDS", "MAX_SUBSCRIPTIONS_PER_CONNECTION", "FORWARDED_ALLOW_IPS",
    "HEADER_TIMEOUT_SECONDS", "ADDRESS_RATE_PER_MINUTE", "ADDRESS_RATE_BURST", "GRAPHIQL",
    *(f"LIMIT_{name.upper()}" for name in Limits.__dataclass_fields__),
)  # fmt: skip


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_the_defaults(env: pytest.MonkeyPatch):
    settings = Settings()
    assert (settings.database_url, settings.broker_url) == ("sqlite+aiosqlite:///./support-graph.db", "memory://")
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 8000, 1)
    assert (settings.require_auth, settings.fast_path, settings.migrate) == (False, True, True)
    assert (settings.live_poll_seconds, settings.keep_alive_seconds) == (10.0, 15.0)
    assert settings.max_subscriptions_per_connection == 50
    assert settings.limits == Limits()
    assert settings.forwarded_allow_ips is None
    assert settings.address_rate == (10 * Limits().rate_per_minute, 10 * Limits().rate_burst)


def test_the_environment(env: pytest.MonkeyPatch):
    values = {
        "DATABASE_URL": "postgresql+asyncpg://db/x", "BROKER_URL": "redis://r:6379/0", "HOST": "0.0.0.0",
        "PORT": "9000", "WORKERS": "4", "REQUIRE_AUTH": "yes", "LIVE_POLL_SECONDS": "2.5", "FAST_PATH": "false",
        "MIGRATE_ON_START": "false", "KEEP_ALIVE_SECONDS": "5", "MAX_SUBSCRIPTIONS_PER_CONNECTION": "7",
        "FORWARDED_ALLOW_IPS": "10.0.0.0/8, 127.0.0.1", "HEADER_TIMEOUT_SECONDS": "3",
        "LIMIT_MAX_DEPTH": "15", "LIMIT_RATE_BURST": "9", "ADDRESS_RATE_BURST": "11",
    }  # fmt: skip
    for name, value in values.items():
        env.setenv(name, value)
    settings = Settings()
    assert (settings.database_url, settings.broker_url, settings.host) == ("postgresql+asyncpg://db/x",
                                                                           "redis://r:6379/0", "0.0.0.0")  # fmt: skip
    assert (settings.port, settings.workers, settings.require_auth) == (9000, 4, True)
    assert (settings.live_poll_seconds, settings.fast_path, settings.migrate) == (2.5, False, False)
    assert (settings.keep_alive_seconds, settings.max_subscriptions_per_connection) == (5.0, 7)
    assert settings.forwarded_allow_ips == "10.0.0.0/8, 127.0.0.1"
    assert settings.header_timeout_seconds == 3.0
    assert settings.limits == Limits(max_depth=15, rate_burst=9)
    assert settings.address_rate == (10 * Limits().rate_per_minute, 11)


def test_values_given_directly_win_over_the_environment(env: pytest.MonkeyPatch):
    env.setenv("DATABASE_URL", "sqlite+aiosqlite:///elsewhere.db")
    env.setenv("LIMIT_MAX_DEPTH", "15")
    env.setenv("MIGRATE_ON_START", "false")
    settings = Settings(database_url="sqlite+aiosqlite:///here.db", limits=Limits(max_depth=4), migrate=True)
    assert (settings.database_url, settings.limits, settings.migrate) == (
        "sqlite+aiosqlite:///here.db", Limits(max_depth=4), True,
    )  # fmt: skip


def test_an_empty_variable_is_an_unset_one(env: pytest.MonkeyPatch):
    env.setenv("PORT", "")
    env.setenv("REQUIRE_AUTH", "")
    assert (Settings().port, Settings().require_auth) == (8000, False)


BAD = {
    "PORT=abc": ("PORT", "abc"),
    "PORT=70000": ("PORT", "70000"),
    "WORKERS=-1": ("WORKERS", "-1"),
    "LIMIT_MAX_DEPTH=x": ("LIMIT_MAX_DEPTH", "x"),
    "LIMIT_RATE_BURST=0": ("LIMIT_RATE_BURST", "0"),
    "REQUIRE_AUTH=maybe": ("REQUIRE_AUTH", "maybe"),
    "MIGRATE_ON_START=perhaps": ("MIGRATE_ON_START", "perhaps"),
    "FORWARDED_ALLOW_IPS=proxy.local": ("FORWARDED_ALLOW_IPS", "proxy.local"),
    "HEADER_TIMEOUT_SECONDS=-3": ("HEADER_TIMEOUT_SECONDS", "-3"),
}


@pytest.mark.parametrize(("name", "value"), BAD.values(), ids=BAD)
def test_a_bad_value_is_one_line_naming_the_variable(env: pytest.MonkeyPatch, name: str, value: str):
    env.setenv(name, value)
    with pytest.raises(SettingsError) as raised:
        from_environment()
    message = str(raised.value)
    assert name in message and value in message, message
    assert "\n" not in message


def serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real ``support-graph serve``, told nothing by the caller's environment."""
    clean = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    return subprocess.run(
        [str(SUPPORT_GRAPH), "serve", *args], cwd=ROOT, env={**clean, **(env or {})},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


#: through the real command (each run starts Python afresh: a few suffice)
BAD_FOR_SERVE = {k: BAD[k] for k in ("PORT=abc", "WORKERS=-1", "LIMIT_MAX_DEPTH=x", "FORWARDED_ALLOW_IPS=proxy.local")}


@pytest.mark.parametrize(("name", "value"), BAD_FOR_SERVE.values(), ids=BAD_FOR_SERVE)
def test_serve_refuses_a_bad_variable_in_one_line_with_exit_code_2(tmp_path: Path, name: str, value: str):
    database = f"sqlite+aiosqlite:///{tmp_path / 'never.db'}"
    done = serve("--database-url", database, env={name: value})
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and name in lines[0] and value in lines[0], done.stderr
    assert lines[0].startswith("support-graph: ")
    assert not (tmp_path / "never.db").exists(), "it went on to create the database"


@pytest.mark.parametrize(
    ("flags", "name"), [(("--workers", "-1"), "WORKERS"), (("--forwarded-allow-ips", "10.0.0.0/33"), "FORWARDED")]
)
def test_serve_refuses_a_bad_flag_the_same_way(tmp_path: Path, flags: tuple[str, ...], name: str):
    done = serve("--database-url", f"sqlite+aiosqlite:///{tmp_path / 'never.db'}", *flags)
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert name in done.stderr


# --- a served process --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    """``serve`` behind a proxy at 127.0.0.1, with headers due within one second."""
    database = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('served') / 'served.db'}"
    env = {"FORWARDED_ALLOW_IPS": "127.0.0.1", "HEADER_TIMEOUT_SECONDS": "1"}
    process = Serve(database, "memory://", name="settings", env=env).start()
    yield process
    process.cleanup()


def connect(served: Serve) -> socket.socket:
    host, port = served.url.removeprefix("http://").split(":")
    connection = socket.create_connection((host, int(port)), timeout=30)
    connection.settimeout(30)  # a bound: the server closes it long before
    return connection


def test_a_connection_that_dawdles_over_its_headers_is_closed(served: Serve):
    with connect(served) as slow:
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        assert slow.recv(1024) == b"", "the server kept a half-sent request open"
    with connect(served) as silent:
        assert silent.recv(1024) == b"", "the server kept a silent connection open"


def test_a_request_whose_headers_arrive_is_answered_and_kept_alive(served: Serve):
    with connect(served) as prompt:
        for _ in range(2):
            prompt.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            answer = b""
            while b'{"status":"ok"}' not in answer:
                chunk = prompt.recv(4096)
                assert chunk, f"closed after {answer!r}"
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 200"), answer


def logged(process: Serve, marker: str) -> str:
    """The access-log line of the request carrying ``marker`` (waited for, within a bound)."""
    deadline = time.monotonic() + 30
    while not (lines := [line for line in process.log().splitlines() if marker in line]):
        assert time.monotonic() < deadline, process.log()[-2000:]
        time.sleep(0.05)
    return lines[0]


def test_uvicorn_logs_the_forwarded_client_of_a_trusted_proxy(served: Serve):
    marker = f"/healthz?probe={uuid.uuid4().hex}"
    assert httpx.get(served.url + marker, headers={"X-Forwarded-For": "203.0.113.77"}).status_code == 200
    line = logged(served, marker)
    assert "203.0.113.77" in line, line


def test_without_proxies_x_forwarded_for_is_not_believed(tmp_path: Path):
    database = f"sqlite+aiosqlite:///{tmp_path / 'plain.db'}"
    process = Serve(database, "memory://", name="plain").start()
    try:
        marker = f"/healthz?probe={uuid.uuid4().hex}"
        assert httpx.get(process.url + marker, headers={"X-Forwarded-For": "203.0.113.77"}).status_code == 200
        line = logged(process, marker)
        assert "203.0.113.77" not in line and "127.0.0.1" in line, line
    finally:
        process.cleanup()
