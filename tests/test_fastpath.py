"""The compiled path answers exactly what the full Strawberry path answers, for every document
it takes; documents it does not take go the full way."""

import uuid

import orjson
import pytest

from graph import fastpath
from graph.fastpath import compile_plan
from models.base import ANONYMOUS_ACTOR, DEFAULT_TENANT
from resolvers.keys import Principal
from tests.fastpath_graph import DEEP, NESTED

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
    # one relation twice, each alias with columns of its own (joined into the page, and batched a level down)
    (
        "{ tickets(first: 3) { nodes { organization { name tier } o: organization { domain } "
        "requester { organization { name } p: organization { tier } } } } }",
        {},
    ),
    (DEEP, {"id": "@ticket"}),
    (NESTED, {}),
    (
        "query($o: ID!) { organization(id: $o) { name tickets(first: 2) { totalCount pageInfo { hasNextPage endCursor } "
        "edges { cursor node { subject comments(last: 2, public: true) { totalCount nodes { body author { name } "
        "ticket { subject } authorRole } } } } } } }",
        {"o": "@org"},
    ),
    (
        "query($t: ID!, $c: String) { ticket(id: $t) { comments(first: 3, after: $c, includeDeleted: true) { "
        "edges { cursor node { id deletedAt } } pageInfo { hasPreviousPage startCursor } } } }",
        {"t": "@ticket", "c": "@cursor"},
    ),
    (
        "query($t: ID!) { ticket(id: $t) { id events(last: 2) { totalCount nodes { __typename id type entityType "
        "target actor version data sequence timestamp } } mergedTickets { id status } merged: mergedInto { id } } }",
        {"t": "@ticket"},
    ),
    ('{ ticket(id: "ticket_abcdefgh") { id } }', {}),
    ('{ ticket(id: "contact_abcdefgh") { id } }', {}),
    ('{ ticket(id: "not an id") { id } }', {}),
    ("query($o: ID!) { ticket(id: $o) { id } }", {"o": "@org"}),
    ("query($t: ID!) { ticket(id: $t) { id subject } }", {"t": "@deleted"}),
    (
        "query($o: ID!) { organization(id: $o) { subscriptions { nodes { status } } subsidiaries { totalCount } "
        "contacts(first: 1) { nodes { name tickets { nodes { subject issues { title } } } } } "
        "deals { nodes { tickets { totalCount } activities { totalCount } } } } }",
        {"o": "@org"},
    ),
    (
        "{ tickets(first: 4) { nodes { id subscription { plan status } activities { subject } events(first: 1) "
        "{ nodes { type } } } } }",
        {},
    ),
    (
        "query($c: ID!) { contact(id: $c) { name tickets(first: 2) { nodes { id } } assignedTickets { totalCount } } }",
        {"c": "@contact"},
    ),
    ("{ deals(first: 3) { nodes { name tickets(first: 1) { totalCount edges { cursor } } } } }", {}),
]

NOT_COMPILED = [
    "{ tickets(where: {status: {eq: OPEN}}) { nodes { id } } }",
    "{ tickets { nodes { id events { nodes { cause { id } } } } } }",
    "{ tickets { nodes { id events { nodes { entity { id } } } } } }",
    '{ ticket(id: "ticket_abcdefgh", asOf: "2026-01-01T00:00:00Z") { id } }',
    "{ organizations { nodes { tickets(where: {status: {eq: OPEN}}) { nodes { id } } } } }",
    "{ organizations { nodes { tickets(orderBy: [{field: SUBJECT}]) { nodes { id } } } } }",
    "{ tickets { nodes { commentCount } } }",
    "{ tickets { nodes { sla { state } } } }",
    "{ tickets { nodes { allowedTransitions } } }",
    '{ node(id: "ticket_abcdefgh") { id } }',
    '{ slaPolicy(id: "slapolicy_abcdefgh") { id } }',
    "{ events(first: 2) { nodes { id } } }",
    "{ tickets { nodes { ...T } } } fragment T on Ticket { id }",
    "{ tickets { nodes { id @include(if: true) } } }",
    "{ tickets { nodes { id } } contacts { nodes { id } } }",
    'mutation { createTicket(input: {subject: "x"}) { id } }',
    "query($n: String) { tickets(first: $n) { nodes { id } } }",
    "{ tickets { nodes { id requester } } }",
    "{ tickets { nodes { nope } } }",
    "query($id: ID) { ticket(id: $id) { id } }",
    "query($id: String!) { ticket(id: $id) { id } }",
    "{ ticket(id: 12345678) { id } }",
]


