"""The domain's enumerations. Values are the GraphQL names (SCREAMING_SNAKE_CASE)."""

from __future__ import annotations

from enum import Enum


class _Named(str, Enum):  # noqa: UP042 - StrEnum's str() differs; this one is spelled out
    def __str__(self) -> str:  # so f-strings and JSON show "OPEN", not "TicketStatus.OPEN"
        return str(self.value)


class TicketStatus(_Named):
    OPEN = "OPEN"
    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    RESOLVED = "RESOLVED"
    ESCALATED = "ESCALATED"
    CLOSED = "CLOSED"
    REOPENED = "REOPENED"


class Priority(_Named):
    """Priority of tickets, issues and activities, in rising order."""

    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    URGENT = "URGENT"


#: Sort rank of each priority (LOW lowest); no priority sorts below LOW.
PRIORITY_RANK = {p.value: i for i, p in enumerate(Priority, start=1)}


class TicketChannel(_Named):
    EMAIL = "EMAIL"
    CHAT = "CHAT"
    PHONE = "PHONE"
    WEB = "WEB"
    API = "API"


class ContactRole(_Named):
    DECISION_MAKER = "DECISION_MAKER"
    INFLUENCER = "INFLUENCER"
    CHAMPION = "CHAMPION"
    BLOCKER = "BLOCKER"
    USER = "USER"


class ContactStage(_Named):
    LEAD = "LEAD"
    QUALIFIED = "QUALIFIED"
    CUSTOMER = "CUSTOMER"
    CHURNED = "CHURNED"
    PARTNER = "PARTNER"


class ContactStatus(_Named):
    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"
    BOUNCED = "BOUNCED"
    UNSUBSCRIBED = "UNSUBSCRIBED"


class OrganizationType(_Named):
    PROSPECT = "PROSPECT"
    CUSTOMER = "CUSTOMER"
    PARTNER = "PARTNER"
    VENDOR = "VENDOR"
    COMPETITOR = "COMPETITOR"


class OrganizationStatus(_Named):
    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"
    CHURNED = "CHURNED"
    ARCHIVED = "ARCHIVED"


class OrganizationTier(_Named):
    ENTERPRISE = "ENTERPRISE"
    BUSINESS = "BUSINESS"
    STARTUP = "STARTUP"
    SMB = "SMB"


class DealStage(_Named):
    PROSPECTING = "PROSPECTING"
    QUALIFICATION = "QUALIFICATION"
    PROPOSAL = "PROPOSAL"
    NEGOTIATION = "NEGOTIATION"
    CLOSED = "CLOSED"
    WON = "WON"
    LOST = "LOST"


class SubscriptionStatus(_Named):
    TRIALING = "TRIALING"
    ACTIVE = "ACTIVE"
    PAST_DUE = "PAST_DUE"
    PAUSED = "PAUSED"
    CANCELLED = "CANCELLED"
    INCOMPLETE = "INCOMPLETE"


class IssueStatus(_Named):
    OPEN = "OPEN"
    ASSIGNED = "ASSIGNED"
    IN_PROGRESS = "IN_PROGRESS"
    REVIEW = "REVIEW"
    DONE = "DONE"
    CLOSED = "CLOSED"
    REOPENED = "REOPENED"


class IssueType(_Named):
    BUG = "BUG"
    FEATURE = "FEATURE"
    TASK = "TASK"
    EPIC = "EPIC"


class ActivityType(_Named):
    CALL = "CALL"
    EMAIL = "EMAIL"
    MEETING = "MEETING"
    TASK = "TASK"
    NOTE = "NOTE"
    DEMO = "DEMO"
    FOLLOW_UP = "FOLLOW_UP"


class ActivityStatus(_Named):
    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"


class MetricType(_Named):
    COUNTER = "COUNTER"
    GAUGE = "GAUGE"
    HISTOGRAM = "HISTOGRAM"
    SUMMARY = "SUMMARY"


class CommentAuthorRole(_Named):
    """Who wrote a comment: the ticket's requester, or anyone else (the support side)."""

    REQUESTER = "REQUESTER"
    AGENT = "AGENT"


class Weekday(_Named):
    """Days of the week, Monday first (``datetime.weekday()`` order)."""

    MONDAY = "MONDAY"
    TUESDAY = "TUESDAY"
    WEDNESDAY = "WEDNESDAY"
    THURSDAY = "THURSDAY"
    FRIDAY = "FRIDAY"
    SATURDAY = "SATURDAY"
    SUNDAY = "SUNDAY"


class SlaState(_Named):
    """Where a ticket's service-level targets stand."""

    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    MET = "MET"
    BREACHED = "BREACHED"


class WebhookDeliveryStatus(_Named):
    """Where one event's delivery to one webhook stands."""

    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    RETRYING = "RETRYING"
    FAILED = "FAILED"
