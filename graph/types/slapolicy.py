"""SlaPolicy: the first-response and resolution targets that apply to a kind of ticket."""

from datetime import date, datetime
from enum import Enum
from typing import Any, Optional

import strawberry
from strawberry import UNSET, Maybe
from strawberry.types import Info

from graph.types.common import MetaFields, Node, is_row_of
from graph.types.event import history
from graph.types.filters import BooleanFilter, DateTimeFilter, IDFilter, IntFilter, OrderDirection, StringFilter
from models.entities import Ticket as TicketRow
from models.enums import OrganizationTier, Priority, SlaState, TicketChannel, Weekday
from models.service_levels import SlaPolicy as SlaPolicyRow


@strawberry.type(description="Business hours on one weekday (several a day allowed), local wall-clock time.")
class BusinessDay:
    weekday: Weekday
    start: str = strawberry.field(description='"09:00"')
    end: str = strawberry.field(description='"17:00"; "24:00" is midnight at the end of the day.')


@strawberry.type(description="When a policy's clocks run.")
class BusinessHours:
    timezone: str = strawberry.field(description="An IANA time zone, such as Europe/Berlin.")
    days: list[BusinessDay]
    holidays: list[date] = strawberry.field(description="Local days without business hours.")


@strawberry.type(description="Targets for first response and resolution, for the tickets its lists match.")
class SlaPolicy(Node, MetaFields):
    name: str
    position: int = strawberry.field(description="Where several active policies match, the lowest position wins.")
    priorities: list[Priority] = strawberry.field(description="Empty: any priority.")
    organization_tiers: list[OrganizationTier] = strawberry.field(description="Empty: any tier.")
    channels: list[TicketChannel] = strawberry.field(description="Empty: any channel.")
    first_response_seconds: Optional[int]
    resolution_seconds: Optional[int]
    active: bool

    @strawberry.field(description="When the clocks run; null: around the clock.")
    def business_hours(self, root: strawberry.Parent[SlaPolicyRow]) -> Optional[BusinessHours]:
        hours: Optional[dict[str, Any]] = root.business_hours
        if hours is None:
            return None
        return BusinessHours(
            timezone=hours["timezone"],
            days=[BusinessDay(weekday=Weekday(d["weekday"]), start=d["start"], end=d["end"]) for d in hours["days"]],
            holidays=[date.fromisoformat(d) for d in hours.get("holidays", [])],
        )

    events = history()
    is_type_of = is_row_of("SlaPolicy")


@strawberry.input
class BusinessDayInput:
    weekday: Weekday
    start: str = strawberry.field(description='"HH:MM"')
    end: str = strawberry.field(description='"HH:MM", after start; "24:00" for midnight.')


@strawberry.input
class BusinessHoursInput:
    timezone: str
    days: list[BusinessDayInput]
    holidays: Optional[list[date]] = UNSET


@strawberry.input
class CreateSlaPolicyInput:
    name: str
    position: Optional[int] = UNSET
    priorities: Optional[list[Priority]] = UNSET
    organization_tiers: Optional[list[OrganizationTier]] = UNSET
    channels: Optional[list[TicketChannel]] = UNSET
    first_response_seconds: Optional[int] = UNSET
    resolution_seconds: Optional[int] = UNSET
    business_hours: Optional[BusinessHoursInput] = strawberry.field(
        default=UNSET, description="Omit: around the clock."
    )
    active: Optional[bool] = UNSET


@strawberry.input(description="Only the fields given change; null clears a field.")
class UpdateSlaPolicyInput:
    name: Maybe[Optional[str]]
    position: Maybe[Optional[int]]
    priorities: Maybe[Optional[list[Priority]]]
    organization_tiers: Maybe[Optional[list[OrganizationTier]]]
    channels: Maybe[Optional[list[TicketChannel]]]
    first_response_seconds: Maybe[Optional[int]]
    resolution_seconds: Maybe[Optional[int]]
    business_hours: Maybe[Optional[BusinessHoursInput]]
    active: Maybe[Optional[bool]]


@strawberry.input
class SlaPolicyWhere:
    id: Optional[IDFilter] = UNSET
    name: Optional[StringFilter] = UNSET
    position: Optional[IntFilter] = UNSET
    active: Optional[BooleanFilter] = UNSET
    first_response_seconds: Optional[IntFilter] = UNSET
    resolution_seconds: Optional[IntFilter] = UNSET
    created_at: Optional[DateTimeFilter] = UNSET
    updated_at: Optional[DateTimeFilter] = UNSET
    and_: Optional[list["SlaPolicyWhere"]] = strawberry.field(name="and", default=UNSET)
    or_: Optional[list["SlaPolicyWhere"]] = strawberry.field(name="or", default=UNSET)
    not_: Optional["SlaPolicyWhere"] = strawberry.field(name="not", default=UNSET)


@strawberry.enum
class SlaPolicyOrderField(Enum):
    POSITION = "position"
    NAME = "name"
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"


@strawberry.input
class SlaPolicyOrder:
    field: SlaPolicyOrderField
    direction: OrderDirection = OrderDirection.ASC


@strawberry.type(description="Where a ticket stands against its service-level policy.")
class TicketSla:
    first_response_due_at: Optional[datetime]
    resolution_due_at: Optional[datetime]
    first_response_breached_at: Optional[datetime]
    resolution_breached_at: Optional[datetime]
    state: SlaState = strawberry.field(
        description="BREACHED once a target is missed; PAUSED while PENDING; MET when no target still runs."
    )
    policy_id: strawberry.Private[str]

    @strawberry.field(description="The policy that applies.")
    async def policy(self, info: Info) -> SlaPolicy:
        found: Any = await info.context.loaders.by_id(SlaPolicyRow).load(self.policy_id)
        return found


def ticket_sla(root: strawberry.Parent[TicketRow]) -> Optional[TicketSla]:
    if root.sla_policy_id is None:
        return None
    return TicketSla(
        first_response_due_at=root.first_response_due_at, resolution_due_at=root.resolution_due_at,
        first_response_breached_at=root.first_response_breached_at,
        resolution_breached_at=root.resolution_breached_at,
        state=SlaState(root.sla_state or "ACTIVE"), policy_id=root.sla_policy_id,
    )  # fmt: skip


sla_field = strawberry.field(
    resolver=ticket_sla, description="Its service levels; null where no active policy applies."
)
