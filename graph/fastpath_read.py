"""Running a graph.fastpath plan: one plain read (models.db.plain), level by level — each level
of relations, lists and connections one statement per kind or field for all the rows of the
level above, never one per row."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, bindparam, select
from sqlalchemy.sql import Select

from graph import fastpath_pages as pages
from graph.fastpath_plan import Arguments, Connection, Decline, Node, Paging, Plan, Row, joins
from graph.schema import schema as full_schema
from graph.validation import limit_errors
from models.db.engine import Database
from models.db.plain import Compiled, PlainReads, Read, as_entity, ids_value, in_ids
from models.entities import Subscription
from models.ids import type_of
from resolvers import query
from resolvers.errors import DomainError
from resolvers.loaders import pick_current_subscription

#: the Python type a value of each GraphQL argument type must have
TYPES = {"first": int, "last": int, "after": str, "before": str, "includeDeleted": bool, "public": bool, "id": str}
#: arguments that must not be null (``includeDeleted`` defaults to false when its variable is absent)
NON_NULL = {"includeDeleted", "id"}


async def run(plan: Plan, variables: dict[str, Any], db: Database, tenant: str) -> dict[str, Any] | None:
    """The ``data`` of the plan's answer, or None where the full path must answer (an error)."""
    if any(variables.get(name) is None for name in plan.required):
        return None
    pagings: list[Paging] = []
    for connection in plan.connections:
        paging = _paging(connection, variables, db.dialect, db.plain)
        if paging is None:
            return None
        pagings.append(paging)
    if plan.limits is not None and limit_errors(full_schema._schema, plan.document, plan.limits, variables):
        return None
    plain = db.plain
    try:
        if plan.connection is not None:
            return await plain.run(_root_list(plan, plan.connection, pagings, plain, tenant))
        given = _given(plan.arguments, variables)
        if given is None:
            return None
        return await plain.run(_root_one(plan, given["id"], pagings, plain, tenant))
    except Decline:
        return None


def _given(arguments: Arguments, variables: dict[str, Any]) -> dict[str, Any] | None:
    """The arguments' values, or None where one is not of its type (or null where it must not be)."""
    given: dict[str, Any] = {}
    for name, (how, value) in arguments.items():
        if how == "variable":
            if name == "includeDeleted" and value not in variables:
                continue  # its default
            value = variables.get(value)
        if value is None and name in NON_NULL:
            return None
        if value is not None and type(value) is not TYPES[name]:
            return None
        given[name] = value
    return given


def _paging(connection: Connection, variables: dict[str, Any], dialect: str, plain: PlainReads) -> Paging | None:
    given = _given(connection.arguments, variables)
    if given is None:
        return None
    try:
        size, from_end = query.page_size(given.get("first"), given.get("last"))
        after, before = (given.get(k) for k in ("after", "before"))
        keys = connection.keys
        values: dict[str, Any] = {}
        for name, text in (("after", after), ("before", before)):
            if text is not None:
                values.update({f"{name}{i}": v for i, v in enumerate(query.decode_cursor(text, keys))})
    except DomainError:
        return None
    if any(isinstance(v, str) and "\x00" in v for v in values.values()):
        return None  # PostgreSQL refuses the statement; the full path tells the error
    include_deleted = bool(given.get("includeDeleted"))
    shape = (dialect, size, from_end, after is not None, before is not None, include_deleted, given.get("public"))
    return Paging(size, from_end, after, before, values, pages.statements(connection, plain, shape), shape)


def _root_list(
    plan: Plan, connection: Connection, pagings: list[Paging], plain: PlainReads, tenant: str
) -> Read[dict[str, Any]]:
    paging = pagings[connection.index]
    page = yield from pages.root_page(connection, paging, tenant)
    count = (yield from pages.root_count(paging, tenant)) if connection.counted else 0
    (result,) = yield from _assemble(connection, paging, [page], [count], pagings, plain, tenant)
    return {plan.key: result}


def _root_one(plan: Plan, id_: str, pagings: list[Paging], plain: PlainReads, tenant: str) -> Read[dict[str, Any]]:
    """One entity by id, as ``graph.queries.fetch`` finds it: null for an id of another type, a
    missing or a soft-deleted row."""
    assert plan.node is not None
    if type_of(id_) != plan.kind.type_name:
        return {plan.key: None}
    statement = plan.by_id.get(plain.dialect.name)
    if statement is None:
        columns = tuple(dict.fromkeys([*plan.node.columns, "deleted_at"]))
        statement = _by_id_statement(plain, plan.kind, columns, one=True, joined=joins([plan.node]))
        plan.by_id[plain.dialect.name] = statement
    found = yield statement, {"tenant": tenant, "id": id_}
    if not found or found[0]["deleted_at"] is not None:
        return {plan.key: None}
    (item,) = yield from _build(plan.node, found, pagings, plain, tenant)
    return {plan.key: item}


