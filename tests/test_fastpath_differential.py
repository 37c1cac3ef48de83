"""Differential test of the compiled path (graph/fastpath.py) against the full Strawberry path.

Two servers on one database — one answering through the compiled path, one with it switched off
— get the same random documents over HTTP: a list field of every entity kind, or one entity by
id (live, deleted, of another type or tenant, malformed), with random
``first``/``last``/``after``/``before``/``includeDeleted`` (as literals or variables), random
selections of the connection, its nodes and edges, their to-one relations, their nested
connections (``organization.tickets``, ``ticket.comments(public:)``, ``events``) with arguments of
their own, plain to-many lists (``ticket.issues``) and ``ticket.subscription``, with aliases and
``__typename``; now and then a ``where``/``orderBy`` or a ``NonNull`` variable left unset, which
the compiled path declines. Both answers must hold the same values of the same JSON types, and
(a test of its own) in the same key order — the order the document selects. The data is a random
graph made through the API in a tenant of its own (tests/fastpath_graph.py: parents with more
children than a page, deleted children, another tenant's rows pointing at the same parents),
seeded from pytest-randomly's seed.

Where the compiled path takes a document, it is also run directly on the compiled-path server:
it must not decline (that is how the test knows the comparison is not Strawberry against
itself), and a good share of the documents must be answered that way.
"""

from __future__ import annotations

import json
import random
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
from models.event import Event
from models.history import api_names
from resolvers.validate import references
from tests.fastpath_graph import DEEP, NESTED, build_graph, create_key
from tests.live import LiveServer

ROOT = Path(__file__).resolve().parent.parent
SDL = build_schema((ROOT / "schema.graphql").read_text())
UNTHROTTLED = Limits(rate_per_minute=10**9, rate_burst=10**9)
#: the share of generated documents the compiled path must answer itself
ANSWERED_SHARE = 0.5
#: the least share of documents the compiled path answers of each shape: a list, one entity by
#: id, either with nested connections
SHAPES = 0.03


# --- what a document may select -----------------------------------------------------------------


def _unwrap(type_):
    while isinstance(type_, GraphQLNonNull | GraphQLList):
        type_ = type_.of_type
    return type_


def _fields(type_name: str) -> tuple[list[str], dict[str, str]]:
    """The scalar fields of a node type and its to-one relations (field → node type), as the
    schema shows them and the tables hold them."""
    kind = ENTITIES.get(type_name, Event)
    columns = {api: column for column, api in api_names(kind).items() if column != "tenant"}
    targets = references(kind) if kind is not Event else {}
    scalars, relations = [], {}
    for name, definition in SDL.type_map[type_name].fields.items():
        if definition.args or name not in columns or (type_name, name) in fastpath.CHILDREN:
            continue
        target = _unwrap(definition.type)
        if columns[name] in targets and isinstance(target, GraphQLObjectType):
            relations[name] = target.name
        elif not isinstance(target, GraphQLObjectType):
            scalars.append(name)
    if type_name == "Event":
        scalars.append("sequence")
    return sorted(scalars), relations


FIELDS = {name: _fields(name) for name in fastpath.KINDS}
#: (type, field) → the node type of the parent's connections, and of its plain lists
CONNECTIONS = {
    **{key: child for key, (child, _) in fastpath.PAGES.items()},
    **{(name, "events"): "Event" for name in fastpath.KINDS - {"Event"}},
}
LISTED = {**{key: child for key, (child, _) in fastpath.CHILDREN.items()}, ("Ticket", "subscription"): "Subscription"}
TYPES = {"first": "Int", "last": "Int", "after": "String", "before": "String", "includeDeleted": "Boolean",
         "public": "Boolean"}  # fmt: skip
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


@dataclass
class Variables:
    """The variables one document declares, and their values."""

    declared: list[str] = field(default_factory=list)
    values: dict = field(default_factory=dict)

    def add(self, name: str, type_: str, value: object, *, required: bool, absent: bool) -> str:
        variable = f"{name}{len(self.declared)}"
        self.declared.append(f"${variable}: {type_}{'!' if required else ''}")
        if not absent:
            self.values[variable] = value
        return f"${variable}"


def rarely(odds: int) -> st.SearchStrategy[bool]:
    """True about once in ``odds + 1`` draws. Not ``integers(0, odds) == 0``: Hypothesis favours
    boundary values, so that would be true far more often than it says."""
    return st.sampled_from([False] * odds + [True])


@st.composite
def alias(draw, name: str) -> str:
    """Now and then an alias, unique to the field it names (aliases never clash)."""
    return f"x{draw(st.integers(0, 3))}_{name.lstrip('_')}: " if draw(rarely(4)) else ""


