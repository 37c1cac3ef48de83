"""The hooks that ship: how support reacts across the business graph.

Each is one plain function; ``register`` adds them to a deployment's ``Hooks`` registry (see
``resolvers.hooks``). All run inside the verb's transaction, and entities they create carry the
causing event's id.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from models.entities import Activity, Contact, Issue, Metric, Organization, Subscription, Ticket
from models.enums import PRIORITY_RANK
from models.types import utcnow
from resolvers import service_levels
from resolvers.hooks import Change, Hooks
from resolvers.loaders import pick_current_subscription
from resolvers.verbs import ticket as tickets

TITLE_LIMIT = 500
#: Ticket states a first response moves the ticket out of OPEN into.
RESPONDED = frozenset({"PENDING", "IN_PROGRESS", "ESCALATED", "RESOLVED"})


def _title(prefix: str, subject: str) -> str:
    return (prefix + subject)[:TITLE_LIMIT]


async def route_by_customer(change: Change) -> None:
    """Enterprise customers get at least HIGH priority.

    An ENTERPRISE-tier organization, or one whose current subscription is on an enterprise plan,
    raises the priority to HIGH unless it is already HIGH or URGENT. A ticket without an
    organization takes its requester's. A PAST_DUE subscription does not block support; it shows
    on ``Ticket.subscription``.
    """
    values, uow = change.values, change.uow
    if values.get("organization_id") is None and values.get("requester_id"):
        contact = await uow.find(Contact, values["requester_id"])
        if contact is not None and contact.organization_id:
            values["organization_id"] = contact.organization_id
    org_id = values.get("organization_id")
    if org_id is None:
        return
    organization = await uow.find(Organization, org_id)
    if organization is None:
        return  # the reference check reports it
    if PRIORITY_RANK.get(values.get("priority") or "", 0) >= PRIORITY_RANK["HIGH"]:
        return  # HIGH or URGENT already: the subscription would change nothing
    if organization.tier != "ENTERPRISE":
        subscription = pick_current_subscription(await uow.find_all(Subscription, organization_id=org_id))
        if subscription is None or "enterprise" not in (subscription.plan or "").lower():
            return
    values["priority"] = "HIGH"


async def stamp_first_response(change: Change) -> None:
    """The first time a ticket leaves OPEN for work, that is its first response.

    Assignment alone is not a response; a first response an integration set is kept.
    """
    ticket = cast(Ticket, change.entity)  # registered for Ticket events only
    if (
        change.before and change.before["status"] == "OPEN"
        and change.values.get("status") in RESPONDED
        and ticket.first_response_at is None
        and "first_response_at" not in change.values
    ):  # fmt: skip
        change.values["first_response_at"] = utcnow()


async def open_support_task(change: Change) -> None:
    """Every new ticket is a support task on its requester's timeline."""
    ticket = cast(Ticket, change.entity)
    await change.uow.create(
        Activity,
        {
            "subject": _title("Support: ", ticket.subject),
            "type": "TASK",
            "contact_id": ticket.requester_id,
            "organization_id": ticket.organization_id,
            "ticket_id": ticket.id,
            "assignee_id": ticket.assignee_id,
            "priority": ticket.priority,
        },
    )


async def raise_engineering_issue(change: Change) -> None:
    """An escalation becomes a BUG for engineering, and a follow-up for the assignee."""
    ticket = cast(Ticket, change.entity)
    await change.uow.create(
        Issue,
        {
            "title": _title("Escalation: ", ticket.subject),
            "type": "BUG",
            "priority": ticket.priority,
            "description": ticket.description,
            "reporter_id": ticket.requester_id,
            "ticket_id": ticket.id,
        },
        args={"reason": change.args.get("reason")},
    )
    await change.uow.create(
        Activity,
        {
            "subject": _title("Escalated: ", ticket.subject),
            "type": "FOLLOW_UP",
            "contact_id": ticket.requester_id,
            "organization_id": ticket.organization_id,
            "ticket_id": ticket.id,
            "assignee_id": ticket.assignee_id,
            "priority": ticket.priority,
            "description": change.args.get("reason"),
        },
    )


async def record_resolution_time(change: Change) -> None:
    """``ticket.resolution_time``: seconds from opening to resolution, with its dimensions."""
    ticket = cast(Ticket, change.entity)
    resolved_at: datetime = ticket.resolved_at or utcnow()
    await change.uow.create(
        Metric,
        {
            "name": "ticket.resolution_time",
            "value": (resolved_at - ticket.created_at).total_seconds(),
            "type": "HISTOGRAM",
            "unit": "seconds",
            "dimensions": {
                "priority": ticket.priority,
                "channel": ticket.channel,
                "category": ticket.category,
                "organization": ticket.organization_id,
                "ticket": ticket.id,
            },
            "organization_id": ticket.organization_id,
            "timestamp": resolved_at,
        },
    )


async def resolve_escalated_tickets(change: Change) -> None:
    """Closing an issue resolves the escalated ticket it came from."""
    # imported here: resolvers.verbs.ticket imports the unit of work, which loads this module

    issue = cast(Issue, change.entity)
    if issue.ticket_id is None:
        return
    ticket = await change.uow.find(Ticket, issue.ticket_id)
    if ticket is not None and ticket.status == "ESCALATED":
        await tickets.resolve(change.uow, ticket.id, resolution=f"Fixed in {issue.id}")


async def start_trial(change: Change) -> None:
    """A subscription created with a trial end starts TRIALING, unless a status was given."""
    if change.values.get("trial_end") is not None and "status" not in change.values:
        change.values["status"] = "TRIALING"


def register(hooks: Hooks) -> None:
    """Add the hooks that ship to ``hooks``."""
    hooks.before("Ticket.Created")(route_by_customer)
    hooks.before("Ticket.Updated", "Ticket.Escalated", "Ticket.Resolved")(stamp_first_response)
    hooks.after("Ticket.Created")(open_support_task)
    hooks.after("Ticket.Escalated")(raise_engineering_issue)
    hooks.after("Ticket.Resolved")(record_resolution_time)
    hooks.after("Issue.Closed")(resolve_escalated_tickets)
    hooks.before("Subscription.Created")(start_trial)
    service_levels.register(hooks)  # last: the clocks read the fields the hooks above set


def shipped() -> Hooks:
    """A registry with the hooks that ship and nothing else (tools and tests)."""
    hooks = Hooks()
    register(hooks)
    return hooks
