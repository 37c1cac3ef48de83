"""Issue: engineering work, often raised by a ticket's escalation."""

from enum import Enum
from typing import Optional

import strawberry
from strawberry import UNSET, Maybe

from graph.types.common import MetaFields, Node, allowed_transitions, is_row_of, related, verb_enum
from graph.types.event import history
from graph.types.filters import (
    DateTimeFilter,
    IDFilter,
    IssueStatusFilter,
    IssueTypeFilter,
    OrderDirection,
    PriorityFilter,
    StringFilter,
    TagsFilter,
)  # fmt: skip
from models.enums import IssueStatus, IssueType, Priority

IssueVerb = verb_enum("Issue")


@strawberry.type(description="An engineering issue.")
class Issue(Node, MetaFields):
    title: str
    description: Optional[str]
    status: IssueStatus
    priority: Optional[Priority]
    type: Optional[IssueType]
    assignee = related("Contact", "assignee_id")
    reporter = related("Contact", "reporter_id")
    labels: list[str]
    ticket = related("Ticket", "ticket_id", "The ticket whose escalation raised it.")
    events = history()
    allowed_transitions = allowed_transitions("Issue", IssueVerb)
    is_type_of = is_row_of("Issue")


@strawberry.input
class CreateIssueInput:
    title: str
    description: Optional[str] = UNSET
    priority: Optional[Priority] = UNSET
    type: Optional[IssueType] = UNSET
    assignee: Optional[strawberry.ID] = UNSET
    reporter: Optional[strawberry.ID] = UNSET
    labels: Optional[list[str]] = UNSET
    ticket: Optional[strawberry.ID] = UNSET


@strawberry.input(description="Only the fields given change; null clears a field.")
class UpdateIssueInput:
    title: Maybe[Optional[str]]
    description: Maybe[Optional[str]]
    status: Maybe[Optional[IssueStatus]] = strawberry.field(
        description="OPEN, ASSIGNED or REOPENED → IN_PROGRESS → REVIEW ↔ IN_PROGRESS → DONE."
    )
    priority: Maybe[Optional[Priority]]
    type: Maybe[Optional[IssueType]]
    reporter: Maybe[Optional[strawberry.ID]]
    labels: Maybe[Optional[list[str]]]
    ticket: Maybe[Optional[strawberry.ID]]


@strawberry.input
class IssueWhere:
    id: Optional[IDFilter] = UNSET
    title: Optional[StringFilter] = UNSET
    status: Optional[IssueStatusFilter] = UNSET
    priority: Optional[PriorityFilter] = UNSET
    type: Optional[IssueTypeFilter] = UNSET
    assignee: Optional[IDFilter] = UNSET
    reporter: Optional[IDFilter] = UNSET
    labels: Optional[TagsFilter] = UNSET
    ticket: Optional[IDFilter] = UNSET
    created_at: Optional[DateTimeFilter] = UNSET
    updated_at: Optional[DateTimeFilter] = UNSET
    and_: Optional[list["IssueWhere"]] = strawberry.field(name="and", default=UNSET)
    or_: Optional[list["IssueWhere"]] = strawberry.field(name="or", default=UNSET)
    not_: Optional["IssueWhere"] = strawberry.field(name="not", default=UNSET)


@strawberry.enum
class IssueOrderField(Enum):
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"
    TITLE = "title"
    STATUS = "status"
    PRIORITY = "priority"


@strawberry.input
class IssueOrder:
    field: IssueOrderField
    direction: OrderDirection = OrderDirection.ASC
