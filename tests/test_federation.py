"""The server as an Apollo Federation 2 subgraph, over HTTP: ``_service { sdl }`` and ``_entities``.

The module's server has a database of its own (SQLite, then PostgreSQL), holding one entity of
every ``Node`` type made through the API, a webhook delivery included. Which types are ``Node``
types is asked of the server (introspection), never listed here: a new one without ``@key`` or
without a way through ``_entities`` fails these tests.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from graphql import DocumentNode, ObjectTypeDefinitionNode, SchemaDefinitionNode, parse, print_ast

import resolvers.keys
from graph.schema import build_schema, export_sdl, export_subgraph_sdl
from graph.server.settings import Settings
from graph.validation import Limits
from tests.conftest import UNTHROTTLED
from tests.databases import fresh_database
from tests.live import LiveServer, create_many

#: federation's own types, added to the served schema beside the API's (and those of its directives)
FEDERATION_TYPES = {"_Any", "_Entity", "_Service"}
FEDERATION_PREFIXES = ("_", "link__", "federation__")
BUILT_IN_SCALARS = {"Int", "Float", "String", "Boolean", "ID"}
ENTITIES = """query($r: [_Any!]!) { _entities(representations: $r) { __typename ... on Node { id } } }"""
SCALAR_KINDS = ("SCALAR", "ENUM")
INTROSPECT_NODE_TYPES = """{ __type(name: "Node") { possibleTypes { name fields {
  name args { name } type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }
} } } }"""


@dataclass
class Graph:
    server: LiveServer
    #: Node type → the id of one entity of it
    ids: dict[str, str]
    #: another tenant's key
    stranger: dict[str, str]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def graph(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Graph]:
    with fresh_database(request.param, tmp_path_factory.mktemp("federation")) as url:
        server = LiveServer(Settings(database_url=url, limits=UNTHROTTLED)).start()
        try:
            _, key = server.run(resolvers.keys.create_key(server.services.db, tenant="stranger", actor="eve"))
            yield Graph(server, one_of_each(server), {"Authorization": f"Bearer {key}"})
        finally:
            server.stop()


def one_of_each(server: LiveServer) -> dict[str, str]:
    """One entity of every Node type, through the API."""

    def made(mutation: str, **variables) -> dict:
        return next(iter(server.data(mutation, variables).values()))

    ids = {"Organization": made('mutation { createOrganization(input: {name: "Acme"}) { id } }')["id"]}
    ids["Contact"] = made(
        'mutation($o: ID!) { createContact(input: {name: "Pat", organization: $o}) { id } }', o=ids["Organization"]
    )["id"]
    ids["Deal"] = made('mutation { createDeal(input: {name: "Renewal", value: 1200}) { id } }')["id"]
    ids["Subscription"] = made(
        'mutation($o: ID!) { createSubscription(input: {organization: $o, plan: "pro", '
        'startedAt: "2026-01-01T00:00:00Z"}) { id } }',
        o=ids["Organization"],
    )["id"]
    ids["Issue"] = made('mutation { createIssue(input: {title: "Export times out"}) { id } }')["id"]
    ids["Activity"] = made('mutation { createActivity(input: {subject: "Call back"}) { id } }')["id"]
    ids["Metric"] = made('mutation { createMetric(input: {name: "csat", value: 4.5}) { id } }')["id"]
    ids["SlaPolicy"] = made('mutation { createSlaPolicy(input: {name: "Gold", active: false}) { id } }')["id"]
    # refused at delivery (a private address): the delivery is made and recorded all the same
    hook = made('mutation { createWebhook(input: {url: "http://127.0.0.1:9/hook", events: ["Ticket.*"]}) '
                "{ webhook { id } } }")["webhook"]["id"]  # fmt: skip
    ids["Webhook"] = hook
    ticket = made(
        "mutation($o: ID!, $c: ID!) { createTicket(input: {subject: \"Refund\", organization: $o, requester: $c}) "
        "{ id events(first: 1) { nodes { id } } } }",
        o=ids["Organization"], c=ids["Contact"],
    )  # fmt: skip
    ids["Ticket"], ids["Event"] = ticket["id"], ticket["events"]["nodes"][0]["id"]
    commented = made(
        'mutation($t: ID!) { commentTicket(id: $t, input: {body: "Looking into it"}) '
        "{ comments(first: 1) { nodes { id } } } }",
        t=ids["Ticket"],
    )
    ids["Comment"] = commented["comments"]["nodes"][0]["id"]
    ids["WebhookDelivery"] = wait_for_delivery(server, hook)
    server.data("mutation($h: ID!) { updateWebhook(id: $h, input: {active: false}) { id } }", {"h": hook})
    return ids


def wait_for_delivery(server: LiveServer, hook: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        found = server.data("query($h: ID!) { webhook(id: $h) { deliveries(first: 1) { nodes { id } } } }", {"h": hook})
        if nodes := found["webhook"]["deliveries"]["nodes"]:
            return nodes[0]["id"]
        assert time.monotonic() < deadline, "the webhook sender made no delivery"
        time.sleep(0.1)


def node_types(server: LiveServer) -> dict[str, list[str]]:
    """Every Node type the server serves → its scalar fields that take no arguments."""
    found = server.data(INTROSPECT_NODE_TYPES)["__type"]["possibleTypes"]
    return {
        t["name"]: [f["name"] for f in t["fields"] if not f["args"] and _kind(f["type"]) in SCALAR_KINDS] for t in found
    }


def _kind(type_: dict) -> str:
    while type_["kind"] in ("NON_NULL", "LIST"):
        type_ = type_["ofType"]
    return type_["kind"]


def entities(server: LiveServer, representations: list, headers: dict | None = None) -> dict:
    return server.post(ENTITIES, {"r": representations}, headers)


def ref(typename: str, id_: str) -> dict:
    return {"__typename": typename, "id": id_}


# --- _service ------------------------------------------------------------------------------------


def subgraph_sdl(server: LiveServer) -> DocumentNode:
    return parse(server.data("{ _service { sdl } }")["_service"]["sdl"])


def test_the_subgraph_sdl_links_federation_2_and_keys_every_node_type(graph: Graph):
    document = subgraph_sdl(graph.server)
    (schema,) = [d for d in document.definitions if isinstance(d, SchemaDefinitionNode)]
    (link,) = [d for d in schema.directives if d.name.value == "link"]
    arguments = {a.name.value: print_ast(a.value) for a in link.arguments}
    assert re.fullmatch(r'"https://specs\.apollo\.dev/federation/v2\.\d+"', arguments["url"])
    assert '"@key"' in arguments["import"]
    keys = {
        d.name.value: [print_ast(k) for k in d.directives or () if k.name.value == "key"]
        for d in document.definitions
        if isinstance(d, ObjectTypeDefinitionNode)
    }
    served = node_types(graph.server)
    assert served and {name: keys[name] for name in served} == {name: ['@key(fields: "id")'] for name in served}
    assert [name for name, found in keys.items() if found and name not in served] == []


def test_the_subgraph_sdl_leaves_out_the_subscription_root(graph: Graph):
    """Federation names root types by default names, and ``Subscription`` is the billing entity."""
    document = subgraph_sdl(graph.server)
    (schema,) = [d for d in document.definitions if isinstance(d, SchemaDefinitionNode)]
    assert {op.operation.value: op.type.name.value for op in schema.operation_types} == {
        "query": "Query", "mutation": "Mutation",
    }  # fmt: skip
    served_roots = graph.server.data("{ __schema { subscriptionType { name } } }")["__schema"]
    assert served_roots["subscriptionType"] == {"name": "Live"}  # still served: clients subscribe here directly


def test_the_exported_subgraph_sdl_is_what_the_server_answers(graph: Graph):
    assert export_subgraph_sdl() == graph.server.data("{ _service { sdl } }")["_service"]["sdl"] + "\n"


def test_the_public_sdl_is_the_served_schema_without_federation(graph: Graph):
    public = parse(export_sdl())
    names = {d.name.value for d in public.definitions if hasattr(d, "name") and d.name is not None}
    served = graph.server.data("{ __schema { types { name } queryType { fields { name } } } }")["__schema"]
    served_names = {t["name"] for t in served["types"] if not t["name"].startswith("__")} - BUILT_IN_SCALARS
    assert served_names >= FEDERATION_TYPES
    assert names == {name for name in served_names if not name.startswith(FEDERATION_PREFIXES)}
    (query,) = [d for d in public.definitions if isinstance(d, ObjectTypeDefinitionNode) and d.name.value == "Query"]
    served_fields = [f["name"] for f in served["queryType"]["fields"]]
    assert {"_service", "_entities"} <= set(served_fields)
    assert [f.name.value for f in query.fields] == [f for f in served_fields if f not in ("_service", "_entities")]
    assert "@key" not in export_sdl() and "@link" not in export_sdl()


# --- _entities -----------------------------------------------------------------------------------


def test_every_node_type_resolves_as_node_id_does(graph: Graph):
    """Each type's scalar fields, by ``_entities`` and by ``node(id:)``."""
    types = node_types(graph.server)
    assert set(types) == set(graph.ids), "one_of_each() must make an entity of every Node type"
    for name, fields in types.items():
        fragment = f"__typename ... on {name} {{ {' '.join(fields)} }}"
        found = graph.server.data(
            f"query($r: [_Any!]!) {{ _entities(representations: $r) {{ {fragment} }} }}",
            {"r": [ref(name, graph.ids[name])]},
        )["_entities"]
        by_node = graph.server.data(f"query($id: ID!) {{ node(id: $id) {{ {fragment} }} }}", {"id": graph.ids[name]})
        assert found == [by_node["node"]], name
        assert (found[0]["__typename"], found[0]["id"]) == (name, graph.ids[name])


