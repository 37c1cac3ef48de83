"""Lists as SQL: ``where`` → WHERE, ``orderBy`` → ORDER BY, keyset cursors, lazy ``totalCount``.

``where`` arrives as plain dicts: ``{"status": {"eq": "OPEN"}, "or_": [...]}``, with operator
keys ``eq ne in_ nin gt gte lt lte is_null contains has_any`` and the combinators ``and_``,
``or_``, ``not_``. Relations filter by id under their API name (``organization``).
"""

from __future__ import annotations

import base64
import binascii
import operator
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import orjson
from sqlalchemy import Boolean, String, Text, and_, case, cast, exists, false, func, literal, not_, or_, select, true
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import Column
from sqlalchemy.sql import ColumnElement, Select
from sqlalchemy.sql.expression import ColumnClause, literal_column
from sqlalchemy.sql.expression import column as sql_column

from models.base import TableClass
from models.db.engine import Database
from models.db.plain import as_entity
from resolvers.errors import BadInput
from resolvers.where_parts import where_parts

DEFAULT_PAGE = 20
MAX_PAGE = 100
#: the most values one ``in``/``nin``/``hasAny`` list, and one whole ``where``, may hold: far
#: below the drivers' limits on bound parameters (asyncpg 32,767; SQLite 32,766)
MAX_LIST_VALUES = 1_000
MAX_WHERE_VALUES = 5_000

K = TypeVar("K", bound=TableClass)


@dataclass
class Page:
    """One page of a connection."""

    rows: list[Any]
    cursors: list[str]
    has_next: bool
    has_previous: bool
    count: Callable[[], Awaitable[int]]


def page_size(first: int | None, last: int | None) -> tuple[int, bool]:
    """How many rows to return and whether counting from the end; checks the bounds."""
    if first is not None and last is not None:
        raise BadInput("Pass first or last, not both")
    size = first if last is None else last
    if size is None:
        return DEFAULT_PAGE, False
    if not 0 <= size <= MAX_PAGE:
        name = "first" if last is None else "last"
        raise BadInput(f"{name} must be between 0 and {MAX_PAGE}", argument=name)
    return size, last is not None


# --- filters -----------------------------------------------------------------------------------


def field_column(kind: type[TableClass], name: str) -> Column[Any]:
    columns = kind.__table__.columns
    if name in columns:
        return columns[name]
    if f"{name}_id" in columns:
        return columns[f"{name}_id"]
    raise BadInput(f"Cannot filter {kind.__name__} by {name!r}")


def compile_where(kind: type[TableClass], where: dict[str, Any] | None, dialect: str) -> ColumnElement[bool]:
    """The SQL condition for a ``where`` document (``true()`` when empty); a list over
    ``MAX_LIST_VALUES`` or a document over ``MAX_WHERE_VALUES`` values is ``BadInput``."""
    check_size(where)
    return _compile_where(kind, where, dialect)


def check_size(where: dict[str, Any] | None) -> None:
    """Refuse a ``where`` too large to send as one statement."""
    total = 0
    for part in where_parts(where):
        for name, spec in part:
            if name in ("and_", "or_"):
                total += len(spec)
            elif name != "not_":
                for op, value in spec.items():
                    if isinstance(value, list | tuple | set) and len(value) > MAX_LIST_VALUES:
                        raise BadInput(
                            f"where.{_api_name(name)}.{_api_name(op)} takes at most {MAX_LIST_VALUES} values "
                            f"(got {len(value)})", argument="where", field=_api_name(name),
                        )  # fmt: skip
                    total += len(value) if isinstance(value, list | tuple | set) else 1
        if total > MAX_WHERE_VALUES:
            raise BadInput(f"where holds more than {MAX_WHERE_VALUES} values and conditions", argument="where")


def _api_name(name: str) -> str:
    """``created_at`` → ``createdAt``, ``in_`` → ``in``: the name the client wrote."""
    head, *rest = name.rstrip("_").split("_")
    return head + "".join(part.title() for part in rest)


