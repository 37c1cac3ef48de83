"""The statements a unit of work runs, built once per table (or per shape) and reused.

``closing`` is PostgreSQL's last statement of a unit: the rows the unit wrote (held back until
then, see ``resolvers.unit``), the bump of the tenant's sequence counter and the unit's events,
in one round trip. The counter is bumped only once every row is written: its lock stays the
last one the transaction takes (PostgreSQL runs a data-modifying ``WITH`` part when the query
first reads from it, and the counter's part reads every row part to its end first). The
counter's part comes first in the text (``RECURSIVE`` lets it name the parts after it): what
``pg_stat_activity`` shows of a statement (its first kilobyte) says which row it waits for.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import cache, lru_cache, partial
from typing import Any

from pydantic_core import PydanticUndefined
from sqlalchemy import BigInteger, UniqueConstraint, bindparam, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import TextClause

from models.base import Entity, TableClass
from models.event import Event, TenantSequence

#: the execution option of a statement that inserts events other than through ``insert(Event)``: how many
EVENTS_INSERTED = "support_graph_events_inserted"
#: PostgreSQL takes at most 32,767 parameters a statement; a unit with more goes statement by statement
MAX_PARAMETERS = 30_000


@dataclass(frozen=True)
class Statements:
    """The statements a unit runs on one table, built once: only their parameters change."""

    read: Any  # the live entity by id and tenant
    lock: Any  # the same, row-locked
    exists: Any  # its id, if live
    insert: Any
    update: Any  # SET the columns given as parameters WHERE id = :row_id


@cache
def statements(kind: type[TableClass]) -> Statements:
    table = kind.__table__
    if "deleted_at" not in table.columns:  # the event log: written, never read back here
        return Statements(None, None, None, insert(table), None)
    live = (table.c.id == bindparam("id"), table.c.tenant == bindparam("tenant"), table.c.deleted_at.is_(None))
    read = select(*table.columns).where(*live)
    return Statements(
        read, read.with_for_update(), select(table.c.id).where(*live), insert(table),
        update(table).where(table.c.id == bindparam("row_id")),
    )  # fmt: skip


@cache
def find_all_statement(kind: type[Entity], columns: tuple[str, ...]) -> Any:
    table = kind.__table__
    equal = (table.c[name] == bindparam(f"eq_{name}") for name in columns)
    return (
        select(*table.columns)
        .where(table.c.tenant == bindparam("tenant"), table.c.deleted_at.is_(None), *equal)
        .order_by(table.c.created_at, table.c.id)
    )


@cache
def unique_checks(kind: type[Entity]) -> tuple[tuple[str, Any], ...]:
    """(column, statement) for each column unique per tenant: the statement finds another live or
    deleted entity of ``:tenant`` holding ``:value`` there, other than ``:own_id``."""
    table = kind.__table__
    checks = []
    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint):
            (column,) = [c for c in constraint.columns if c.name != "tenant"]
            taken = (
                table.c.tenant == bindparam("tenant"),
                column == bindparam("value"),
                table.c.id != bindparam("own_id"),
            )
            checks.append((column.name, select(table.c.id).where(*taken)))
    return tuple(checks)


@cache
def columns(kind: type[TableClass]) -> tuple[str, ...]:
    return tuple(kind.__table__.columns.keys())


@cache
def reserve_statement(dialect: str) -> Any:
    """Advance the tenant's counter by ``:count``, returning its new last value."""
    table = TenantSequence.__table__
    return (
        (postgresql if dialect == "postgresql" else sqlite).insert(table)
        .values(tenant=bindparam("tenant"), last_seq=bindparam("count"))
        .on_conflict_do_update(index_elements=["tenant"], set_={"last_seq": table.c.last_seq + bindparam("count")})
        .returning(table.c.last_seq)
    )  # fmt: skip


def defaults(kind: type[Entity]) -> dict[str, Any]:
    """The declared defaults of a new entity's fields (factories called afresh)."""
    fixed, factories = _declared_defaults(kind)
    return fixed | {name: factory() for name, factory in factories}


@cache
def _declared_defaults(kind: type[Entity]) -> tuple[dict[str, Any], tuple[tuple[str, Any], ...]]:
    fixed: dict[str, Any] = {}
    factories: list[tuple[str, Any]] = []
    for name, f in kind.model_fields.items():
        if f.default_factory is not None:
            factories.append((name, f.default_factory))
        elif isinstance(f.default, (list, dict, set)):  # each entity gets its own copy, as pydantic does
            factories.append((name, partial(copy.deepcopy, f.default)))
        elif f.default is not PydanticUndefined:
            fixed[name] = f.default
    return fixed, tuple(factories)


# --- PostgreSQL: the closing statement -------------------------------------------------------------

#: one part of the rows a unit held back: ("insert", table, rows) or ("update", table, columns set)
Shape = tuple[str, str, int | tuple[str, ...]]


