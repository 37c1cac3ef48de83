"""The schema: root Query, Mutation (one field per verb) and the live subscriptions."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from graph.errors import ErrorCodes, is_internal
from graph.mutations.activity import ActivityMutations
from graph.mutations.contact import ContactMutations
from graph.mutations.crud import crud
from graph.mutations.deal import DealMutations
from graph.mutations.issue import IssueMutations
from graph.mutations.metric import MetricMutations
from graph.mutations.subscription import SubscriptionMutations
from graph.mutations.ticket import TicketMutations
from graph.queries import Query
from graph.subscriptions import Live
from graph.types import activity, contact, deal, issue, metric, organization, subscription, ticket
from graph.validation import Limits

Mutation = merge_types(
    "Mutation",
    (
        crud("Ticket", ticket.Ticket, ticket.CreateTicketInput, ticket.UpdateTicketInput,
             created="Open a ticket (status OPEN)."),
        TicketMutations,
        crud("Contact", contact.Contact, contact.CreateContactInput, contact.UpdateContactInput),
        ContactMutations,
        crud("Organization", organization.Organization, organization.CreateOrganizationInput,
             organization.UpdateOrganizationInput),
        crud("Deal", deal.Deal, deal.CreateDealInput, deal.UpdateDealInput),
        DealMutations,
        crud("Subscription", subscription.Subscription, subscription.CreateSubscriptionInput,
             subscription.UpdateSubscriptionInput,
             created="Start a billing subscription: ACTIVE, or TRIALING when a trial end is given."),
        SubscriptionMutations,
        crud("Issue", issue.Issue, issue.CreateIssueInput, issue.UpdateIssueInput),
        IssueMutations,
        crud("Activity", activity.Activity, activity.CreateActivityInput, activity.UpdateActivityInput),
        ActivityMutations,
        crud("Metric", metric.Metric, metric.CreateMetricInput, metric.UpdateMetricInput),
        MetricMutations,
    ),
)  # fmt: skip

#: Every entity type, so each is in the schema even if no field returns it directly.
ENTITY_TYPES = [
    ticket.Ticket, contact.Contact, organization.Organization, deal.Deal,
    subscription.Subscription, issue.Issue, activity.Activity, metric.Metric,
]  # fmt: skip


class SupportSchema(strawberry.Schema):
    """Logs only what went wrong on our side; a client's mistake is answered, not logged."""

    def process_errors(self, errors: list[GraphQLError], execution_context=None) -> None:
        unexpected = [e for e in errors if is_internal(e)]
        if unexpected:
            super().process_errors(unexpected, execution_context)


def build_schema(limits: Limits | None = None) -> strawberry.Schema:
    """The schema, with parsed and validated documents cached; batches up to ``limits``."""
    limits = limits or Limits()
    return SupportSchema(
        query=Query,
        mutation=Mutation,
        subscription=Live,
        types=ENTITY_TYPES,
        extensions=[
            ErrorCodes,
            lambda: ParserCache(maxsize=1024),
            lambda: ValidationCache(maxsize=1024),
        ],
        config=StrawberryConfig(batching_config={"max_operations": limits.max_batch}),
    )


schema = build_schema()


def export_sdl() -> str:
    """The SDL that ``schema.graphql`` must equal."""
    return schema.as_str() + "\n"