@st.composite
def node_selection(
    draw, type_name: str, pool: Pool, variables: Variables, depth: int = 0, *, nested_at_least: bool = False
) -> str:
    scalars, relations = FIELDS[type_name]
    chosen = draw(st.lists(st.sampled_from(scalars), max_size=6))  # repeats: the same field twice
    items = [f"{draw(alias(name))}{name}" for name in chosen]
    if depth < 2 and relations:
        for name in draw(st.lists(st.sampled_from(sorted(relations)), max_size=2)):
            inner = draw(node_selection(relations[name], pool, variables, depth + 1))
            items.append(f"{draw(alias(name))}{name} {{ {inner} }}")
    nested = sorted(name for (parent, name) in CONNECTIONS if parent == type_name)
    if depth < 2 and nested and (nested_at_least or draw(st.booleans())):
        for name in draw(st.lists(st.sampled_from(nested), min_size=1, max_size=2, unique=True)):
            child = CONNECTIONS[type_name, name]
            arguments = draw(page_arguments(child, pool, variables))
            inner = draw(connection_selection(child, pool, variables, depth + 1))
            items.append(f"{draw(alias(name))}{name}{arguments} {{ {inner} }}")
    listed = sorted(name for (parent, name) in LISTED if parent == type_name)
    if depth < 2 and listed and draw(rarely(2)):
        for name in draw(st.lists(st.sampled_from(listed), min_size=1, max_size=2, unique=True)):
            inner = draw(node_selection(LISTED[type_name, name], pool, variables, depth + 1))
            items.append(f"{draw(alias(name))}{name} {{ {inner} }}")
    if draw(rarely(5)):
        items.append(f"{draw(alias('__typename'))}__typename")
    return " ".join(draw(st.permutations(items))) or "id"


@st.composite
def connection_selection(
    draw, type_name: str, pool: Pool, variables: Variables, depth: int = 0, *, nested_at_least: bool = False
) -> str:
    parts = []
    if nested_at_least or draw(st.booleans()):
        inner = draw(node_selection(type_name, pool, variables, depth, nested_at_least=nested_at_least))
        parts.append(f"{draw(alias('nodes'))}nodes {{ {inner} }}")
    if draw(rarely(2)):
        edge = draw(st.lists(st.sampled_from(["cursor", "node", "__typename"]), min_size=1, unique=True))
        inner = " ".join(
            f"node {{ {draw(node_selection(type_name, pool, variables, depth))} }}" if e == "node" else e for e in edge
        )
        parts.append(f"{draw(alias('edges'))}edges {{ {inner} }}")
    if draw(rarely(2)):
        info = ["hasNextPage", "hasPreviousPage", "startCursor", "endCursor", "__typename"]
        parts.append(f"pageInfo {{ {' '.join(draw(st.lists(st.sampled_from(info), min_size=1, unique=True)))} }}")
    if draw(st.booleans()):
        parts.append(f"{draw(alias('totalCount'))}totalCount")
    if draw(rarely(6)):
        parts.append("__typename")
    return " ".join(draw(st.permutations(parts))) or "totalCount"


@st.composite
def page_arguments(draw, type_name: str, pool: Pool, variables: Variables) -> str:
    """``(first: 3, after: $after0 …)`` for a connection of ``type_name`` (or "")."""
    arguments: dict[str, object] = {}
    size = draw(st.one_of(st.none(), st.integers(0, 8)))
    if draw(rarely(20)):  # out of bounds: refused (at the root, or in one field of every parent)
        size = draw(st.sampled_from([-1, 101, 500]))
    if size is not None:
        arguments[draw(st.sampled_from(["first", "first", "last"]))] = size
    if draw(rarely(30)):  # both: refused
        arguments["first"], arguments["last"] = 2, 2
    for name in ("after", "before"):
        if draw(rarely(3)):
            garbage = draw(rarely(20))  # not a cursor: refused
            arguments[name] = "bm90IGEgY3Vyc29y" if garbage else draw(st.sampled_from(pool.cursors[type_name]))
    if type_name != "Event" and draw(st.booleans()):
        arguments["includeDeleted"] = draw(st.booleans())
    if type_name == "Comment" and draw(st.booleans()):
        arguments["public"] = draw(st.sampled_from([True, False, None]))
    written = []
    for name, value in arguments.items():
        if draw(st.booleans()):
            required = draw(rarely(8)) and value is not None
            absent = value is None and draw(st.booleans())  # an absent variable is a null one
            written.append(f"{name}: {variables.add(name, TYPES[name], value, required=required, absent=absent)}")
        else:
            written.append(f"{name}: {json.dumps(value)}")
    if type_name not in ("Event", "Comment") and draw(rarely(7)):
        written.append(draw(st.sampled_from(DECLINED)))
    written = draw(st.permutations(written))
    return f"({', '.join(written)})" if written else ""