@pytest.fixture(scope="module")
def many(graph: Graph) -> dict[str, list[str]]:
    """Twelve organizations, contacts and tickets."""
    tag = uuid.uuid4().hex[:8]
    made = {
        kind: [e["id"] for e in create_many(graph.server, kind, [{field: f"{tag} {kind} {i}"} for i in range(12)])]
        for kind, field in (("Organization", "name"), ("Contact", "name"), ("Ticket", "subject"))
    }
    return made


@pytest.mark.parametrize("size", [1, 5, 12])
def test_n_representations_of_one_type_are_one_statement(graph: Graph, many: dict[str, list[str]], size: int):
    wanted = [ref("Ticket", id_) for id_ in many["Ticket"][:size]]
    data, statements = graph.server.count_statements(ENTITIES, {"r": wanted})
    assert [e["id"] for e in data["_entities"]] == many["Ticket"][:size]
    assert statements == 1


def test_several_types_are_one_statement_per_type(graph: Graph, many: dict[str, list[str]]):
    interleaved = [ref(kind, many[kind][i]) for i in range(12) for kind in ("Ticket", "Contact", "Organization")]
    data, statements = graph.server.count_statements(ENTITIES, {"r": interleaved})
    assert [(e["__typename"], e["id"]) for e in data["_entities"]] == [(r["__typename"], r["id"]) for r in interleaved]
    assert statements == 3


