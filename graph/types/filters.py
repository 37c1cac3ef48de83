"""Operator inputs for ``where``: one per scalar kind, and one per enum."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry
from strawberry import UNSET

from models import enums


@strawberry.input(description="Matches an id or a relation's id.")
class IDFilter:
    eq: strawberry.ID | None = UNSET
    ne: strawberry.ID | None = UNSET
    in_: list[strawberry.ID] | None = strawberry.field(name="in", default=UNSET)
    nin: list[strawberry.ID] | None = UNSET
    is_null: bool | None = UNSET


@strawberry.input(description="Matches text; `contains` ignores case.")
class StringFilter:
    eq: str | None = UNSET
    ne: str | None = UNSET
    in_: list[str] | None = strawberry.field(name="in", default=UNSET)
    nin: list[str] | None = UNSET
    gt: str | None = UNSET
    gte: str | None = UNSET
    lt: str | None = UNSET
    lte: str | None = UNSET
    contains: str | None = UNSET
    is_null: bool | None = UNSET


@strawberry.input
class IntFilter:
    eq: int | None = UNSET
    ne: int | None = UNSET
    in_: list[int] | None = strawberry.field(name="in", default=UNSET)
    nin: list[int] | None = UNSET
    gt: int | None = UNSET
    gte: int | None = UNSET
    lt: int | None = UNSET
    lte: int | None = UNSET
    is_null: bool | None = UNSET


@strawberry.input
class FloatFilter:
    eq: float | None = UNSET
    ne: float | None = UNSET
    in_: list[float] | None = strawberry.field(name="in", default=UNSET)
    nin: list[float] | None = UNSET
    gt: float | None = UNSET
    gte: float | None = UNSET
    lt: float | None = UNSET
    lte: float | None = UNSET
    is_null: bool | None = UNSET


@strawberry.input
class DateTimeFilter:
    eq: datetime | None = UNSET
    ne: datetime | None = UNSET
    in_: list[datetime] | None = strawberry.field(name="in", default=UNSET)
    nin: list[datetime] | None = UNSET
    gt: datetime | None = UNSET
    gte: datetime | None = UNSET
    lt: datetime | None = UNSET
    lte: datetime | None = UNSET
    is_null: bool | None = UNSET


@strawberry.input
class BooleanFilter:
    eq: bool | None = UNSET
    ne: bool | None = UNSET
    is_null: bool | None = UNSET


@strawberry.input(description="Matches a list of tags or labels.")
class TagsFilter:
    has_any: list[str] | None = strawberry.field(
        default=UNSET, description="At least one of these tags."
    )


def _enum_filter(enum: type[Enum]):
    namespace = {
        "__annotations__": {
            "eq": enum | None, "ne": enum | None, "in_": list[enum] | None,
            "nin": list[enum] | None, "is_null": bool | None,
        },  # fmt: skip
        "eq": UNSET, "ne": UNSET, "in_": strawberry.field(name="in", default=UNSET),
        "nin": UNSET, "is_null": UNSET,
    }  # fmt: skip
    return strawberry.input(type(f"{enum.__name__}Filter", (), namespace))


# Expose the domain enums to GraphQL, and a filter for each.
for _enum in (
    enums.TicketStatus, enums.Priority, enums.TicketChannel, enums.ContactRole,
    enums.ContactStage, enums.ContactStatus, enums.OrganizationType, enums.OrganizationStatus,
    enums.OrganizationTier, enums.DealStage, enums.SubscriptionStatus, enums.IssueStatus,
    enums.IssueType, enums.ActivityType, enums.ActivityStatus, enums.MetricType,
):  # fmt: skip
    strawberry.enum(_enum)

TicketStatusFilter = _enum_filter(enums.TicketStatus)
PriorityFilter = _enum_filter(enums.Priority)
TicketChannelFilter = _enum_filter(enums.TicketChannel)
ContactRoleFilter = _enum_filter(enums.ContactRole)
ContactStageFilter = _enum_filter(enums.ContactStage)
ContactStatusFilter = _enum_filter(enums.ContactStatus)
OrganizationTypeFilter = _enum_filter(enums.OrganizationType)
OrganizationStatusFilter = _enum_filter(enums.OrganizationStatus)
OrganizationTierFilter = _enum_filter(enums.OrganizationTier)
DealStageFilter = _enum_filter(enums.DealStage)
SubscriptionStatusFilter = _enum_filter(enums.SubscriptionStatus)
IssueStatusFilter = _enum_filter(enums.IssueStatus)
IssueTypeFilter = _enum_filter(enums.IssueType)
ActivityTypeFilter = _enum_filter(enums.ActivityType)
ActivityStatusFilter = _enum_filter(enums.ActivityStatus)
MetricTypeFilter = _enum_filter(enums.MetricType)


@strawberry.enum
class OrderDirection(Enum):
    ASC = "asc"
    DESC = "desc"
