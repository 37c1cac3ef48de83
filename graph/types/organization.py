"""Organization: a customer, prospect or partner company, and everything that hangs off it."""

from enum import Enum
from typing import Optional

import strawberry
from strawberry import UNSET, Maybe

from graph.types.common import MetaFields, Node, is_row_of, related, reverse
from graph.types.event import history
from graph.types.filters import (
    DateTimeFilter,
    FloatFilter,
    IDFilter,
    IntFilter,
    OrderDirection,
    OrganizationStatusFilter,
    OrganizationTierFilter,
    OrganizationTypeFilter,
    StringFilter,
)  # fmt: skip
from models.enums import OrganizationStatus, OrganizationTier, OrganizationType


@strawberry.type(description="A company in the business graph.")
class Organization(Node, MetaFields):
    name: str
    slug: Optional[str]
    domain: Optional[str]
    website: Optional[str]
    type: Optional[OrganizationType]
    status: OrganizationStatus
    tier: Optional[OrganizationTier]
    industry: Optional[str]
    employee_count: Optional[int]
    annual_revenue: Optional[float]
    country: Optional[str]
    parent = related("Organization", "parent_id")
    health_score: Optional[int]
    lifetime_value: Optional[float]
    contacts = reverse("Contact", "organization_id")
    tickets = reverse("Ticket", "organization_id")
    deals = reverse("Deal", "organization_id")
    subscriptions = reverse("Subscription", "organization_id")
    activities = reverse("Activity", "organization_id")
    subsidiaries = reverse("Organization", "parent_id")
    events = history()
    is_type_of = is_row_of("Organization")


@strawberry.input
class CreateOrganizationInput:
    name: str
    slug: Optional[str] = UNSET
    domain: Optional[str] = UNSET
    website: Optional[str] = UNSET
    type: Optional[OrganizationType] = UNSET
    status: Optional[OrganizationStatus] = UNSET
    tier: Optional[OrganizationTier] = UNSET
    industry: Optional[str] = UNSET
    employee_count: Optional[int] = UNSET
    annual_revenue: Optional[float] = UNSET
    country: Optional[str] = UNSET
    parent: Optional[strawberry.ID] = UNSET
    health_score: Optional[int] = UNSET
    lifetime_value: Optional[float] = UNSET


@strawberry.input(description="Only the fields given change; null clears a field.")
class UpdateOrganizationInput:
    name: Maybe[Optional[str]]
    slug: Maybe[Optional[str]]
    domain: Maybe[Optional[str]]
    website: Maybe[Optional[str]]
    type: Maybe[Optional[OrganizationType]]
    status: Maybe[Optional[OrganizationStatus]]
    tier: Maybe[Optional[OrganizationTier]]
    industry: Maybe[Optional[str]]
    employee_count: Maybe[Optional[int]]
    annual_revenue: Maybe[Optional[float]]
    country: Maybe[Optional[str]]
    parent: Maybe[Optional[strawberry.ID]]
    health_score: Maybe[Optional[int]]
    lifetime_value: Maybe[Optional[float]]


@strawberry.input
class OrganizationWhere:
    id: Optional[IDFilter] = UNSET
    name: Optional[StringFilter] = UNSET
    slug: Optional[StringFilter] = UNSET
    domain: Optional[StringFilter] = UNSET
    type: Optional[OrganizationTypeFilter] = UNSET
    status: Optional[OrganizationStatusFilter] = UNSET
    tier: Optional[OrganizationTierFilter] = UNSET
    industry: Optional[StringFilter] = UNSET
    employee_count: Optional[IntFilter] = UNSET
    annual_revenue: Optional[FloatFilter] = UNSET
    country: Optional[StringFilter] = UNSET
    parent: Optional[IDFilter] = UNSET
    health_score: Optional[IntFilter] = UNSET
    created_at: Optional[DateTimeFilter] = UNSET
    updated_at: Optional[DateTimeFilter] = UNSET
    and_: Optional[list["OrganizationWhere"]] = strawberry.field(name="and", default=UNSET)
    or_: Optional[list["OrganizationWhere"]] = strawberry.field(name="or", default=UNSET)
    not_: Optional["OrganizationWhere"] = strawberry.field(name="not", default=UNSET)


@strawberry.enum
class OrganizationOrderField(Enum):
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"
    NAME = "name"
    TIER = "tier"
    HEALTH_SCORE = "health_score"


@strawberry.input
class OrganizationOrder:
    field: OrganizationOrderField
    direction: OrderDirection = OrderDirection.ASC
