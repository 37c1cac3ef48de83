"""Tenant isolation on every path: two tenants, A and B, each with an API key, on one server.

Each tenant builds the same small graph through the API (an organization, a requester and an
agent contact, a deal, a billing subscription, an escalated ticket with its issue and activity,
a metric), with the same organization slug and domain and the same contact email in both. Then
B, holding A's ids, tries every way in: list queries, ``x(id)``, ``node(id)``, ``asOf``,
relations (also rows whose foreign keys were pointed into the other tenant behind the API's
back), reverse-relation connections, mutations on A's ids, A's ids as relation inputs, A's
cursors, the ``events`` query, ``event(id)``, subscriptions and ``supportMetrics``. None of it
may show B anything of A, and no refused mutation may write anything.

The server runs with ``require_auth`` on a fresh database, once on SQLite and once on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

import resolvers.keys
from graph.server.settings import Settings
from tests import ws_client as ws
from tests.conftest import UNTHROTTLED
from tests.databases import fresh_database
from tests.live import LiveServer
from tests.ws_client import PROTOCOLS

UNIQUE = uuid.uuid4().hex[:8]
#: the same in both tenants: unique per tenant, not across tenants
SHARED_EMAIL = f"pat-{UNIQUE}@example.com"
SHARED_SLUG = f"acme-{UNIQUE}"
SHARED_DOMAIN = f"acme-{UNIQUE}.example.com"
#: anything that looks like one of our ids (entities and events)
ID = re.compile(r"\b(?:ticket|contact|organization|deal|subscription|issue|activity|metric|evt)_[A-Za-z0-9]{8,12}\b")
KINDS = ("ticket", "contact", "organization", "deal", "subscription", "issue", "activity", "metric")
PLURAL = {
    "ticket": "tickets", "contact": "contacts", "organization": "organizations", "deal": "deals",
    "subscription": "subscriptions", "issue": "issues", "activity": "activities", "metric": "metrics",
}  # fmt: skip


# --- callers and their graphs ------------------------------------------------------------------


@dataclass
class Caller:
    """One tenant's key on the server."""

    server: LiveServer
    tenant: str
    actor: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    @property
    def init(self) -> dict[str, str]:
        """The WebSocket ``connection_init`` payload."""
        return {"authorization": f"Bearer {self.key}"}

    def post(self, query: str, variables: dict | None = None) -> dict:
        response = self.server.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=self.headers
        )
        assert response.status_code < 500, response.text
        return response.json()

    def data(self, query: str, variables: dict | None = None) -> dict:
        body = self.post(query, variables)
        assert not body.get("errors"), body["errors"]
        return body["data"]

    def error(self, query: str, variables: dict | None = None) -> dict:
        body = self.post(query, variables)
        assert body.get("errors"), f"expected an error, got {body}"
        return body


@dataclass
class Graph:
    """The ids of one tenant's graph."""

    organization: str
    requester: str
    agent: str
    deal: str
    subscription: str
    ticket: str
    issue: str
    activity: str
    metric: str
    events: list[str] = field(default_factory=list)

    def of(self, kind: str) -> str:
        return {"contact": self.requester}.get(kind) or getattr(self, kind)

    def ids(self) -> set[str]:
        """Every id of the graph, events included."""
        return {
            self.organization, self.requester, self.agent, self.deal, self.subscription,
            self.ticket, self.issue, self.activity, self.metric, *self.events,
        }  # fmt: skip


def build_graph(caller: Caller) -> Graph:
    """The same small graph in ``caller``'s tenant, through the API."""

    def create(entity: str, values: dict) -> str:
        query = f"mutation($input: Create{entity}Input!) {{ create{entity}(input: $input) {{ id }} }}"
        return caller.data(query, {"input": values})[f"create{entity}"]["id"]

    org = create("Organization", {"name": "Acme", "slug": SHARED_SLUG, "domain": SHARED_DOMAIN})
    requester = create("Contact", {"name": "Pat", "email": SHARED_EMAIL, "organization": org})
    agent = create("Contact", {"name": "Agent", "email": f"agent-{UNIQUE}@example.com"})
    deal = create("Deal", {"name": "Big", "value": 1000.0, "organization": org, "contact": requester, "owner": agent})
    subscription = create("Subscription", {"startedAt": "2026-01-01T00:00:00Z", "organization": org, "plan": "pro"})
    ticket = create(
        "Ticket",
        {"subject": "Broken", "requester": requester, "assignee": agent, "organization": org, "deal": deal},
    )
    escalated = caller.data(
        'mutation($id: ID!) { escalateTicket(id: $id, reason: "bug") { issues { id } } }', {"id": ticket}
    )
    issue = escalated["escalateTicket"]["issues"][0]["id"]
    activity = create(
        "Activity",
        {
            "subject": "Call",
            "contact": requester,
            "organization": org,
            "deal": deal,
            "ticket": ticket,
            "assignee": agent,
        },
    )
    metric = create("Metric", {"name": "nps", "value": 9.0, "organization": org})
    graph = Graph(org, requester, agent, deal, subscription, ticket, issue, activity, metric)
    graph.events = [n["id"] for n in caller.data("{ events(first: 100) { nodes { id } } }")["events"]["nodes"]]
    assert graph.events, "the graph's creation recorded events"
    return graph


