"""How a unit of work reaches its database: one small interface, two ways.

``DriverLink`` runs the unit's statements straight on the driver, each compiled once: on
asyncpg (``models.db.writes``), where reads before the unit's first write run outside any
transaction and a unit whose only write is its closing statement sends that one statement and
nothing else; on SQLite's connection (``models.db.sqlite_writes``), in the one-writer
transaction ``Database.writing`` would give. ``SessionLink`` runs them on a session's
connection: SQLite without the one-hop adapter (``ONE_HOP_SQLITE=false``).

Both take SQLAlchemy statements and give rows as dicts; ``writes=True`` marks a statement that
writes or locks, which must run in the unit's transaction.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from models.db.engine import Database
from models.db.plain import Compiled
from models.db.sqlite_writes import SqliteWriteConnection
from models.db.writes import WriteConnection, prepare

#: compiled statements kept per process, by dialect, the statement's identity and the columns
#: written (the statement is kept with it, so its identity is not reused); cleared when full
PREPARED_LIMIT = 2048
_prepared: dict[tuple[str, int, tuple[str, ...] | None], tuple[Any, Compiled]] = {}


class Link(Protocol):
    async def rows(self, statement: Any, values: dict[str, Any], *, writes: bool = False) -> list[dict[str, Any]]:
        """The rows of one statement."""
        ...

    async def write(self, statement: Any, rows: list[dict[str, Any]], *, events: int = 0) -> None:
        """An INSERT of these rows (``events``: into the event log), or an UPDATE of one
        (``WHERE id = :row_id``)."""
        ...

    async def claim(self, statement: Any) -> list[tuple[Any, ...]]:
        """The rows a statement that writes returns (its values bound in it)."""
        ...

    async def last(self, statement: Any, values: dict[str, Any], *, events: int) -> list[Any]:
        """Run the unit's closing statement (it inserts ``events`` events) and commit; the first
        column of its rows."""
        ...

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...

    async def close(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


async def open_link(db: Database) -> Link:
    """The link of a new unit of work on ``db``."""
    connection = db.unit_connection()
    if connection is None:
        return await SessionLink.open(db)
    return DriverLink(db, await connection.open())


class DriverLink:
    """Statements straight on the driver (see the module docstring)."""

    def __init__(self, db: Database, connection: WriteConnection | SqliteWriteConnection) -> None:
        self._dialect = db.engine.dialect
        self._connection = connection

    def _prepared(self, statement: Any, keys: tuple[str, ...] | None = None) -> Compiled:
        key = (self._dialect.name, id(statement), keys)
        found = _prepared.get(key)
        if found is None:
            if len(_prepared) >= PREPARED_LIMIT:
                _prepared.clear()
            found = _prepared[key] = (statement, prepare(statement, self._dialect, keys))
        return found[1]

    async def rows(self, statement: Any, values: dict[str, Any], *, writes: bool = False) -> list[dict[str, Any]]:
        prepared = self._prepared(statement)
        return prepared.rows(await self._connection.fetch(prepared, values, writes=writes))

    async def write(self, statement: Any, rows: list[dict[str, Any]], *, events: int = 0) -> None:
        prepared = self._prepared(statement, tuple(rows[0]))
        self._connection.events += events
        if len(rows) == 1:
            await self._connection.fetch(prepared, rows[0], writes=True)
        else:
            await self._connection.write_many(prepared, rows)

    async def claim(self, statement: Any) -> list[tuple[Any, ...]]:
        prepared = prepare(statement, self._dialect)  # its values are in it: not kept
        return [tuple(row.values()) for row in prepared.rows(await self._connection.fetch(prepared, {}, writes=True))]

    async def last(self, statement: Any, values: dict[str, Any], *, events: int) -> list[Any]:
        prepared, connection = self._prepared(statement), self._connection
        if connection.begun:
            rows = await connection.fetch(prepared, values, writes=True)
            connection.events += events
            await self.commit()
        else:  # the unit's only write: alone, committed as it ends
            rows = await connection.alone(prepared, values, events=events)
        return [row[0] for row in rows]

    async def commit(self) -> None:
        await self._connection.commit()

    async def rollback(self) -> None:
        await self._connection.rollback()

    async def close(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._connection.close()


class SessionLink:
    """SQLite without the one-hop adapter: statements on the connection of a session in
    ``Database.writing``'s transaction.
    Nothing is put in the session itself: a unit knows exactly what each verb changed."""

    def __init__(self, writing: AbstractAsyncContextManager[AsyncSession], session: AsyncSession, connection: Any):
        self._writing, self.session, self._connection = writing, session, connection

    @classmethod
    async def open(cls, db: Database) -> SessionLink:
        writing = db.writing()
        session = await writing.__aenter__()
        return cls(writing, session, await session.connection())

    async def rows(self, statement: Any, values: dict[str, Any], *, writes: bool = False) -> list[dict[str, Any]]:
        return [row._asdict() for row in await self._connection.execute(statement, values)]

    async def write(self, statement: Any, rows: list[dict[str, Any]], *, events: int = 0) -> None:
        await self._connection.execute(statement, rows if len(rows) > 1 else rows[0])

    async def claim(self, statement: Any) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in await self._connection.execute(statement)]

    async def last(self, statement: Any, values: dict[str, Any], *, events: int) -> list[Any]:
        found = list((await self._connection.execute(statement, values)).scalars())
        await self.commit()
        return found

    async def commit(self) -> None:
        await self.session.commit()

    async def rollback(self) -> None:
        await self.session.rollback()

    async def close(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._writing.__aexit__(exc_type, exc, tb)
