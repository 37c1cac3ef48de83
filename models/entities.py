"""The eight entity tables of the support graph (the event log is in ``models.event``)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import Date, Index, String, UniqueConstraint
from sqlmodel import Field

from models.base import Entity, bounded, enum_column, reference, register, text, timestamp
from models.enums import (
    ActivityStatus,
    ActivityType,
    ContactRole,
    ContactStage,
    ContactStatus,
    DealStage,
    IssueStatus,
    IssueType,
    MetricType,
    OrganizationStatus,
    OrganizationTier,
    OrganizationType,
    Priority,
    SlaState,
    SubscriptionStatus,
    TicketChannel,
    TicketStatus,
)  # fmt: skip
from models.types import JSONDocument, UTCDateTime

NAME = 1000  # names and other strings
TITLE = 500  # ticket subject, issue title, activity subject
LONG = 65536  # descriptions


@register
class Organization(Entity, table=True):
    type_name: ClassVar[str] = "Organization"
    prefix: ClassVar[str] = "organization"
    __table_args__ = (
        UniqueConstraint("tenant", "slug", name="uq_organization_slug"),
        UniqueConstraint("tenant", "domain", name="uq_organization_domain"),
    )

    name: str = text(NAME)
    slug: str | None = text(NAME, default=None, sa_column_kwargs={"info": {"lowercase": True}})
    domain: str | None = text(NAME, default=None, sa_column_kwargs={"info": {"lowercase": True}})
    website: str | None = text(NAME, default=None)
    type: str | None = enum_column(OrganizationType)
    status: str = enum_column(OrganizationStatus, "ACTIVE")
    tier: str | None = enum_column(OrganizationTier)
    industry: str | None = text(NAME, default=None)
    employee_count: int | None = bounded(0)
    annual_revenue: float | None = bounded(0)
    country: str | None = text(NAME, default=None)
    parent_id: str | None = reference("organization")
    health_score: int | None = bounded(0, 100)
    lifetime_value: float | None = bounded(0)


@register
class Contact(Entity, table=True):
    type_name: ClassVar[str] = "Contact"
    prefix: ClassVar[str] = "contact"
    __table_args__ = (UniqueConstraint("tenant", "email", name="uq_contact_email"),)

    name: str = text(NAME)
    first_name: str | None = text(NAME, default=None)
    last_name: str | None = text(NAME, default=None)
    email: str | None = Field(
        default=None, sa_type=String(NAME), sa_column_kwargs={"info": {"format": "email", "lowercase": True}}
    )
    phone: str | None = text(NAME, default=None)
    title: str | None = text(NAME, default=None)
    organization_id: str | None = reference("organization")
    owner_id: str | None = reference("contact")
    role: str | None = enum_column(ContactRole)
    stage: str = enum_column(ContactStage, "LEAD")
    status: str = enum_column(ContactStatus, "ACTIVE")
    source: str | None = text(NAME, default=None)
    lead_score: int | None = bounded(0, 100)
    timezone: str | None = text(NAME, default=None)
    language: str | None = text(NAME, default=None)


@register
class Deal(Entity, table=True):
    type_name: ClassVar[str] = "Deal"
    prefix: ClassVar[str] = "deal"

    name: str = text(NAME)
    value: float = bounded(0)
    currency: str = text(NAME, default="USD")
    organization_id: str | None = reference("organization")
    contact_id: str | None = reference("contact")
    owner_id: str | None = reference("contact")
    stage: str = enum_column(DealStage, "PROSPECTING")
    probability: int | None = bounded(0, 100)
    expected_close_date: date | None = Field(default=None, sa_type=Date)
    actual_close_date: date | None = Field(default=None, sa_type=Date)
    lost_reason: str | None = text(NAME, default=None)
    won_reason: str | None = text(NAME, default=None)


@register
class Subscription(Entity, table=True):
    """A billing subscription of an organization."""

    type_name: ClassVar[str] = "Subscription"
    prefix: ClassVar[str] = "subscription"

    status: str = enum_column(SubscriptionStatus, "ACTIVE")
    organization_id: str | None = reference("organization")
    plan: str | None = text(NAME, default=None)
    current_period_start: datetime | None = timestamp()
    current_period_end: datetime | None = timestamp()
    started_at: datetime = Field(sa_type=UTCDateTime)
    cancel_at_period_end: bool = False
    trial_end: datetime | None = timestamp()
    canceled_at: datetime | None = timestamp()
    paused_at: datetime | None = timestamp()
    quantity: int = bounded(1, default=1)


@register
class Ticket(Entity, table=True):
    type_name: ClassVar[str] = "Ticket"
    prefix: ClassVar[str] = "ticket"
    __table_args__ = (
        Index("ix_ticket_tenant_status", "tenant", "status"),
        Index("ix_ticket_tenant_sla_due", "tenant", "sla_due_at", "id"),
        Index("ix_ticket_sla_due", "sla_due_at"),
    )

    subject: str = text(TITLE)
    description: str | None = Field(default=None, sa_type=String(LONG))
    status: str = enum_column(TicketStatus, "OPEN")
    priority: str | None = enum_column(Priority)
    category: str | None = text(NAME, default=None)
    channel: str | None = enum_column(TicketChannel)
    tags: list[str] = Field(default_factory=list, sa_type=JSONDocument)
    requester_id: str | None = reference("contact")
    assignee_id: str | None = reference("contact")
    organization_id: str | None = reference("organization")
    deal_id: str | None = reference("deal")
    first_response_at: datetime | None = timestamp()
    resolved_at: datetime | None = timestamp()
    closed_at: datetime | None = timestamp()
    satisfaction: int | None = bounded(1, 5)
    #: the ticket this one was merged into; a merged ticket takes no more verbs
    merged_into_id: str | None = reference("ticket")
    # service-level clocks, kept by the verb path (models.sla_clock)
    sla_policy_id: str | None = reference("sla_policy")
    first_response_due_at: datetime | None = timestamp()
    resolution_due_at: datetime | None = timestamp()
    first_response_breached_at: datetime | None = timestamp()
    resolution_breached_at: datetime | None = timestamp()
    sla_paused_at: datetime | None = timestamp()
    #: ``[start, end, [targets it held]]`` per pause (ISO instants)
    sla_pauses: list[list[Any]] | None = Field(
        default=None, sa_type=JSONDocument, sa_column_kwargs={"info": {"system": True}}
    )
    sla_state: str | None = enum_column(SlaState)
    #: the earliest due time still running (9999-12-31 when none): the breach timer's and
    #: ``SLA_DUE_AT``'s index
    sla_due_at: datetime = Field(default=datetime(9999, 12, 31, tzinfo=UTC), sa_type=UTCDateTime)


@register
class Issue(Entity, table=True):
    """An engineering issue, often raised by a ticket's escalation."""

    type_name: ClassVar[str] = "Issue"
    prefix: ClassVar[str] = "issue"

    title: str = text(TITLE)
    description: str | None = Field(default=None, sa_type=String(LONG))
    status: str = enum_column(IssueStatus, "OPEN")
    priority: str | None = enum_column(Priority)
    type: str | None = enum_column(IssueType)
    assignee_id: str | None = reference("contact")
    reporter_id: str | None = reference("contact")
    labels: list[str] = Field(default_factory=list, sa_type=JSONDocument)
    ticket_id: str | None = reference("ticket")


@register
class Activity(Entity, table=True):
    type_name: ClassVar[str] = "Activity"
    prefix: ClassVar[str] = "activity"

    subject: str = text(TITLE)
    type: str | None = enum_column(ActivityType)
    description: str | None = Field(default=None, sa_type=String(LONG))
    contact_id: str | None = reference("contact")
    organization_id: str | None = reference("organization")
    deal_id: str | None = reference("deal")
    ticket_id: str | None = reference("ticket")
    assignee_id: str | None = reference("contact")
    due_at: datetime | None = timestamp()
    status: str = enum_column(ActivityStatus, "PENDING")
    priority: str | None = enum_column(Priority)
    completed_at: datetime | None = timestamp()
    outcome: str | None = text(NAME, default=None)


@register
class Metric(Entity, table=True):
    type_name: ClassVar[str] = "Metric"
    prefix: ClassVar[str] = "metric"

    name: str = text(NAME)
    value: float
    type: str | None = enum_column(MetricType)
    unit: str | None = text(NAME, default=None)
    dimensions: dict[str, Any] | None = Field(default=None, sa_type=JSONDocument)
    organization_id: str | None = reference("organization")
    timestamp: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
