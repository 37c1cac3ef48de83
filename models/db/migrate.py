"""Schema migrations with Alembic: upgrade to head, or tell whether the schema is current.

Several hosts may start at once, each migrating on start: on PostgreSQL an upgrade holds a
session advisory lock (``MIGRATION_LOCK``) on its connection, so the hosts take turns and all
but the first find the schema at head already. SQLite has one host and takes no lock.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, func, select

from models.db.engine import Database

#: the Alembic tree: env.py, script.py.mako and versions/
SCRIPTS = Path(__file__).parent / "migrations"
#: the PostgreSQL advisory lock key of schema upgrades (any fixed 64-bit number; "sg-migr")
MIGRATION_LOCK = 0x73672D6D69677200


#: the full-text index's tables (migrations 0005 and 0009): kept by triggers, not declared as models
SEARCH_INDEX_TABLES = ("ticket_text", "ticket_fts", "ticket_search", "comment_search", "comment_fts")


def declared(name: str | None, type_: str, *_: object) -> bool:
    """Alembic's ``include_name``: compare everything but the full-text index's tables (and
    the FTS5 table's own shadow tables, ``ticket_fts_data`` …)."""
    return not (type_ == "table" and name is not None and name.startswith(SEARCH_INDEX_TABLES))


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def upgrade(db: Database) -> None:
    """Bring the database's schema to the newest revision, one host at a time."""
    locking = db.dialect == "postgresql"
    async with db.engine.connect() as connection:
        if locking:  # held by the session, past the transactions: released below
            await connection.execute(select(func.pg_advisory_lock(MIGRATION_LOCK)))
            await connection.commit()
        try:
            async with connection.begin():
                await connection.run_sync(lambda sync: command.upgrade(alembic_config(sync), "head"))
        finally:
            if locking:
                await connection.execute(select(func.pg_advisory_unlock(MIGRATION_LOCK)))
                await connection.commit()


async def current(db: Database) -> str | None:
    """The database's schema revision (None for an empty database)."""
    async with db.engine.connect() as connection:
        return await connection.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())