@pytest.fixture(scope="module")
def graph_data(server) -> dict[str, str]:
    """A few entities of every kind with relations, so the documents have something to show: a
    ticket with issues, activities, more comments than a page (a deleted one, an internal note),
    a merged ticket; an organization with subscriptions; a deleted ticket."""
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
    for trial in (None, "2026-02-01T00:00:00Z", None):
        server.data(
            'mutation($o: ID, $t: DateTime) { createSubscription(input: {startedAt: "2026-01-01T00:00:00Z", plan: "growth", organization: $o, trialEnd: $t}) { id } }',
            {"o": org, "t": trial},
        )
    tickets = []
    for n in range(4):
        ticket = server.data(
            'mutation($r: ID, $o: ID, $d: ID) { createTicket(input: {subject: "Fast", tags: ["fast"], requester: $r, assignee: $r, organization: $o, deal: $d}) { id } }',
            {"r": contact, "o": org, "d": deal},
        )["createTicket"]["id"]
        tickets.append(ticket)
        if n == 0:
            server.data("mutation($id: ID!) { escalateTicket(id: $id) { id } }", {"id": ticket})
        if n == 1:
            server.data("mutation($id: ID!) { resolveTicket(id: $id) { id } }", {"id": ticket})
    first = tickets[0]
    for n in range(7):
        server.data(
            "mutation($id: ID!, $b: String!, $p: Boolean!, $a: ID) { commentTicket(id: $id, input: {body: $b, public: $p, author: $a}) { id } }",
            {"id": first, "b": f"comment {n}", "p": n != 2, "a": contact if n % 2 else None},
        )
    comments = server.data(
        "query($id: ID!) { ticket(id: $id) { comments(first: 20) { edges { cursor node { id } } } } }", {"id": first}
    )["ticket"]["comments"]["edges"]
    server.data("mutation($id: ID!) { deleteComment(id: $id) { id } }", {"id": comments[3]["node"]["id"]})
    for title in ("one", "two", "gone"):
        issue = server.data(
            "mutation($t: ID, $x: String!) { createIssue(input: {title: $x, ticket: $t}) { id } }",
            {"t": first, "x": title},
        )["createIssue"]["id"]
        if title == "gone":
            server.data("mutation($id: ID!) { deleteIssue(id: $id) { id } }", {"id": issue})
    for subject in ("call", "email"):
        server.data(
            "mutation($t: ID, $x: String!) { createActivity(input: {subject: $x, ticket: $t}) { id } }",
            {"t": first, "x": subject},
        )
    server.data(
        "mutation($id: ID!, $into: ID!) { mergeTicket(id: $id, into: $into) { id } }", {"id": tickets[2], "into": first}
    )
    server.data("mutation($id: ID!) { deleteTicket(id: $id) { id } }", {"id": tickets[3]})
    return {"org": org, "contact": contact, "ticket": first, "deleted": tickets[3], "cursor": comments[1]["cursor"]}


def filled(variables: dict, graph_data: dict[str, str]) -> dict:
    """The variables with ``@name`` standing for the fixture's ids."""
    return {k: graph_data[v[1:]] if isinstance(v, str) and v.startswith("@") else v for k, v in variables.items()}