@dataclass
class Tenants:
    server: LiveServer
    a: Caller
    b: Caller
    graph_a: Graph
    graph_b: Graph

    def sql(self, statement: str, **params: Any) -> list[tuple]:
        return self.server.sql(statement, **params)

    def execute(self, statement: str, **params: Any) -> None:
        """A write behind the API's back (to plant rows the API would refuse)."""

        async def go() -> None:
            async with self.server.services.db.engine.begin() as connection:
                await connection.execute(text(statement), params)

        self.server.run(go())

    def version(self, kind: str, id_: str) -> int:
        return self.sql(f"SELECT version FROM {kind} WHERE id = :id", id=id_)[0][0]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def tenants(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenants]:
    with fresh_database(request.param, tmp_path_factory.mktemp("tenancy")) as url:
        server = LiveServer(Settings(database_url=url, require_auth=True, limits=UNTHROTTLED)).start()
        try:
            callers = []
            for tenant, actor in (("tenant-a", "alice"), ("tenant-b", "bob")):
                _, key = server.run(resolvers.keys.create_key(server.services.db, tenant=tenant, actor=actor))
                callers.append(Caller(server, tenant, actor, key))
            a, b = callers
            yield Tenants(server, a, b, build_graph(a), build_graph(b))
        finally:
            server.stop()


def ids_in(value: Any) -> set[str]:
    """Every id mentioned anywhere in a response."""
    return set(ID.findall(repr(value)))


def codes(body: dict) -> list[str]:
    return [e["extensions"]["code"] for e in body["errors"]]


# --- the graphs and the same unique values in both tenants -------------------------------------


def test_both_tenants_hold_the_same_email_slug_and_domain(tenants: Tenants):
    for caller, graph in ((tenants.a, tenants.graph_a), (tenants.b, tenants.graph_b)):
        found = caller.data(
            "query($email: String, $slug: String, $domain: String) {"
            " contacts(where: {email: {eq: $email}}) { nodes { id } }"
            " bySlug: organizations(where: {slug: {eq: $slug}}) { nodes { id } }"
            " byDomain: organizations(where: {domain: {eq: $domain}}) { nodes { id } } }",
            {"email": SHARED_EMAIL, "slug": SHARED_SLUG, "domain": SHARED_DOMAIN},
        )
        assert [n["id"] for n in found["contacts"]["nodes"]] == [graph.requester]
        assert [n["id"] for n in found["bySlug"]["nodes"]] == [graph.organization]
        assert [n["id"] for n in found["byDomain"]["nodes"]] == [graph.organization]
    assert not tenants.graph_a.ids() & tenants.graph_b.ids()


# --- reads -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [*KINDS, "event"])
def test_lists_hold_exactly_the_callers_rows(tenants: Tenants, kind: str):
    plural = PLURAL.get(kind, "events")
    for caller, other in ((tenants.a, tenants.graph_b), (tenants.b, tenants.graph_a)):
        page = caller.data(f"{{ {plural}(first: 100) {{ totalCount nodes {{ id }} }} }}")[plural]
        listed = {n["id"] for n in page["nodes"]}
        live = "" if kind == "event" else " AND deleted_at IS NULL"
        stored = {r[0] for r in tenants.sql(f"SELECT id FROM {kind} WHERE tenant = :t{live}", t=caller.tenant)}
        assert page["totalCount"] == len(stored) <= 100
        assert listed == stored
        assert not listed & other.ids()


