"""``supportMetrics``: how the support team is doing, aggregated over tickets, optionally grouped.

The root ``Query`` takes ``support_metrics = support_metrics_field``.
"""

from datetime import datetime
from enum import Enum
from typing import Annotated, Optional

import strawberry
from strawberry import UNSET
from strawberry.types import Info

from graph.types.common import given, plain
from graph.types.ticket import TicketWhere
from resolvers import metrics as support_metrics


@strawberry.enum(description="What to group support metrics by.")
class SupportMetricsGroupBy(Enum):
    NONE = strawberry.enum_value("NONE", description='One bucket for all matching tickets, key "ALL".')
    PRIORITY = strawberry.enum_value("PRIORITY", description="The ticket's priority.")
    CHANNEL = strawberry.enum_value("CHANNEL", description="The ticket's channel.")
    CATEGORY = strawberry.enum_value("CATEGORY", description="The ticket's category.")
    ORGANIZATION = strawberry.enum_value("ORGANIZATION", description="The organization's id.")
    ASSIGNEE = strawberry.enum_value("ASSIGNEE", description="The assignee's id.")


@strawberry.type(description="Average and percentiles of a duration, in seconds.")
class DurationStats:
    avg: Optional[float] = strawberry.field(
        description="Mean seconds over the tickets that have this duration; null when none has it."
    )
    p50: Optional[float] = strawberry.field(
        description="Median seconds, interpolated linearly between ranks (as percentile_cont); "
        "null when no ticket has this duration."
    )
    p90: Optional[float] = strawberry.field(
        description="90th percentile in seconds, interpolated linearly between ranks (as "
        "percentile_cont); null when no ticket has this duration."
    )


@strawberry.type(description="Customer satisfaction ratings (1–5).")
class CsatStats:
    average: Optional[float] = strawberry.field(
        description="Mean rating of the tickets with a rating; null when no responses."
    )
    responses: int = strawberry.field(description="Number of tickets with a rating.")
    satisfied_rate: Optional[float] = strawberry.field(
        description="Share of the ratings that are 4 or 5; null when no responses."
    )


@strawberry.type(description="Service-level targets of the group's tickets, met and breached.")
class SlaStats:
    first_response_met: int = strawberry.field(description="First responses at or before their due time.")
    first_response_breached: int
    resolution_met: int = strawberry.field(description="Resolutions at or before their due time.")
    resolution_breached: int
    attainment: Optional[float] = strawberry.field(
        description="met / (met + breached) over both targets; null when none is settled."
    )


@strawberry.type(description="Support metrics of one group of tickets.")
class SupportMetricsBucket:
    key: Optional[str] = strawberry.field(
        description='The group\'s value: "ALL" for groupBy NONE; the id for ORGANIZATION and '
        "ASSIGNEE; null for tickets without that value."
    )
    ticket_count: int = strawberry.field(description="Tickets in the group.")
    open_count: int = strawberry.field(
        description="Tickets with status OPEN, PENDING, IN_PROGRESS, ESCALATED or REOPENED."
    )
    resolved_count: int = strawberry.field(description="Tickets with resolvedAt set.")
    escalated_count: int = strawberry.field(
        description='Tickets ever escalated: a "Ticket.Escalated" event exists for the ticket.'
    )
    escalation_rate: float = strawberry.field(description="escalatedCount / ticketCount; 0 when there are no tickets.")
    first_response_seconds: DurationStats = strawberry.field(
        description="firstResponseAt − createdAt, over the tickets that have a first response."
    )
    resolution_seconds: DurationStats = strawberry.field(
        description="resolvedAt − createdAt, over the tickets that have resolvedAt."
    )
    csat: CsatStats = strawberry.field(description="Satisfaction ratings of the group's tickets.")
    sla: SlaStats


async def resolve_support_metrics(
    info: Info,
    where: Optional[TicketWhere] = UNSET,
    from_: Annotated[
        Optional[datetime],
        strawberry.argument(name="from", description="Only tickets created at or after this instant."),
    ] = UNSET,
    to: Annotated[
        Optional[datetime],
        strawberry.argument(description="Only tickets created before this instant (exclusive)."),
    ] = UNSET,
    group_by: Optional[SupportMetricsGroupBy] = SupportMetricsGroupBy.NONE,
) -> list[support_metrics.Bucket]:
    context = info.context
    return await support_metrics.support_metrics(
        context.db,
        tenant=context.tenant,
        where=plain(given(where)) or None,
        from_=given(from_),
        to=given(to),
        group_by=(group_by or SupportMetricsGroupBy.NONE).name,  # each name is its value
    )


support_metrics_field = strawberry.field(
    resolver=resolve_support_metrics,
    graphql_type=list[SupportMetricsBucket],
    description="Support metrics of the caller's live (not deleted) tickets matching `where`, "
    "created in [from, to): one bucket for groupBy NONE (zeros when nothing matches), else one "
    "bucket per value present, sorted by key with null last.",
)