def test_references_share_the_loaders_of_relations(graph: Graph):
    """A ticket's organization, also asked for as a reference, is read once."""
    query = """query($r: [_Any!]!) { _entities(representations: $r) {
      ... on Ticket { organization { name } } ... on Organization { name } } }"""
    wanted = [ref("Ticket", graph.ids["Ticket"]), ref("Organization", graph.ids["Organization"])]
    data, statements = graph.server.count_statements(query, {"r": wanted})
    assert data["_entities"] == [{"organization": {"name": "Acme"}}, {"name": "Acme"}]
    assert statements == 2


def test_another_tenants_references_are_null(graph: Graph):
    everything = [ref(name, id_) for name, id_ in sorted(graph.ids.items())]
    body = entities(graph.server, everything, graph.stranger)
    assert "errors" not in body and body["data"] == {"_entities": [None] * len(everything)}
    theirs = graph.server.data('mutation { createTicket(input: {subject: "Theirs"}) { id } }', headers=graph.stranger)
    ticket = theirs["createTicket"]["id"]
    assert entities(graph.server, [ref("Ticket", ticket)], graph.stranger)["data"]["_entities"] == [
        {"__typename": "Ticket", "id": ticket}
    ]
    body = entities(graph.server, [ref("Ticket", ticket)])
    assert "errors" not in body and body["data"] == {"_entities": [None]}


def test_a_soft_deleted_entity_resolves_as_relations_show_it(graph: Graph):
    made = graph.server.data('mutation { createDeal(input: {name: "Lost", value: 1}) { id } }')["createDeal"]["id"]
    graph.server.data("mutation($id: ID!) { deleteDeal(id: $id) { id } }", {"id": made})
    query = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Deal { id deletedAt } } }"
    (found,) = graph.server.data(query, {"r": [ref("Deal", made)]})["_entities"]
    assert found["id"] == made and found["deletedAt"] is not None
    assert graph.server.data("query($id: ID!) { node(id: $id) { id } }", {"id": made})["node"] is None


