"""Fixtures: one real server per database per test session (SQLite, and PostgreSQL)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from graph.limits import Limits
from graph.settings import Settings
from tests.databases import create_postgres_database, drop_postgres_database, postgres_unreachable
from tests.live import LiveServer

IN_CI = os.environ.get("CI", "").lower() == "true"
#: the shared server serves hundreds of requests a second from one address: rate limits are
#: tested on servers of their own
UNTHROTTLED = Limits(rate_per_minute=10**9, rate_burst=10**9)


@pytest.fixture(scope="session")
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh database of the kind the test is parametrised with."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'support-graph.db'}"
        return
    reason = postgres_unreachable()
    if reason:
        if IN_CI:
            pytest.fail(f"CI must run the PostgreSQL suite: {reason}")
        pytest.skip(reason)
    url = create_postgres_database()
    yield url
    drop_postgres_database(url)


@pytest.fixture(scope="session")
def server(database_url: str) -> Iterator[LiveServer]:
    """A running server on its own database, shared by the session's tests."""
    live = LiveServer(Settings(database_url=database_url, limits=UNTHROTTLED)).start()
    yield live
    live.stop()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database_url" in metafunc.fixturenames:
        metafunc.parametrize("database_url", ["sqlite", "postgresql"], indirect=True, scope="session")