def _assemble(
    connection: Connection, paging: Paging, found: Sequence[tuple[list[Row], bool]], counts: Sequence[int],
    pagings: list[Paging], plain: PlainReads, tenant: str,
) -> Read[list[Row]]:  # fmt: skip
    """The connection objects of pages (one per parent), their nodes built for all pages at once."""
    rows = [row for page, _ in found for row in page]
    width = len(connection.keys)
    cursors = [pages.cursor(row, width) for row in rows] if connection.cursors else []
    built: dict[int, list[Row | None]] = {}  # id(node) → an object per row
    for _, part, detail in connection.parts:
        for node in [detail] if part == "nodes" else [n for _, what, n in detail] if part == "edges" else []:
            if isinstance(node, Node) and id(node) not in built:
                built[id(node)] = yield from _build(node, rows, pagings, plain, tenant)
    results: list[Row] = []
    start = 0
    for (page, more), count in zip(found, counts):
        end = start + len(page)
        page_cursors = cursors[start:end]
        result: Row = {}
        for key, part, detail in connection.parts:
            if part == "totalCount":
                result[key] = count
            elif part == "typename":
                result[key] = detail
            elif part == "nodes":
                result[key] = built[id(detail)][start:end]
            elif part == "edges":
                edges: list[Row] = [{} for _ in page]
                for edge_key, what, node in detail:
                    for i, edge in enumerate(edges):
                        if what == "cursor":
                            edge[edge_key] = page_cursors[i]
                        elif what == "typename":
                            edge[edge_key] = node
                        else:
                            edge[edge_key] = built[id(node)][start + i]
                result[key] = edges
            else:
                info = {
                    "hasNextPage": more if not paging.from_end else paging.before is not None,
                    "hasPreviousPage": more if paging.from_end else paging.after is not None,
                    "startCursor": page_cursors[0] if page_cursors else None,
                    "endCursor": page_cursors[-1] if page_cursors else None, "__typename": "PageInfo",
                }  # fmt: skip
                result[key] = {k: info[name] for k, name in detail}
        results.append(result)
        start = end
    return results


def _build(
    node: Node, rows: Sequence[Row | None], pagings: list[Paging], plain: PlainReads, tenant: str
) -> Read[list[Row | None]]:
    """Response objects for ``rows`` (None for a missing relation), each relation, list and
    connection read for all of them at once (a generator of statements, like the read it is part of)."""
    objects: list[Row | None] = []
    for row in rows:
        if row is None:
            objects.append(None)
            continue
        item: Row = dict.fromkeys(node.order)  # the document's key order, whatever is filled first
        for key, column, convert in node.scalars:
            value = row[column]
            item[key] = convert(value) if convert is not None else value
        for key in node.typename:
            item[key] = node.kind.type_name
        objects.append(item)
    live = [row for row in rows if row is not None]
    yield from _relations(node, rows, objects, pagings, plain, tenant)
    ids = list(dict.fromkeys(row["id"] for row in live))
    for key, column, child in node.lists:
        found = yield from _children(child.kind, column, child.columns, ids, plain, tenant)
        grouped: dict[str, list[Row]] = defaultdict(list)
        for row in found:
            grouped[row[column]].append(row)
        flat = [child_row for row in live for child_row in grouped.get(row["id"], [])]
        built = iter((yield from _build(child, flat, pagings, plain, tenant)))
        for row, obj in zip(rows, objects):
            if obj is not None and row is not None:
                obj[key] = [next(built) for _ in grouped.get(row["id"], [])]
    for key, child in node.current:
        targets = yield from _current(child, rows, plain, tenant)
        for obj, value in zip(objects, (yield from _build(child, targets, pagings, plain, tenant))):
            if obj is not None:
                obj[key] = value
    for key, connection in node.pages:
        paging = pagings[connection.index]
        if not ids:
            continue
        found_pages = yield from pages.nested_pages(connection, paging, ids, plain, tenant)
        counts = (yield from pages.nested_counts(connection, paging, ids, plain, tenant)) if connection.counted else {}
        made = yield from _assemble(
            connection, paging, [found_pages[i] for i in ids], [counts.get(i, 0) for i in ids], pagings, plain, tenant
        )
        by_parent = dict(zip(ids, made))
        for row, obj in zip(rows, objects):
            if obj is not None and row is not None:
                obj[key] = by_parent[row["id"]]
    return objects


