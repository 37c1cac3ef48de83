"""Differential test of the compiled path (graph/fastpath.py) against the full Strawberry path.

Two servers on one database — one answering list pages through the compiled path, one with it
switched off — get the same random documents over HTTP: list fields of every entity kind with
random ``first``/``last``/``after``/``before``/``includeDeleted`` (as literals or variables),
random selections of the connection, its nodes and edges, and their to-one relations two levels
deep, with aliases and ``__typename``; now and then a ``where``/``orderBy`` or a ``NonNull``
variable, which the compiled path declines today. Both answers must hold the same values of the
same JSON types, and (a test of its own) in the same key order — the order the document selects.
The data is a small random graph made through the API in a tenant of its own, with null and
deleted relations, escalations and resolutions (seeded from pytest-randomly's seed).

Where the compiled path takes a document, it is also run directly on the compiled-path server:
it must not decline (that is how the test knows the comparison is not Strawberry against
itself), and a good share of the documents must be answered that way.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from graphql import GraphQLList, GraphQLNonNull, GraphQLObjectType, build_schema
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from graph import fastpath
from graph.server.settings import Settings
from graph.validation import Limits
from models.base import ENTITIES
from models.history import api_names
from resolvers.validate import references
from tests.live import LiveServer, create_many

ROOT = Path(__file__).resolve().parent.parent
SDL = build_schema((ROOT / "schema.graphql").read_text())
UNTHROTTLED = Limits(rate_per_minute=10**9, rate_burst=10**9)
#: the share of generated documents the compiled path must answer itself
ANSWERED_SHARE = 0.5


# --- what a document may select -----------------------------------------------------------------


def _unwrap(type_):
    while isinstance(type_, GraphQLNonNull | GraphQLList):
        type_ = type_.of_type
    return type_


def _fields(type_name: str) -> tuple[list[str], dict[str, str]]:
    """The scalar fields of a node type and its to-one relations (field → node type), as the
    schema shows them and the tables hold them."""
    kind = ENTITIES[type_name]
    columns = {api: column for column, api in api_names(kind).items() if column != "tenant"}
    targets = references(kind)
    scalars, relations = [], {}
    for name, definition in SDL.type_map[type_name].fields.items():
        if definition.args or name not in columns:
            continue
        target = _unwrap(definition.type)
        if columns[name] in targets and isinstance(target, GraphQLObjectType):
            relations[name] = target.name
        elif not isinstance(target, GraphQLObjectType):
            scalars.append(name)
    return sorted(scalars), relations


FIELDS = {name: _fields(name) for name in set(fastpath.LISTS.values())}


@st.composite
def node_selection(draw, type_name: str, depth: int = 0) -> str:
    scalars, relations = FIELDS[type_name]
    chosen = draw(st.lists(st.sampled_from(scalars), max_size=6))  # repeats: the same field twice
    items = [f"{draw(alias(name))}{name}" for name in chosen]
    if depth < 2 and relations:
        for name in draw(st.lists(st.sampled_from(sorted(relations)), max_size=2)):
            items.append(f"{draw(alias(name))}{name} {{ {draw(node_selection(relations[name], depth + 1))} }}")
    if draw(rarely(5)):
        items.append(f"{draw(alias('__typename'))}__typename")
    return " ".join(draw(st.permutations(items))) or "id"


@st.composite
def alias(draw, name: str) -> str:
    """Now and then an alias, unique to the field it names (aliases never clash)."""
    return f"x{draw(st.integers(0, 3))}_{name.lstrip('_')}: " if draw(rarely(4)) else ""


@st.composite
def connection_selection(draw, type_name: str) -> str:
    parts = []
    if draw(st.booleans()):
        parts.append(f"{draw(alias('nodes'))}nodes {{ {draw(node_selection(type_name))} }}")
    if draw(rarely(2)):
        edge = draw(st.lists(st.sampled_from(["cursor", "node", "__typename"]), min_size=1, unique=True))
        inner = " ".join(f"node {{ {draw(node_selection(type_name))} }}" if e == "node" else e for e in edge)
        parts.append(f"{draw(alias('edges'))}edges {{ {inner} }}")
    if draw(rarely(2)):
        info = ["hasNextPage", "hasPreviousPage", "startCursor", "endCursor", "__typename"]
        parts.append(f"pageInfo {{ {' '.join(draw(st.lists(st.sampled_from(info), min_size=1, unique=True)))} }}")
    if draw(st.booleans()):
        parts.append(f"{draw(alias('totalCount'))}totalCount")
    if draw(rarely(6)):
        parts.append("__typename")
    return " ".join(draw(st.permutations(parts))) or "totalCount"


#: arguments the compiled path does not take: both paths answer them alike through Strawberry
DECLINED = [
    "where: {id: {isNull: false}}",
    'where: {createdAt: {lte: "2999-01-01T00:00:00Z"}}',
    "orderBy: [{field: UPDATED_AT, direction: DESC}]",
    "orderBy: [{field: CREATED_AT}]",
]


@dataclass
class Document:
    query: str
    variables: dict
    operation: str | None


def rarely(odds: int) -> st.SearchStrategy[bool]:
    """True about once in ``odds + 1`` draws. Not ``integers(0, odds) == 0``: Hypothesis favours
    boundary values, so that would be true far more often than it says."""
    return st.sampled_from([False] * odds + [True])


@st.composite
def documents(draw, cursors: dict[str, list[str]]) -> Document:
    root = draw(st.sampled_from(sorted(fastpath.LISTS)))
    type_name = fastpath.LISTS[root]
    arguments: dict[str, object] = {}
    size = draw(st.one_of(st.none(), st.integers(0, 8)))
    if draw(rarely(20)):  # out of bounds: refused
        size = draw(st.sampled_from([-1, 101, 500]))
    if size is not None:
        arguments[draw(st.sampled_from(["first", "first", "last"]))] = size
    if draw(rarely(30)):  # both: refused
        arguments["first"], arguments["last"] = 2, 2
    for name in ("after", "before"):
        if draw(rarely(3)):
            garbage = draw(rarely(20))  # not a cursor: refused
            arguments[name] = "bm90IGEgY3Vyc29y" if garbage else draw(st.sampled_from(cursors[root]))
    if draw(st.booleans()):
        arguments["includeDeleted"] = draw(st.booleans())
    variables, declared, written = {}, [], []
    types = {"first": "Int", "last": "Int", "after": "String", "before": "String", "includeDeleted": "Boolean"}
    for name, value in arguments.items():
        if draw(st.booleans()):
            required = "!" if draw(rarely(8)) and value is not None else ""
            declared.append(f"${name}: {types[name]}{required}")
            written.append(f"{name}: ${name}")
            if value is not None or draw(st.booleans()):  # an absent variable is a null one
                variables[name] = value
        else:
            written.append(f"{name}: {json.dumps(value)}")
    if draw(rarely(7)):
        written.append(draw(st.sampled_from(DECLINED)))
    written = draw(st.permutations(written))
    named = draw(st.booleans())
    head = "query Page" if named else ("query" if declared else "")
    if declared:
        head += f"({', '.join(declared)})"
    call = f"{draw(alias(root))}{root}({', '.join(written)})" if written else f"{draw(alias(root))}{root}"
    query = f"{head} {{ {call} {{ {draw(connection_selection(type_name))} }} }}"
    operation = "Page" if named and draw(st.booleans()) else None
    return Document(query, variables, operation)


# --- two servers, one random graph --------------------------------------------------------------


@dataclass
class Pair:
    fast: LiveServer
    full: LiveServer
    tenant: str
    key: str
    seed: int
    cursors: dict[str, list[str]] = field(default_factory=dict)
    seen: Counter = field(default_factory=Counter)
    refusals: Counter = field(default_factory=Counter)

    def post(self, server: LiveServer, document: Document) -> tuple[int, dict]:
        payload = {"query": document.query, "variables": document.variables}
        if document.operation:
            payload["operationName"] = document.operation
        response = server.http.post("/graphql", json=payload, headers={"Authorization": f"Bearer {self.key}"})
        return response.status_code, response.json()

    def data(self, query: str, variables: dict | None = None) -> dict:
        status, body = self.post(self.full, Document(query, variables or {}, None))
        assert status == 200 and not body.get("errors"), body
        return body["data"]


def create_key(database_url: str, tenant: str) -> str:
    """An API key of a fresh tenant, through the CLI."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    done = subprocess.run(
        [sys.executable, "-m", "graph", "create-key", "--tenant", tenant, "--database-url", database_url],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[-1]


