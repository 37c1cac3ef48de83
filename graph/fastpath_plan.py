"""What graph.fastpath compiles a document into: the plan of one list page and the nodes to build
per row. Data only; compiling and running a plan stay in graph/fastpath.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.sql import ColumnElement

from graph.validation import Limits
from models.base import Entity
from models.db.plain import Compiled

#: a row as a read returns it, and a response object as the path builds it
Row = dict[str, Any]


@dataclass
class Node:
    """What to build for each row of one entity kind."""

    kind: type[Entity]
    scalars: list[tuple[str, str, Callable[[Any], Any] | None]] = field(default_factory=list)  # (key, column, convert)
    relations: list[tuple[str, str, Node]] = field(default_factory=list)  # (key, column, node)
    typename: list[str] = field(default_factory=list)
    order: list[str] = field(default_factory=list)  # every key, in the document's order

    @property
    def columns(self) -> list[str]:
        """The columns to read: no more than the document asks for."""
        wanted = ["id", *(c for _, c, _ in self.scalars), *(c for _, c, _ in self.relations)]
        return list(dict.fromkeys(wanted))


@dataclass
class Plan:
    key: str
    kind: type[Entity]
    arguments: dict[str, tuple[str, Any]]  # name → ("value", v) | ("variable", name)
    parts: list[tuple[str, str, Any]]  # (key, part, detail)
    #: the list's sort keys (the default order), for the page and its cursors
    keys: list[tuple[ColumnElement[Any], bool]]
    document: Any = None
    #: the limits held to at run time, when a page size is a variable (else checked once, here)
    limits: Limits | None = None
    #: compiled page statements, per page shape and dialect (filled as they are first needed)
    statements: dict[tuple[Any, ...], dict[str, Compiled]] = field(default_factory=dict)

    @property
    def cursors(self) -> bool:
        """Whether the answer shows any cursor (edges' or pageInfo's)."""
        return any(
            (part == "edges" and any(what == "cursor" for _, what, _ in detail))
            or (part == "pageInfo" and any(name in ("startCursor", "endCursor") for _, name in detail))
            for _, part, detail in self.parts
        )  # fmt: skip