@pytest.mark.parametrize("kind", KINDS)
def test_an_id_of_the_other_tenant_finds_nothing(tenants: Tenants, kind: str):
    theirs, ours = tenants.graph_a.of(kind), tenants.graph_b.of(kind)
    query = (
        f"query($id: ID!, $at: DateTime) {{ {kind}(id: $id) {{ id }}"
        f" asOf: {kind}(id: $id, asOf: $at) {{ id }} node(id: $id) {{ id }} }}"
    )
    now = datetime.now(UTC).isoformat()
    assert tenants.b.data(query, {"id": theirs, "at": now}) == {kind: None, "asOf": None, "node": None}
    # the same query finds the caller's own row (so the nulls above are the tenant's doing)
    assert tenants.b.data(query, {"id": ours, "at": now}) == {
        kind: {"id": ours},
        "asOf": {"id": ours},
        "node": {"id": ours},
    }


def test_an_event_of_the_other_tenant_finds_nothing(tenants: Tenants):
    query = "query($id: ID!) { event(id: $id) { id } node(id: $id) { id } }"
    for theirs in tenants.graph_a.events:
        assert tenants.b.data(query, {"id": theirs}) == {"event": None, "node": None}
    ours = tenants.graph_b.events[0]
    assert tenants.b.data(query, {"id": ours}) == {"event": {"id": ours}, "node": {"id": ours}}


def test_the_events_query_never_shows_the_other_tenants_log(tenants: Tenants):
    a, graph_a = tenants.a, tenants.graph_a
    found = tenants.b.data(
        "query($target: ID, $actor: ID, $ids: [ID!]) {"
        " byTarget: events(where: {target: {eq: $target}}) { totalCount nodes { id } }"
        " byActor: events(where: {actor: {eq: $actor}}) { totalCount nodes { id } }"
        " byIds: events(where: {id: {in: $ids}}) { totalCount nodes { id } } }",
        {"target": graph_a.ticket, "actor": a.actor, "ids": graph_a.events},
    )
    assert all(page == {"totalCount": 0, "nodes": []} for page in found.values()), found
    # A sees its own through the same filters
    own = a.data(
        "query($target: ID) { events(where: {target: {eq: $target}}) { totalCount } }", {"target": graph_a.ticket}
    )
    assert own["events"]["totalCount"] > 0


#: every relation and reverse relation, a few levels deep, from each root list
TRAVERSALS = {
    "tickets": "tickets(first: 10) { nodes { id requester { id } assignee { id } organization { id }"
    " deal { id } subscription { id } issues { id ticket { id } } activities { id ticket { id } }"
    " events(first: 20) { nodes { id target entity { id } cause { id } } } } }",
    "contacts": "contacts(first: 10) { nodes { id organization { id } owner { id }"
    " tickets(first: 10) { nodes { id } } assignedTickets(first: 10) { nodes { id } }"
    " deals(first: 10) { nodes { id } } activities(first: 10) { nodes { id } } } }",
    "organizations": "organizations(first: 10) { nodes { id parent { id } contacts(first: 10) { nodes { id } }"
    " tickets(first: 10) { nodes { id } } deals(first: 10) { nodes { id } }"
    " subscriptions(first: 10) { nodes { id } } activities(first: 10) { nodes { id } }"
    " subsidiaries(first: 10) { nodes { id } } } }",
    "deals": "deals(first: 10) { nodes { id organization { id } contact { id } owner { id }"
    " tickets(first: 10) { nodes { id } } activities(first: 10) { nodes { id } } } }",
    "subscriptions": "subscriptions(first: 10) { nodes { id organization { id } } }",
    "issues": "issues(first: 10) { nodes { id assignee { id } reporter { id } ticket { id } } }",
    "activities": "activities(first: 10) { nodes { id contact { id } organization { id } deal { id }"
    " ticket { id } assignee { id } } }",
    "metrics": "metrics(first: 10) { nodes { id organization { id } } }",
    "events": "events(first: 50) { nodes { id target entity { id } cause { id } } }",
}


@pytest.mark.parametrize("root", TRAVERSALS)
def test_walking_the_graph_never_reaches_the_other_tenant(tenants: Tenants, root: str):
    for caller, _own, other in (
        (tenants.a, tenants.graph_a, tenants.graph_b),
        (tenants.b, tenants.graph_b, tenants.graph_a),
    ):
        seen = ids_in(caller.data(f"{{ {TRAVERSALS[root]} }}"))
        assert seen, "the walk found the caller's own graph"
        assert not seen & other.ids()
        stored = set()
        for kind in (*KINDS, "event"):
            stored |= {r[0] for r in tenants.sql(f"SELECT id FROM {kind} WHERE tenant = :t", t=caller.tenant)}
        assert seen <= stored