@st.composite
def documents(draw, pool: Pool) -> Document:
    variables = Variables()
    nested = draw(st.booleans())  # at least one connection under the root's nodes
    if draw(st.booleans()):
        root = draw(st.sampled_from(sorted(fastpath.LISTS)))
        type_name = fastpath.LISTS[root]
        arguments = draw(page_arguments(type_name, pool, variables))
        selection = draw(connection_selection(type_name, pool, variables, nested_at_least=nested))
    else:
        root = draw(st.sampled_from(sorted(fastpath.ONE)))
        type_name = fastpath.ONE[root]
        id_ = draw(st.sampled_from(pool.ids[type_name][:6] + pool.strangers(type_name)))
        if draw(st.booleans()):
            arguments = f"(id: {variables.add('id', 'ID', id_, required=True, absent=draw(rarely(20)))})"
        else:
            arguments = f"(id: {json.dumps(id_)})"
        selection = draw(node_selection(type_name, pool, variables, nested_at_least=nested))
    named = draw(st.booleans())
    head = "query Page" if named else ("query" if variables.declared else "")
    if variables.declared:
        head += f"({', '.join(variables.declared)})"
    query = f"{head} {{ {draw(alias(root))}{root}{arguments} {{ {selection} }} }}"
    operation = "Page" if named and draw(st.booleans()) else None
    return Document(query, variables.values, operation)


# --- two servers, one random graph --------------------------------------------------------------


@dataclass
class Pool:
    """What documents may name: cursors of every kind, ids of every entity kind."""

    cursors: dict[str, list[str]] = field(default_factory=dict)
    ids: dict[str, list[str]] = field(default_factory=dict)

    def strangers(self, type_name: str) -> list[str]:
        """Ids the root must answer null for: another tenant's, another type's, malformed."""
        other = next(t for t in self.ids if t != type_name)
        return [self.ids[type_name][0] + "x", self.ids[other][0], "nope", f"{type_name.lower()}_00000000"]


@dataclass
class Pair(Pool):
    fast: LiveServer = None  # type: ignore[assignment]
    full: LiveServer = None  # type: ignore[assignment]
    tenant: str = ""
    key: str = ""
    seed: int = 0
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


@pytest.fixture(scope="module")
def pair(database_url: str) -> Iterator[Pair]:
    tenant = f"diff-{uuid.uuid4().hex[:8]}"
    key = create_key(database_url, tenant)
    fast = LiveServer(Settings(database_url=database_url, limits=UNTHROTTLED, fast_path=True)).start()
    full = LiveServer(Settings(database_url=database_url, limits=UNTHROTTLED, fast_path=False)).start()
    try:
        made = Pair(fast=fast, full=full, tenant=tenant, key=key, seed=random.getrandbits(32))
        build_graph(made)
        yield made
    finally:
        fast.stop()
        full.stop()


def _comparable(body: dict) -> dict:
    """The body without what differs per request: request ids in errors, and which of several
    list items failing alike is told (the first to fail, in whatever order they ran)."""
    for error in body.get("errors") or ():
        (error.get("extensions") or {}).pop("requestId", None)
        if "path" in error:
            error["path"] = [p if isinstance(p, str) else "#" for p in error["path"]]
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


def compiled_answer(pair: Pair, document: Document) -> tuple[dict | None, str]:
    """What the compiled path answers itself (None where it declines), and the document's shape."""
    plan = fastpath.compile_plan(document.query, document.operation, pair.fast.settings.limits)
    if plan is None:
        return None, ""
    nested = len(plan.connections) > (plan.connection is not None)
    shape = ("by id" if plan.node is not None else "list") + (" nested" if nested else "")
    run = fastpath.run(plan, document.variables, pair.fast.services.db, pair.tenant)
    return json.loads(json.dumps(pair.fast.run(run))), shape


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
        direct, shape = compiled_answer(pair, document)
        pair.seen["documents"] += 1
        if direct is not None:
            pair.seen["answered"] += 1
            pair.seen[f"answered {shape}"] += 1
            pair.seen["answered nested"] += "nested" in shape
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
    )(given(document=documents(pair))(check))()  # fmt: skip
    summary = f"{pair.seen}; refusals: {pair.refusals}"
    assert pair.seen["answered"] >= ANSWERED_SHARE * pair.seen["documents"], summary
    shapes = ("list", "list nested", "by id", "by id nested")
    assert min(pair.seen[f"answered {shape}"] for shape in shapes) >= SHAPES * examples, summary


#: a field selected twice: GraphQL merges the two selections into one object
MERGED = [
    Document("{ tickets(first: 10) { nodes { id requester { name } requester { email } } } }", {}, None),
    Document("{ tickets(first: 3) { nodes { id } nodes { subject } } }", {}, None),
]
#: an object's keys come in the order the document selects them
ORDERED = [Document("{ tickets(first: 3) { nodes { requester { id } id } } }", {}, None)]


def test_the_compiled_path_answers_like_the_full_path(pair: Pair):
    deep = [Document(DEEP, {"id": ticket}, "Deep") for ticket in pair.ids["Ticket"][:3]]
    compare(pair, ordered=False, examples=80, explicit=[*MERGED, *deep, Document(NESTED, {}, None)])


def test_the_compiled_path_keeps_the_documents_field_order(pair: Pair):
    compare(pair, ordered=True, examples=30, explicit=ORDERED)