def _compile_where(kind: type[TableClass], where: dict[str, Any] | None, dialect: str) -> ColumnElement[bool]:
    if not where:
        return true()
    parts: list[ColumnElement[bool]] = []
    for name, spec in where.items():
        if spec is None:
            continue
        if name == "and_":
            parts.extend(_compile_where(kind, w, dialect) for w in spec)
        elif name == "or_":
            parts.append(or_(*(_compile_where(kind, w, dialect) for w in spec)) if spec else false())
        elif name == "not_":
            # NULL-safe: rows where the condition is unknown (a null field) are "not" it
            parts.append(not_(func.coalesce(_compile_where(kind, spec, dialect), false(), type_=Boolean)))
        else:
            column = field_column(kind, name)
            parts.extend(_operator(column, op, value, dialect) for op, value in spec.items())
    return and_(true(), *parts)


_COMPARISONS = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}


def _operator(column: Column[Any], op: str, value: Any, dialect: str) -> ColumnElement[bool]:
    nullable = column.nullable
    if op == "is_null":
        return column.is_(None) if value else column.is_not(None)
    if value is None:
        raise BadInput(f"Operator {op} needs a value; use isNull to match a missing {column.name}")
    if any(isinstance(v, str) and "\x00" in v for v in (value if isinstance(value, list) else [value])):
        raise BadInput("Filter values must not contain NUL characters")
    if op == "eq":
        equal: ColumnElement[bool] = column == value  # Any matches both of Column.__eq__'s overloads
        return equal
    if op == "ne":
        return or_(column != value, column.is_(None)) if nullable else column != value
    if op == "in_":
        return column.in_(value)
    if op == "nin":
        return or_(column.not_in(value), column.is_(None)) if nullable else column.not_in(value)
    if op in _COMPARISONS:
        compared: ColumnElement[bool] = _COMPARISONS[op](column, value)  # typeshed's operator.gt returns Any
        return compared
    if op == "contains":
        return func.lower(column).contains(value.lower(), autoescape=True)
    if op == "has_any":
        if not value:
            return false()
        if dialect == "postgresql":
            return column.op("?|", is_comparison=True)(cast(postgresql.array(value), postgresql.ARRAY(Text)))
        element: ColumnClause[Any] = sql_column("value")
        return exists(select(literal(1)).select_from(func.json_each(column)).where(element.in_(value)))
    raise BadInput(f"Unknown operator {op!r}")


# --- order and cursors -------------------------------------------------------------------------


def sort_expression(kind: type[TableClass], name: str) -> ColumnElement[Any]:
    """A NULL-free expression to sort by; enums sort in their declared order (LOW < URGENT)."""
    column = kind.__table__.columns[name]
    enum = column.info.get("enum")
    if enum is not None:
        return case({m: i for i, m in enumerate(enum.__members__, start=1)}, value=column, else_=0)
    if column.nullable:
        fallback = "" if isinstance(column.type, String) else 0
        return func.coalesce(column, fallback)
    return column


def encode_cursor(values: Sequence[Any]) -> str:
    raw = orjson.dumps([v.isoformat() if isinstance(v, datetime) else v for v in values])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, keys: list[tuple[ColumnElement[Any], bool]]) -> list[Any]:
    try:
        values = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise BadInput("Malformed cursor") from None
    if not isinstance(values, list) or len(values) != len(keys):
        raise BadInput("This cursor belongs to another ordering")
    decoded = []
    for value, (expression, _) in zip(values, keys):
        try:
            python_type = expression.type.python_type
        except NotImplementedError:
            python_type = object
        if python_type is datetime and isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                raise BadInput("Malformed cursor") from None
        ok = (
            value is not None
            and (python_type is object or isinstance(value, python_type)
                 or (python_type is float and isinstance(value, int)))
        )  # fmt: skip
        if not ok:
            raise BadInput("Malformed cursor")
        decoded.append(value)
    return decoded