#: foreign keys of the planted rows → the kind of row in the other tenant they are pointed at
PLANTED = {
    "organization": {"parent_id": "organization"},
    "contact": {"organization_id": "organization", "owner_id": "agent"},
    "deal": {"organization_id": "organization", "contact_id": "requester", "owner_id": "agent"},
    "subscription": {"organization_id": "organization"},
    "ticket": {
        "requester_id": "requester",
        "assignee_id": "agent",
        "organization_id": "organization",
        "deal_id": "deal",
    },
    "issue": {"assignee_id": "agent", "reporter_id": "requester", "ticket_id": "ticket"},
    "activity": {
        "contact_id": "requester",
        "organization_id": "organization",
        "deal_id": "deal",
        "ticket_id": "ticket",
        "assignee_id": "agent",
    },
    "metric": {"organization_id": "organization"},
}
PLANTED_RELATIONS = {
    "organization": "parent { id }",
    "contact": "organization { id } owner { id }",
    "deal": "organization { id } contact { id } owner { id }",
    "subscription": "organization { id }",
    "ticket": "requester { id } assignee { id } organization { id } deal { id } subscription { id }",
    "issue": "assignee { id } reporter { id } ticket { id }",
    "activity": "contact { id } organization { id } deal { id } ticket { id } assignee { id }",
    "metric": "organization { id }",
}
#: B's reverse relations that the planted rows of A would join if a loader ignored the tenant
REVERSE = (
    "organization(id: $organization) { contacts { totalCount nodes { id } } tickets { totalCount nodes { id } }"
    " deals { totalCount nodes { id } } subscriptions { totalCount nodes { id } }"
    " activities { totalCount nodes { id } } subsidiaries { totalCount nodes { id } } }"
    " requester: contact(id: $requester) { tickets { totalCount nodes { id } } deals { totalCount nodes { id } }"
    " activities { totalCount nodes { id } } }"
    " agent: contact(id: $agent) { assignedTickets { totalCount nodes { id } } }"
    " deal(id: $deal) { tickets { totalCount nodes { id } } activities { totalCount nodes { id } } }"
    " ticket(id: $ticket) { issues { id } activities { id } }"
)
REVERSE_QUERY = f"query($organization: ID!, $requester: ID!, $agent: ID!, $deal: ID!, $ticket: ID!) {{ {REVERSE} }}"


def test_rows_pointing_into_the_other_tenant_resolve_to_nothing(tenants: Tenants):
    """Relations and reverse relations load within the tenant, even where a stored foreign key
    (planted here behind the API's back) names a row of another tenant."""
    a, graph_b = tenants.a, tenants.graph_b
    b_rows = {k: graph_b.of(k) for k in ("organization", "requester", "agent", "deal", "ticket")}
    reverse_before = tenants.b.data(REVERSE_QUERY, b_rows)

    planted = {kind: _create_bare(a, kind) for kind in PLANTED}
    try:
        for kind, columns in PLANTED.items():
            assignments = ", ".join(f"{column} = :{column}" for column in columns)
            targets = {column: getattr(graph_b, target) for column, target in columns.items()}
            tenants.execute(f"UPDATE {kind} SET {assignments} WHERE id = :id", id=planted[kind], **targets)

        for kind, relations in PLANTED_RELATIONS.items():
            found = a.data(f"query($id: ID!) {{ {kind}(id: $id) {{ id {relations} }} }}", {"id": planted[kind]})[kind]
            assert found.pop("id") == planted[kind]
            assert not ids_in(found) & graph_b.ids(), f"{kind}: {found}"
            if kind == "ticket":
                # the current subscription of "its organization" is looked up in A: A's planted
                # subscription names the same organization id, so it is the one found
                assert found.pop("subscription") == {"id": planted["subscription"]}
            assert found == dict.fromkeys(found, None), f"{kind}: {found}"

        # the same relations on plain list pages (the server may answer those on a compiled path)
        for kind, relations in PLANTED_RELATIONS.items():
            relations = relations.replace("subscription { id }", "")
            page = a.data(f"{{ {PLURAL[kind]}(first: 100) {{ nodes {{ id {relations} }} }} }}")[PLURAL[kind]]
            found = next(n for n in page["nodes"] if n["id"] == planted[kind])
            assert not ids_in(page) & graph_b.ids(), f"{kind}: {page}"
            assert {k: v for k, v in found.items() if k != "id"} == dict.fromkeys(set(found) - {"id"}), found

        reverse_after = tenants.b.data(REVERSE_QUERY, b_rows)
        assert reverse_after == reverse_before
        assert not ids_in(reverse_after) & set(planted.values())
    finally:
        for kind, columns in PLANTED.items():
            assignments = ", ".join(f"{column} = NULL" for column in columns)
            tenants.execute(f"UPDATE {kind} SET {assignments} WHERE id = :id", id=planted[kind])


