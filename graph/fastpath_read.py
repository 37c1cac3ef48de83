"""Running a graph.fastpath plan: one plain read (models.db.plain), level by level — each level
of relations, lists and connections one statement per kind or field for all the rows of the
level above, never one per row; the statements of a level are one step (graph/fastpath_batch.py),
which PostgreSQL gets as one statement."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, bindparam, select
from sqlalchemy.sql import Select

from graph import fastpath_pages as pages
from graph.fastpath_batch import Steps, as_read, gather, one
from graph.fastpath_plan import Arguments, Connection, Decline, Node, Paging, Plan, Row, joins
from graph.schema import schema as full_schema
from graph.validation import limit_errors
from models.db.engine import Database
from models.db.plain import Compiled, PlainReads, as_entity, ids_value, in_ids
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
            steps = _root_list(plan, plan.connection, pagings, plain, tenant)
        else:
            given = _given(plan.arguments, variables)
            if given is None:
                return None
            steps = _root_one(plan, given["id"], pagings, plain, tenant)
        return await plain.run(as_read(steps, plain.dialect.name, plan.batches))
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
) -> Steps[dict[str, Any]]:
    paging = pagings[connection.index]
    reads: list[Steps[Any]] = [pages.root_page(connection, paging, tenant)]
    if connection.counted:
        reads.append(pages.root_count(paging, tenant))
    page, *counted = yield from gather(reads)
    (result,) = yield from _assemble(connection, paging, [page], [counted[0] if counted else 0], pagings, plain, tenant)
    return {plan.key: result}


def _root_one(plan: Plan, id_: str, pagings: list[Paging], plain: PlainReads, tenant: str) -> Steps[dict[str, Any]]:
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
    found = yield from one(statement, {"tenant": tenant, "id": id_})
    if not found or found[0]["deleted_at"] is not None:
        return {plan.key: None}
    (item,) = yield from _build(plan.node, found, pagings, plain, tenant)
    return {plan.key: item}


def _assemble(
    connection: Connection, paging: Paging, found: Sequence[tuple[list[Row], bool]], counts: Sequence[int],
    pagings: list[Paging], plain: PlainReads, tenant: str,
) -> Steps[list[Row]]:  # fmt: skip
    """The connection objects of pages (one per parent), their nodes built for all pages at once."""
    rows = [row for page, _ in found for row in page]
    width = len(connection.keys)
    cursors = [pages.cursor(row, width) for row in rows] if connection.cursors else []
    nodes = list({id(node): node for node in connection.nodes}.values())
    made = yield from gather([_build(node, rows, pagings, plain, tenant) for node in nodes])
    built = {id(node): objects for node, objects in zip(nodes, made)}  # id(node) → an object per row
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
) -> Steps[list[Row | None]]:
    """Response objects for ``rows`` (None for a missing relation); their relations, lists and
    connections are read for all of them at once, side by side (``gather``: one step per level)."""
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
    ids = list(dict.fromkeys(row["id"] for row in live))
    parts: list[Steps[None]] = [_relations(node, rows, objects, pagings, plain, tenant)] if node.relations else []
    parts += [_list(key, column, child, rows, objects, pagings, plain, tenant) for key, column, child in node.lists]
    parts += [_current(key, child, rows, objects, pagings, plain, tenant) for key, child in node.current]
    if ids:
        parts += [_page(key, connection, rows, objects, ids, pagings, plain, tenant) for key, connection in node.pages]
    if parts:
        yield from gather(parts)
    return objects


def _list(
    key: str, column: str, child: Node, rows: Sequence[Row | None], objects: list[Row | None], pagings: list[Paging],
    plain: PlainReads, tenant: str,
) -> Steps[None]:  # fmt: skip
    """``key`` of each object: the live ``child`` rows whose ``column`` holds its row's id."""
    live = [row for row in rows if row is not None]
    ids = list(dict.fromkeys(row["id"] for row in live))
    found = yield from _children(child.kind, column, child.columns, ids, plain, tenant)
    grouped: dict[str, list[Row]] = defaultdict(list)
    for found_row in found:
        grouped[found_row[column]].append(found_row)
    flat = [child_row for row in live for child_row in grouped.get(row["id"], [])]
    built = iter((yield from _build(child, flat, pagings, plain, tenant)))
    for parent, obj in zip(rows, objects):
        if obj is not None and parent is not None:
            obj[key] = [next(built) for _ in grouped.get(parent["id"], [])]


def _page(
    key: str, connection: Connection, rows: Sequence[Row | None], objects: list[Row | None], ids: list[str],
    pagings: list[Paging], plain: PlainReads, tenant: str,
) -> Steps[None]:  # fmt: skip
    """``key`` of each object: its page of ``connection`` (pages and totals read side by side)."""
    paging = pagings[connection.index]
    reads: list[Steps[Any]] = [pages.nested_pages(connection, paging, ids, plain, tenant)]
    if connection.counted:
        reads.append(pages.nested_counts(connection, paging, ids, plain, tenant))
    found, *counted = yield from gather(reads)
    counts = counted[0] if counted else {}
    made = yield from _assemble(
        connection, paging, [found[i] for i in ids], [counts.get(i, 0) for i in ids], pagings, plain, tenant
    )
    by_parent = dict(zip(ids, made))
    for row, obj in zip(rows, objects):
        if obj is not None and row is not None:
            obj[key] = by_parent[row["id"]]


