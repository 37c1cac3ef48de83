"""The compiled path: list pages and deep documents answered without Strawberry, behind a setting.

Contract. It answers a query of one root field: an entity list (``tickets`` …, arguments
``first last after before includeDeleted``) or one entity by id (``ticket(id:)`` …, without
``asOf``). Under it, a connection selects ``totalCount``, ``pageInfo``, ``edges { cursor node }``
and ``nodes``; a node selects scalar fields, to-one relations, the to-many connections of the
parent (``organization.tickets(first:)``, ``ticket.comments(first:, public:)``, any entity's
``events(first:)``; no ``where`` or ``orderBy``), plain to-many lists (``ticket.issues``) and
``ticket.subscription``; no fragments or directives. Its answers are identical to Strawberry's
(tests/test_fastpath*.py compare them). It never answers with an error: a document failing
validation (graphql-core's rules and graph.validation's limits, as the schema runs them), an
argument that would be refused, or a row the full path would refuse to show, is declined (None)
and the full path answers it. ``Settings.fast_path`` (``FAST_PATH=false``) turns it off. A
document is compiled once into a plan (bounded ``DocumentCache``), which reads plain rows (no ORM
objects, no resolvers), one statement per kind and level: a nested connection is one statement
for all its parents (graph/fastpath_pages.py), and one more for their ``totalCount``. On
PostgreSQL the statements of a level go as one statement, one round trip (graph/fastpath_batch.py).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, TypeGuard

from graphql import (
    BooleanValueNode,
    FieldNode,
    GraphQLError,
    GraphQLObjectType,
    IntValueNode,
    NamedTypeNode,
    NonNullTypeNode,
    NullValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionNode,
    SelectionSetNode,
    StringValueNode,
    VariableNode,
    specified_rules,
)  # fmt: skip

from graph.documents import DocumentCache, merge_fields
from graph.fastpath_plan import Arguments, Connection, Node, Plan
from graph.fastpath_read import run
from graph.schema import document_errors
from graph.schema import schema as full_schema
from graph.validation import Limits, limit_errors, parsed
from models.base import ENTITIES
from models.event import Event
from models.history import api_names
from resolvers import query
from resolvers.validate import references

__all__ = ["LISTS", "ONE", "compile_plan", "run"]

#: root list field → entity type
LISTS = {
    "tickets": "Ticket", "contacts": "Contact", "organizations": "Organization", "deals": "Deal",
    "subscriptions": "Subscription", "issues": "Issue", "activities": "Activity", "metrics": "Metric",
}  # fmt: skip
#: root field of one entity by id (the type's name, lower camel case: ``ticket``) → entity type
ONE = {kind[0].lower() + kind[1:]: kind for kind in LISTS.values()}
#: the kinds whose nodes the path builds (every field of theirs that is a column shows the column)
KINDS = {*LISTS.values(), "Comment", "Event"}


def _relations(kind: str) -> dict[tuple[str, str], tuple[str, str]]:
    """(type, field) → (child type, its column holding the parent's id), for every field the
    schema's types declare as ``kind`` in their metadata (graph/types/common.py)."""
    found = {}
    for type_name, graphql_type in full_schema._schema.type_map.items():
        if not isinstance(graphql_type, GraphQLObjectType):
            continue
        for name, field in graphql_type.fields.items():
            definition = field.extensions.get("strawberry-definition")
            if definition is not None and kind in definition.metadata:
                found[type_name, name] = definition.metadata[kind]
    return found


#: the parent's connections (``organization.tickets``); a ticket's thread is a connection of its own
PAGES = {**_relations("reverse"), ("Ticket", "comments"): ("Comment", "ticket_id")}
#: live children as a plain list (``ticket.issues``)
CHILDREN = _relations("children")
#: fields whose GraphQL name is not their column's API name
RENAMED = {("Event", "sequence"): "seq"}
#: argument → the GraphQL type a variable for it must be declared with
ARGUMENTS = {
    "first": "Int", "last": "Int", "after": "String", "before": "String", "includeDeleted": "Boolean",
    "public": "Boolean", "id": "ID",
}  # fmt: skip
PAGE = ("first", "last", "after", "before")
PAGE_INFO = {"hasNextPage", "hasPreviousPage", "startCursor", "endCursor"}
#: the literal an argument of each GraphQL type may be written as
LITERALS: dict[str, type[IntValueNode | StringValueNode | BooleanValueNode]] = {
    "Int": IntValueNode, "String": StringValueNode, "Boolean": BooleanValueNode, "ID": StringValueNode,
}  # fmt: skip
MAX_DEPTH = 6


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


class _Compiler:
    """Compiles one document: its declared variables, and the connections found so far."""

    def __init__(self, declared: dict[str, str | None]) -> None:
        self.declared = declared
        self.connections: list[Connection] = []

    def arguments(self, node: FieldNode, allowed: tuple[str, ...]) -> Arguments | None:
        arguments: Arguments = {}
        for argument in node.arguments or ():
            name, value = argument.name.value, argument.value
            if name not in allowed:
                return None
            if isinstance(value, VariableNode):
                if self.declared.get(value.name.value) != ARGUMENTS[name]:
                    return None
                arguments[name] = ("variable", value.name.value)
            elif isinstance(value, NullValueNode):
                arguments[name] = ("value", None)
            elif isinstance(value, LITERALS[ARGUMENTS[name]]):
                raw = value.value
                arguments[name] = ("value", int(raw) if ARGUMENTS[name] == "Int" else raw)
            else:
                return None
        return arguments

    def connection(
        self, field: FieldNode, kind: Any, allowed: tuple[str, ...], parent: str | None, depth: int
    ) -> Connection | None:
        arguments = self.arguments(field, allowed)
        if arguments is None or field.selection_set is None:
            return None
        connection = Connection(kind, arguments, [], query.order_keys(kind), parent, len(self.connections))
        self.connections.append(connection)
        parts = self.parts(field.selection_set, kind, depth)
        if parts is None:
            return None
        connection.parts = parts
        return connection

    def parts(self, root: SelectionSetNode, kind: Any, depth: int) -> list[tuple[str, str, Any]] | None:
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
                node = self.node(selection.selection_set, kind, depth)
                if node is None:
                    return None
                parts.append((_key(selection), "nodes", node))
            elif name == "pageInfo" and selection.selection_set and not selection.arguments:
                keys = _page_info(selection.selection_set)
                if keys is None:
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
                        node = self.node(item.selection_set, kind, depth)
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

    def node(self, selection: SelectionSetNode, kind: Any, depth: int) -> Node | None:
        if depth > MAX_DEPTH or kind.type_name not in KINDS:
            return None
        type_name = kind.type_name
        columns = {api: column for column, api in api_names(kind).items() if column != "tenant"}
        relations = references(kind) if kind is not Event else {}
        node = Node(kind)
        for item in selection.selections:
            if not _plain_field(item):
                return None
            name, key = item.name.value, _key(item)
            node.order.append(key)
            if name == "__typename" and not item.selection_set and not item.arguments:
                node.typename.append(key)
                continue
            column = columns.get(RENAMED.get((type_name, name), name))
            if item.selection_set is None:
                if item.arguments or column is None or column in relations:
                    return None
                sql_type = kind.__table__.columns[column].type
                python = (
                    getattr(sql_type, "python_type", None) if not hasattr(sql_type, "impl") else sql_type.python_type
                )
                convert = _iso if python in (datetime, date) else _float if python is float else None
                node.scalars.append((key, column, convert))
                continue
            if (type_name, name) in PAGES or name == "events":
                child, parent = PAGES.get((type_name, name), ("Event", "target"))
                allowed = (*PAGE, "includeDeleted", "public") if child == "Comment" else (*PAGE, "includeDeleted")
                target = Event if child == "Event" else ENTITIES[child]
                connection = self.connection(item, target, PAGE if child == "Event" else allowed, parent, depth + 1)
                if connection is None:
                    return None
                node.pages.append((key, connection))
                continue
            if item.arguments:
                return None
            if (type_name, name) in CHILDREN:
                child, parent = CHILDREN[type_name, name]
                target, place = ENTITIES[child], "lists"
            elif (type_name, name) == ("Ticket", "subscription"):
                target, place = ENTITIES["Subscription"], "current"
            elif column is not None and column in relations:
                target, place = relations[column], "relations"
            else:
                return None
            child_node = self.node(item.selection_set, target, depth + 1)
            if child_node is None:
                return None
            if place == "lists":
                node.lists.append((key, parent, child_node))
            elif place == "current":
                node.current.append((key, child_node))
            elif column is not None:
                node.relations.append((key, column, child_node))
        return node


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
    required: list[str] = []
    for definition in operation.variable_definitions or ():
        if definition.directives or definition.default_value is not None:
            return None
        type_ = definition.type
        if isinstance(type_, NonNullTypeNode):  # a missing or null value is declined at run time
            required.append(definition.variable.name.value)
            type_ = type_.type
        declared[definition.variable.name.value] = type_.name.value if isinstance(type_, NamedTypeNode) else None
    root = operation.selection_set.selections[0]
    if not _plain_field(root) or root.selection_set is None:
        return None
    merged = merge_fields(root)
    if merged is None or merged.selection_set is None:
        return None
    compiler = _Compiler(declared)
    name = root.name.value
    connection: Connection | None = None
    node: Node | None = None
    if name in LISTS:
        kind = ENTITIES[LISTS[name]]
        connection = compiler.connection(merged, kind, (*PAGE, "includeDeleted"), None, 0)
        if connection is None:
            return None
        arguments = connection.arguments
    elif name in ONE:
        kind = ENTITIES[ONE[name]]
        given = compiler.arguments(merged, ("id",))
        node = compiler.node(merged.selection_set, kind, 0)
        if given is None or node is None:
            return None
        arguments = given
    else:
        return None
    if document_errors(full_schema._schema, source, document, RULES):
        return None
    plan = Plan(_key(merged), kind, arguments, connection, node, compiler.connections, tuple(required), document)
    sizes = (how for c in compiler.connections for n, (how, _) in c.arguments.items() if n in ("first", "last"))
    if "variable" in sizes:
        plan.limits = limits
    elif limit_errors(full_schema._schema, document, limits, {}, operation_name):
        return None
    return plan


def _plain_field(node: SelectionNode) -> TypeGuard[FieldNode]:
    return isinstance(node, FieldNode) and not node.directives


def _key(node: FieldNode) -> str:
    return node.alias.value if node.alias else node.name.value


def _page_info(selection: SelectionSetNode) -> list[tuple[str, str]] | None:
    keys: list[tuple[str, str]] = []
    for item in selection.selections:
        if not _plain_field(item) or item.arguments or item.selection_set:
            return None
        if item.name.value == "__typename":
            keys.append((_key(item), "__typename"))
        elif item.name.value in PAGE_INFO:
            keys.append((_key(item), item.name.value))
        else:
            return None
    return keys