def closing_parameters(parts: list[tuple[str, type[TableClass], list[dict[str, Any]]]], events: int) -> int:
    """How many parameters ``closing`` would take for these parts and events."""
    written = sum(len(rows) * len(rows[0]) for _, _, rows in parts)
    return written + events * len(columns(Event)) + 2


@lru_cache(maxsize=512)
def closing(shape: tuple[Shape, ...], events: int) -> TextClause:
    """``WITH`` the held-back rows, the counter bumped by ``:count`` for ``:tenant``, ``INSERT``
    the ``events`` events numbered from it ``RETURNING seq``. Parameters: ``w{i}_{r}_{column}``
    (insert part ``i``, row ``r``), ``w{i}_{column}`` and ``w{i}_row_id`` (update part ``i``),
    ``e{r}_{column}`` (event ``r``, without ``seq``)."""
    tables = TenantSequence.metadata.tables
    parts, binds = [], []
    for i, (op, name, detail) in enumerate(shape):
        table = tables[name]
        if op == "insert":
            assert isinstance(detail, int)
            names = tuple(table.columns.keys())
            rows = []
            for r in range(detail):
                rows.append("(" + ", ".join(f":w{i}_{r}_{c}" for c in names) + ")")
                binds += [bindparam(f"w{i}_{r}_{c}", type_=table.c[c].type) for c in names]
            head = f"INSERT INTO {_quote(name)} ({', '.join(_quote(c) for c in names)}) VALUES {', '.join(rows)}"
        else:
            assert isinstance(detail, tuple)
            sets = ", ".join(f"{_quote(c)} = :w{i}_{c}" for c in detail)
            binds += [bindparam(f"w{i}_{c}", type_=table.c[c].type) for c in detail]
            binds.append(bindparam(f"w{i}_row_id", type_=table.c.id.type))
            head = f"UPDATE {_quote(name)} SET {sets} WHERE id = :w{i}_row_id"
        parts.append(f"w{i} AS ({head} RETURNING 1)")
    written = ", ".join(f"(SELECT count(*) FROM w{i}) AS n{i}" for i in range(len(shape)))
    parts.insert(
        0,
        "s AS (INSERT INTO tenant_sequence (tenant, last_seq) "
        "SELECT CAST(:tenant AS VARCHAR), CAST(:count AS BIGINT)" + (f" FROM {written}" if written else "")
        + " ON CONFLICT (tenant) DO UPDATE SET last_seq = tenant_sequence.last_seq + EXCLUDED.last_seq"
        " RETURNING last_seq)"
    )  # fmt: skip
    binds += [bindparam("tenant", type_=TenantSequence.__table__.c.tenant.type), bindparam("count", type_=BigInteger)]
    event = Event.__table__
    names = columns(Event)
    rows = []
    for r in range(events):
        values = [f"(SELECT last_seq FROM s) - {events - 1 - r}" if c == "seq" else f":e{r}_{c}" for c in names]
        rows.append("(" + ", ".join(values) + ")")
        binds += [bindparam(f"e{r}_{c}", type_=event.c[c].type) for c in names if c != "seq"]
    sql = (
        "WITH RECURSIVE " + ", ".join(parts)
        + f" INSERT INTO event ({', '.join(_quote(c) for c in names)}) VALUES {', '.join(rows)} RETURNING seq"
    )  # fmt: skip
    # says how many events it inserts, for whoever counts them (graph/server/metrics.py)
    return text(sql).bindparams(*binds).execution_options(**{EVENTS_INSERTED: events})


def closing_values(
    parts: list[tuple[str, type[TableClass], list[dict[str, Any]]]], events: list[dict[str, Any]], tenant: str
) -> tuple[tuple[Shape, ...], dict[str, Any]]:
    """The shape of ``closing`` for these parts and events, and its parameters."""
    shape: list[Shape] = []
    values: dict[str, Any] = {"tenant": tenant, "count": len(events)}
    for i, (op, kind, rows) in enumerate(parts):
        if op == "insert":
            shape.append((op, kind.__table__.name, len(rows)))
            for r, row in enumerate(rows):
                values.update({f"w{i}_{r}_{c}": v for c, v in row.items()})
        else:
            (row,) = rows
            shape.append((op, kind.__table__.name, tuple(c for c in row if c != "row_id")))
            values.update({f"w{i}_{c}": v for c, v in row.items()})
    for r, event in enumerate(events):
        values.update({f"e{r}_{c}": v for c, v in event.items() if c != "seq"})
    return tuple(shape), values


def _quote(name: str) -> str:
    """A table or column name as PostgreSQL must read it (``"timestamp"``)."""
    quoted: str = postgresql.dialect().identifier_preparer.quote(name)  # type: ignore[no-untyped-call]
    return quoted
