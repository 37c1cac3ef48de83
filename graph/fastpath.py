"""The compiled path: one entity list page, answered without Strawberry, behind a setting.

Contract. It answers only a query whose one root field is an entity list (``tickets`` …) with no
argument but ``first last after before includeDeleted``, selecting ``totalCount``, ``pageInfo``,
``edges { cursor node }`` and ``nodes`` with scalar fields and to-one relations, without
fragments or directives (``tickets(first: 50) { nodes { subject requester { name } } }``). Its
answers are identical to Strawberry's (tests/test_fastpath*.py compare them). It never answers
with an error: a document failing validation (graphql-core's rules and graph.validation's limits,
as the schema runs them) or an argument that would be refused is declined (None) and the full
path answers it. ``Settings.fast_path`` (``FAST_PATH=false``) turns it off. A document is compiled
once into a plan (bounded ``DocumentCache``), which reads plain rows (no ORM objects, no
resolvers), one statement per entity kind and level of relations.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, TypeGuard

from graphql import (
    BooleanValueNode,
    FieldNode,
    GraphQLError,
    IntValueNode,
    NamedTypeNode,
    NullValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionNode,
    SelectionSetNode,
    StringValueNode,
    VariableNode,
    specified_rules,
)  # fmt: skip
from sqlalchemy import and_, bindparam, select
from sqlalchemy.sql import ColumnElement, Select
from sqlmodel import col

from graph.documents import DocumentCache, merge_fields
from graph.fastpath_plan import Node, Plan, Row
from graph.schema import document_errors
from graph.schema import schema as full_schema
from graph.validation import Limits, limit_errors, parsed
from models.base import ENTITIES, Entity
from models.db.engine import Database
from models.db.plain import Compiled, PlainReads, Read, ids_value, in_ids
from models.history import api_names
from resolvers import query
from resolvers.errors import DomainError
from resolvers.validate import references

#: root list field → entity type
LISTS = {
    "tickets": "Ticket", "contacts": "Contact", "organizations": "Organization", "deals": "Deal",
    "subscriptions": "Subscription", "issues": "Issue", "activities": "Activity", "metrics": "Metric",
}  # fmt: skip
#: argument → the GraphQL type a variable for it must be declared with
ARGUMENTS = {"first": "Int", "last": "Int", "after": "String", "before": "String", "includeDeleted": "Boolean"}
PAGE_INFO = {"hasNextPage", "hasPreviousPage", "startCursor", "endCursor"}
#: the literal an argument of each GraphQL type may be written as
LITERALS: dict[str, type[IntValueNode | StringValueNode | BooleanValueNode]] = {
    "Int": IntValueNode, "String": StringValueNode, "Boolean": BooleanValueNode,
}  # fmt: skip


def _iso(value: Any) -> Any:
    return None if value is None else value.isoformat()


def _float(value: Any) -> Any:
    return None if value is None else float(value)


#: rules as the schema validates with (Strawberry's default), so both share cached verdicts
RULES = tuple(specified_rules)
PLANS: DocumentCache[Plan | None] = DocumentCache(max_entries=512)


def compile_plan(source: str, operation_name: str | None, limits: Limits | None = None) -> Plan | None:
    """The plan of a document this path can answer, or None (bounded cache)."""
    limits = limits or Limits()
    return PLANS.get(source, lambda: _compile(source, operation_name, limits), operation_name, limits)


def _compile(source: str, operation_name: str | None, limits: Limits) -> Plan | None:
    document = parsed(source)
    if isinstance(document, GraphQLError):
        return None
    if len(document.definitions) != 1:
        return None
    operation = document.definitions[0]
    if not isinstance(operation, OperationDefinitionNode) or operation.operation != OperationType.QUERY:
        return None
    if operation_name is not None and (operation.name is None or operation.name.value != operation_name):
        return None
    if operation.directives or len(operation.selection_set.selections) != 1:
        return None
    declared: dict[str, str | None] = {}
    for definition in operation.variable_definitions or ():
        if definition.directives or definition.default_value is not None:
            return None
        type_ = definition.type
        declared[definition.variable.name.value] = type_.name.value if isinstance(type_, NamedTypeNode) else None
    root = operation.selection_set.selections[0]
    if not _plain_field(root) or root.name.value not in LISTS or root.selection_set is None:
        return None
    arguments: dict[str, tuple[str, Any]] = {}
    for argument in root.arguments or ():
        name, value = argument.name.value, argument.value
        if name not in ARGUMENTS:
            return None
        if isinstance(value, VariableNode):
            if declared.get(value.name.value) != ARGUMENTS[name]:
                return None
            arguments[name] = ("variable", value.name.value)
        elif isinstance(value, NullValueNode):
            arguments[name] = ("value", None)
        elif isinstance(value, LITERALS[ARGUMENTS[name]]):
            raw = value.value
            arguments[name] = ("value", int(raw) if ARGUMENTS[name] == "Int" else raw)
        else:
            return None
    kind = ENTITIES[LISTS[root.name.value]]
    merged = merge_fields(root)
    if merged is None or merged.selection_set is None:
        return None
    parts = _connection(merged.selection_set, kind)
    if parts is None or document_errors(full_schema._schema, source, document, RULES):
        return None
    plan = Plan(_key(merged), kind, arguments, parts, query.order_keys(kind), document)
    if any(how == "variable" and name in ("first", "last") for name, (how, _) in arguments.items()):
        plan.limits = limits
    elif limit_errors(full_schema._schema, document, limits, {}, operation_name):
        return None
    return plan


def _plain_field(node: SelectionNode) -> TypeGuard[FieldNode]:
    return isinstance(node, FieldNode) and not node.directives


def _key(node: FieldNode) -> str:
    return node.alias.value if node.alias else node.name.value


def _connection(root: SelectionSetNode, kind: type[Entity]) -> list[tuple[str, str, Any]] | None:
    parts: list[tuple[str, str, Any]] = []
    for selection in root.selections:
        if not _plain_field(selection):
            return None
        name = selection.name.value
        if name == "totalCount" and not selection.selection_set and not selection.arguments:
            parts.append((_key(selection), "totalCount", None))
        elif name == "__typename" and not selection.arguments:
            parts.append((_key(selection), "typename", f"{kind.type_name}Connection"))
        elif name == "nodes" and selection.selection_set and not selection.arguments:
            node = _node(selection.selection_set, kind)
            if node is None:
                return None
            parts.append((_key(selection), "nodes", node))
        elif name == "pageInfo" and selection.selection_set and not selection.arguments:
            keys: list[tuple[str, str]] = []
            for item in selection.selection_set.selections:
                if not _plain_field(item) or item.arguments or item.selection_set:
                    return None
                if item.name.value == "__typename":
                    keys.append((_key(item), "__typename"))
                elif item.name.value in PAGE_INFO:
                    keys.append((_key(item), item.name.value))
                else:
                    return None
            parts.append((_key(selection), "pageInfo", keys))
        elif name == "edges" and selection.selection_set and not selection.arguments:
            edge: list[tuple[str, str, Any]] = []
            for item in selection.selection_set.selections:
                if not _plain_field(item) or item.arguments:
                    return None
                if item.name.value == "cursor" and not item.selection_set:
                    edge.append((_key(item), "cursor", None))
                elif item.name.value == "node" and item.selection_set:
                    node = _node(item.selection_set, kind)
                    if node is None:
                        return None
                    edge.append((_key(item), "node", node))
                elif item.name.value == "__typename":
                    edge.append((_key(item), "typename", f"{kind.type_name}Edge"))
                else:
                    return None
            parts.append((_key(selection), "edges", edge))
        else:
            return None
    return parts


def _node(selection: SelectionSetNode, kind: type[Entity], depth: int = 0) -> Node | None:
    if depth > 3:
        return None
    columns = {api: column for column, api in api_names(kind).items() if column != "tenant"}
    relations = references(kind)
    node = Node(kind)
    for item in selection.selections:
        if not _plain_field(item) or item.arguments:
            return None
        name = item.name.value
        node.order.append(_key(item))
        if name == "__typename" and not item.selection_set:
            node.typename.append(_key(item))
            continue
        column = columns.get(name)
        if column is None:
            return None
        if column in relations:
            if not item.selection_set:
                return None
            child = _node(item.selection_set, relations[column], depth + 1)
            if child is None:
                return None
            node.relations.append((_key(item), column, child))
        elif item.selection_set:
            return None
        else:
            sql_type = kind.__table__.columns[column].type
            python = getattr(sql_type, "python_type", None) if not hasattr(sql_type, "impl") else sql_type.python_type
            convert = _iso if python in (datetime, date) else _float if python is float else None
            node.scalars.append((_key(item), column, convert))
    return node


# --- running a plan: one plain read (models.db.plain); page statements compiled once per plan,
# page shape and dialect, the relations' once per database, kind and columns (plans share them).


async def run(plan: Plan, variables: dict[str, Any], db: Database, tenant: str) -> dict[str, Any] | None:
    """The ``data`` of the plan's answer, or None where the full path must answer (an error)."""
    arguments: dict[str, Any] = {}
    for name, (how, value) in plan.arguments.items():
        arguments[name] = variables.get(value) if how == "variable" else value
        expected = {"Int": int, "String": str, "Boolean": bool}[ARGUMENTS[name]]
        given = arguments[name]
        if given is not None and (type(given) is not expected):
            return None
    if plan.limits is not None and limit_errors(full_schema._schema, plan.document, plan.limits, variables):
        return None
    try:
        size, from_end = query.page_size(arguments.get("first"), arguments.get("last"))
        keys = plan.keys
        after, before = (
            None if arguments.get(k) is None else query.decode_cursor(arguments[k], keys) for k in ("after", "before")
        )
    except DomainError:
        return None
    include_deleted = bool(arguments.get("includeDeleted"))
    shape = (db.dialect, size, from_end, after is not None, before is not None, include_deleted)
    statements = plan.statements.get(shape)
    if statements is None:
        statements = plan.statements[shape] = _page_statements(plan, db, keys, shape)
    values = {"tenant": tenant}
    for name, cursor in (("after", after), ("before", before)):
        values.update({f"{name}{i}": value for i, value in enumerate(cursor or ())})
    return await db.plain.run(_read(plan, statements, values, size, from_end, after, before, db.plain, tenant))


