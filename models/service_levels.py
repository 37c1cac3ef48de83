"""Service-level policies: the response and resolution times a support team promises.

A policy applies to the tickets whose priority, organization tier and channel its lists contain
(an empty list matches anything); the active one with the lowest ``position`` wins. Its targets
count in business time when it has business hours (``models.business_time``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlmodel import Field

from models.base import Entity, bounded, register, text
from models.enums import OrganizationTier, Priority, TicketChannel
from models.types import JSONDocument

NAME = 1000


def _enum_list(enum: Any) -> Any:
    """A list of an enum's names, stored as a JSON array (empty: any)."""
    return Field(default_factory=list, sa_type=JSONDocument, sa_column_kwargs={"info": {"enum_list": enum}})


@register
class SlaPolicy(Entity, table=True):
    __tablename__ = "sla_policy"
    type_name: ClassVar[str] = "SlaPolicy"
    prefix: ClassVar[str] = "slapolicy"
    #: lists without an order are by position: the order in which policies are tried
    list_order: ClassVar[str] = "position"

    name: str = text(NAME)
    position: int = bounded(0, 1_000_000, default=0)
    priorities: list[str] = _enum_list(Priority)
    organization_tiers: list[str] = _enum_list(OrganizationTier)
    channels: list[str] = _enum_list(TicketChannel)
    first_response_seconds: int | None = bounded(1, 10 * 365 * 24 * 3600)
    resolution_seconds: int | None = bounded(1, 10 * 365 * 24 * 3600)
    #: ``{"timezone", "days": [{"weekday", "start", "end"}], "holidays": [date]}``; None: around the clock
    business_hours: dict[str, Any] | None = Field(
        default=None, sa_type=JSONDocument, sa_column_kwargs={"info": {"business_hours": True}}
    )
    active: bool = True
