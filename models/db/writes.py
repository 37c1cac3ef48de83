"""Write transactions straight on asyncpg: PostgreSQL's side of a unit of work (resolvers/unit.py).

Contract.

* Guarantees: a statement runs with exactly the SQL and parameter values ``connection.execute``
  would send (SQLAlchemy compiles it, once per statement and set of columns, and its bind and
  result processors convert the values). Everything run through one ``WriteConnection`` is one
  transaction: committed by ``commit`` or ``last``, or not at all. A statement that writes or
  locks (``writes=True``) opens the transaction first (``BEGIN``); reads before it run on their
  own, as each statement of a READ COMMITTED transaction would see the same committed rows. A
  unit whose only write is its last statement sends that statement alone, which PostgreSQL
  commits as it ends: no ``BEGIN``, no ``COMMIT``, and the locks it takes (the tenant's event
  counter) are held only while it runs, not for a round trip to the server and back.
* Each statement is reported to ``listeners`` before it runs (as plain reads are), run inside
  each of ``watchers(engine).statements``' context managers (a trace span); the events a
  committed transaction inserted are told to ``watchers(engine).committed`` (wired by
  graph/server/spans.py and graph/server/metrics.py).
* A statement the server refused raises as asyncpg raised it, but a constraint violation is
  raised as SQLAlchemy's ``IntegrityError`` (as a session raises it); a connection lost, or
  left mid-operation by a cancelled task, is terminated and dropped from the pool, and a lost
  one raised as SQLAlchemy raises it (``DBAPIError``, ``connection_invalidated``).
* Does not: touch SQLite (models/db/sqlite_writes.py runs its units, with the same ``watchers``),
  or apply SQLAlchemy's events (``before_cursor_execute``, ``commit``) — hence ``watchers``.

Why: SQLAlchemy's session, Core execution and result layers cost more CPU than the SQL of a
write (about 200 µs a statement), and the counter's lock was held across the event loop's
queue between the unit's last statement and its ``COMMIT``: every other writer of the tenant
waited for it.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import Select
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.util import greenlet_spawn

from models.db.plain import Compiled, drop, refused, result_processor


@dataclass
class Watchers:
    """Who watches the writes of one engine (tracing, metrics); see the module docstring."""

    #: each called with a statement's SQL; the context manager it returns is open while it runs
    statements: list[Callable[[str], AbstractContextManager[Any]]] = field(default_factory=list)
    #: called with how many events a transaction inserted, once it committed
    committed: list[Callable[[int], None]] = field(default_factory=list)

    def watching(self, sql: str, listeners: list[Callable[[str], None]]) -> ExitStack:
        """Report a statement to ``listeners`` (before it runs, as plain reads are) and open
        each statement watcher's context for it: the stack to run it in."""
        for listener in listeners:
            listener(sql)
        with ExitStack() as stack:
            for watch in self.statements:
                stack.enter_context(watch(sql))
            return stack.pop_all()

    def tell_committed(self, events: int) -> None:
        """A transaction that inserted ``events`` events committed."""
        if events:
            for tell in self.committed:
                tell(events)


_WATCHERS: weakref.WeakKeyDictionary[Any, Watchers] = weakref.WeakKeyDictionary()


def watchers(engine: Any) -> Watchers:
    """The watchers of the direct writes of ``engine`` (a sync ``Engine``: an ``AsyncEngine``'s
    ``sync_engine``), made on first use."""
    found = _WATCHERS.get(engine)
    if found is None:
        found = _WATCHERS[engine] = Watchers()
    return found


def prepare(statement: Any, dialect: Dialect, keys: tuple[str, ...] | None = None) -> Compiled:
    """``statement`` compiled for ``dialect``; an INSERT or UPDATE for the columns ``keys``
    (every other column of the table left out, defaults included: a unit always gives them)."""
    if keys is None:
        compiled = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    else:
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    names = tuple(compiled.positiontup or ())
    if keys is not None and not set(names) <= set(keys) | {"row_id"}:
        raise ValueError(f"{statement} takes parameters beyond {keys}: {names}")  # a default SQLAlchemy adds
    # an expanded ``IN`` list's values (``id_1_1``, ``id_1_2``…) take the type of its parameter (``id_1``)
    types = [(compiled.binds[n] if n in compiled.binds else compiled.binds[n.rsplit("_", 1)[0]]).type for n in names]
    binds = tuple(t.dialect_impl(dialect).bind_processor(dialect) for t in types)
    if isinstance(statement, Select):
        selected = list(statement.selected_columns)
    elif isinstance(statement, UpdateBase):
        selected = [d["expr"] for d in statement.returning_column_descriptions]
    else:
        selected = []
    columns = tuple(getattr(c, "key", None) or c.name for c in selected)
    results = tuple(result_processor(c.type, dialect) for c in selected)
    return Compiled(compiled.string, compiled, names, binds, columns, results)