def build_graph(pair: Pair) -> None:
    """A small random graph in the pair's tenant, through the API."""
    rng, api = random.Random(pair.seed), pair  # create_many through the tenant's key
    text = ["Printer", "Ünïcødé ✓", "billing", "", "x" * 40, 'O\'Brien "quoted"']

    def maybe(values: list):
        return rng.choice([None, *values]) if values else None

    def words() -> str:
        return " ".join(rng.choice(text) for _ in range(rng.randint(1, 3))).strip() or "blank"

    orgs: list[str] = []
    for n in range(4):
        orgs += [o["id"] for o in create_many(api, "Organization", [{
            "name": f"{words()} {n}", "tier": rng.choice([None, "SMB", "ENTERPRISE"]),
            "employeeCount": maybe([0, 12, 5000]), "annualRevenue": maybe([0.5, 1e6, 123.25]),
            "parent": maybe(orgs), "country": maybe(["DE", "US"]),
        }])]  # fmt: skip
    contacts = [c["id"] for c in create_many(api, "Contact", [
        {"name": f"{words()} {n}", "email": rng.choice([None, f"c{n}-{pair.tenant}@example.com"]),
         "organization": maybe(orgs), "leadScore": maybe([0, 50, 100])}
        for n in range(6)
    ])]  # fmt: skip
    contacts += [c["id"] for c in create_many(api, "Contact", [
        {"name": f"Owner {n}", "owner": maybe(contacts), "organization": maybe(orgs)} for n in range(2)
    ])]  # fmt: skip
    deals = [d["id"] for d in create_many(api, "Deal", [
        {"name": words(), "value": rng.choice([0, 99.5, 1e5]), "organization": maybe(orgs),
         "contact": maybe(contacts), "owner": maybe(contacts), "expectedCloseDate": maybe(["2026-03-01"])}
        for _ in range(3)
    ])]  # fmt: skip
    create_many(api, "Subscription", [
        {"startedAt": "2026-01-01T00:00:00Z", "organization": maybe(orgs), "plan": maybe(["growth", "enterprise"]),
         "trialEnd": maybe(["2026-02-01T00:00:00Z"]), "quantity": maybe([1, 30])}
        for _ in range(2)
    ])  # fmt: skip
    tickets = [t["id"] for t in create_many(api, "Ticket", [
        {"subject": words(), "tags": rng.sample(["a", "b", "vip"], rng.randint(0, 2)),
         "priority": maybe(["LOW", "HIGH", "URGENT"]), "channel": maybe(["EMAIL", "CHAT"]),
         "requester": maybe(contacts), "assignee": maybe(contacts), "organization": maybe(orgs),
         "deal": maybe(deals), "satisfaction": maybe([1, 5])}
        for _ in range(10)
    ])]  # fmt: skip
    create_many(api, "Issue", [{"title": words(), "ticket": maybe(tickets), "reporter": maybe(contacts)}])
    create_many(api, "Activity", [{"subject": words(), "deal": maybe(deals), "dueAt": "2026-05-01T10:00:00Z"}])
    create_many(api, "Metric", [
        {"name": "m", "value": rng.choice([0.0, 1.5, -3]), "dimensions": maybe([{"k": [1, "two"]}]),
         "organization": maybe(orgs), "timestamp": maybe(["2026-04-01T00:00:00Z"])}
    ])  # fmt: skip
    for ticket in rng.sample(tickets, 4):
        verb = rng.choice(["escalateTicket", "resolveTicket"])
        pair.data(f"mutation($id: ID!) {{ {verb}(id: $id) {{ id }} }}", {"id": ticket})
    # deleted rows, some of them targets of relations
    for mutation, id_ in (("deleteOrganization", orgs[0]), ("deleteContact", contacts[0]),
                          ("deleteTicket", tickets[-1]), ("deleteDeal", deals[0])):  # fmt: skip
        pair.data(f"mutation($id: ID!) {{ {mutation}(id: $id) {{ id }} }}", {"id": id_})
    for root in fastpath.LISTS:
        found = []
        for include in ("false", "true"):
            page = pair.data(f"{{ {root}(first: 100, includeDeleted: {include}) {{ edges {{ cursor }} }} }}")
            found += [edge["cursor"] for edge in page[root]["edges"]]
        pair.cursors[root] = sorted(set(found))
    assert len(pair.cursors["tickets"]) >= 10


