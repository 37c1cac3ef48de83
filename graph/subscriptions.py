"""The root subscription type, ``Live``: lifecycle events as they commit, resumable by cursor.

A resolver here only scopes to the caller's tenant and filters; ``resolvers.live`` does the
listening, replaying and de-duplicating.
"""

from collections.abc import AsyncGenerator
from typing import Any, Optional, TypeVar

import strawberry
from strawberry import UNSET
from strawberry.types import Info
from strawberry.types.unset import UnsetType

from graph.types.common import plain
from graph.types.event import Event
from graph.types.queue import DEFAULT_QUEUE_PAGE, TicketQueueUpdate, queue_updates
from graph.types.ticket import Ticket, TicketOrder, TicketWhere
from models.entities import Ticket as TicketRow
from resolvers.events import state_after
from resolvers.live import EventFilter
from resolvers.loaders import Loaders
from resolvers.query import matches


@strawberry.type(description="A ticket event with the ticket as it stood right after it.")
class TicketEvent:
    event: Event
    # the row itself, exposed as the ``Ticket`` type (as the ticket mutations return it)
    ticket: TicketRow = strawberry.field(graphql_type=Ticket)


def _renew(context: Any) -> None:
    """Fresh loaders for the next event: nothing cached across events. The old ones are freed
    at once (no load function refers back to its ``Loaders``; tests/test_plain_reads_recovery.py)."""
    context.loaders = Loaders(context.db, context.tenant)


T = TypeVar("T")


def _given(value: T | UnsetType) -> T | None:
    return None if isinstance(value, UnsetType) else value  # UNSET is its only instance


@strawberry.type(name="Live", description="Live streams (the root subscription type).")
class Live:
    @strawberry.subscription(
        description="Every lifecycle event of the caller's tenant that matches, in commit order. "
        "With `after` (an event id), the stored events after it come first, then live ones: "
        "nothing is lost or repeated across a reconnect."
    )
    async def events(
        self,
        info: Info,
        types: Optional[list[str]] = UNSET,
        entity_types: Optional[list[str]] = UNSET,
        target: Optional[strawberry.ID] = UNSET,
        after: Optional[strawberry.ID] = UNSET,
    ) -> AsyncGenerator[Event, None]:
        context = info.context
        only = EventFilter(
            types=frozenset(_given(types) or ()),
            entity_types=frozenset(_given(entity_types) or ()),
            target=_given(target),
        )
        async for event in context.services.live.stream(context.tenant, after=_given(after), only=only):
            _renew(context)
            yield event

    @strawberry.subscription(description="Ticket events whose ticket, right after the event, matches `where`.")
    async def ticket_events(
        self, info: Info, where: Optional[TicketWhere] = UNSET, after: Optional[strawberry.ID] = UNSET
    ) -> AsyncGenerator[TicketEvent, None]:
        context = info.context
        condition = plain(_given(where)) or None
        only = EventFilter(entity_types=frozenset({"Ticket"}))
        async for event in context.services.live.stream(context.tenant, after=_given(after), only=only):
            ticket = await state_after(context.db, TicketRow, tenant=context.tenant, event=event)
            if ticket is None or not matches(TicketRow, condition, ticket):
                continue
            _renew(context)
            yield TicketEvent(event=event, ticket=ticket)

    @strawberry.subscription(
        description="A page of tickets kept current: first a SNAPSHOT of the page in order, then one message "
        "per committed change to it (ADDED, REMOVED, CHANGED, with the event and its id as `cursor`). "
        "With `after` (a cursor), the changes since it come first instead of a snapshot, while they can "
        "still be replayed."
    )
    async def ticket_queue(
        self,
        info: Info,
        where: Optional[TicketWhere] = UNSET,
        order_by: Optional[list[TicketOrder]] = UNSET,
        first: Optional[int] = DEFAULT_QUEUE_PAGE,
        after: Optional[strawberry.ID] = UNSET,
    ) -> AsyncGenerator[TicketQueueUpdate, None]:
        context = info.context
        updates = queue_updates(context, _given(where), _given(order_by), first, _given(after))
        async for update in updates:
            _renew(context)
            yield TicketQueueUpdate.of(update)
