"""Fixtures: one real server per database per test session (SQLite, and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from graph.server.settings import Settings
from graph.validation import Limits
from tests.databases import fresh_database
from tests.live import LiveServer

#: the shared server serves hundreds of requests a second from one address: rate limits are
#: tested on servers of their own
UNTHROTTLED = Limits(rate_per_minute=10**9, rate_burst=10**9)


@pytest.fixture(scope="session")
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh database of the kind the test is parametrised with."""
    with fresh_database(request.param, tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture(scope="session")
def server(database_url: str) -> Iterator[LiveServer]:
    """A running server on its own database, shared by the session's tests."""
    live = LiveServer(Settings(database_url=database_url, limits=UNTHROTTLED)).start()
    yield live
    live.stop()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database_url" in metafunc.fixturenames:
        metafunc.parametrize("database_url", ["sqlite", "postgresql"], indirect=True, scope="session")
