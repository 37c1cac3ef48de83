"""Deal: a sales opportunity moving through the pipeline."""

from datetime import date
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
    DateTimeFilter,
    DealStageFilter,
    FloatFilter,
    IDFilter,
    IntFilter,
    OrderDirection,
    StringFilter,
)  # fmt: skip
from models.enums import DealStage

DealVerb = verb_enum("Deal")


@strawberry.type(description="A sales opportunity.")
class Deal(Node, MetaFields):
    name: str
    value: float
    currency: str
    organization = related("Organization", "organization_id")
    contact = related("Contact", "contact_id")
    owner = related("Contact", "owner_id")
    stage: DealStage
    probability: Optional[int]
    expected_close_date: Optional[date]
    actual_close_date: Optional[date]
    lost_reason: Optional[str]
    won_reason: Optional[str]
    tickets = reverse("Ticket", "deal_id")
    activities = reverse("Activity", "deal_id")
    events = history()
    allowed_transitions = allowed_transitions("Deal", DealVerb)
    is_type_of = is_row_of("Deal")


@strawberry.input
class CreateDealInput:
    name: str
    value: float
    currency: Optional[str] = UNSET
    organization: Optional[strawberry.ID] = UNSET
    contact: Optional[strawberry.ID] = UNSET
    owner: Optional[strawberry.ID] = UNSET
    probability: Optional[int] = UNSET
    expected_close_date: Optional[date] = UNSET


@strawberry.input(description="Only the fields given change; null clears a field. Stages move by verbs.")
class UpdateDealInput:
    name: Maybe[Optional[str]]
    value: Maybe[Optional[float]]
    currency: Maybe[Optional[str]]
    organization: Maybe[Optional[strawberry.ID]]
    contact: Maybe[Optional[strawberry.ID]]
    owner: Maybe[Optional[strawberry.ID]]
    probability: Maybe[Optional[int]]
    expected_close_date: Maybe[Optional[date]]


@strawberry.input
class DealWhere:
    id: Optional[IDFilter] = UNSET
    name: Optional[StringFilter] = UNSET
    value: Optional[FloatFilter] = UNSET
    currency: Optional[StringFilter] = UNSET
    organization: Optional[IDFilter] = UNSET
    contact: Optional[IDFilter] = UNSET
    owner: Optional[IDFilter] = UNSET
    stage: Optional[DealStageFilter] = UNSET
    probability: Optional[IntFilter] = UNSET
    created_at: Optional[DateTimeFilter] = UNSET
    updated_at: Optional[DateTimeFilter] = UNSET
    and_: Optional[list["DealWhere"]] = strawberry.field(name="and", default=UNSET)
    or_: Optional[list["DealWhere"]] = strawberry.field(name="or", default=UNSET)
    not_: Optional["DealWhere"] = strawberry.field(name="not", default=UNSET)


@strawberry.enum
class DealOrderField(Enum):
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"
    NAME = "name"
    VALUE = "value"
    STAGE = "stage"


@strawberry.input
class DealOrder:
    field: DealOrderField
    direction: OrderDirection = OrderDirection.ASC