def _create_bare(caller: Caller, kind: str) -> str:
    """A row of ``kind`` in the caller's tenant with no relations."""
    entity = kind.capitalize()
    required = {
        "organization": {"name": f"planted {uuid.uuid4().hex[:6]}"},
        "contact": {"name": "planted"},
        "deal": {"name": "planted", "value": 1.0},
        "subscription": {"startedAt": "2026-01-01T00:00:00Z"},
        "ticket": {"subject": "planted"},
        "issue": {"title": "planted"},
        "activity": {"subject": "planted"},
        "metric": {"name": "planted", "value": 1.0},
    }[kind]
    query = f"mutation($input: Create{entity}Input!) {{ create{entity}(input: $input) {{ id }} }}"
    return caller.data(query, {"input": required})[f"create{entity}"]["id"]


# --- writes ------------------------------------------------------------------------------------

#: (mutation document with $id, the kind of A's row it names); B's own agent is $agent
ON_THEIR_ROW = [
    ('updateTicket(id: $id, input: {subject: "mine now"})', "ticket"),
    ("deleteTicket(id: $id)", "ticket"),
    ("assignTicket(id: $id, assignee: $agent)", "ticket"),
    ('resolveTicket(id: $id, resolution: "done")', "ticket"),
    ('escalateTicket(id: $id, reason: "x")', "ticket"),
    ("closeTicket(id: $id)", "ticket"),
    ('reopenTicket(id: $id, reason: "x")', "ticket"),
    ('updateContact(id: $id, input: {name: "mine now"})', "contact"),
    ("deleteContact(id: $id)", "contact"),
    ("qualifyContact(id: $id)", "contact"),
    ("assignContact(id: $id, owner: $agent)", "contact"),
    ('updateOrganization(id: $id, input: {name: "mine now"})', "organization"),
    ("deleteOrganization(id: $id)", "organization"),
    ('updateDeal(id: $id, input: {name: "mine now"})', "deal"),
    ("deleteDeal(id: $id)", "deal"),
    ("advanceDeal(id: $id)", "deal"),
    ('winDeal(id: $id, reason: "x")', "deal"),
    ('loseDeal(id: $id, reason: "x")', "deal"),
    ("closeDeal(id: $id)", "deal"),
    ('reopenDeal(id: $id, reason: "x")', "deal"),
    ('updateSubscription(id: $id, input: {plan: "free"})', "subscription"),
    ("deleteSubscription(id: $id)", "subscription"),
    ("activateSubscription(id: $id)", "subscription"),
    ("pauseSubscription(id: $id)", "subscription"),
    ('cancelSubscription(id: $id, reason: "x")', "subscription"),
    ("reactivateSubscription(id: $id)", "subscription"),
    ('upgradeSubscription(id: $id, plan: "enterprise", quantity: 9)', "subscription"),
    ('downgradeSubscription(id: $id, plan: "free", quantity: 1)', "subscription"),
    ("renewSubscription(id: $id)", "subscription"),
    ('updateIssue(id: $id, input: {title: "mine now"})', "issue"),
    ("deleteIssue(id: $id)", "issue"),
    ("assignIssue(id: $id, assignee: $agent)", "issue"),
    ('closeIssue(id: $id, reason: "x")', "issue"),
    ('reopenIssue(id: $id, reason: "x")', "issue"),
    ('updateActivity(id: $id, input: {subject: "mine now"})', "activity"),
    ("deleteActivity(id: $id)", "activity"),
    ('completeActivity(id: $id, outcome: "x")', "activity"),
    ('cancelActivity(id: $id, reason: "x")', "activity"),
    ('updateMetric(id: $id, input: {name: "mine now"})', "metric"),
    ("deleteMetric(id: $id)", "metric"),
    ("recordMetric(id: $id, value: 1.5)", "metric"),
]


