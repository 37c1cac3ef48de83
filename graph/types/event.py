"""The event log as GraphQL: ``Event``, its filters, and the ``events`` history field."""

from datetime import datetime
from enum import Enum
from typing import Any, Optional

import strawberry
from strawberry import UNSET
from strawberry.scalars import JSON
from strawberry.types import Info

from graph.types.common import Connection, Node, list_connection
from graph.types.filters import DateTimeFilter, IDFilter, IntFilter, OrderDirection, StringFilter
from models.base import ENTITIES
from models.event import Event as EventRow
from models.ids import type_of


@strawberry.type(description="One lifecycle event: what happened to which entity, by whom, when.")
class Event(Node):
    type: str = strawberry.field(description='Entity, dot, past-tense verb: "Ticket.Escalated".')
    entity_type: str
    target: strawberry.ID = strawberry.field(description="The id of the entity it happened to.")
    actor: strawberry.ID
    timestamp: datetime
    version: int = strawberry.field(description="The entity's version after this event.")
    data: JSON = strawberry.field(
        description="Creates: the whole entity. Others: `{field: {before, after}}` and the verb's arguments."
    )
    sequence: int = strawberry.field(description="Gapless per tenant, in commit order.", resolver=lambda root: root.seq)

    @strawberry.field(description="The entity as it is now.")
    async def entity(self, info: Info) -> Optional[Node]:
        kind = ENTITIES.get(type_of(self.target) or "")
        return None if kind is None else await info.context.loaders.by_id(kind).load(self.target)

    @strawberry.field(description="The event whose hook caused this one, if any.")
    async def cause(self, root: EventRow, info: Info) -> Optional["Event"]:
        if root.cause_id is None:
            return None
        return await info.context.loaders.by_id(EventRow).load(root.cause_id)

    @classmethod
    def is_type_of(cls, obj: Any, info: Info) -> bool:
        return isinstance(obj, EventRow)


@strawberry.input
class EventWhere:
    id: Optional[IDFilter] = UNSET
    type: Optional[StringFilter] = UNSET
    entity_type: Optional[StringFilter] = UNSET
    target: Optional[IDFilter] = UNSET
    actor: Optional[IDFilter] = UNSET
    timestamp: Optional[DateTimeFilter] = UNSET
    version: Optional[IntFilter] = UNSET
    and_: Optional[list["EventWhere"]] = strawberry.field(name="and", default=UNSET)
    or_: Optional[list["EventWhere"]] = strawberry.field(name="or", default=UNSET)
    not_: Optional["EventWhere"] = strawberry.field(name="not", default=UNSET)


@strawberry.enum
class EventOrderField(Enum):
    SEQUENCE = "seq"


@strawberry.input(description="Events are in commit order; DESC lists the newest first.")
class EventOrder:
    field: EventOrderField = EventOrderField.SEQUENCE
    direction: OrderDirection = OrderDirection.ASC


def history(description: str = "This entity's events, in commit order.") -> Any:
    """The ``events`` field of an entity: its own history as a connection."""

    async def resolve(
        root: strawberry.Parent[Any],
        info: Info,
        first: Optional[int] = UNSET,
        after: Optional[str] = UNSET,
        last: Optional[int] = UNSET,
        before: Optional[str] = UNSET,
    ) -> Connection[Event]:
        where = EventWhere(target=IDFilter(eq=root.id))
        return await list_connection(info, "Event", where, None, first, after, last, before, False)

    return strawberry.field(resolver=resolve, description=description)
