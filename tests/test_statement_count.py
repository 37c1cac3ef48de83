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

#: The page of organizations, every organization's page of contacts, their totals.
REVERSE_STATEMENTS = 3

ORGANIZATION_PAGE = """query($n: Int, $prefix: String!) {
  organizations(first: $n, where: {name: {contains: $prefix}}) {
    nodes { id contacts(first: 5) { totalCount } }
  }
}"""

EVERY_REVERSE = """query($n: Int, $prefix: String!) {
  organizations(first: $n, where: {name: {contains: $prefix}}) {
    nodes {
      id
      tickets(first: 3) { nodes { id } }
      deals(first: 3) { nodes { id } }
      subsidiaries { totalCount nodes { id } }
      contacts(first: 5) { totalCount nodes { id tickets(first: 2) { totalCount nodes { id } } } }
    }
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


def test_reverse_relation_costs_the_same_for_every_page_size(server, graph):
    """Each organization's ``contacts`` connection is batched: one statement for the page of
    organizations, one for every organization's page of contacts, one for their totals."""
    counts = {}
    for n in PAGE_SIZES:
        data, counts[n] = server.count_statements(ORGANIZATION_PAGE, {"n": n, "prefix": f"{graph.tag} org"})
        nodes = data["organizations"]["nodes"]
        assert [o["id"] for o in nodes] == [t["organization"]["id"] for t in graph.tickets[:n]]
        assert all(o["contacts"]["totalCount"] == 2 for o in nodes)
    print(f"\nstatements for organizations(first: n) {{ contacts(first: 5) {{ totalCount }} }}: {counts}")
    assert all(count == counts[5] for count in counts.values()), counts
    assert counts[5] == REVERSE_STATEMENTS


def test_every_reverse_connection_field_is_one_batch(server, graph):
    """Several reverse connections on a page of organizations, and on a page of contacts: one
    statement per connection field, one per ``totalCount``, whatever the page size."""
    counts = {}
    for n in PAGE_SIZES:
        data, counts[n] = server.count_statements(EVERY_REVERSE, {"n": n, "prefix": f"{graph.tag} org"})
        organizations = data["organizations"]["nodes"]
        assert len(organizations) == n
        for organization, ticket in zip(organizations, graph.tickets):
            assert [t["id"] for t in organization["tickets"]["nodes"]] == [ticket["id"]]
            assert organization["deals"]["nodes"] == [{"id": ticket["deal"]["id"]}]
            assert organization["subsidiaries"] == {"totalCount": 0, "nodes": []}
            contacts = organization["contacts"]["nodes"]
            assert [c["id"] for c in contacts] == [ticket["requester"]["id"], ticket["assignee"]["id"]]
            assert [c["tickets"]["totalCount"] for c in contacts] == [1, 0]
            assert contacts[0]["tickets"]["nodes"] == [{"id": ticket["id"]}]
    print(f"\nstatements for organizations(first: n) with five reverse connections: {counts}")
    assert all(count == counts[5] for count in counts.values()), counts
    # organizations; tickets; deals; subsidiaries and count; contacts and count; their tickets and count
    assert counts[5] == 1 + 1 + 1 + 2 + 2 + 2


# --- the batched pages answer what the root list answers -----------------------------------------

CONNECTION = "totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { cursor node { id } }"
ARGUMENTS = (
    "$first: Int, $after: String, $last: Int, $before: String, $order: [ContactOrder!], $deleted: Boolean! = false"
)
PASSED = "first: $first, after: $after, last: $last, before: $before, orderBy: $order, includeDeleted: $deleted"
NESTED = f"""query($prefix: String!, $where: ContactWhere, {ARGUMENTS}) {{
  organizations(first: 10, where: {{name: {{contains: $prefix}}}}) {{
    nodes {{ id contacts({PASSED}, where: $where) {{ {CONNECTION} }} }}
  }}
}}"""
ROOT = f"""query({ARGUMENTS}, $scoped: ContactWhere) {{ contacts({PASSED}, where: $scoped) {{ {CONNECTION} }} }}"""

CASES = [
    {},
    {"first": 2},
    {"first": 0},
    {"first": 3, "order": [{"field": "NAME", "direction": "DESC"}]},
    {"last": 2},
    {"last": 3, "order": [{"field": "LEAD_SCORE", "direction": "ASC"}]},
    {"first": 2, "where": {"leadScore": {"gte": 50}}},
    {"first": 4, "where": {"name": {"contains": "b"}}, "order": [{"field": "LEAD_SCORE", "direction": "DESC"}]},
    {"first": 10, "deleted": True},
    {"first": 10, "where": {"or": [{"leadScore": {"isNull": True}}, {"name": {"contains": "a"}}]}},
]


def test_reverse_pages_match_the_root_list(server):
    """For every organization and every set of arguments — filters, orders, both directions,
    cursors, soft-deleted rows — ``organization.contacts(...)`` is exactly
    ``contacts(where: {organization: {eq: …}}, ...)``: rows, cursors, page info and total."""
    tag = f"pages-{uuid.uuid4().hex[:10]}"
    orgs = create_many(server, "Organization", [{"name": f"{tag} {i}"} for i in range(3)])
    names = ["bravo", "alpha", "charlie", "abba", "bob", "delta", "echo", "cab", "dab", "ebb"]
    scores = [50, None, 70, 50, 10, None, 90, 50, 30, 60]
    people = create_many(
        server,
        "Contact",
        [
            {"name": f"{names[i]} {tag}", "leadScore": scores[i], "organization": orgs[1 if i < 3 else 2]["id"]}
            for i in range(len(names))
        ],
        "id version",
    )
    server.data(
        "mutation($id: ID!) { deleteContact(id: $id) { id } }", {"id": people[5]["id"]}
    )  # one soft-deleted contact

    def compare(arguments: dict) -> list[dict]:
        nested = server.data(NESTED, {"prefix": tag, **arguments})["organizations"]["nodes"]
        assert [o["id"] for o in nested] == [o["id"] for o in orgs]
        for organization in nested:
            scope = {"organization": {"eq": organization["id"]}}
            where = arguments.get("where")
            scoped = {"and": [where, scope]} if where else scope
            passed = {k: v for k, v in arguments.items() if k != "where"}
            root = server.data(ROOT, {**passed, "scoped": scoped})["contacts"]
            assert organization["contacts"] == root, (arguments, organization["id"])
        return [o["contacts"] for o in nested]

    walks = 0
    for case in CASES:
        pages = compare(case)
        assert pages[0]["totalCount"] == 0 and pages[0]["edges"] == []
        if "where" not in case:
            assert [p["totalCount"] for p in pages[1:]] == [3, 7 if case.get("deleted") else 6]
        # walk on from the largest organization's page, the same cursor for every organization
        page = pages[2]
        if case.get("first") and page["pageInfo"]["hasNextPage"]:
            compare({**case, "after": page["pageInfo"]["endCursor"]})
            walks += 1
        if case.get("last") and page["pageInfo"]["hasPreviousPage"]:
            compare({**case, "before": page["pageInfo"]["startCursor"]})
            walks += 1
    assert walks >= 5
