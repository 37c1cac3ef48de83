"""Live queues as GraphQL: ``TicketQueueUpdate`` and its kinds, and the ``ticketQueue`` stream."""

from collections.abc import AsyncIterator
from typing import Any, Optional

import strawberry

from graph.types.common import order_pairs, plain
from graph.types.event import Event
from graph.types.ticket import Ticket, TicketOrder, TicketWhere
from models.entities import Ticket as TicketRow
from models.event import Event as EventRow
from resolvers.queue import queues_for
from resolvers.queue_window import QueueUpdate
from resolvers.queue_window import QueueUpdateKind as Kind

#: the page size of a queue unless ``first`` says otherwise
DEFAULT_QUEUE_PAGE = 50

QueueUpdateKind = strawberry.enum(
    Kind,
    description="SNAPSHOT: the whole page. ADDED: a ticket now on it. REMOVED: a ticket gone from it "
    "(no longer matches, or pushed off the page). CHANGED: a ticket still on it, in a new state.",
)


@strawberry.type(
    description="One message of a live queue: the whole page (SNAPSHOT), or one change to it. "
    "Applied in order, the messages keep a client's page equal to the list query's first page."
)
class TicketQueueUpdate:
    kind: QueueUpdateKind
    tickets: list[TicketRow] = strawberry.field(
        graphql_type=list[Ticket],
        description="SNAPSHOT: the page, in order. Otherwise the one ticket added, removed or changed, as it now stands.",
    )
    position: Optional[int] = strawberry.field(
        description="0-based: the ticket's index on the page once this is applied (ADDED, CHANGED), or the "
        "index it is removed from (REMOVED)."
    )
    event: Optional[EventRow] = strawberry.field(
        graphql_type=Optional[Event], description="The event that caused the change (null for a SNAPSHOT)."
    )
    cursor: Optional[strawberry.ID] = strawberry.field(
        description="The id of the event it belongs to (a SNAPSHOT: the last event the page reflects). Resume "
        "with `after` set to the cursor of the last message applied with `remaining: 0`."
    )
    remaining: int = strawberry.field(
        description="How many more messages of the same event follow this one (an event can remove one ticket "
        "and add another): at 0 the page reflects the whole event."
    )

    @classmethod
    def of(cls, update: QueueUpdate) -> "TicketQueueUpdate":
        return cls(
            kind=update.kind, tickets=update.tickets, position=update.position, event=update.event,
            cursor=None if update.cursor is None else strawberry.ID(update.cursor), remaining=update.remaining,
        )  # fmt: skip


def queue_updates(
    context: Any, where: Optional[TicketWhere], order_by: Optional[list[TicketOrder]], first: Optional[int],
    after: Optional[str],
) -> AsyncIterator[QueueUpdate]:  # fmt: skip
    """The caller's tenant's queue of ``where``/``orderBy``/``first``, from ``after`` if given."""
    queues = queues_for(context.services.live)
    spec = queues.spec(
        context.tenant, where=plain(where) or None, order=order_pairs(order_by),
        first=DEFAULT_QUEUE_PAGE if first is None else first,
    )  # fmt: skip
    return queues.follow(spec, after=after)