@pytest.fixture(scope="module")
def pair(database_url: str) -> Iterator[Pair]:
    tenant = f"diff-{uuid.uuid4().hex[:8]}"
    key = create_key(database_url, tenant)
    fast = LiveServer(Settings(database_url=database_url, limits=UNTHROTTLED, fast_path=True)).start()
    full = LiveServer(Settings(database_url=database_url, limits=UNTHROTTLED, fast_path=False)).start()
    try:
        made = Pair(fast, full, tenant, key, seed=random.getrandbits(32))
        build_graph(made)
        yield made
    finally:
        fast.stop()
        full.stop()


def _comparable(body: dict) -> dict:
    """The body without what differs per request (request ids in errors)."""
    for error in body.get("errors") or ():
        (error.get("extensions") or {}).pop("requestId", None)
    return body


def differences(a: object, b: object, *, ordered: bool, path: str = "") -> list[str]:
    """Where two answers differ (the first few places): values and their JSON types and, if
    ``ordered``, the order of each object's keys."""
    if isinstance(a, dict) and isinstance(b, dict):
        if (list(a) if ordered else sorted(a)) != (list(b) if ordered else sorted(b)):
            return [f"{path or '.'}: keys {list(a)} != {list(b)}"]
        return [d for k in a for d in differences(a[k], b[k], ordered=ordered, path=f"{path}.{k}")][:5]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        pairs = enumerate(zip(a, b))
        return [d for i, (x, y) in pairs for d in differences(x, y, ordered=ordered, path=f"{path}[{i}]")][:5]
    return [] if a == b and type(a) is type(b) else [f"{path}: {a!r} != {b!r}"]


