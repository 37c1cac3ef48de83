"""The root ``Query``: one field and one list per entity, ``node``, and the event log."""

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Optional

import strawberry
from strawberry import UNSET
from strawberry.types import Info

from graph.types.common import Connection, Node, given, list_connection, plain, reverse
from graph.types.event import Event, EventOrder, EventWhere
from graph.types.ratelimit import rate_limit_field
from graph.types.support_metrics import support_metrics_field
from graph.types.webhook import Webhook
from models.base import ENTITIES, Entity
from models.event import Event as EventRow
from models.ids import type_of
from models.webhooks import Webhook as WebhookRow
from models.webhooks import WebhookDelivery as DeliveryRow
from resolvers import events, query, search

if TYPE_CHECKING:  # lazy types: imported only for the checker
    from graph.types.ticket import Ticket, TicketWhere


def one(entity: str) -> Any:
    """``ticket(id, asOf)``: one entity of the caller's tenant, now or as it stood then."""
    kind = ENTITIES[entity]

    async def resolve(
        info: Info, id: strawberry.ID, as_of: Optional[datetime] = UNSET
    ) -> Optional[Annotated[entity, strawberry.lazy(f"graph.types.{entity.lower()}")]]:
        return await fetch(info, kind, id, given(as_of))

    return strawberry.field(
        resolver=resolve,
        description=f"One {entity.lower()} by id; with asOf, as it stood then (replayed from its events).",
    )


async def fetch(info: Info, kind: type[Entity], id_: str, when: Optional[datetime] = None) -> Any:
    context = info.context
    if type_of(id_) != kind.type_name:
        return None
    if when is not None:
        found = await events.as_of(context.db, kind, tenant=context.tenant, id_=id_, when=when)
    else:
        found = await query.get(context.db, kind, tenant=context.tenant, id_=id_)
    return None if found is None or (found.deleted_at is not None and when is None) else found


@strawberry.type
class Query:
    ticket = one("Ticket")
    tickets = reverse("Ticket", description="Tickets, oldest first unless ordered.")
    contact = one("Contact")
    contacts = reverse("Contact")
    organization = one("Organization")
    organizations = reverse("Organization")
    deal = one("Deal")
    deals = reverse("Deal")
    subscription = one("Subscription")
    subscriptions = reverse("Subscription")
    issue = one("Issue")
    issues = reverse("Issue")
    activity = one("Activity")
    activities = reverse("Activity")
    metric = one("Metric")
    metrics = reverse("Metric")
    sla_policy = one("SlaPolicy")
    sla_policies = reverse("SlaPolicy", description="Service-level policies, by position unless ordered.")
    support_metrics = support_metrics_field
    rate_limit = rate_limit_field

    @strawberry.field(
        description="Full-text search over subject, description and comments, best match first (ties: newest "
        'first): words, "a phrase", -word to exclude, OR between words; English stems, any case and accents.'
    )
    async def search_tickets(
        self,
        info: Info,
        query: str,
        where: Optional[Annotated["TicketWhere", strawberry.lazy("graph.types.ticket")]] = UNSET,
        first: Optional[int] = UNSET,
        after: Optional[str] = UNSET,
    ) -> Connection[Annotated["Ticket", strawberry.lazy("graph.types.ticket")]]:
        context = info.context
        page = await search.search_tickets(
            context.db, tenant=context.tenant, text=query, where=plain(given(where)) or None,
            first=given(first), after=given(after),
        )  # fmt: skip
        return Connection.of(page)

    @strawberry.field(description="Any entity or event by its id; the prefix names the type.")
    async def node(self, info: Info, id: strawberry.ID) -> Optional[Node]:
        entity = type_of(id)
        if entity == "Event":
            return await event_by_id(info, id)
        if entity in ("Webhook", "WebhookDelivery"):
            return await webhook_part(info, id)
        return None if entity is None else await fetch(info, ENTITIES[entity], id)

    @strawberry.field(description="One webhook by id.")
    async def webhook(self, info: Info, id: strawberry.ID) -> Optional[Webhook]:
        return await webhook_part(info, id) if type_of(id) == "Webhook" else None

    @strawberry.field(description="The tenant's webhooks, oldest first.")
    async def webhooks(
        self, info: Info, first: Optional[int] = UNSET, after: Optional[str] = UNSET,
        last: Optional[int] = UNSET, before: Optional[str] = UNSET,
    ) -> Connection[Webhook]:  # fmt: skip
        page = await query.find(
            info.context.db, WebhookRow, tenant=info.context.tenant, first=given(first),
            after=given(after), last=given(last),
            before=given(before),
        )  # fmt: skip
        return Connection.of(page)

    @strawberry.field(description="One event by id.")
    async def event(self, info: Info, id: strawberry.ID) -> Optional[Event]:
        return await event_by_id(info, id)

    @strawberry.field(description="The event log of the caller's tenant, in commit order.")
    async def events(
        self,
        info: Info,
        where: Optional[EventWhere] = UNSET,
        order_by: Optional[list[EventOrder]] = UNSET,
        first: Optional[int] = UNSET,
        after: Optional[str] = UNSET,
        last: Optional[int] = UNSET,
        before: Optional[str] = UNSET,
    ) -> Connection[Event]:
        return await list_connection(info, "Event", where, order_by, first, after, last, before, False)


async def event_by_id(info: Info, id_: str) -> Any:
    if type_of(id_) != "Event":
        return None
    return await info.context.loaders.by_id(EventRow).load(id_)


async def webhook_part(info: Info, id_: str) -> Any:
    """A live webhook or one of its deliveries, by id."""
    kind = WebhookRow if type_of(id_) == "Webhook" else DeliveryRow
    found = await query.get(info.context.db, kind, tenant=info.context.tenant, id_=id_)
    return None if found is None or getattr(found, "deleted_at", None) is not None else found