class WriteConnection:
    """One pooled asyncpg connection, for one unit of work; see the module docstring."""

    def __init__(self, engine: Any, listeners: list[Callable[[str], None]]) -> None:
        """``engine``: the ``AsyncEngine`` whose pool lends the connection."""
        self.engine = engine
        self.listeners = listeners
        self.watchers = watchers(engine.sync_engine)
        #: whether a transaction is open (``BEGIN`` sent, no ``COMMIT`` nor ``ROLLBACK`` yet)
        self.begun = False
        #: events inserted in the open transaction (counted by the caller), told to the watchers
        #: once it commits
        self.events = 0
        self._pooled: Any = None
        self._driver: Any = None

    async def open(self) -> WriteConnection:
        self._pooled = await greenlet_spawn(self.engine.sync_engine.raw_connection)
        self._driver = self._pooled.driver_connection
        return self

    async def fetch(self, statement: Compiled, values: dict[str, Any], *, writes: bool = False) -> list[Any]:
        """The raw rows of one statement; ``writes``: it writes or locks, in the transaction."""
        if writes and not self.begun:
            await self._run("BEGIN", None)
            self.begun = True
        result: list[Any] = await self._run(statement.sql, statement.parameters(values))
        return result

    async def write_many(self, statement: Compiled, rows: list[dict[str, Any]]) -> None:
        """Run a statement that writes once per row, in the transaction (one round trip)."""
        if not self.begun:
            await self._run("BEGIN", None)
            self.begun = True
        await self._run(statement.sql, [statement.parameters(row) for row in rows], many=True)

    async def alone(self, statement: Compiled, values: dict[str, Any], *, events: int = 0) -> list[Any]:
        """Run a statement that writes (inserting ``events`` events) as a transaction of its own:
        PostgreSQL commits it as it ends. Only when no transaction is open."""
        assert not self.begun, "a statement alone would run inside the open transaction"
        rows: list[Any] = await self._run(statement.sql, statement.parameters(values))
        self.watchers.tell_committed(events)
        return rows

    async def commit(self) -> None:
        if self.begun:
            await self._run("COMMIT", None)
            self.begun = False
            self.watchers.tell_committed(self.events)
        self.events = 0

    async def rollback(self) -> None:
        self.events = 0
        if self.begun and self._driver is not None and not self._driver.is_closed():
            self.begun = False
            await self._run("ROLLBACK", None)
        self.begun = False

    async def close(self) -> None:
        """Back to the pool: idle (a transaction still open is rolled back), or dropped."""
        try:
            if self.begun:
                await self.rollback()
        finally:
            pooled, self._pooled = self._pooled, None
            if pooled is not None:
                await greenlet_spawn(pooled.close)  # back to the pool (or gone, if invalidated)

    async def _run(self, sql: str, parameters: Any, *, many: bool = False) -> Any:
        """One statement on the driver: ``fetch`` with parameters, ``execute`` without (a
        transaction's own statements), ``executemany`` for a list of them."""
        with self.watchers.watching(sql, self.listeners) if parameters is not None else ExitStack():
            try:
                if parameters is None:
                    return await self._driver.execute(sql)
                if many:
                    return await self._driver.executemany(sql, parameters)
                return await self._driver.fetch(sql, *parameters)
            except BaseException as error:
                await self._failed(error, sql, parameters)
                raise

    async def _failed(self, error: BaseException, sql: str, parameters: Any) -> None:
        """Leave the connection usable if the server refused the statement; else drop it. A
        constraint violation is raised as ``IntegrityError``, a lost connection as ``DBAPIError``."""
        if refused(error) and not self._driver.is_closed():
            if str(getattr(error, "sqlstate", "")).startswith("23"):  # integrity_constraint_violation
                raise IntegrityError(sql, parameters, error) from error
            return
        self.begun = False  # whatever the server had open ends with the connection
        await drop(self._pooled, self._driver, error, sql, parameters)
