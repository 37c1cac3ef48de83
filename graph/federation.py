"""Apollo Federation 2: this server as the support team's subgraph under a gateway.

Every ``Node`` type is an entity keyed by ``id`` (``@key(fields: "id")``). ``_entities`` resolves
references through the request's ``by_id`` loaders (the ones relations use), so a gateway asking
for N tickets costs one statement, and several types one statement per type. Like a relation, a
reference shows a soft-deleted row (with ``deletedAt``); like ``node(id:)``, another tenant's id is
null. A malformed representation is ``BAD_USER_INPUT`` for that entity, the others still resolve.

Three SDLs come out of one schema:

- what the server serves: the API, plus ``_service`` and ``_entities``;
- ``public_sdl``: the API as clients see it (``schema.graphql``), without federation's plumbing;
- ``subgraph_sdl``: what ``_service { sdl }`` tells a gateway. It leaves out the subscription
  root: federation names every root type by its default name, and ``Subscription`` is the
  billing entity here (API.md), so a root named ``Live`` cannot compose (``ROOT_SUBSCRIPTION_USED``).
  Gateways take subscriptions from this server directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property
from typing import Any, Final, cast

import strawberry
from graphql import (
    GraphQLDirective,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    is_specified_directive,
)
from graphql.utilities.print_schema import is_defined_type, print_directive, print_schema_definition, print_type
from strawberry import UNSET
from strawberry.federation import Schema as FederationSchema
from strawberry.federation.schema import FederationAny
from strawberry.federation.schema_directives import Key
from strawberry.federation.types import FieldSet
from strawberry.printer import print_schema
from strawberry.tools import merge_types
from strawberry.types import Info
from strawberry.types.base import get_object_definition

from graph.types.common import Node
from graph.validation import TooComplex
from models.base import ENTITIES, TableClass
from models.event import Event as EventRow
from models.ids import type_of
from models.webhooks import Webhook as WebhookRow
from models.webhooks import WebhookDelivery as DeliveryRow
from resolvers.errors import BadInput

#: the Federation version the subgraph links: the lowest that has everything it uses (``@key``)
FEDERATION_VERSION: Final = "2.0"
#: the root fields federation adds; not part of the API clients see
FEDERATION_FIELDS = ("_service", "_entities")
#: the tables of the Node types that are not ``models.base.ENTITIES``
OTHER_ROWS: dict[str, type[TableClass]] = {"Event": EventRow, "Webhook": WebhookRow, "WebhookDelivery": DeliveryRow}


def node_types() -> Iterator[type]:
    """Every object type implementing ``Node`` (each decorated class that subclasses it)."""
    stack = list(Node.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        definition = get_object_definition(cls)
        if definition is not None and not definition.is_interface and definition.origin is cls:
            yield cls


def key_node_types() -> None:
    """Make every ``Node`` type an entity keyed by ``id``; once per type, however often called."""
    for cls in node_types():
        definition = get_object_definition(cls, strict=True)
        if not any(isinstance(d, Key) for d in definition.directives or ()):
            key = Key(fields=FieldSet("id"), resolvable=cast(Any, UNSET))  # UNSET: federation's default, unprinted
            definition.directives = [*(definition.directives or ()), key]


@strawberry.type(name="_Service", description="This subgraph as a gateway composes it.")
class SubgraphService:
    sdl: str = strawberry.field(description="The subgraph SDL (Apollo Federation 2).")


@strawberry.type
class SubgraphRoot:
    """``_service`` as Apollo gateways ask for it: the subgraph SDL, without the subscription root."""

    @strawberry.field(name="_service")
    def service(self, info: Info) -> SubgraphService:
        return SubgraphService(sdl=cast("SubgraphSchema", info.schema).subgraph_sdl)


class SubgraphSchema(FederationSchema):
    """A federation schema whose ``_entities`` resolve through the per-request loaders.

    ``max_representations``: the most references one ``_entities`` call takes (each is at least
    one node of the answer, so the node budget is the natural bound)."""

    def __init__(
        self, *, query: type, mutation: type | None = None, subscription: type | None = None,
        types: list[type] | tuple[type, ...] = (), max_representations: int, **options: Any,
    ) -> None:  # fmt: skip
        key_node_types()
        query = merge_types("Query", (query, SubgraphRoot))
        super().__init__(
            query=query, mutation=mutation, subscription=subscription, types=types,
            federation_version=FEDERATION_VERSION, **options,
        )  # fmt: skip
        self.max_representations = max_representations
        self.rows = _entity_rows(self._schema)
        self._roots = (query, mutation, subscription, types)

    @cached_property
    def subgraph_sdl(self) -> str:
        """What ``_service { sdl }`` answers (made when first asked: only gateways ask)."""
        query, mutation, subscription, types = self._roots
        if subscription is None:
            return print_schema(self)
        # see the module doc: the same schema without its subscription root
        return print_schema(
            FederationSchema(query=query, mutation=mutation, types=types, federation_version=FEDERATION_VERSION)
        )

    def entities_resolver(self, info: Info, representations: list[FederationAny]) -> list[FederationAny]:
        """Each representation's entity of the caller's tenant: a loader's future (all of one
        type coalesce into one statement), or the error that representation earns."""
        if len(representations) > self.max_representations:
            raise TooComplex(
                f"_entities takes at most {self.max_representations} representations, not {len(representations)}",
                limit=self.max_representations,
            )
        loaders = info.context.loaders
        found: list[Any] = []
        for representation in representations:
            try:
                row, id_ = self.reference(representation)
            except BadInput as error:  # this entity's error (null, at its index); the others resolve
                found.append(error)
            else:
                found.append(loaders.by_id(row).load(id_))
        return found

    def reference(self, representation: Any) -> tuple[type[TableClass], str]:
        """The table and id a representation names; ``BadInput`` if it names none."""
        if not isinstance(representation, dict):
            raise BadInput('A representation is an object: {"__typename": "Ticket", "id": "ticket_…"}')
        typename, id_ = representation.get("__typename"), representation.get("id")
        if not isinstance(typename, str):
            raise BadInput("A representation names its type in __typename", entities=sorted(self.rows))
        row = self.rows.get(typename)
        if row is None:
            raise BadInput(f"{typename!r} is not an entity of this subgraph", entities=sorted(self.rows))
        if id_ is None:
            raise BadInput(f"A {typename} representation needs its id (the key)")
        if not isinstance(id_, str) or type_of(id_) != typename:
            raise BadInput(f"{id_!r} is not the id of a {typename}")
        return row, id_

    def public_sdl(self) -> str:
        """The API as clients see it: the served schema without federation's fields, types and
        directives, printed as graphql-core prints (types by name, as Strawberry orders them)."""
        return public_sdl(self._schema)


def _entity_rows(schema: GraphQLSchema) -> dict[str, type[TableClass]]:
    """The entity types (the members of ``_Entity``) and the row class of each."""
    rows: dict[str, type[TableClass]] = {**ENTITIES, **OTHER_ROWS}
    entity_union = schema.get_type("_Entity")
    members = [t.name for t in getattr(entity_union, "types", ())]
    missing = [name for name in members if name not in rows]
    if missing:
        raise TypeError(f"Node types without a table for _entities: {missing} (graph/federation.py OTHER_ROWS)")
    keyless = [t.name for t in schema.get_possible_types(cast(Any, schema.get_type("Node"))) if t.name not in members]
    if keyless:
        raise TypeError(f"Node types that are not entities: {keyless} (imported after graph.federation keyed them?)")
    return {name: rows[name] for name in members}


def public_sdl(schema: GraphQLSchema) -> str:
    """``schema`` without what federation adds, in SDL: every type and directive reachable from
    the roots (the query root without ``_service`` and ``_entities``), and every ``Node`` type."""
    query = cast(GraphQLObjectType, schema.query_type)
    fields = {name: field for name, field in query.fields.items() if name not in FEDERATION_FIELDS}
    public = GraphQLSchema(
        query=GraphQLObjectType(query.name, fields, query.interfaces, description=query.description),
        mutation=schema.mutation_type,
        subscription=schema.subscription_type,
        types=list(schema.get_possible_types(cast(Any, schema.get_type("Node")))),
        directives=[d for d in schema.directives if not _is_federation(d)],
    )
    types: list[GraphQLNamedType] = [t for _, t in sorted(public.type_map.items()) if is_defined_type(t)]
    parts = [
        *filter(None, [print_schema_definition(public)]),
        *(print_directive(d) for d in public.directives if not is_specified_directive(d)),
        *(print_type(t) for t in types),
    ]
    return "\n\n".join(parts)


def _is_federation(directive: GraphQLDirective) -> bool:
    definition = directive.extensions.get("strawberry-definition")
    origin = getattr(definition, "origin", None)
    return origin is not None and origin.__module__.startswith("strawberry.federation")