@pytest.mark.parametrize(("mutation", "kind"), ON_THEIR_ROW, ids=[m.split("(")[0] for m, _ in ON_THEIR_ROW])
def test_a_mutation_on_the_other_tenants_row_is_not_found(tenants: Tenants, mutation: str, kind: str):
    theirs = tenants.graph_a.of(kind)
    before, version = tenants.server.counts(), tenants.version(kind, theirs)
    declared = "$id: ID!, $agent: ID!" if "$agent" in mutation else "$id: ID!"
    body = tenants.b.error(
        f"mutation({declared}) {{ {mutation} {{ id }} }}", {"id": theirs, "agent": tenants.graph_b.agent}
    )
    assert codes(body) == ["NOT_FOUND"], body
    assert body.get("data") is None
    assert not ids_in(body) - {theirs}, "the error names nothing of A but the id B sent"
    assert tenants.server.counts() == before
    assert tenants.version(kind, theirs) == version


#: (mutation with B's own $own row where it needs one, the relation given A's $theirs, kinds)
INTO_THEIR_ROWS = [
    ('createTicket(input: {subject: "x", requester: $theirs})', None, "requester"),
    ('createTicket(input: {subject: "x", assignee: $theirs})', None, "agent"),
    ('createTicket(input: {subject: "x", organization: $theirs})', None, "organization"),
    ('createTicket(input: {subject: "x", deal: $theirs})', None, "deal"),
    ("updateTicket(id: $own, input: {requester: $theirs})", "ticket", "requester"),
    ("updateTicket(id: $own, input: {assignee: $theirs})", "ticket", "agent"),
    ("updateTicket(id: $own, input: {organization: $theirs})", "ticket", "organization"),
    ("updateTicket(id: $own, input: {deal: $theirs})", "ticket", "deal"),
    ("assignTicket(id: $own, assignee: $theirs)", "ticket", "agent"),
    ('createContact(input: {name: "x", organization: $theirs})', None, "organization"),
    ('createContact(input: {name: "x", owner: $theirs})', None, "agent"),
    ("updateContact(id: $own, input: {organization: $theirs})", "contact", "organization"),
    ("assignContact(id: $own, owner: $theirs)", "contact", "agent"),
    ('createOrganization(input: {name: "x", parent: $theirs})', None, "organization"),
    ("updateOrganization(id: $own, input: {parent: $theirs})", "organization", "organization"),
    ('createDeal(input: {name: "x", value: 1, organization: $theirs})', None, "organization"),
    ('createDeal(input: {name: "x", value: 1, contact: $theirs})', None, "requester"),
    ('createDeal(input: {name: "x", value: 1, owner: $theirs})', None, "agent"),
    ("updateDeal(id: $own, input: {organization: $theirs})", "deal", "organization"),
    ("updateDeal(id: $own, input: {contact: $theirs})", "deal", "requester"),
    ("updateDeal(id: $own, input: {owner: $theirs})", "deal", "agent"),
    ('createSubscription(input: {startedAt: "2026-01-01T00:00:00Z", organization: $theirs})', None, "organization"),
    ("updateSubscription(id: $own, input: {organization: $theirs})", "subscription", "organization"),
    ('createIssue(input: {title: "x", assignee: $theirs})', None, "agent"),
    ('createIssue(input: {title: "x", reporter: $theirs})', None, "requester"),
    ('createIssue(input: {title: "x", ticket: $theirs})', None, "ticket"),
    ("updateIssue(id: $own, input: {reporter: $theirs})", "issue", "requester"),
    ("updateIssue(id: $own, input: {ticket: $theirs})", "issue", "ticket"),
    ("assignIssue(id: $own, assignee: $theirs)", "issue", "agent"),
    ('createActivity(input: {subject: "x", contact: $theirs})', None, "requester"),
    ('createActivity(input: {subject: "x", organization: $theirs})', None, "organization"),
    ('createActivity(input: {subject: "x", deal: $theirs})', None, "deal"),
    ('createActivity(input: {subject: "x", ticket: $theirs})', None, "ticket"),
    ('createActivity(input: {subject: "x", assignee: $theirs})', None, "agent"),
    ("updateActivity(id: $own, input: {contact: $theirs})", "activity", "requester"),
    ("updateActivity(id: $own, input: {organization: $theirs})", "activity", "organization"),
    ("updateActivity(id: $own, input: {deal: $theirs})", "activity", "deal"),
    ("updateActivity(id: $own, input: {ticket: $theirs})", "activity", "ticket"),
    ("updateActivity(id: $own, input: {assignee: $theirs})", "activity", "agent"),
    ('createMetric(input: {name: "x", value: 1, organization: $theirs})', None, "organization"),
    ("updateMetric(id: $own, input: {organization: $theirs})", "metric", "organization"),
]