def _after(keys: list[tuple[ColumnElement[Any], bool]], values: list[Any]) -> ColumnElement[bool]:
    """Rows strictly after ``values`` in the order ``keys`` (lexicographic keyset)."""
    alternatives = []
    for i, (expression, descending) in enumerate(keys):
        equal = [k == v for (k, _), v in zip(keys[:i], values[:i])]
        beyond = expression < values[i] if descending else expression > values[i]
        alternatives.append(and_(*equal, beyond))
    return or_(*alternatives)


# --- the query ---------------------------------------------------------------------------------


def order_keys(kind: type[TableClass], order: Sequence[tuple[str, bool]] = ()) -> list[tuple[ColumnElement[Any], bool]]:
    """The sort keys of a list: ``order`` (``[(column, descending)]``), then id to break ties.

    Without an order, lists are oldest first (events: commit order), or in the table's own
    ``list_order`` (policies: by position).
    """
    default = "seq" if hasattr(kind, "seq") else getattr(kind, "list_order", "created_at")
    keys = [(sort_expression(kind, name), desc) for name, desc in (order or [(default, False)])]
    keys.append((kind.__table__.columns["id"], keys[-1][1] if order else False))
    return keys


def list_condition(
    kind: type[TableClass], *, tenant: Any, dialect: str, where: dict[str, Any] | None = None,
    scope: dict[str, Any] | None = None, include_deleted: bool = False,
) -> ColumnElement[bool]:  # fmt: skip
    """Which rows of ``kind`` a list holds, before paging (``tenant`` may be a bind parameter)."""
    table = kind.__table__
    condition = and_(table.c.tenant == tenant, compile_where(kind, where, dialect))
    for name, value in (scope or {}).items():
        condition = and_(condition, table.columns[name] == value)
    if hasattr(kind, "deleted_at") and not include_deleted:
        condition = and_(condition, table.c.deleted_at.is_(None))
    return condition


def page_statement(
    condition: ColumnElement[bool], keys: list[tuple[ColumnElement[Any], bool]], selected: Sequence[Any], *,
    size: int, from_end: bool, after: Sequence[Any] | None = None, before: Sequence[Any] | None = None,
) -> Select[*tuple[Any, ...]]:  # fmt: skip
    """One page: ``selected``, then the sort keys labelled ``_k0…`` (for cursors), one row more
    than ``size`` (to tell whether there is a next page). ``after`` and ``before`` are the
    decoded cursor values (or bind parameters standing for them)."""
    if after is not None:
        condition = and_(condition, _after(keys, list(after)))
    if before is not None:
        condition = and_(condition, _after([(k, not d) for k, d in keys], list(before)))
    walk = [(k, not d) for k, d in keys] if from_end else keys
    labels = [k.label(f"_k{i}") for i, (k, _) in enumerate(keys)]
    return (
        select(*selected, *labels)
        .where(condition)
        .order_by(*(k.desc() if d else k.asc() for k, d in walk))
        .limit(page_limit(size))
    )


def page_limit(size: int) -> ColumnElement[int]:
    """``size + 1`` written into the statement, not bound: for ``LIMIT $1`` PostgreSQL cannot
    tell how many rows a plan kept for every execution would read, judges it dearer than one
    planned for the value at hand and plans the statement anew each time (on the 50-ticket page,
    planning took longer than running); with the number in the text it keeps one plan."""
    return literal_column(str(int(size) + 1))


def count_statement(kind: type[TableClass], condition: ColumnElement[bool]) -> Select[int]:
    return select(func.count()).select_from(kind).where(condition)


