"""The pages of graph.fastpath's connections: a root list's page, and a nested connection's pages
for all its parents at once — one statement whatever the number of parents, as the Strawberry
path's ``Loaders.pages`` reads them (resolvers/loaders.py): the rows ``resolvers.query.find``
would return for each parent, ranked within each parent in the list's order (ROW_NUMBER), the
first ``size + 1`` of each kept; one parent alone reads the plain page. ``totalCount`` is one
``GROUP BY`` for all parents. Statements are compiled once per connection, page shape and
dialect, with the tenant, the parents and the cursors' values as bind parameters."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, bindparam
from sqlalchemy.sql import Select

from graph.fastpath_batch import Steps, one
from graph.fastpath_plan import Connection, Paging, Row, joins
from models.db.plain import Compiled, PlainReads, ids_value, in_ids
from resolvers import query
from resolvers.loaders import counts_by_parent, ranked_pages


def statements(connection: Connection, plain: PlainReads, shape: tuple[Any, ...]) -> dict[str, Compiled]:
    """The connection's statements for one page shape (see ``Paging.shape``), compiled once."""
    found = connection.statements.get(shape)
    if found is None:
        found = connection.statements[shape] = _compile(connection, plain, shape)
    return found


def _compile(connection: Connection, plain: PlainReads, shape: tuple[Any, ...]) -> dict[str, Compiled]:
    compiled = _statements(connection, plain, shape)
    if connection.cursors:
        return compiled
    # the sort keys (``_k0…``) are read for cursors only
    return {name: statement.unconverted("_k") for name, statement in compiled.items()}


def _statements(connection: Connection, plain: PlainReads, shape: tuple[Any, ...]) -> dict[str, Compiled]:
    dialect, size, from_end, has_after, has_before, include_deleted, public = shape
    kind, keys = connection.kind, connection.keys
    where = None if public is None else {"public": {"eq": public}}
    condition = query.list_condition(
        kind, tenant=bindparam("tenant"), dialect=dialect, where=where, include_deleted=include_deleted
    )
    cursor = {
        name: [bindparam(f"{name}{i}", type_=key.type) for i, (key, _) in enumerate(keys)]
        for name, present in (("after", has_after), ("before", has_before)) if present
    }  # fmt: skip
    table = kind.__table__.columns
    selected = [table[c] for c in connection.columns]
    if connection.parent is None:
        page = query.page_statement(condition, keys, selected, size=size, from_end=from_end, **cursor)
        page = with_relations(page, kind, joins(connection.nodes))
        return {"page": plain.compile(page), "count": plain.compile(query.count_statement(kind, condition))}
    parent = table[connection.parent]
    one = query.page_statement(
        and_(condition, parent == bindparam("parent")), keys, selected, size=size, from_end=from_end, **cursor
    )
    ranked = ranked_pages(
        and_(condition, in_ids(parent, dialect)), keys, selected, parent, size=size, from_end=from_end, **cursor
    )
    return {
        "one": plain.compile(one), "ranked": plain.compile(ranked),
        "count": plain.compile(counts_by_parent(condition, parent, dialect, single=False)),
        "count one": plain.compile(counts_by_parent(condition, parent, dialect, single=True)),
    }  # fmt: skip


def with_relations(
    statement: Select[*tuple[Any, ...]], kind: Any, joined: dict[str, tuple[Any, tuple[str, ...]]]
) -> Select[*tuple[Any, ...]]:
    """``statement`` (rows of ``kind``) with the to-one relations ``joined`` LEFT JOINed in, their
    columns labelled ``_j_<foreign key>_<column>``: a root's relations come with its rows instead
    of in a statement of their own (a round trip less each). Soft-deleted targets too, as
    ``Loaders.by_id`` reads them; ``relation_rows`` takes them back apart."""
    if not joined:
        return statement
    base = kind.__table__
    source: Any = base
    labelled = []
    for column, (target, columns) in joined.items():
        alias = target.__table__.alias(f"_j_{column}")
        source = source.outerjoin(alias, and_(alias.c.id == base.c[column], alias.c.tenant == base.c.tenant))
        labelled += [alias.c[c].label(f"_j_{column}_{c}") for c in columns]
    return statement.select_from(source).add_columns(*labelled)


def relation_rows(rows: Sequence[Row | None], column: str, columns: list[str]) -> list[Row | None] | None:
    """The targets ``with_relations`` read along with ``rows`` through ``column`` (None for a
    missing one), or None if they were not read that way."""
    prefix = f"_j_{column}_"
    found = f"{prefix}id"
    sample = next((row for row in rows if row is not None), None)
    if sample is None or found not in sample:
        return None
    labels = [(c, f"{prefix}{c}") for c in columns]
    return [None if row is None or row[found] is None else {c: row[label] for c, label in labels} for row in rows]


def root_page(connection: Connection, paging: Paging, tenant: str) -> Steps[tuple[list[Row], bool]]:
    """The rows of a root list's page, in page order, and whether there are more."""
    found = yield from one(paging.statements["page"], {"tenant": tenant, **paging.values})
    return _trim(found, paging)


def root_count(paging: Paging, tenant: str) -> Steps[int]:
    (counted,) = yield from one(paging.statements["count"], {"tenant": tenant})
    return int(next(iter(counted.values())))


def nested_pages(
    connection: Connection, paging: Paging, parents: list[str], plain: PlainReads, tenant: str
) -> Steps[dict[str, tuple[list[Row], bool]]]:
    """Each parent's page (its rows in page order, and whether there are more), by parent id."""
    assert connection.parent is not None
    if len(parents) == 1:
        found = yield from one(paging.statements["one"], {"tenant": tenant, "parent": parents[0], **paging.values})
        return {parents[0]: _trim(found, paging)}
    values = {"tenant": tenant, "ids": ids_value(parents, plain.dialect.name), **paging.values}
    grouped: dict[str, list[Row]] = defaultdict(list)
    for row in (yield from one(paging.statements["ranked"], values)):
        grouped[row[connection.parent]].append(row)
    return {parent: _trim(grouped.get(parent, []), paging) for parent in parents}


def nested_counts(
    connection: Connection, paging: Paging, parents: list[str], plain: PlainReads, tenant: str
) -> Steps[dict[str, int]]:
    """How many rows each parent's list holds, across all pages."""
    single = len(parents) == 1
    values = {"tenant": tenant, "ids": ids_value(parents, plain.dialect.name, single)}
    counted = yield from one(paging.statements["count one" if single else "count"], values)
    assert connection.parent is not None
    found = {row[connection.parent]: int(list(row.values())[1]) for row in counted}
    return {parent: found.get(parent, 0) for parent in parents}


def _trim(rows: list[Row], paging: Paging) -> tuple[list[Row], bool]:
    more = len(rows) > paging.size
    rows = rows[: paging.size]
    if paging.from_end:
        rows.reverse()
    return rows, more


def cursor(row: Row, width: int) -> str:
    """A row's cursor: its sort keys (``_k0…``)."""
    return query.encode_cursor([row[f"_k{i}"] for i in range(width)])
