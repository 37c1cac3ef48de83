"""Routing by customer (``resolvers.reactions.route_by_customer``): a new ticket of an enterprise
customer — an ENTERPRISE-tier organization, or one whose current subscription is on an
enterprise plan — is at least HIGH; a ticket without an organization takes its requester's."""

from __future__ import annotations

import uuid

import pytest

ORGANIZATION = "mutation($i: CreateOrganizationInput!) { createOrganization(input: $i) { id } }"
CONTACT = "mutation($i: CreateContactInput!) { createContact(input: $i) { id } }"
SUBSCRIPTION = "mutation($i: CreateSubscriptionInput!) { createSubscription(input: $i) { id status } }"
CANCEL = "mutation($id: ID!) { cancelSubscription(id: $id) { status } }"
TICKET = "mutation($i: CreateTicketInput!) { createTicket(input: $i) { id priority organization { id } } }"
STARTED = "2026-01-01T00:00:00Z"


def organization(server, tier: str, *plans: str) -> str:
    """An organization of ``tier`` with an ACTIVE subscription on each of ``plans``."""
    org = server.data(ORGANIZATION, {"i": {"name": f"route {uuid.uuid4().hex[:8]}", "tier": tier}})
    for plan in plans:
        server.data(SUBSCRIPTION, {"i": {"organization": org["createOrganization"]["id"], "plan": plan,
                                         "startedAt": STARTED}})  # fmt: skip
    return str(org["createOrganization"]["id"])


def priority(server, organization: str | None, given: str | None = "MEDIUM", requester: str | None = None) -> str:
    values = {"subject": "routing", "priority": given, "organization": organization, "requester": requester}
    made = server.data(TICKET, {"i": {k: v for k, v in values.items() if v is not None}})["createTicket"]
    return str(made["priority"])


@pytest.mark.parametrize(
    ("tier", "plans", "given", "expected"),
    [
        ("ENTERPRISE", (), "MEDIUM", "HIGH"),
        ("ENTERPRISE", (), "LOW", "HIGH"),
        ("ENTERPRISE", (), "URGENT", "URGENT"),
        ("SMB", ("Enterprise annual",), "MEDIUM", "HIGH"),
        ("SMB", ("enterprise",), "HIGH", "HIGH"),
        ("SMB", ("starter",), "MEDIUM", "MEDIUM"),
        ("BUSINESS", (), "LOW", "LOW"),
    ],
)
def test_enterprise_customers_get_at_least_high(server, tier, plans, given, expected):
    assert priority(server, organization(server, tier, *plans), given) == expected


def test_a_cancelled_enterprise_plan_does_not_count(server):
    org = server.data(ORGANIZATION, {"i": {"name": f"route {uuid.uuid4().hex[:8]}", "tier": "SMB"}})
    org_id = org["createOrganization"]["id"]
    made = server.data(SUBSCRIPTION, {"i": {"organization": org_id, "plan": "enterprise", "startedAt": STARTED}})
    assert server.data(CANCEL, {"id": made["createSubscription"]["id"]})["cancelSubscription"]["status"] == "CANCELLED"
    server.data(SUBSCRIPTION, {"i": {"organization": org_id, "plan": "starter", "startedAt": STARTED}})
    assert priority(server, org_id) == "MEDIUM"


def test_a_ticket_without_organization_takes_its_requesters(server):
    org = organization(server, "ENTERPRISE")
    person = server.data(CONTACT, {"i": {"name": "routed requester", "organization": org}})["createContact"]["id"]
    made = server.data(TICKET, {"i": {"subject": "routing", "priority": "LOW", "requester": person}})["createTicket"]
    assert made["priority"] == "HIGH" and made["organization"] == {"id": org}
    alone = server.data(CONTACT, {"i": {"name": "unaffiliated requester"}})["createContact"]["id"]
    assert priority(server, None, "LOW", requester=alone) == "LOW"
