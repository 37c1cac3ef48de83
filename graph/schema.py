"""The schema: root Query, Mutation (one field per verb) and the live subscriptions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from weakref import WeakKeyDictionary

from graphql import ASTValidationRule, DocumentNode, GraphQLError, GraphQLSchema, print_schema
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import validate_document
from strawberry.tools import merge_types

from graph.documents import DocumentCache, digest
from graph.errors import ErrorCodes, is_internal
from graph.federation import SubgraphSchema
from graph.mutations.activity import ActivityMutations
from graph.mutations.contact import ContactMutations
from graph.mutations.conversation import ConversationMutations
from graph.mutations.crud import crud
from graph.mutations.deal import DealMutations
from graph.mutations.issue import IssueMutations
from graph.mutations.metric import MetricMutations
from graph.mutations.subscription import SubscriptionMutations
from graph.mutations.ticket import TicketMutations
from graph.mutations.webhook import WebhookMutations
from graph.queries import Query
from graph.subscriptions import Live
from graph.types import (
    activity,
    comment,
    contact,
    deal,
    issue,
    metric,
    organization,
    slapolicy,
    subscription,
    ticket,
    webhook,
)
from graph.validation import Limits, limit_errors, parsed

Mutation = merge_types(
    "Mutation",
    (
        crud("Ticket", ticket.Ticket, ticket.CreateTicketInput, ticket.UpdateTicketInput,
             created="Open a ticket (status OPEN)."),
        TicketMutations,
        ConversationMutations,
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
        crud("SlaPolicy", slapolicy.SlaPolicy, slapolicy.CreateSlaPolicyInput, slapolicy.UpdateSlaPolicyInput,
             created="Add a service-level policy (active unless active: false)."),
        WebhookMutations,
    ),
)  # fmt: skip

#: Every entity type, so each is in the schema even if no field returns it directly.
ENTITY_TYPES = [
    ticket.Ticket, contact.Contact, organization.Organization, deal.Deal,
    subscription.Subscription, issue.Issue, activity.Activity, metric.Metric, comment.Comment,
    slapolicy.SlaPolicy, webhook.Webhook, webhook.WebhookDelivery,
]  # fmt: skip


class SupportSchema(SubgraphSchema):
    """The API as a federation subgraph (graph/federation.py). Logs only what went wrong on our
    side; a client's mistake is answered, not logged."""

    def process_errors(self, errors: list[GraphQLError], execution_context=None) -> None:
        unexpected = [e for e in errors if is_internal(e)]
        if unexpected:
            super().process_errors(unexpected, execution_context)


#: graphql-core's and Strawberry's validation of each document (it does not depend on variables)
VALIDATIONS: DocumentCache[list[GraphQLError]] = DocumentCache(max_entries=1024)


def document_errors(
    schema: GraphQLSchema, query: str, document: DocumentNode, rules: tuple[type[ASTValidationRule], ...]
) -> list[GraphQLError]:
    """The validation errors of a document (cached, bounded), as Strawberry finds them."""
    return VALIDATIONS.get(query, lambda: validate_document(schema, document, rules), _fingerprint(schema), rules)


_FINGERPRINTS: WeakKeyDictionary[GraphQLSchema, bytes] = WeakKeyDictionary()


def _fingerprint(schema: GraphQLSchema) -> bytes:
    """The same for every schema of the same SDL (the app's and the compiled path's share verdicts)."""
    found = _FINGERPRINTS.get(schema)
    if found is None:
        found = _FINGERPRINTS[schema] = digest(print_schema(schema))
    return found


class Limited(SchemaExtension):
    """Parses and validates through bounded caches (graph.documents), then holds the operation
    to ``limits`` with its variables (``first: $n``) — the rules of graph.validation, which the
    door and the compiled path run too. Replaces Strawberry's ParserCache and ValidationCache,
    whose caches are keyed by the whole text of each document."""

    def __init__(self, limits: Limits) -> None:
        super().__init__()
        self.limits = limits

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is None and context.query and not context.parse_options:
            document = parsed(context.query)
            if not isinstance(document, GraphQLError):  # a syntax error: Strawberry reports it
                context.graphql_document = document
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and context.pre_execution_errors is None and context.validation_rules:
            schema = context.schema._schema
            if context.query:
                errors = document_errors(schema, context.query, document, context.validation_rules)
            else:
                errors = validate_document(schema, document, context.validation_rules)
            if not errors:
                errors = limit_errors(schema, document, self.limits, context.variables, context.operation_name)
            context.pre_execution_errors = list(errors)
        yield


def build_schema(limits: Limits | None = None) -> SupportSchema:
    """The schema, with parsed and validated documents cached; batches and operations held to
    ``limits``; ``_entities`` to one representation per node of the budget."""
    limits = limits or Limits()
    extensions: list[Any] = [ErrorCodes, lambda: Limited(limits)]
    return SupportSchema(
        query=Query,
        mutation=Mutation,
        subscription=Live,
        types=ENTITY_TYPES,
        extensions=extensions,
        config=StrawberryConfig(batching_config={"max_operations": limits.max_batch}),
        max_representations=limits.max_nodes,
    )


schema = build_schema()


def export_sdl() -> str:
    """The SDL that ``schema.graphql`` must equal: the API clients see, without federation's
    ``_service`` and ``_entities`` (the served schema answers them)."""
    return schema.public_sdl() + "\n"


def export_subgraph_sdl() -> str:
    """The subgraph SDL a gateway composes (what ``_service { sdl }`` answers): every ``Node``
    type with ``@key(fields: "id")``, and the Federation 2 ``@link``."""
    return schema.subgraph_sdl + "\n"
