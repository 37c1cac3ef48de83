"""The number of SQL statements a nested list query costs does not grow with the page size.

Every ticket below points at its own requester, assignee, organization and deal, so a resolver
that loaded relations one row at a time would cost a statement per ticket and relation; the
per-request DataLoaders must batch each kind into one statement. The tickets carry a tag of
their own and the queries filter on it, so rows other tests leave in the shared database never
enter these pages (a ticket without relations would need no relation statement at all).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from tests.live import create_many

PAGE_SIZES = (5, 20, 50, 100)
TICKETS = 110  # more than the largest page

TICKET_PAGE = """query($n: Int, $tag: String!) {
  tickets(first: $n, where: {tags: {hasAny: [$tag]}}) {
    nodes { id requester { id name } assignee { id } organization { id name } deal { id name } }
  }
}"""

#: The API's example query (API.md, "Performance shape"), on this test's tickets.
EXAMPLE = """query($tag: String!) {
  tickets(first: 50, where: {tags: {hasAny: [$tag]}}) {
    nodes { requester { id } organization { id } deal { id } assignee { id } }
  }
}"""

#: One statement for the page of tickets, then one batch per related kind: contacts (requester
#: and assignee share the Contact loader), organizations, deals.
EXAMPLE_STATEMENTS = 4

ORGANIZATION_PAGE = """query($n: Int, $prefix: String!) {
  organizations(first: $n, where: {name: {contains: $prefix}}) {
    nodes { id contacts(first: 5) { totalCount } }
  }
}"""


@dataclass
class Graph:
    tag: str
    tickets: list[dict]


@pytest.fixture(scope="module")
def graph(server) -> Graph:
    """110 tickets, each with its own requester, assignee, organization and deal."""
    tag = f"stmt-{uuid.uuid4().hex[:10]}"
    orgs = create_many(server, "Organization", [{"name": f"{tag} org {i:03}"} for i in range(TICKETS)])
    people = create_many(
        server,
        "Contact",
        [
            {"name": f"{tag} {role} {i:03}", "email": f"{tag}-{role}-{i}@example.com", "organization": orgs[i]["id"]}
            for i in range(TICKETS)
            for role in ("requester", "assignee")
        ],
    )
    deals = create_many(
        server,
        "Deal",
        [{"name": f"{tag} deal {i:03}", "value": 100 + i, "organization": orgs[i]["id"]} for i in range(TICKETS)],
    )
    tickets = create_many(
        server,
        "Ticket",
        [
            {
                "subject": f"{tag} ticket {i:03}",
                "tags": [tag],
                "requester": people[2 * i]["id"],
                "assignee": people[2 * i + 1]["id"],
                "organization": orgs[i]["id"],
                "deal": deals[i]["id"],
            }
            for i in range(TICKETS)
        ],
        "id requester { id } assignee { id } organization { id } deal { id }",
    )
    return Graph(tag, tickets)


def test_ticket_page_costs_the_same_for_every_page_size(server, graph):
    counts = {}
    for n in PAGE_SIZES:
        data, counts[n] = server.count_statements(TICKET_PAGE, {"n": n, "tag": graph.tag})
        nodes = data["tickets"]["nodes"]
        # The page is this test's tickets, oldest first, each with four distinct relations.
        assert [t["id"] for t in nodes] == [t["id"] for t in graph.tickets[:n]]
        for node, made in zip(nodes, graph.tickets):
            for relation in ("requester", "assignee", "organization", "deal"):
                assert node[relation]["id"] == made[relation]["id"]
        for relation in ("requester", "assignee", "organization", "deal"):
            assert len({t[relation]["id"] for t in nodes}) == n, f"every ticket has its own {relation}"
    print(f"\nstatements for tickets(first: n) with requester, assignee, organization, deal: {counts}")
    assert all(count == counts[5] for count in counts.values()), counts
    assert counts[5] == EXAMPLE_STATEMENTS, "one list query and one batch per related kind"


def test_the_example_query_costs_four_statements(server, graph):
    for _ in range(3):  # the same, however often it runs (parsed documents are cached)
        data, count = server.count_statements(EXAMPLE, {"tag": graph.tag})
        assert len(data["tickets"]["nodes"]) == 50
        assert all(all(node[r] is not None for r in node) for node in data["tickets"]["nodes"])
        print(f"\nstatements for the API's example query: {count}")
        assert count == EXAMPLE_STATEMENTS


def test_total_count_adds_one_statement(server, graph):
    """``totalCount`` is a COUNT of its own, run only when asked for, whatever the page size."""
    query = TICKET_PAGE.replace("nodes {", "totalCount nodes {", 1)
    for n in PAGE_SIZES:
        data, count = server.count_statements(query, {"n": n, "tag": graph.tag})
        assert data["tickets"]["totalCount"] == TICKETS
        assert count == EXAMPLE_STATEMENTS + 1


def test_reverse_relation_cost_by_page_size(server, graph):
    """Reported, not pinned: each organization's ``contacts`` connection runs its own queries."""
    counts = {}
    for n in PAGE_SIZES:
        data, counts[n] = server.count_statements(ORGANIZATION_PAGE, {"n": n, "prefix": f"{graph.tag} org"})
        nodes = data["organizations"]["nodes"]
        assert [o["id"] for o in nodes] == [t["organization"]["id"] for t in graph.tickets[:n]]
        assert all(o["contacts"]["totalCount"] == 2 for o in nodes)
    per_org = {n: (counts[n] - 1) / n for n in PAGE_SIZES}
    print(f"\nstatements for organizations(first: n) {{ contacts(first: 5) {{ totalCount }} }}: {counts}")
    print(f"statements per organization beyond the list query: {per_org}")
