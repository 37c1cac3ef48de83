"""The Alembic migrations build exactly the schema the models declare, on every database."""

import asyncio

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
                        MigrationContext.configure(sync, opts={"compare_type": True}), SQLModel.metadata
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
