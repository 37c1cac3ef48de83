"""The compiled path answers exactly what the full Strawberry path answers, for every document
it takes; documents it does not take go the full way."""

import uuid

import orjson
import pytest

from graph.fastpath import compile_plan
from models.base import ANONYMOUS_ACTOR, DEFAULT_TENANT
from resolvers.keys import Principal

COMPILED = [
    (
        "{ tickets(first: 5) { nodes { id subject status priority tags createdAt updatedAt deletedAt version createdBy } } }",
        {},
    ),
    (
        "{ tickets(first: 7) { totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } "
        "edges { cursor node { id requester { id name email organization { name tier } } assignee { name } } } } }",
        {},
    ),
    (
        "query($n: Int, $c: String) { tickets(first: $n, after: $c) { nodes { id subject deal { name value stage } } } }",
        {"n": 3},
    ),
    (
        "query($n: Int) { tickets(last: $n) { nodes { id __typename organization { __typename id } } __typename } }",
        {"n": 4},
    ),
    (
        "{ deals(first: 10) { nodes { id name value currency stage probability expectedCloseDate organization { name } owner { name } } } }",
        {},
    ),
    (
        "{ organizations(first: 10, includeDeleted: true) { nodes { name slug tier employeeCount annualRevenue parent { name } deletedAt } } }",
        {},
    ),
    ("{ subscriptions { nodes { status plan startedAt cancelAtPeriodEnd quantity organization { name } } } }", {}),
    ("{ metrics(first: 10) { nodes { name value type unit dimensions timestamp organization { id } } } }", {}),
    ("{ issues(first: 10) { nodes { title status priority type labels ticket { subject } reporter { name } } } }", {}),
    ("{ activities(first: 10) { nodes { subject type status dueAt ticket { id } contact { name } } } }", {}),
    (
        "{ contacts(first: 10) { nodes { name email stage status leadScore organization { name } owner { name } } } }",
        {},
    ),
    ("{ a: tickets(first: 3) { b: nodes { c: id d: requester { e: name } } } }", {}),
]

NOT_COMPILED = [
    "{ tickets(where: {status: {eq: OPEN}}) { nodes { id } } }",
    "{ tickets { nodes { id events { totalCount } } } }",
    "{ tickets { nodes { ...T } } } fragment T on Ticket { id }",
    "{ tickets { nodes { id @include(if: true) } } }",
    "{ tickets { nodes { id } } contacts { nodes { id } } }",
    'mutation { createTicket(input: {subject: "x"}) { id } }',
    "query($n: String) { tickets(first: $n) { nodes { id } } }",
    "{ tickets { nodes { id requester } } }",
    "{ tickets { nodes { nope } } }",
    '{ ticket(id: "ticket_abcdefgh") { id } }',
]


@pytest.fixture(scope="module")
def graph_data(server):
    """A few entities of every kind with relations, so the documents have something to show."""
    tag = uuid.uuid4().hex[:8]
    org = server.data(
        'mutation($d: String) { createOrganization(input: {name: "Fast Org", tier: SMB, domain: $d, employeeCount: 12, annualRevenue: 1000}) { id } }',
        {"d": f"{tag}.example"},
    )["createOrganization"]["id"]
    contact = server.data(
        'mutation($o: ID, $e: String) { createContact(input: {name: "Fast Person", email: $e, organization: $o}) { id } }',
        {"o": org, "e": f"p@{tag}.example"},
    )["createContact"]["id"]
    deal = server.data(
        'mutation($o: ID) { createDeal(input: {name: "Fast Deal", value: 100, organization: $o}) { id } }', {"o": org}
    )["createDeal"]["id"]
    server.data(
        'mutation($o: ID) { createSubscription(input: {startedAt: "2026-01-01T00:00:00Z", plan: "growth", organization: $o}) { id } }',
        {"o": org},
    )
    for n in range(3):
        ticket = server.data(
            'mutation($r: ID, $o: ID, $d: ID) { createTicket(input: {subject: "Fast", tags: ["fast"], requester: $r, organization: $o, deal: $d}) { id } }',
            {"r": contact, "o": org, "d": deal},
        )["createTicket"]["id"]
        if n == 0:
            server.data("mutation($id: ID!) { escalateTicket(id: $id) { id } }", {"id": ticket})
        if n == 1:
            server.data("mutation($id: ID!) { resolveTicket(id: $id) { id } }", {"id": ticket})
    return org


def full_path(server, document: str, variables: dict) -> dict:
    """The answer of the full Strawberry path, run in the server's process."""
    view = server.app.state.graphql

    async def go():
        context = view.new_context(Principal(DEFAULT_TENANT, ANONYMOUS_ACTOR), request_id="test")
        result = await view.schema.execute(document, variable_values=variables, context_value=context)
        assert not result.errors, result.errors
        return orjson.loads(orjson.dumps(result.data))

    return server.run(go())


@pytest.mark.parametrize("document, variables", COMPILED, ids=[f"compiled-{i}" for i in range(len(COMPILED))])
def test_the_compiled_path_answers_like_the_full_path(server, graph_data, document, variables):
    assert compile_plan(document, None) is not None, "this document should take the compiled path"
    over_http = server.data(document, variables)
    assert over_http == full_path(server, document, variables)


@pytest.mark.parametrize("document", NOT_COMPILED, ids=[f"full-{i}" for i in range(len(NOT_COMPILED))])
def test_other_documents_take_the_full_path(document):
    assert compile_plan(document, None) is None


def test_errors_still_come_from_the_full_path(server, graph_data):
    error = server.error("{ tickets(first: 500) { nodes { id } } }")
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and error["path"] == ["tickets"]
    error = server.error("query($n: Int) { tickets(first: $n) { nodes { id } } }", {"n": "x"})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    error = server.error('{ tickets(after: "bm90IGEgY3Vyc29y") { nodes { id } } }')
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


def test_the_compiled_path_costs_the_same_statements(server, graph_data):
    document = "{ tickets(first: 50) { nodes { requester { id } organization { id } deal { id } assignee { id } } } }"
    data, statements = server.count_statements(document)
    nodes = data["tickets"]["nodes"]
    # which kinds the page refers to depends on what other tests wrote to the shared tenant first
    kinds = {
        kind
        for kind, fields in (
            ("contacts", ("requester", "assignee")),
            ("organizations", ("organization",)),
            ("deals", ("deal",)),
        )
        if any(node[field] for node in nodes for field in fields)
    }
    assert statements == 1 + len(kinds)  # the page, then one batch per kind referred to
