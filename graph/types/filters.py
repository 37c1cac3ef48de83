"""Operator inputs for ``where``: one per scalar kind, and one per enum."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any, Optional

import strawberry
from strawberry import UNSET

from models import enums


def _filter(name: str, kind: Any, *, ordered: bool = False, lists: bool = True, text: bool = False,
            description: str | None = None) -> type:  # fmt: skip
    """An operator input for one scalar type: ``eq ne in nin`` (``gt gte lt lte`` when ordered,
    ``contains`` for text) and ``isNull``."""
    operators: dict[str, Any] = {"eq": kind, "ne": kind}
    if lists:
        operators |= {"in_": list[kind], "nin": list[kind]}
    if ordered:
        operators |= {"gt": kind, "gte": kind, "lt": kind, "lte": kind}
    if text:
        operators["contains"] = kind
    operators["is_null"] = bool
    namespace: dict[str, Any] = {"__annotations__": {op: Optional[t] for op, t in operators.items()}}
    namespace |= {op: UNSET for op in operators}
    if lists:
        namespace["in_"] = strawberry.field(name="in", default=UNSET)
    return strawberry.input(type(name, (), namespace), description=description)


IDFilter = _filter("IDFilter", strawberry.ID, description="Matches an id or a relation's id.")
StringFilter = _filter(
    "StringFilter", str, ordered=True, text=True, description="Matches text; `contains` ignores case."
)
IntFilter = _filter("IntFilter", int, ordered=True)
FloatFilter = _filter("FloatFilter", float, ordered=True)
DateTimeFilter = _filter("DateTimeFilter", datetime, ordered=True)
BooleanFilter = _filter("BooleanFilter", bool, lists=False)


@strawberry.input(description="Matches a list of tags or labels.")
class TagsFilter:
    has_any: list[str] | None = strawberry.field(default=UNSET, description="At least one of these tags.")


def _enum_filter(enum: type[Enum]) -> type:
    return _filter(f"{enum.__name__}Filter", enum)


# Expose the domain enums to GraphQL, and a filter for each.
for _enum in (
    enums.TicketStatus, enums.Priority, enums.TicketChannel, enums.ContactRole,
    enums.ContactStage, enums.ContactStatus, enums.OrganizationType, enums.OrganizationStatus,
    enums.OrganizationTier, enums.DealStage, enums.SubscriptionStatus, enums.IssueStatus,
    enums.IssueType, enums.ActivityType, enums.ActivityStatus, enums.MetricType, enums.CommentAuthorRole,
    enums.Weekday, enums.SlaState,
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
SlaStateFilter = _enum_filter(enums.SlaState)


@strawberry.enum
class OrderDirection(Enum):
    ASC = "asc"
    DESC = "desc"
