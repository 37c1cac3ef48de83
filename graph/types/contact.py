"""Contact: a person at a customer — a requester, a champion — or a teammate who owns them."""

from enum import Enum
from typing import Optional

import strawberry
from strawberry import UNSET, Maybe

from graph.types.common import (
    MetaFields,
    Node,
    allowed_transitions,
    is_row_of,
    related,
    reverse,
    verb_enum,
)  # fmt: skip
from graph.types.event import history
from graph.types.filters import (
    ContactRoleFilter,
    ContactStageFilter,
    ContactStatusFilter,
    DateTimeFilter,
    IDFilter,
    IntFilter,
    OrderDirection,
    StringFilter,
)  # fmt: skip
from models.enums import ContactRole, ContactStage, ContactStatus

ContactVerb = verb_enum("Contact")


@strawberry.type(description="A person in the CRM.")
class Contact(Node, MetaFields):
    name: str
    first_name: Optional[str]
    last_name: Optional[str]
    email: Optional[str]
    phone: Optional[str]
    title: Optional[str]
    organization = related("Organization", "organization_id")
    owner = related("Contact", "owner_id", "The teammate who owns the relationship.")
    role: Optional[ContactRole]
    stage: ContactStage
    status: ContactStatus
    source: Optional[str]
    lead_score: Optional[int]
    timezone: Optional[str]
    language: Optional[str]
    tickets = reverse("Ticket", "requester_id", "Tickets this contact asked for.")
    assigned_tickets = reverse("Ticket", "assignee_id", "Tickets assigned to this contact.")
    deals = reverse("Deal", "contact_id")
    activities = reverse("Activity", "contact_id")
    events = history()
    allowed_transitions = allowed_transitions("Contact", ContactVerb)
    is_type_of = is_row_of("Contact")


@strawberry.input
class CreateContactInput:
    name: str
    first_name: Optional[str] = UNSET
    last_name: Optional[str] = UNSET
    email: Optional[str] = UNSET
    phone: Optional[str] = UNSET
    title: Optional[str] = UNSET
    organization: Optional[strawberry.ID] = UNSET
    owner: Optional[strawberry.ID] = UNSET
    role: Optional[ContactRole] = UNSET
    status: Optional[ContactStatus] = UNSET
    source: Optional[str] = UNSET
    lead_score: Optional[int] = UNSET
    timezone: Optional[str] = UNSET
    language: Optional[str] = UNSET


@strawberry.input(description="Only the fields given change; null clears a field.")
class UpdateContactInput:
    name: Maybe[Optional[str]]
    first_name: Maybe[Optional[str]]
    last_name: Maybe[Optional[str]]
    email: Maybe[Optional[str]]
    phone: Maybe[Optional[str]]
    title: Maybe[Optional[str]]
    organization: Maybe[Optional[strawberry.ID]]
    role: Maybe[Optional[ContactRole]]
    stage: Maybe[Optional[ContactStage]] = strawberry.field(
        description="QUALIFIED → CUSTOMER; CUSTOMER ↔ CHURNED; to PARTNER. LEAD → QUALIFIED is qualifyContact."
    )
    status: Maybe[Optional[ContactStatus]]
    source: Maybe[Optional[str]]
    lead_score: Maybe[Optional[int]]
    timezone: Maybe[Optional[str]]
    language: Maybe[Optional[str]]


@strawberry.input
class ContactWhere:
    id: Optional[IDFilter] = UNSET
    name: Optional[StringFilter] = UNSET
    email: Optional[StringFilter] = UNSET
    phone: Optional[StringFilter] = UNSET
    title: Optional[StringFilter] = UNSET
    organization: Optional[IDFilter] = UNSET
    owner: Optional[IDFilter] = UNSET
    role: Optional[ContactRoleFilter] = UNSET
    stage: Optional[ContactStageFilter] = UNSET
    status: Optional[ContactStatusFilter] = UNSET
    source: Optional[StringFilter] = UNSET
    lead_score: Optional[IntFilter] = UNSET
    created_at: Optional[DateTimeFilter] = UNSET
    updated_at: Optional[DateTimeFilter] = UNSET
    and_: Optional[list["ContactWhere"]] = strawberry.field(name="and", default=UNSET)
    or_: Optional[list["ContactWhere"]] = strawberry.field(name="or", default=UNSET)
    not_: Optional["ContactWhere"] = strawberry.field(name="not", default=UNSET)


@strawberry.enum
class ContactOrderField(Enum):
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"
    NAME = "name"
    EMAIL = "email"
    STAGE = "stage"
    LEAD_SCORE = "lead_score"


@strawberry.input
class ContactOrder:
    field: ContactOrderField
    direction: OrderDirection = OrderDirection.ASC
