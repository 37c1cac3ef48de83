"""Activity: a call, email, meeting or task in the CRM — support follow-ups included."""

from datetime import datetime
from enum import Enum
from typing import Optional

import strawberry
from strawberry import UNSET, Maybe

from graph.types.common import MetaFields, Node, allowed_transitions, is_row_of, related, verb_enum
from graph.types.event import history
from graph.types.filters import (
    ActivityStatusFilter,
    ActivityTypeFilter,
    DateTimeFilter,
    IDFilter,
    OrderDirection,
    PriorityFilter,
    StringFilter,
)  # fmt: skip
from models.enums import ActivityStatus, ActivityType, Priority

ActivityVerb = verb_enum("Activity")


@strawberry.type(description="Something done, or to do, with a contact.")
class Activity(Node, MetaFields):
    subject: str
    type: Optional[ActivityType]
    description: Optional[str]
    contact = related("Contact", "contact_id")
    organization = related("Organization", "organization_id")
    deal = related("Deal", "deal_id")
    ticket = related("Ticket", "ticket_id")
    assignee = related("Contact", "assignee_id")
    due_at: Optional[datetime]
    status: ActivityStatus
    priority: Optional[Priority]
    completed_at: Optional[datetime]
    outcome: Optional[str]
    events = history()
    allowed_transitions = allowed_transitions("Activity", ActivityVerb)
    is_type_of = is_row_of("Activity")


@strawberry.input
class CreateActivityInput:
    subject: str
    type: Optional[ActivityType] = UNSET
    description: Optional[str] = UNSET
    contact: Optional[strawberry.ID] = UNSET
    organization: Optional[strawberry.ID] = UNSET
    deal: Optional[strawberry.ID] = UNSET
    ticket: Optional[strawberry.ID] = UNSET
    assignee: Optional[strawberry.ID] = UNSET
    due_at: Optional[datetime] = UNSET
    priority: Optional[Priority] = UNSET


@strawberry.input(description="Only the fields given change; null clears a field.")
class UpdateActivityInput:
    subject: Maybe[Optional[str]]
    type: Maybe[Optional[ActivityType]]
    description: Maybe[Optional[str]]
    contact: Maybe[Optional[strawberry.ID]]
    organization: Maybe[Optional[strawberry.ID]]
    deal: Maybe[Optional[strawberry.ID]]
    ticket: Maybe[Optional[strawberry.ID]]
    assignee: Maybe[Optional[strawberry.ID]]
    due_at: Maybe[Optional[datetime]]
    status: Maybe[Optional[ActivityStatus]] = strawberry.field(description="PENDING ↔ IN_PROGRESS.")
    priority: Maybe[Optional[Priority]]


@strawberry.input
class ActivityWhere:
    id: Optional[IDFilter] = UNSET
    subject: Optional[StringFilter] = UNSET
    type: Optional[ActivityTypeFilter] = UNSET
    contact: Optional[IDFilter] = UNSET
    organization: Optional[IDFilter] = UNSET
    deal: Optional[IDFilter] = UNSET
    ticket: Optional[IDFilter] = UNSET
    assignee: Optional[IDFilter] = UNSET
    status: Optional[ActivityStatusFilter] = UNSET
    priority: Optional[PriorityFilter] = UNSET
    due_at: Optional[DateTimeFilter] = UNSET
    created_at: Optional[DateTimeFilter] = UNSET
    updated_at: Optional[DateTimeFilter] = UNSET
    and_: Optional[list["ActivityWhere"]] = strawberry.field(name="and", default=UNSET)
    or_: Optional[list["ActivityWhere"]] = strawberry.field(name="or", default=UNSET)
    not_: Optional["ActivityWhere"] = strawberry.field(name="not", default=UNSET)


@strawberry.enum
class ActivityOrderField(Enum):
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"
    SUBJECT = "subject"
    STATUS = "status"
    PRIORITY = "priority"


@strawberry.input
class ActivityOrder:
    field: ActivityOrderField
    direction: OrderDirection = OrderDirection.ASC
