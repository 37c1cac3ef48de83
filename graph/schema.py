"""The schema: root Query, Mutation (one field per verb) and the live subscriptions."""

from __future__ import annotations

import strawberry
from strawberry.tools import merge_types

from graph.errors import ErrorCodes
from graph.mutations.contact import ContactMutations, OrganizationMutations
from graph.mutations.deal import DealMutations
from graph.mutations.subscription import SubscriptionMutations
from graph.mutations.ticket import TicketMutations
from graph.mutations.work import ActivityMutations, IssueMutations, MetricMutations
from graph.queries import Query
from graph.types import activity, contact, deal, issue, metric, organization, subscription, ticket

Mutation = merge_types(
    "Mutation",
    (
        TicketMutations, ContactMutations, OrganizationMutations, DealMutations,
        SubscriptionMutations, IssueMutations, ActivityMutations, MetricMutations,
    ),
)  # fmt: skip

#: Every entity type, so each is in the schema even if no field returns it directly.
ENTITY_TYPES = [
    ticket.Ticket, contact.Contact, organization.Organization, deal.Deal,
    subscription.Subscription, issue.Issue, activity.Activity, metric.Metric,
]  # fmt: skip


def build_schema() -> strawberry.Schema:
    return strawberry.Schema(
        query=Query, mutation=Mutation, types=ENTITY_TYPES, extensions=[ErrorCodes]
    )


schema = build_schema()


def export_sdl() -> str:
    """The SDL that ``schema.graphql`` must equal."""
    return schema.as_str() + "\n"
