"""Alembic environment: runs on the connection ``models.db.migrate`` hands it, or on the URL of
``alembic -x url=…`` / ``DATABASE_URL`` when Alembic is called directly."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

import models.db.engine  # noqa: F401  (registers every table)
from models.db.engine import DEFAULT_DATABASE_URL, normalise_url
from models.db.migrate import declared

target_metadata = SQLModel.metadata


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=declared,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_online() -> None:
    url = context.get_x_argument(as_dictionary=True).get("url") or os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    engine = create_async_engine(normalise_url(url))
    async with engine.connect() as connection:
        await connection.run_sync(run_on)
        await connection.commit()
    await engine.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    run_on(connection)
else:
    asyncio.run(run_online())