def test_an_unknown_id_of_the_right_shape_is_null(graph: Graph):
    unknown = re.sub(r"_.*", "_" + "Zz9" * 3, graph.ids["Ticket"])
    body = entities(graph.server, [ref("Ticket", unknown)])
    assert "errors" not in body and body["data"] == {"_entities": [None]}


@pytest.mark.parametrize(
    "representation, says",
    [
        ({"__typename": "Invoice", "id": "invoice_abcdefgh"}, "'Invoice' is not an entity"),
        ({"__typename": "PageInfo", "id": "x"}, "'PageInfo' is not an entity"),
        ({"__typename": "Node", "id": "x"}, "'Node' is not an entity"),
        ({"id": "ticket_abcdefgh"}, "A representation names its type in __typename"),
        ({"__typename": 7, "id": "ticket_abcdefgh"}, "A representation names its type in __typename"),
        ({"__typename": "Ticket"}, "A Ticket representation needs its id"),
        ({"__typename": "Ticket", "id": "garbage"}, "'garbage' is not the id of a Ticket"),
        ({"__typename": "Ticket", "id": 42}, "42 is not the id of a Ticket"),
        ("ticket_abcdefgh", "A representation is an object"),
        ([1, 2], "A representation is an object"),
    ],
)
def test_a_bad_representation_is_bad_user_input_and_the_others_resolve(graph: Graph, representation, says: str):
    good = ref("Ticket", graph.ids["Ticket"])
    body = entities(graph.server, [good, representation, good])
    assert body["data"]["_entities"] == [good, None, good]
    (error,) = body["errors"]
    assert error["path"] == ["_entities", 1]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"].startswith(says)


def test_an_id_of_another_type_is_bad_user_input(graph: Graph):
    (error,) = entities(graph.server, [ref("Ticket", graph.ids["Contact"])])["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"] == f"'{graph.ids['Contact']}' is not the id of a Ticket"


def test_a_null_representation_is_refused_before_execution(graph: Graph):
    (error,) = entities(graph.server, [None])["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


def test_more_representations_than_the_node_budget_are_refused():
    limits = Limits(max_nodes=300)
    tight = build_schema(limits)
    representations = [ref("Ticket", f"ticket_{i:08d}") for i in range(limits.max_nodes + 1)]
    result = asyncio.run(tight.execute(ENTITIES, variable_values={"r": representations}))
    assert result.errors is not None
    (error,) = result.errors
    assert error.extensions is not None and error.extensions["code"] == "QUERY_TOO_COMPLEX"
    assert error.extensions["nodes"] == len(representations)  # each reference counted by the budget


THREADS = """query($r: [_Any!]!) { _entities(representations: $r) {
  ... on Ticket { comments(first: 100) { nodes { id } } } } }"""


def test_the_node_budget_counts_every_representation(graph: Graph):
    """Each reference is an item whose nested pages count too: N references of a ticket with
    its first 100 comments may return N + N × 100 nodes, whatever N the gateway sends."""
    ticket = ref("Ticket", graph.ids["Ticket"])
    budget = UNTHROTTLED.max_nodes
    fits = budget // 101  # N + N × 100 ≤ budget
    answer = graph.server.post(THREADS, {"r": [ticket] * fits})
    assert "errors" not in answer, answer.get("errors")
    assert len(answer["data"]["_entities"]) == fits
    assert answer["extensions"]["cost"]["requested"] == fits + fits * 100
    over = graph.server.post(THREADS, {"r": [ticket] * (fits + 1)})
    assert [e["extensions"]["code"] for e in over["errors"]] == ["QUERY_TOO_COMPLEX"]
    assert over.get("data") is None
    literal = ", ".join([f'{{__typename: "Ticket", id: "{graph.ids["Ticket"]}"}}'] * (fits + 1))
    refused = graph.server.post(
        f"{{ _entities(representations: [{literal}]) {{ ... on Ticket {{ comments(first: 100) {{ nodes {{ id }} }} }} }} }}"
    )
    assert [e["extensions"]["code"] for e in refused["errors"]] == ["QUERY_TOO_COMPLEX"]