def compiled_path(server, document: str, variables: dict) -> dict:
    """The answer of the compiled path itself (it must not decline)."""
    plan = compile_plan(document, None, server.settings.limits)
    assert plan is not None, "this document should take the compiled path"
    data = server.run(fastpath.run(plan, variables, server.services.db, DEFAULT_TENANT))
    assert data is not None, "the compiled path declined"
    return orjson.loads(orjson.dumps(data))


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
    variables = filled(variables, graph_data)
    full = full_path(server, document, variables)
    assert compiled_path(server, document, variables) == full
    assert server.data(document, variables) == full


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
    nested = "query($t: ID!, $n: Int) { ticket(id: $t) { id comments(first: $n) { nodes { id } } } }"
    error = server.error(nested, {"t": graph_data["ticket"], "n": 101})
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and error["path"] == ["ticket", "comments"]
    error = server.error(
        'query($t: ID!) { ticket(id: $t) { events(before: "x") { totalCount } } }', {"t": graph_data["ticket"]}
    )
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize(
    "document, variables",
    [
        ("query($t: ID!, $p: Boolean!) { ticket(id: $t) { comments(public: $p) { totalCount } } }", {"t": "@ticket"}),
        (
            "query($t: ID!, $p: Boolean!) { ticket(id: $t) { comments(public: $p) { totalCount } } }",
            {"t": "@ticket", "p": None},
        ),
        ("query($t: ID!) { ticket(id: $t) { id } }", {}),
        ("query($t: ID!) { ticket(id: $t) { id } }", {"t": True}),
        ("query($d: Boolean) { tickets(includeDeleted: $d) { totalCount } }", {"d": None}),
        ("query($n: Int) { tickets { nodes { events(first: $n) { totalCount } } } }", {"n": 1.5}),
    ],
)
def test_variables_the_full_path_refuses_are_declined(server, graph_data, document, variables):
    """A compiled document whose variables the full path refuses (a non-null one left out or
    null, a value of another type) is declined, and the full path tells the error."""
    variables = filled(variables, graph_data)
    plan = compile_plan(document, None, server.settings.limits)
    assert plan is not None
    assert server.run(fastpath.run(plan, variables, server.services.db, DEFAULT_TENANT)) is None
    assert server.post(document, variables)["errors"]


def test_a_list_reads_its_relations_with_its_page(server, graph_data):
    """The page's to-one relations are joined into the page's statement; theirs (one level
    down) are one batch per kind."""
    document = (
        "{ tickets(first: 50) { nodes { requester { id organization { id } } organization { id } deal { id } "
        "assignee { id } } } }"
    )
    data, statements = server.count_statements(document)
    nodes = data["tickets"]["nodes"]
    # whether a requester has an organization depends on what other tests wrote to the shared tenant first
    below = any(node["requester"] and node["requester"]["organization"] for node in nodes)
    assert statements == 1 + below
    assert data == full_path(server, document, {})


def test_the_deep_document_costs_one_statement_per_level(server, graph_data):
    """SQLite: one statement per field; PostgreSQL: the fields of a level as one statement."""
    data, statements = server.count_statements(DEEP, {"id": graph_data["ticket"]})
    assert data == compiled_path(server, DEEP, {"id": graph_data["ticket"]})
    assert data == full_path(server, DEEP, {"id": graph_data["ticket"]})
    # the ticket with its requester, assignee, organization and deal joined in; then the current
    # subscription, issues, activities, events and the organization's subscriptions
    assert statements == (2 if _postgresql(server) else 6)


def test_nested_connections_cost_one_statement_per_level_whatever_the_parents(server, graph_data):
    """A connection under a list of parents is one statement for all of them (and one more for
    their totals; on PostgreSQL, one with them), with one parent or many."""
    document = (
        "query($o: ID!, $n: Int) { organization(id: $o) { tickets(first: $n) { nodes { id "
        "comments(first: 2) { totalCount nodes { id } } } } } }"
    )
    counts = {}
    for n in (1, 2, 3):
        variables = {"o": graph_data["org"], "n": n}
        data, counts[n] = server.count_statements(document, variables)
        assert data == compiled_path(server, document, variables) == full_path(server, document, variables)
        assert len(data["organization"]["tickets"]["nodes"]) == n
    # organization; tickets; comments and their totals (SQLite: one after the other)
    expected = 3 if _postgresql(server) else 4
    assert counts == {1: expected, 2: expected, 3: expected}


def _postgresql(server) -> bool:
    return server.services.db.plain.dialect.name == "postgresql"
