"""Ticket: the customer's request, from first contact through resolution and satisfaction."""

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Optional

import strawberry
from strawberry import UNSET, Maybe
from strawberry.types import Info

from graph.types.comment import thread, thread_length
from graph.types.common import MetaFields, Node, allowed_transitions, children, is_row_of, related, verb_enum
from graph.types.event import history
from graph.types.filters import (
    DateTimeFilter,
    IDFilter,
    IntFilter,
    OrderDirection,
    PriorityFilter,
    SlaStateFilter,
    StringFilter,
    TagsFilter,
    TicketChannelFilter,
    TicketStatusFilter,
)  # fmt: skip
from graph.types.slapolicy import sla_field
from models.entities import Ticket as TicketRow
from models.enums import Priority, TicketChannel, TicketStatus

if TYPE_CHECKING:  # a lazy type: imported only for the checker
    from graph.types.subscription import Subscription

TicketVerb = verb_enum("Ticket")


@strawberry.type(description="A customer's request for help, linked to the business graph around it.")
class Ticket(Node, MetaFields):
    subject: str
    description: Optional[str]
    status: TicketStatus
    priority: Optional[Priority]
    category: Optional[str]
    channel: Optional[TicketChannel]
    tags: list[str]
    requester = related("Contact", "requester_id", "The contact who asked for help.")
    assignee = related("Contact", "assignee_id", "The teammate working on it.")
    organization = related("Organization", "organization_id")
    deal = related("Deal", "deal_id")
    first_response_at: Optional[datetime]
    resolved_at: Optional[datetime]
    closed_at: Optional[datetime]
    satisfaction: Optional[int] = strawberry.field(description="The customer's rating, 1–5.")
    issues = children("Issue", "ticket_id", "Engineering issues raised by its escalations.")
    activities = children("Activity", "ticket_id")
    comments = thread
    comment_count = thread_length
    merged_into = related("Ticket", "merged_into_id", "The ticket this one was merged into (then CLOSED).")
    merged_tickets = children("Ticket", "merged_into_id", "The tickets merged into this one.")
    sla = sla_field
    events = history()
    allowed_transitions = allowed_transitions("Ticket", TicketVerb)

    @strawberry.field(
        description="The organization's current billing subscription (ACTIVE, TRIALING or PAST_DUE before CANCELLED)."
    )
    async def subscription(
        self, root: TicketRow, info: Info
    ) -> Optional[Annotated["Subscription", strawberry.lazy("graph.types.subscription")]]:
        return await info.context.loaders.current_subscription(root.organization_id)

    is_type_of = is_row_of("Ticket")


@strawberry.input
class CreateTicketInput:
    subject: str
    description: Optional[str] = UNSET
    priority: Optional[Priority] = UNSET
    category: Optional[str] = UNSET
    channel: Optional[TicketChannel] = UNSET
    tags: Optional[list[str]] = UNSET
    requester: Optional[strawberry.ID] = UNSET
    assignee: Optional[strawberry.ID] = UNSET
    organization: Optional[strawberry.ID] = UNSET
    deal: Optional[strawberry.ID] = UNSET
    first_response_at: Optional[datetime] = strawberry.field(
        default=UNSET, description="Set by an integration that answered elsewhere."
    )
    satisfaction: Optional[int] = UNSET


@strawberry.input(description="Only the fields given change; null clears a field.")
class UpdateTicketInput:
    subject: Maybe[Optional[str]]
    description: Maybe[Optional[str]]
    status: Maybe[Optional[TicketStatus]] = strawberry.field(
        description="OPEN → PENDING or IN_PROGRESS; PENDING ↔ IN_PROGRESS; REOPENED → OPEN."
    )
    priority: Maybe[Optional[Priority]]
    category: Maybe[Optional[str]]
    channel: Maybe[Optional[TicketChannel]]
    tags: Maybe[Optional[list[str]]]
    requester: Maybe[Optional[strawberry.ID]]
    assignee: Maybe[Optional[strawberry.ID]]
    organization: Maybe[Optional[strawberry.ID]]
    deal: Maybe[Optional[strawberry.ID]]
    first_response_at: Maybe[Optional[datetime]]
    satisfaction: Maybe[Optional[int]]


@strawberry.input
class TicketWhere:
    id: Optional[IDFilter] = UNSET
    subject: Optional[StringFilter] = UNSET
    description: Optional[StringFilter] = UNSET
    status: Optional[TicketStatusFilter] = UNSET
    priority: Optional[PriorityFilter] = UNSET
    category: Optional[StringFilter] = UNSET
    channel: Optional[TicketChannelFilter] = UNSET
    tags: Optional[TagsFilter] = UNSET
    requester: Optional[IDFilter] = UNSET
    assignee: Optional[IDFilter] = UNSET
    organization: Optional[IDFilter] = UNSET
    deal: Optional[IDFilter] = UNSET
    satisfaction: Optional[IntFilter] = UNSET
    merged_into: Optional[IDFilter] = UNSET
    sla_state: Optional[SlaStateFilter] = UNSET
    first_response_at: Optional[DateTimeFilter] = UNSET
    resolved_at: Optional[DateTimeFilter] = UNSET
    closed_at: Optional[DateTimeFilter] = UNSET
    created_at: Optional[DateTimeFilter] = UNSET
    updated_at: Optional[DateTimeFilter] = UNSET
    created_by: Optional[IDFilter] = UNSET
    and_: Optional[list["TicketWhere"]] = strawberry.field(name="and", default=UNSET)
    or_: Optional[list["TicketWhere"]] = strawberry.field(name="or", default=UNSET)
    not_: Optional["TicketWhere"] = strawberry.field(name="not", default=UNSET)


@strawberry.enum
class TicketOrderField(Enum):
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"
    PRIORITY = "priority"
    STATUS = "status"
    SUBJECT = "subject"
    SATISFACTION = "satisfaction"
    SLA_DUE_AT = strawberry.enum_value("sla_due_at", description="The earliest service-level target still running.")


@strawberry.input
class TicketOrder:
    field: TicketOrderField
    direction: OrderDirection = OrderDirection.ASC
