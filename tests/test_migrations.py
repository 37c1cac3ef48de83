"""The Alembic migrations build exactly the schema the models declare, on every database."""

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from models.db import migrate
from models.db.engine import Database
from tests.databases import fresh_database


def schema_differences(url: str) -> list:
    async def go() -> list:
        db = Database(url)
        try:
            await migrate.upgrade(db)
            assert await migrate.current(db) == migrate.head()
            async with db.engine.connect() as connection:
                return await connection.run_sync(
                    lambda sync: compare_metadata(
                        MigrationContext.configure(sync, opts={"compare_type": True, "include_name": migrate.declared}),
                        SQLModel.metadata,
                    )
                )
        finally:
            await db.dispose()

    return asyncio.run(go())


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_migrations_produce_the_models_schema(kind, tmp_path):
    with fresh_database(kind, tmp_path) as url:
        assert schema_differences(url) == []


def test_an_empty_database_has_no_revision(tmp_path):
    async def go() -> str | None:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
        try:
            return await migrate.current(db)
        finally:
            await db.dispose()

    assert asyncio.run(go()) is None


HOSTS = 4


def at_head_with_the_models_schema(url: str) -> None:
    assert schema_differences(url) == []  # upgrades again (a no-op) and compares


def test_hosts_migrating_at_once_take_turns_on_postgresql(tmp_path):
    """Several hosts starting together on a fresh PostgreSQL database, each upgrading on start:
    the advisory lock makes them take turns, every upgrade succeeds, the schema is at head."""
    with fresh_database("postgresql", tmp_path) as url:

        async def go() -> list:
            hosts = [Database(url) for _ in range(HOSTS)]
            try:
                return await asyncio.gather(*(migrate.upgrade(db) for db in hosts), return_exceptions=True)
            finally:
                for db in hosts:
                    await db.dispose()

        assert asyncio.run(go()) == [None] * HOSTS
        at_head_with_the_models_schema(url)


def test_host_processes_migrating_at_once(tmp_path):
    """The same with a process per host, as a deployment starts them."""
    with fresh_database("postgresql", tmp_path) as url:
        program = (
            "import asyncio, sys\n"
            "from models.db import migrate\n"
            "from models.db.engine import Database\n"
            "async def go():\n"
            "    db = Database(sys.argv[1])\n"
            "    try:\n"
            "        await migrate.upgrade(db)\n"
            "    finally:\n"
            "        await db.dispose()\n"
            "asyncio.run(go())\n"
        )
        root = Path(__file__).parent.parent
        hosts = [
            subprocess.Popen([sys.executable, "-c", program, url], cwd=root, stderr=subprocess.PIPE, text=True)
            for _ in range(HOSTS)
        ]
        failures = [error for host in hosts if (error := host.communicate(timeout=120)[1]) and host.returncode]
        assert failures == []
        assert all(host.returncode == 0 for host in hosts)
        at_head_with_the_models_schema(url)


def test_upgrading_sqlite_twice_is_a_no_op(tmp_path):
    """SQLite takes no lock (one host), and an upgrade at head changes nothing."""
    with fresh_database("sqlite", tmp_path) as url:
        at_head_with_the_models_schema(url)
        at_head_with_the_models_schema(url)