def _relations(
    node: Node, rows: Sequence[Row | None], objects: list[Row | None], pagings: list[Paging], plain: PlainReads,
    tenant: str,
) -> Steps[None]:  # fmt: skip
    """The to-one relations: read with the rows (``fastpath_pages.with_relations``), else batched
    per kind (soft-deleted targets too, as ``Loaders.by_id``)."""
    # per relation, not per column: two fields on one column (aliased) may select other columns
    joined = [pages.relation_rows(rows, column, child.columns) for _, column, child in node.relations]
    by_kind: dict[Any, tuple[set[str], dict[str, None]]] = {}
    for (_, column, child), targets in zip(node.relations, joined):
        if targets is not None:
            continue
        ids, columns = by_kind.setdefault(child.kind, (set(), {}))
        ids.update(ref for row in rows if row is not None and (ref := row[column]) is not None)
        columns.update(dict.fromkeys(child.columns))
    wanted = [(kind, ids, columns) for kind, (ids, columns) in by_kind.items() if ids]
    dialect = plain.dialect.name
    reads = [
        one(_by_id_statement(plain, kind, tuple(columns), single=len(ids) == 1),
            {"tenant": tenant, "ids": ids_value(ids, dialect, single=len(ids) == 1)})
        for kind, ids, columns in wanted
    ]  # fmt: skip
    found = (yield from gather(reads)) if reads else []
    fetched: dict[Any, dict[str, Row]] = {kind: {} for kind in by_kind}
    fetched.update({kind: {row["id"]: row for row in rows_} for (kind, _, _), rows_ in zip(wanted, found)})
    builds = []
    for (_, column, child), targets in zip(node.relations, joined):
        if targets is None:
            targets = [
                None if row is None or row[column] is None else fetched[child.kind].get(row[column]) for row in rows
            ]  # fmt: skip
        if not node.kind.__table__.columns[column].nullable and any(
            row is not None and target is None for row, target in zip(rows, targets)
        ):
            raise Decline  # a required relation to a row that is not there: the full path's error
        builds.append(_build(child, targets, pagings, plain, tenant))
    made = yield from gather(builds)
    for (key, _, _), values in zip(node.relations, made):
        for obj, value in zip(objects, values):
            if obj is not None:
                obj[key] = value


def _current(
    key: str, child: Node, rows: Sequence[Row | None], objects: list[Row | None], pagings: list[Paging],
    plain: PlainReads, tenant: str,
) -> Steps[None]:  # fmt: skip
    """``key`` of each object: its organization's current subscription (``Loaders.current_subscription``)."""
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
    targets = [None if row is None else current.get(row["organization_id"]) for row in rows]
    for obj, value in zip(objects, (yield from _build(child, targets, pagings, plain, tenant))):
        if obj is not None:
            obj[key] = value


def _children(
    kind: Any, column: str, columns: Sequence[str], parents: list[str], plain: PlainReads, tenant: str
) -> Steps[list[Row]]:
    """The live ``kind`` rows whose ``column`` is one of ``parents``, oldest first (``Loaders.many_by``)."""
    if not parents:
        return []
    wanted = tuple(dict.fromkeys([*columns, column]))
    single = len(parents) == 1

    def build() -> Select[*tuple[Any, ...]]:
        table = kind.__table__
        condition = and_(table.c.tenant == bindparam("tenant"), in_ids(table.c[column], plain.dialect.name, single))
        return (
            select(*(table.c[c] for c in wanted))
            .where(condition, table.c.deleted_at.is_(None))
            .order_by(table.c.created_at, table.c.id)
        )  # fmt: skip

    statement = plain.compiled(("fastpath children", kind, column, wanted, single), build)
    values = {"tenant": tenant, "ids": ids_value(parents, plain.dialect.name, single)}
    found: list[Row] = yield from one(statement, values)
    return found


def _by_id_statement(
    plain: PlainReads, kind: Any, columns: tuple[str, ...], *, one: bool = False, single: bool = False,
    joined: dict[str, tuple[Any, tuple[str, ...]]] | None = None,
) -> Compiled:  # fmt: skip
    """``one``: the root's row, by ``id``; else the rows of ``ids`` (``single``: one id, see ``in_ids``)."""

    def build() -> Select[*tuple[Any, ...]]:
        table = kind.__table__.columns
        match = table["id"] == bindparam("id") if one else in_ids(table["id"], plain.dialect.name, single)
        statement = select(*(table[c] for c in columns)).where(and_(table["tenant"] == bindparam("tenant"), match))
        return pages.with_relations(statement, kind, joined or {})

    key = ("fastpath by id", kind, columns, one, single, tuple(sorted((joined or {}).items())))
    return plain.compiled(key, build)
