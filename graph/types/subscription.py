"""Subscription: an organization's billing subscription (not the GraphQL operation type)."""

from datetime import datetime
from enum import Enum
from typing import Optional

import strawberry
from strawberry import UNSET, Maybe

from graph.types.common import MetaFields, Node, allowed_transitions, is_row_of, related, verb_enum
from graph.types.event import history
from graph.types.filters import (
    BooleanFilter,
    DateTimeFilter,
    IDFilter,
    IntFilter,
    OrderDirection,
    StringFilter,
    SubscriptionStatusFilter,
)  # fmt: skip
from models.enums import SubscriptionStatus

SubscriptionVerb = verb_enum("Subscription")


@strawberry.type(description="A billing subscription of an organization.")
class Subscription(Node, MetaFields):
    status: SubscriptionStatus
    organization = related("Organization", "organization_id")
    plan: Optional[str]
    current_period_start: Optional[datetime]
    current_period_end: Optional[datetime]
    started_at: datetime
    cancel_at_period_end: bool
    trial_end: Optional[datetime]
    canceled_at: Optional[datetime]
    paused_at: Optional[datetime]
    quantity: int
    events = history()
    allowed_transitions = allowed_transitions("Subscription", SubscriptionVerb)
    is_type_of = is_row_of("Subscription")


@strawberry.input(description="Starts ACTIVE, or TRIALING when a trial end is given.")
class CreateSubscriptionInput:
    started_at: datetime
    organization: Optional[strawberry.ID] = UNSET
    plan: Optional[str] = UNSET
    current_period_start: Optional[datetime] = UNSET
    current_period_end: Optional[datetime] = UNSET
    cancel_at_period_end: Optional[bool] = UNSET
    trial_end: Optional[datetime] = UNSET
    quantity: Optional[int] = UNSET


@strawberry.input(description="Only the fields given change; null clears a field.")
class UpdateSubscriptionInput:
    status: Maybe[Optional[SubscriptionStatus]] = strawberry.field(
        description="ACTIVE or INCOMPLETE → PAST_DUE (a failed payment). Other moves are verbs."
    )
    organization: Maybe[Optional[strawberry.ID]]
    plan: Maybe[Optional[str]]
    current_period_start: Maybe[Optional[datetime]]
    current_period_end: Maybe[Optional[datetime]]
    started_at: Maybe[Optional[datetime]]
    cancel_at_period_end: Maybe[Optional[bool]]
    trial_end: Maybe[Optional[datetime]]
    quantity: Maybe[Optional[int]]


@strawberry.input
class SubscriptionWhere:
    id: Optional[IDFilter] = UNSET
    status: Optional[SubscriptionStatusFilter] = UNSET
    organization: Optional[IDFilter] = UNSET
    plan: Optional[StringFilter] = UNSET
    started_at: Optional[DateTimeFilter] = UNSET
    current_period_end: Optional[DateTimeFilter] = UNSET
    cancel_at_period_end: Optional[BooleanFilter] = UNSET
    quantity: Optional[IntFilter] = UNSET
    created_at: Optional[DateTimeFilter] = UNSET
    updated_at: Optional[DateTimeFilter] = UNSET
    and_: Optional[list["SubscriptionWhere"]] = strawberry.field(name="and", default=UNSET)
    or_: Optional[list["SubscriptionWhere"]] = strawberry.field(name="or", default=UNSET)
    not_: Optional["SubscriptionWhere"] = strawberry.field(name="not", default=UNSET)


@strawberry.enum
class SubscriptionOrderField(Enum):
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"
    STARTED_AT = "started_at"
    STATUS = "status"
    QUANTITY = "quantity"


@strawberry.input
class SubscriptionOrder:
    field: SubscriptionOrderField
    direction: OrderDirection = OrderDirection.ASC