def _relations(
    node: Node, rows: Sequence[Row | None], objects: list[Row | None], pagings: list[Paging], plain: PlainReads,
    tenant: str,
) -> Read[None]:  # fmt: skip
    """The to-one relations: read with the rows (``fastpath_pages.with_relations``), else batched
    per kind (soft-deleted targets too, as ``Loaders.by_id``)."""
    joined = {column: pages.relation_rows(rows, column, child.columns) for _, column, child in node.relations}
    by_kind: dict[Any, tuple[set[str], dict[str, None]]] = {}
    for _, column, child in node.relations:
        if joined[column] is not None:
            continue
        ids, columns = by_kind.setdefault(child.kind, (set(), {}))
        ids.update(ref for row in rows if row is not None and (ref := row[column]) is not None)
        columns.update(dict.fromkeys(child.columns))
    fetched: dict[Any, dict[str, Row]] = {}
    for kind, (ids, columns) in by_kind.items():
        if not ids:
            fetched[kind] = {}
            continue
        statement = _by_id_statement(plain, kind, tuple(columns))
        found = yield statement, {"tenant": tenant, "ids": ids_value(ids, plain.dialect.name)}
        fetched[kind] = {row["id"]: row for row in found}
    for key, column, child in node.relations:
        targets = joined[column]
        if targets is None:
            targets = [
                None if row is None or row[column] is None else fetched[child.kind].get(row[column]) for row in rows
            ]  # fmt: skip
        if not node.kind.__table__.columns[column].nullable and any(
            row is not None and target is None for row, target in zip(rows, targets)
        ):
            raise Decline  # a required relation to a row that is not there: the full path's error
        for obj, value in zip(objects, (yield from _build(child, targets, pagings, plain, tenant))):
            if obj is not None:
                obj[key] = value


def _current(child: Node, rows: Sequence[Row | None], plain: PlainReads, tenant: str) -> Read[list[Row | None]]:
    """Each row's organization's current subscription (``Loaders.current_subscription``)."""
    organizations = list(dict.fromkeys(r["organization_id"] for r in rows if r is not None and r["organization_id"]))
    columns = [*child.columns, "organization_id", "status", "started_at"]
    found = yield from _children(Subscription, "organization_id", columns, organizations, plain, tenant)
    grouped: dict[str, list[Row]] = defaultdict(list)
    for row in found:
        grouped[row["organization_id"]].append(row)
    current: dict[str, Row | None] = {}
    for organization, candidates in grouped.items():
        by_id = {row["id"]: row for row in candidates}
        picked = pick_current_subscription([as_entity(Subscription, row) for row in candidates])
        current[organization] = None if picked is None else by_id[picked.id]
    return [None if row is None else current.get(row["organization_id"]) for row in rows]


def _children(
    kind: Any, column: str, columns: Sequence[str], parents: list[str], plain: PlainReads, tenant: str
) -> Read[list[Row]]:
    """The live ``kind`` rows whose ``column`` is one of ``parents``, oldest first (``Loaders.many_by``)."""
    if not parents:
        return []
    wanted = tuple(dict.fromkeys([*columns, column]))

    def build() -> Select[*tuple[Any, ...]]:
        table = kind.__table__
        condition = and_(table.c.tenant == bindparam("tenant"), in_ids(table.c[column], plain.dialect.name))
        return (
            select(*(table.c[c] for c in wanted))
            .where(condition, table.c.deleted_at.is_(None))
            .order_by(table.c.created_at, table.c.id)
        )  # fmt: skip

    statement = plain.compiled(("fastpath children", kind, column, wanted), build)
    found: list[Row] = yield statement, {"tenant": tenant, "ids": ids_value(parents, plain.dialect.name)}
    return found


def _by_id_statement(
    plain: PlainReads, kind: Any, columns: tuple[str, ...], *, one: bool = False,
    joined: dict[str, tuple[Any, tuple[str, ...]]] | None = None,
) -> Compiled:  # fmt: skip
    def build() -> Select[*tuple[Any, ...]]:
        table = kind.__table__.columns
        match = table["id"] == bindparam("id") if one else in_ids(table["id"], plain.dialect.name)
        statement = select(*(table[c] for c in columns)).where(and_(table["tenant"] == bindparam("tenant"), match))
        return pages.with_relations(statement, kind, joined or {})

    key = ("fastpath by id", kind, columns, one, tuple(sorted((joined or {}).items())))
    return plain.compiled(key, build)
