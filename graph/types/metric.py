"""Metric: a named measurement, such as ``ticket.resolution_time``."""

from datetime import datetime
from enum import Enum
from typing import Optional

import strawberry
from strawberry import UNSET, Maybe
from strawberry.scalars import JSON

from graph.types.common import MetaFields, Node, allowed_transitions, is_row_of, related, verb_enum
from graph.types.event import history
from graph.types.filters import (
    DateTimeFilter,
    FloatFilter,
    IDFilter,
    MetricTypeFilter,
    OrderDirection,
    StringFilter,
)  # fmt: skip
from models.enums import MetricType

MetricVerb = verb_enum("Metric")


@strawberry.type(description="A measurement with dimensions.")
class Metric(Node, MetaFields):
    name: str
    value: float
    type: Optional[MetricType]
    unit: Optional[str]
    dimensions: Optional[JSON]
    organization = related("Organization", "organization_id")
    timestamp: Optional[datetime]
    events = history()
    allowed_transitions = allowed_transitions("Metric", MetricVerb)
    is_type_of = is_row_of("Metric")


@strawberry.input
class CreateMetricInput:
    name: str
    value: float
    type: Optional[MetricType] = UNSET
    unit: Optional[str] = UNSET
    dimensions: Optional[JSON] = UNSET
    organization: Optional[strawberry.ID] = UNSET
    timestamp: Optional[datetime] = UNSET


@strawberry.input(description="Only the fields given change; null clears a field.")
class UpdateMetricInput:
    name: Maybe[Optional[str]]
    value: Maybe[Optional[float]]
    type: Maybe[Optional[MetricType]]
    unit: Maybe[Optional[str]]
    dimensions: Maybe[Optional[JSON]]
    organization: Maybe[Optional[strawberry.ID]]
    timestamp: Maybe[Optional[datetime]]


@strawberry.input
class MetricWhere:
    id: Optional[IDFilter] = UNSET
    name: Optional[StringFilter] = UNSET
    value: Optional[FloatFilter] = UNSET
    type: Optional[MetricTypeFilter] = UNSET
    unit: Optional[StringFilter] = UNSET
    organization: Optional[IDFilter] = UNSET
    timestamp: Optional[DateTimeFilter] = UNSET
    created_at: Optional[DateTimeFilter] = UNSET
    updated_at: Optional[DateTimeFilter] = UNSET
    and_: Optional[list["MetricWhere"]] = strawberry.field(name="and", default=UNSET)
    or_: Optional[list["MetricWhere"]] = strawberry.field(name="or", default=UNSET)
    not_: Optional["MetricWhere"] = strawberry.field(name="not", default=UNSET)


@strawberry.enum
class MetricOrderField(Enum):
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"
    NAME = "name"
    VALUE = "value"


@strawberry.input
class MetricOrder:
    field: MetricOrderField
    direction: OrderDirection = OrderDirection.ASC