async def find(
    db: Database,
    kind: type[TableClass],
    *,
    tenant: str,
    where: dict[str, Any] | None = None,
    order: Sequence[tuple[str, bool]] = (),
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
    include_deleted: bool = False,
    scope: dict[str, Any] | None = None,
) -> Page:
    """A page of ``kind`` in ``tenant``; ``order`` is ``[(column, descending)]``, id breaks ties."""
    size, from_end = page_size(first, last)
    condition = list_condition(
        kind, tenant=tenant, dialect=db.dialect, where=where, scope=scope, include_deleted=include_deleted
    )
    keys = order_keys(kind, order)
    columns = list(kind.__table__.columns)
    statement = page_statement(
        condition, keys, columns, size=size, from_end=from_end,
        after=None if after is None else decode_cursor(after, keys),
        before=None if before is None else decode_cursor(before, keys),
    )  # fmt: skip
    async with db.reading() as session:
        result = list((await session.execute(statement)).all())

    async def count() -> int:
        async with db.reading() as session:
            return (await session.execute(count_statement(kind, condition))).scalar_one()

    return page_of(kind, result, size, count, from_end=from_end, after=after, before=before)


def page_of(
    kind: type[TableClass], result: list[Any], size: int, count: Callable[[], Awaitable[int]], *,
    from_end: bool = False, after: str | None = None, before: str | None = None,
) -> Page:  # fmt: skip
    """The page that a ``page_statement`` over all of ``kind``'s columns answered with: up to
    ``size + 1`` rows (one more tells there is a next page), each the columns then the sort keys."""
    more = len(result) > size
    result = result[:size]
    if from_end:
        result.reverse()
    names = [c.key for c in kind.__table__.columns]
    width = len(names)
    return Page(
        rows=[as_entity(kind, dict(zip(names, r))) for r in result],
        cursors=[encode_cursor(list(r[width:])) for r in result],
        has_next=more if not from_end else before is not None,
        has_previous=more if from_end else after is not None,
        count=count,
    )


async def get(db: Database, kind: type[K], *, tenant: str, id_: str, include_deleted: bool = True) -> K | None:
    """One entity of ``tenant`` by id, or None."""
    table = kind.__table__
    condition = and_(table.c.id == id_, table.c.tenant == tenant)
    if not include_deleted and hasattr(kind, "deleted_at"):
        condition = and_(condition, table.c.deleted_at.is_(None))
    async with db.reading() as session:
        row = (await session.execute(select(*table.columns).where(condition))).first()
    return None if row is None else as_entity(kind, row._asdict())


# --- the same filters, on one entity in memory ---------------------------------------------------
# Live streams filter the state *after each event*, which is not a row in the table any more.
# ``matches`` mirrors ``compile_where`` operator for operator.


def matches(kind: type[TableClass], where: dict[str, Any] | None, entity: Any) -> bool:
    """Whether ``entity`` satisfies ``where``, with the semantics of ``compile_where``."""
    for name, spec in (where or {}).items():
        if spec is None:
            continue
        if name == "and_":
            ok = all(matches(kind, w, entity) for w in spec)
        elif name == "or_":
            ok = any(matches(kind, w, entity) for w in spec)
        elif name == "not_":
            ok = not matches(kind, spec, entity)
        else:
            column = field_column(kind, name)
            value = getattr(entity, column.name)
            ok = all(_holds(op, value, operand, bool(column.nullable)) for op, operand in spec.items())
        if not ok:
            return False
    return True


def _holds(op: str, value: Any, operand: Any, nullable: bool) -> bool:
    if op == "is_null":
        return (value is None) == bool(operand)
    if operand is None:
        raise BadInput(f"Operator {op} needs a value; use isNull to match a missing value")
    if op == "ne":
        return value != operand or (nullable and value is None)
    if op == "nin":
        return value not in operand or (nullable and value is None)
    if value is None:
        return False
    if op == "eq":
        return bool(value == operand)
    if op == "in_":
        return value in operand
    if op in _COMPARISONS:
        return bool(_COMPARISONS[op](value, operand))
    if op == "contains":
        return operand.lower() in value.lower()
    if op == "has_any":
        return any(tag in value for tag in operand)
    raise BadInput(f"Unknown operator {op!r}")
