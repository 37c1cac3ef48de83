"""Shared GraphQL shapes: Node, meta-fields, connections, and field factories for relations.

No ``from __future__ import annotations`` here: the factories build resolvers whose
annotations must be real objects for Strawberry to read.
"""

import dataclasses
from datetime import datetime
from enum import Enum
from types import GenericAlias
from typing import Annotated, Any, Generic, Optional, TypeVar, cast

import strawberry
from strawberry import UNSET
from strawberry.types import Info
from strawberry.types.maybe import Some

from models.base import ENTITIES, Entity
from models.event import Event
from models.lifecycle import LIFECYCLES
from resolvers import query

T = TypeVar("T")


@strawberry.interface(description="An object with a global id `{type}_{sqid}`.")
class Node:
    id: strawberry.ID


@strawberry.type
class MetaFields:
    """The meta-fields of every entity (read-only)."""

    version: int = strawberry.field(description="1 at creation, +1 on every change.")
    created_at: datetime
    updated_at: datetime
    created_by: strawberry.ID = strawberry.field(description="The actor that created it.")
    deleted_at: Optional[datetime] = strawberry.field(description="Set when soft-deleted.")


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: Optional[str]
    end_cursor: Optional[str]


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    """A page of a list, with cursors to walk it both ways."""

    edges: list[Edge[T]]
    nodes: list[T]
    page_info: PageInfo
    _count: strawberry.Private[Any]

    @strawberry.field(description="How many items match, across all pages.")
    async def total_count(self) -> int:
        return await self._count()

    @classmethod
    def of(cls, page: query.Page) -> "Connection":
        return cls(
            edges=[Edge(cursor=c, node=n) for c, n in zip(page.cursors, page.rows)],
            nodes=page.rows,
            page_info=PageInfo(
                has_next_page=page.has_next,
                has_previous_page=page.has_previous,
                start_cursor=page.cursors[0] if page.cursors else None,
                end_cursor=page.cursors[-1] if page.cursors else None,
            ),
            _count=page.count,
        )


def is_row_of(type_name: str):
    """``is_type_of`` for a GraphQL type whose objects are the rows of one table."""
    model = ENTITIES[type_name]

    def check(cls, obj: Any, info: Info) -> bool:
        return isinstance(obj, model)

    return classmethod(check)


# --- inputs to the plain dicts the resolvers take ------------------------------------------------