def _page_statements(
    plan: Plan, db: Database, keys: list[tuple[ColumnElement[Any], bool]], shape: tuple[Any, ...]
) -> dict[str, Compiled]:
    dialect, size, from_end, has_after, has_before, include_deleted = shape
    kind = plan.kind
    condition = query.list_condition(kind, tenant=bindparam("tenant"), dialect=dialect, include_deleted=include_deleted)
    cursor = {
        name: [bindparam(f"{name}{i}", type_=key.type) for i, (key, _) in enumerate(keys)]
        for name, present in (("after", has_after), ("before", has_before)) if present
    }  # fmt: skip
    table = kind.__table__.columns
    page = query.page_statement(
        condition, keys, [table[c] for c in _columns(plan)], size=size, from_end=from_end, **cursor
    )
    return {"page": db.plain.compile(page), "count": db.plain.compile(query.count_statement(kind, condition))}


def _read(
    plan: Plan, statements: dict[str, Compiled], values: dict[str, Any], size: int, from_end: bool,
    after: list[Any] | None, before: list[Any] | None, plain: PlainReads, tenant: str,
) -> Read[dict[str, Any]]:  # fmt: skip
    """The plain read of a plan (a generator: see models.db.plain)."""
    result_rows = yield statements["page"], values
    more = len(result_rows) > size
    rows = result_rows[:size]
    if from_end:
        rows.reverse()
    width = len(_columns(plan))  # then the sort keys, for the cursors
    cursors = [query.encode_cursor(list(row.values())[width:]) for row in rows] if plan.cursors else []
    result: dict[str, Any] = {}
    for key, part, detail in plan.parts:
        if part == "totalCount":
            (counted,) = yield statements["count"], {"tenant": tenant}
            result[key] = next(iter(counted.values()))
        elif part == "typename":
            result[key] = detail
        elif part == "nodes":
            result[key] = yield from _build(detail, rows, plain, tenant)
        elif part == "edges":
            edges: list[Row] = [{} for _ in rows]
            for edge_key, what, node in detail:
                if what == "cursor":
                    for edge, cursor in zip(edges, cursors):
                        edge[edge_key] = cursor
                elif what == "typename":
                    for edge in edges:
                        edge[edge_key] = node
                else:
                    for edge, item in zip(edges, (yield from _build(node, rows, plain, tenant))):
                        edge[edge_key] = item
            result[key] = edges
        else:
            info = {
                "hasNextPage": more if not from_end else before is not None,
                "hasPreviousPage": more if from_end else after is not None,
                "startCursor": cursors[0] if cursors else None,
                "endCursor": cursors[-1] if cursors else None, "__typename": "PageInfo",
            }  # fmt: skip
            result[key] = {k: info[name] for k, name in detail}
    return {plan.key: result}