@pytest.mark.parametrize(
    ("mutation", "own_kind", "their_row"),
    INTO_THEIR_ROWS,
    ids=[f"{m.split('(')[0]}-{m.split('$theirs')[0].rsplit(' ', 2)[-2].rstrip(':')}" for m, _, _ in INTO_THEIR_ROWS],
)
def test_a_relation_into_the_other_tenant_is_refused(
    tenants: Tenants, mutation: str, own_kind: str | None, their_row: str
):
    theirs = getattr(tenants.graph_a, their_row)
    own = tenants.graph_b.of(own_kind) if own_kind else None
    before = tenants.server.counts()
    version = tenants.version(own_kind, own) if own else None
    declared = "$theirs: ID!, $own: ID!" if own else "$theirs: ID!"
    body = tenants.b.error(f"mutation({declared}) {{ {mutation} {{ id }} }}", {"theirs": theirs, "own": own})
    assert set(codes(body)) <= {"NOT_FOUND", "BAD_USER_INPUT"}, body
    assert body.get("data") is None
    assert tenants.server.counts() == before
    if own:
        assert tenants.version(own_kind, own) == version


# --- cursors -----------------------------------------------------------------------------------

CURSOR_PAGES = {
    "tickets": "tickets(first: 1) { pageInfo { endCursor } }",
    "events": "events(first: 1) { pageInfo { endCursor } }",
    "contacts": "contacts(first: 1, orderBy: [{field: EMAIL}]) { pageInfo { endCursor } }",
}
CURSOR_USES = {
    "tickets": "query($c: String) { after: tickets(after: $c, first: 100) { nodes { id } }"
    " before: tickets(before: $c, last: 100) { nodes { id } } }",
    "events": "query($c: String) { after: events(after: $c, first: 100) { nodes { id } }"
    " before: events(before: $c, last: 100) { nodes { id } } }",
    "contacts": "query($c: String) { after: contacts(after: $c, first: 100, orderBy: [{field: EMAIL}]) { nodes { id } }"
    " before: contacts(before: $c, last: 100, orderBy: [{field: EMAIL}]) { nodes { id } } }",
}


@pytest.mark.parametrize("root", CURSOR_PAGES)
def test_a_cursor_of_the_other_tenant_reveals_nothing(tenants: Tenants, root: str):
    cursor = tenants.a.data(f"{{ {CURSOR_PAGES[root]} }}")[root]["pageInfo"]["endCursor"]
    assert cursor
    body = tenants.b.post(CURSOR_USES[root], {"c": cursor})
    # B sees its own rows around that position, or a refusal of the cursor: never A's rows
    assert not ids_in(body) & tenants.graph_a.ids(), body
    if body.get("errors"):
        assert set(codes(body)) == {"BAD_USER_INPUT"}, body
    else:
        own = {
            r[0]
            for kind in (*KINDS, "event")
            for r in tenants.sql(f"SELECT id FROM {kind} WHERE tenant = :t", t="tenant-b")
        }
        assert ids_in(body) <= own


# --- asOf, metrics -----------------------------------------------------------------------------


def test_as_of_on_the_other_tenants_ticket_is_null(tenants: Tenants):
    theirs = tenants.graph_a.ticket
    query = "query($id: ID!, $at: DateTime) { ticket(id: $id, asOf: $at) { id subject status } }"
    for at in ("2000-01-01T00:00:00Z", datetime.now(UTC).isoformat(), "2999-01-01T00:00:00Z"):
        assert tenants.b.data(query, {"id": theirs, "at": at}) == {"ticket": None}
    assert tenants.a.data(query, {"id": theirs, "at": datetime.now(UTC).isoformat()})["ticket"]["id"] == theirs


def test_support_metrics_count_only_the_callers_tickets(tenants: Tenants):
    for caller, other in ((tenants.a, tenants.graph_b), (tenants.b, tenants.graph_a)):
        stored = tenants.sql("SELECT COUNT(*) FROM ticket WHERE tenant = :t AND deleted_at IS NULL", t=caller.tenant)[
            0
        ][0]
        found = caller.data(
            "query($org: ID) { all: supportMetrics { ticketCount escalatedCount }"
            " theirs: supportMetrics(where: {organization: {eq: $org}}) { ticketCount }"
            " byOrganization: supportMetrics(groupBy: ORGANIZATION) { key ticketCount }"
            " byAssignee: supportMetrics(groupBy: ASSIGNEE) { key ticketCount } }",
            {"org": other.organization},
        )
        assert found["all"][0]["ticketCount"] == stored
        assert found["all"][0]["escalatedCount"] >= 1  # the caller's own escalated ticket
        assert found["theirs"][0]["ticketCount"] == 0
        for grouped in (found["byOrganization"], found["byAssignee"]):
            assert sum(b["ticketCount"] for b in grouped) == stored
            assert not {b["key"] for b in grouped} & other.ids()