def compiled_answer(pair: Pair, document: Document) -> dict | None:
    """What the compiled path answers itself, or None where it declines."""
    plan = fastpath.compile_plan(document.query, document.operation, pair.fast.settings.limits)
    if plan is None:
        return None
    run = fastpath.run(plan, document.variables, pair.fast.services.db, pair.tenant)
    return json.loads(json.dumps(pair.fast.run(run)))


def compare(pair: Pair, *, ordered: bool, examples: int, explicit: list[Document]) -> None:
    """Send ``examples`` random documents (and the ``explicit`` ones) to both servers; their
    answers must not differ, nor the compiled path's own where it takes the document."""
    pair.seen.clear()
    pair.refusals.clear()

    def check(document: Document) -> None:
        context = f"graph seed {pair.seed}; {document}"
        fast, full = pair.post(pair.fast, document), pair.post(pair.full, document)
        assert fast[0] == full[0], context
        assert differences(_comparable(fast[1]), _comparable(full[1]), ordered=ordered) == [], context
        direct = compiled_answer(pair, document)
        pair.seen["documents"] += 1
        if direct is not None:
            pair.seen["answered"] += 1
            answer = {k: v for k, v in full[1].items() if k != "extensions"}  # extensions.cost: told over HTTP only
            assert differences({"data": direct}, answer, ordered=ordered) == [], context
        for error in full[1].get("errors") or ():
            pair.refusals[error["message"][:60]] += 1

    for document in explicit:
        check = example(document=document)(check)
    # no shrinking: every step is two HTTP requests; the failing document is shown as generated
    settings(
        max_examples=examples, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
        derandomize=True,  # the same documents every run: the shares asserted below are not left to chance
        suppress_health_check=[HealthCheck.too_slow],
    )(given(document=documents(pair.cursors))(check))()  # fmt: skip
    summary = f"{pair.seen}; refusals: {pair.refusals}"
    assert pair.seen["answered"] >= ANSWERED_SHARE * pair.seen["documents"], summary


#: a field selected twice: GraphQL merges the two selections into one object
MERGED = [
    Document("{ tickets(first: 10) { nodes { id requester { name } requester { email } } } }", {}, None),
    Document("{ tickets(first: 3) { nodes { id } nodes { subject } } }", {}, None),
]
#: an object's keys come in the order the document selects them
ORDERED = [Document("{ tickets(first: 3) { nodes { requester { id } id } } }", {}, None)]


def test_the_compiled_path_answers_like_the_full_path(pair: Pair):
    compare(pair, ordered=False, examples=60, explicit=MERGED)


def test_the_compiled_path_keeps_the_documents_field_order(pair: Pair):
    compare(pair, ordered=True, examples=30, explicit=ORDERED)