def plain(value: Any) -> Any:
    if isinstance(value, Some):
        value = value.value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list):
        return [plain(v) for v in value]
    if dataclasses.is_dataclass(value):
        return {
            f.name: plain(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if getattr(value, f.name) is not UNSET and getattr(value, f.name) is not None
        }
    return value


def input_values(kind: type[Entity], data: Any) -> dict[str, Any]:
    """A create or update input as ``{column: value}``; relations become ``<name>_id``."""
    columns = kind.__table__.columns
    values = {}
    for f in dataclasses.fields(data):
        raw = getattr(data, f.name)
        if raw is UNSET or raw is None:
            continue  # absent (a Maybe given as null arrives as Some(None))
        name = f.name if f.name in columns or f"{f.name}_id" not in columns else f"{f.name}_id"
        values[name] = plain(raw)
    return values


def order_pairs(order_by: Any) -> list[tuple[str, bool]]:
    return [(o.field.value, o.direction.value == "desc") for o in (order_by or [])]


# --- field factories --------------------------------------------------------------------------


def _lazy(name: str) -> Any:
    module = "graph.types." + ("event" if name.startswith("Event") else _module_of(name))
    return Annotated[name, strawberry.lazy(module)]


def _module_of(name: str) -> str:
    for entity in sorted(ENTITIES, key=len, reverse=True):
        if name.startswith(entity):
            return entity.lower()
    raise LookupError(name)


def related(target: str, column: str, description: Optional[str] = None, *, required: bool = False) -> Any:
    """A to-one relation, loaded through the per-request ``by_id`` loader (``required``: the
    column is never null, and the loader sees soft-deleted rows too, so neither is the field)."""
    kind = ENTITIES[target]

    async def resolve(root: strawberry.Parent[Any], info: Info):
        ref = getattr(root, column)
        return None if ref is None else await info.context.loaders.by_id(kind).load(ref)

    resolve.__annotations__["return"] = _lazy(target) if required else Optional[_lazy(target)]
    return strawberry.field(resolver=resolve, description=description)


def children(target: str, column: str, description: Optional[str] = None) -> Any:
    """A short to-many relation as a list (``ticket.issues``), batched by a loader."""
    kind = ENTITIES[target]

    async def resolve(root: strawberry.Parent[Any], info: Info):
        return await info.context.loaders.many_by(kind, column).load(root.id)

    resolve.__annotations__["return"] = GenericAlias(list, (_lazy(target),))  # list[...], built at runtime
    # the compiled path (graph/fastpath.py) reads the relation from here
    return strawberry.field(resolver=resolve, description=description, metadata={"children": (target, column)})


def reverse(target: str, column: Optional[str] = None, description: Optional[str] = None) -> Any:
    """A list as a connection taking the list query's arguments: the root ``tickets`` list, or
    a to-many relation (``organization.tickets``) when ``column`` names the relation — the
    latter through a per-request loader, so a list of parents costs one statement per field
    (and one more for ``totalCount``), not two per parent."""
    where, order = _lazy(f"{target}Where"), _lazy(f"{target}Order")

    async def resolve(
        root: strawberry.Parent[Any],
        info: Info,
        where: Optional[where] = UNSET,
        order_by: Optional[list[order]] = UNSET,
        first: Optional[int] = UNSET,
        after: Optional[str] = UNSET,
        last: Optional[int] = UNSET,
        before: Optional[str] = UNSET,
        include_deleted: bool = False,
    ) -> Connection[_lazy(target)]:
        if column is None:
            return await list_connection(info, target, where, order_by, first, after, last, before, include_deleted)
        pages = info.context.loaders.pages(
            ENTITIES[target], column, where=plain(given(where)) or None, order=order_pairs(given(order_by)),
            first=given(first), after=given(after), last=given(last), before=given(before),
            include_deleted=include_deleted,
        )  # fmt: skip
        return Connection.of(await pages.load(root.id))

    relation = {"reverse": (target, column)} if column is not None else {}  # read by graph/fastpath.py
    return strawberry.field(resolver=resolve, description=description, metadata=relation)


def allowed_transitions(entity: str, verb_enum: type[Enum]) -> Any:
    """``allowedTransitions``: the verbs the state machine allows now, from the same table."""
    lifecycle = LIFECYCLES[entity]

    def resolve(root: strawberry.Parent[Any]) -> list[verb_enum]:
        if root.deleted_at is not None or lifecycle.sealed(root):
            return []
        state = getattr(root, lifecycle.state_field) if lifecycle.state_field else None
        return [verb_enum[v.upper()] for v in lifecycle.allowed(state)]

    return strawberry.field(resolver=resolve, description="The verbs allowed from the current state.")


def verb_enum(entity: str) -> type[Enum]:
    """``TicketVerb``: every verb of an entity's state machine, for ``allowedTransitions``."""
    verbs = LIFECYCLES[entity].verbs
    # Enum's functional API makes a class; mypy types the call as a member
    verb_class = cast(type[Enum], Enum(f"{entity}Verb", {v.upper(): v.upper() for v in verbs}))
    return strawberry.enum(verb_class)


# --- the generic read paths ---------------------------------------------------------------------


def given(value: Any) -> Any:
    """An optional argument, with "not given" (``UNSET``) as None."""
    return None if value is UNSET else value


async def list_connection(
    info: Info, entity: str, where, order_by, first, after, last, before, include_deleted,
    scope: Optional[dict] = None,
) -> Connection:  # fmt: skip
    """One page of ``entity`` for the caller's tenant, as a connection."""
    context = info.context
    kind = ENTITIES.get(entity) or Event
    page = await query.find(
        context.db,
        kind,
        tenant=context.tenant,
        where=plain(given(where)) or None,
        order=order_pairs(given(order_by)),
        first=given(first),
        after=given(after),
        last=given(last),
        before=given(before),
        include_deleted=include_deleted,
        scope=scope,
    )
    return Connection.of(page)