# --- subscriptions -----------------------------------------------------------------------------

SUBSCRIPTIONS = {
    "events": 'subscription { events(types: ["Ticket.Created"]) { id target actor } }',
    "ticketEvents": "subscription { ticketEvents { event { id type target actor } ticket { id subject } } }",
}


def _target(document: str, data: dict) -> str:
    return data["events"]["target"] if "events" in data else data["ticketEvents"]["ticket"]["id"]


def _create_ticket(caller: Caller) -> str:
    return caller.data('mutation { createTicket(input: {subject: "live"}) { id } }')["createTicket"]["id"]


#: how many probe tickets a subscriber may need before its subscription is live, and how long
#: to wait for each (bounds, so a broken stream fails instead of hanging)
PROBES, PROBE_WAIT = 20, 0.5


async def until_live(operation: ws.Operation, caller: Caller, document: str) -> None:
    """Write probe tickets until the subscription delivers one; then read up to the last probe,
    so that the next message is the first one written after this returns."""
    probes: list[str] = []
    while True:
        assert len(probes) < PROBES, "the subscription never delivered a write of its own tenant"
        probes.append(await asyncio.to_thread(_create_ticket, caller))
        try:
            target = _target(document, await operation.next(PROBE_WAIT))
            break
        except TimeoutError:
            continue
    while target != probes[-1]:
        assert target in probes, f"received {target}, which is no probe of {caller.tenant}"
        target = _target(document, await operation.next())


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("document", SUBSCRIPTIONS)
async def test_a_subscriber_never_receives_the_other_tenants_events(tenants: Tenants, protocol: str, document: str):
    """Both tenants subscribe with the same live document (which the server may share between
    identical subscribers): A's write reaches A's subscriber, never B's."""
    query = SUBSCRIPTIONS[document]
    url = tenants.server.url
    async with (
        ws.connect(url, protocol, tenants.b.init) as b_socket,
        ws.connect(url, protocol, tenants.a.init) as a_socket,
    ):
        b_live, a_live = await b_socket.subscribe(query), await a_socket.subscribe(query)
        await until_live(b_live, tenants.b, document)
        await until_live(a_live, tenants.a, document)

        theirs = await asyncio.to_thread(_create_ticket, tenants.a)
        ours = await asyncio.to_thread(_create_ticket, tenants.b)
        assert _target(document, await a_live.next()) == theirs  # A's write was delivered, before B's
        received = await b_live.next()
        assert _target(document, received) == ours, f"B received {received}"
        assert theirs not in ids_in(received)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("document", SUBSCRIPTIONS)
async def test_a_replay_holds_only_the_callers_events(tenants: Tenants, protocol: str, document: str):
    """``after:`` replays the stored log of the caller's tenant only, whatever was written between."""
    latest = "{ events(orderBy: [{field: SEQUENCE, direction: DESC}], first: 1) { nodes { id } } }"
    start = (await asyncio.to_thread(tenants.b.data, latest))["events"]["nodes"][0]["id"]
    theirs = await asyncio.to_thread(_create_ticket, tenants.a)
    ours = await asyncio.to_thread(_create_ticket, tenants.b)
    query = SUBSCRIPTIONS[document].replace("subscription {", "subscription($after: ID) {")
    query = query.replace("events(types", "events(after: $after, types").replace(
        "ticketEvents {", "ticketEvents(after: $after) {"
    )
    async with ws.connect(tenants.server.url, protocol, tenants.b.init) as socket:
        replay = await socket.subscribe(query, {"after": start})
        received = await replay.next()
    assert _target(document, received) == ours, f"B's replay began with {received}"
    assert theirs not in ids_in(received)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("document", ["events", "ticketEvents"])
async def test_resuming_after_the_other_tenants_event_is_bad_user_input(tenants: Tenants, protocol: str, document: str):
    theirs = tenants.graph_a.events[-1]
    query = f"subscription($after: ID) {{ {document}(after: $after) {{ __typename }} }}"
    async with ws.connect(tenants.server.url, protocol, tenants.b.init) as socket:
        operation = await socket.subscribe(query, {"after": theirs})
        error = await operation.error()
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    assert not ids_in(error) - {theirs}
