"""Fixtures: one real server per test session, on a fresh SQLite database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from graph.settings import Settings
from tests.live import LiveServer


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A running server on its own SQLite file, shared by the session's tests."""
    path: Path = tmp_path_factory.mktemp("db") / "support-graph.db"
    live = LiveServer(Settings(database_url=f"sqlite+aiosqlite:///{path}")).start()
    yield live
    live.stop()