def _columns(plan: Plan) -> list[str]:
    nodes = [d for _, part, d in plan.parts if part == "nodes"]
    nodes += [n for _, part, d in plan.parts if part == "edges" for _, what, n in d if what == "node"]
    return list(dict.fromkeys(c for node in nodes for c in node.columns)) or ["id"]


def _build(node: Node, rows: Sequence[Row | None], plain: PlainReads, tenant: str) -> Read[list[Row | None]]:
    """Response objects for ``rows`` (None for a missing relation), relations batched per kind
    (a generator of statements, like the read it is part of)."""
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
    by_kind: dict[type[Entity], tuple[set[str], dict[str, None]]] = {}
    for _, column, child in node.relations:
        ids, columns = by_kind.setdefault(child.kind, (set(), {}))
        ids.update(ref for row in rows if row is not None and (ref := row[column]) is not None)
        columns.update(dict.fromkeys(child.columns))
    fetched: dict[type[Entity], dict[str, Row]] = {}
    for kind, (ids, columns) in by_kind.items():
        if not ids:
            fetched[kind] = {}
            continue
        statement = _by_id_statement(plain, kind, tuple(columns))
        found = yield statement, {"tenant": tenant, "ids": ids_value(ids, plain.dialect.name)}
        fetched[kind] = {row["id"]: row for row in found}
    for key, column, child in node.relations:
        targets = [None if row is None or row[column] is None else fetched[child.kind].get(row[column]) for row in rows]
        for obj, value in zip(objects, (yield from _build(child, targets, plain, tenant))):
            if obj is not None:
                obj[key] = value
    return objects


def _by_id_statement(plain: PlainReads, kind: type[Entity], columns: tuple[str, ...]) -> Compiled:
    def build() -> Select[*tuple[Any, ...]]:
        table = kind.__table__.columns
        condition = and_(col(kind.tenant) == bindparam("tenant"), in_ids(col(kind.id), plain.dialect.name))
        return select(*(table[c] for c in columns)).where(condition)

    return plain.compiled(("fastpath by id", kind, columns), build)
