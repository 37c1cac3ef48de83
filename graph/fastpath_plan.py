"""What graph.fastpath compiles a document into: the root field, the nodes to build per row, and
the connections (pages) to read. Data only; compiling stays in graph/fastpath.py, running in
graph/fastpath_read.py and graph/fastpath_pages.py. What is worked out of a node or connection
(its columns, its nodes) is kept on it: it is only asked for once the plan is compiled."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sqlalchemy.sql import ColumnElement

from graph.validation import Limits
from models.db.plain import Compiled

#: a row as a read returns it, and a response object as the path builds it
Row = dict[str, Any]
#: a field's arguments: name → ("value", literal) | ("variable", variable name)
Arguments = dict[str, tuple[str, Any]]


class Decline(Exception):
    """Raised inside a read where the answer cannot be told here (the full path must answer)."""


@dataclass
class Node:
    """What to build for each row of one kind (an entity, or an event)."""

    kind: Any  # type[Entity], or models.event.Event
    scalars: list[tuple[str, str, Callable[[Any], Any] | None]] = field(default_factory=list)  # (key, column, convert)
    relations: list[tuple[str, str, Node]] = field(default_factory=list)  # (key, column, node): to-one
    #: (key, connection): a page of the rows whose ``connection.parent`` column holds this row's id
    pages: list[tuple[str, Connection]] = field(default_factory=list)
    #: (key, column, node): the live rows whose ``column`` holds this row's id, oldest first (``issues``)
    lists: list[tuple[str, str, Node]] = field(default_factory=list)
    #: (key, node): the current subscription of the row's organization (``Ticket.subscription``)
    current: list[tuple[str, Node]] = field(default_factory=list)
    typename: list[str] = field(default_factory=list)
    order: list[str] = field(default_factory=list)  # every key, in the document's order

    @cached_property
    def columns(self) -> list[str]:
        """The columns to read: no more than the document asks for."""
        wanted = ["id", *(c for _, c, _ in self.scalars), *(c for _, c, _ in self.relations)]
        if self.current:
            wanted.append("organization_id")
        return list(dict.fromkeys(wanted))


@dataclass
class Connection:
    """A page of a list: the root list (``parent`` None), or per row of a parent, the rows whose
    ``parent`` column holds its id (``organization.tickets``: ``organization_id``)."""

    kind: Any  # type[Entity], or models.event.Event
    arguments: Arguments
    #: (key, part, detail): ``totalCount`` ``typename`` ``nodes`` ``edges`` ``pageInfo``
    parts: list[tuple[str, str, Any]]
    #: the list's sort keys (its default order), for the page and its cursors
    keys: list[tuple[ColumnElement[Any], bool]]
    parent: str | None = None
    #: this connection's place in ``Plan.connections``
    index: int = 0
    #: compiled statements, per page shape and dialect (filled as they are first needed)
    statements: dict[tuple[Any, ...], dict[str, Compiled]] = field(default_factory=dict)

    @cached_property
    def cursors(self) -> bool:
        """Whether the answer shows any cursor (edges' or pageInfo's)."""
        return any(
            (part == "edges" and any(what == "cursor" for _, what, _ in detail))
            or (part == "pageInfo" and any(name in ("startCursor", "endCursor") for _, name in detail))
            for _, part, detail in self.parts
        )  # fmt: skip

    @cached_property
    def counted(self) -> bool:
        return any(part == "totalCount" for _, part, _ in self.parts)

    @cached_property
    def nodes(self) -> list[Node]:
        """What its rows are built into (``nodes``, and ``edges``' ``node``)."""
        nodes = [d for _, part, d in self.parts if part == "nodes"]
        return nodes + [n for _, part, d in self.parts if part == "edges" for _, what, n in d if what == "node"]

    @cached_property
    def columns(self) -> list[str]:
        """The columns its nodes need (and the parent's column, to group the rows by)."""
        wanted = [c for node in self.nodes for c in node.columns] or ["id"]
        return list(dict.fromkeys([*wanted, *([self.parent] if self.parent else [])]))


def joins(nodes: list[Node]) -> dict[str, tuple[Any, tuple[str, ...]]]:
    """The to-one relations of ``nodes`` to read with their rows: foreign key column → (the
    target's kind, the target columns any of them asks for)."""
    found: dict[str, tuple[Any, dict[str, None]]] = {}
    for node in nodes:
        for _, column, child in node.relations:
            found.setdefault(column, (child.kind, {}))[1].update(dict.fromkeys(child.columns))
    return {column: (kind, tuple(columns)) for column, (kind, columns) in found.items()}


@dataclass
class Paging:
    """One connection's arguments as one request gives them."""

    size: int
    from_end: bool
    after: str | None
    before: str | None
    #: the cursors' values, as the statements' bind parameters ``after0…`` and ``before0…``
    values: dict[str, Any]
    statements: dict[str, Compiled]
    #: (dialect, size, from_end, after given, before given, includeDeleted, public)
    shape: tuple[Any, ...]


@dataclass
class Plan:
    """A root list page (``connection``) or one entity by id (``node``)."""

    key: str
    kind: Any
    arguments: Arguments  # the root field's
    connection: Connection | None
    node: Node | None
    #: every connection of the document, the root list's first
    connections: list[Connection]
    #: the variables declared non-null (a request leaving one out or null is declined)
    required: tuple[str, ...] = ()
    document: Any = None
    #: the limits held to at run time, when a page size is a variable (else checked once, here)
    limits: Limits | None = None
    #: the by-id root's statement, per dialect (built the first time it is needed)
    by_id: dict[str, Compiled] = field(default_factory=dict)
    #: PostgreSQL: the statement each step of several statements is sent as, by their texts
    #: (graph/fastpath_batch.py; built the first time a step needs it)
    batches: dict[tuple[str, ...], Any] = field(default_factory=dict)
