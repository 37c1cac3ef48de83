"""Generated operations against the real server: every answer is well formed, none is a 5xx,
and every error carries an ``extensions.code`` of the API's list (and none is INTERNAL).

``hypothesis-graphql`` builds valid queries and mutations from ``schema.graphql``; its ``ID``
values mix the ids of a small real graph (so verbs meet real rows in every state the fuzz drives
them to) with random strings. Invalid operations come from its negative mode (one schema
violation each), from random text and from valid documents with a character changed. The fuzz
works in a tenant of its own (a key on the shared server), so the rows it creates are seen by no
other test. Every run draws the same examples (``derandomize``) and the counts are bounded.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import graphql
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, mutations, nodes, queries

import resolvers.keys
from tests.live import LiveServer

SCHEMA = (Path(__file__).resolve().parent.parent / "schema.graphql").read_text()
API_CODES = {
    "BAD_USER_INPUT", "NOT_FOUND", "INVALID_TRANSITION", "VERSION_CONFLICT", "UNAUTHENTICATED",
    "FORBIDDEN", "RATE_LIMITED", "QUERY_TOO_COMPLEX", "INTERNAL",
}  # fmt: skip
LEAKS = ("Traceback", "sqlalchemy", "asyncpg", "aiosqlite", "maximum recursion", "RecursionError", 'File "')


def fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


# --- the fuzz tenant ----------------------------------------------------------------------------


@dataclass
class Fuzz:
    server: LiveServer
    headers: dict[str, str]
    ids: list[str]

    def send(self, query: str, variables: dict | None = None) -> httpx.Response:
        return self.server.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=self.headers
        )


def _graph(fuzz: Fuzz) -> list[str]:
    """A small graph in the fuzz tenant: one row of every kind, and its events."""

    def create(entity: str, values: dict) -> str:
        body = fuzz.send(
            f"mutation($i: Create{entity}Input!) {{ create{entity}(input: $i) {{ id }} }}", {"i": values}
        ).json()
        assert not body.get("errors"), body
        return body["data"][f"create{entity}"]["id"]

    org = create("Organization", {"name": "Fuzz Inc", "slug": f"fuzz-{uuid.uuid4().hex[:6]}"})
    contact = create(
        "Contact", {"name": "Fuzz", "email": f"fuzz-{uuid.uuid4().hex[:6]}@example.com", "organization": org}
    )
    deal = create("Deal", {"name": "Fuzz deal", "value": 10.0, "organization": org, "contact": contact})
    subscription = create("Subscription", {"startedAt": "2026-01-01T00:00:00Z", "organization": org})
    ticket = create("Ticket", {"subject": "Fuzz", "requester": contact, "organization": org, "deal": deal})
    issue = create("Issue", {"title": "Fuzz", "ticket": ticket})
    activity = create("Activity", {"subject": "Fuzz", "contact": contact, "ticket": ticket})
    metric = create("Metric", {"name": "fuzz", "value": 1.0, "organization": org})
    events = fuzz.send("{ events(first: 5) { nodes { id } } }").json()["data"]["events"]["nodes"]
    return [org, contact, deal, subscription, ticket, issue, activity, metric, *(e["id"] for e in events)]


@pytest.fixture(scope="module")
def fuzz(server: LiveServer) -> Iterator[Fuzz]:
    _, key = server.run(resolvers.keys.create_key(server.services.db, tenant=f"fuzz-{uuid.uuid4().hex[:8]}"))
    session = Fuzz(server, {"Authorization": f"Bearer {key}"}, [])
    session.ids = _graph(session)
    yield session


# --- strategies -------------------------------------------------------------------------------


def _json_value() -> st.SearchStrategy[graphql.ValueNode]:
    leaves = st.one_of(
        st.text(max_size=10).map(nodes.String),
        st.integers(-1000, 1000).map(nodes.Int),
        st.booleans().map(lambda b: graphql.BooleanValueNode(value=b)),
    )
    keys = st.text(alphabet="abcdefghij", min_size=1, max_size=5)
    return (
        st.dictionaries(keys, leaves, max_size=4).map(
            lambda d: nodes.Object(
                [graphql.ObjectFieldNode(name=graphql.NameNode(value=k), value=v) for k, v in d.items()]
            )
        )
        | leaves
    )


def custom_scalars(ids: list[str]) -> dict[str, st.SearchStrategy[graphql.ValueNode]]:
    instants = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))
    random_ids = st.one_of(
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", max_size=20),
        st.sampled_from(["ticket", "contact", "deal", "evt", "organization"]).map(lambda p: f"{p}_zzzzzzzz"),
    )
    return {
        "DateTime": instants.map(lambda d: nodes.String(d.isoformat())),
        "Date": st.dates(min_value=datetime(2000, 1, 1).date(), max_value=datetime(2100, 1, 1).date()).map(
            nodes.String
        ),
        "JSON": _json_value(),
        "ID": (st.sampled_from(ids) | random_ids).map(nodes.String),
    }


@pytest.fixture(scope="module")
def strategies(fuzz: Fuzz) -> dict[str, st.SearchStrategy[str]]:
    scalars = custom_scalars(fuzz.ids)
    common = {"custom_scalars": scalars, "allow_x00": False}
    return {
        "queries": queries(SCHEMA, **common),
        "mutations": mutations(SCHEMA, **common),
        "invalid queries": queries(SCHEMA, mode=Mode.NEGATIVE, **common),
        "invalid mutations": mutations(SCHEMA, mode=Mode.NEGATIVE, **common),
    }


# --- checks -----------------------------------------------------------------------------------


def check(response: httpx.Response) -> dict:
    """A well-formed answer: no 5xx, JSON with data or errors, every error with an API code."""
    assert response.status_code < 500, response.text[:2000]
    assert response.status_code in (200, 400), response.text[:2000]  # 400: refused by the door
    assert not [leak for leak in LEAKS if leak in response.text], response.text[:2000]
    body = response.json()
    assert isinstance(body, dict) and ("data" in body or "errors" in body), body
    for error in body.get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        assert code in API_CODES, error
        assert code != "INTERNAL", error
    return body


# --- valid operations -------------------------------------------------------------------------


@fuzz_settings(150)
@given(data=st.data())
def test_generated_queries_are_answered_cleanly(fuzz: Fuzz, strategies, data):
    query = data.draw(strategies["queries"], label="query")
    check(fuzz.send(query))


def test_generated_mutations_are_answered_cleanly_and_reach_the_domain(fuzz: Fuzz, strategies):
    """Every generated mutation is answered cleanly, and together they do real work in the fuzz
    tenant (the fuzzer does not only produce mutations the domain refuses)."""

    def events() -> int:
        return fuzz.send("{ events { totalCount } }").json()["data"]["events"]["totalCount"]

    before = events()

    @fuzz_settings(100)
    @given(data=st.data())
    def mutate(data: st.DataObject) -> None:
        check(fuzz.send(data.draw(strategies["mutations"], label="mutation")))

    mutate()
    assert events() > before


# --- invalid operations -----------------------------------------------------------------------


@fuzz_settings(50)
@given(data=st.data())
def test_invalid_queries_are_refused_cleanly(fuzz: Fuzz, strategies, data):
    body = check(fuzz.send(data.draw(strategies["invalid queries"], label="query")))
    assert body.get("errors"), body


@fuzz_settings(50)
@given(data=st.data())
def test_invalid_mutations_are_refused_cleanly(fuzz: Fuzz, strategies, data):
    before = fuzz.server.counts()
    body = check(fuzz.send(data.draw(strategies["invalid mutations"], label="mutation")))
    assert body.get("errors"), body
    assert fuzz.server.counts() == before


#: pieces of GraphQL to build random text from
GRAPHQL_WORDS = ["query", "mutation", "subscription", "fragment", "on", "...", "tickets", "id", "__typename"]
GRAPHQL_ALPHABET = st.sampled_from(
    [*"{}()[]:$!@.,=\"'#|&\\ \n\t", *GRAPHQL_WORDS, "__schema", "first", "1", "-1", "null"]
)


@fuzz_settings(50)
@given(text=st.lists(GRAPHQL_ALPHABET, max_size=40).map("".join) | st.text(max_size=200))
def test_random_text_is_refused_cleanly(fuzz: Fuzz, text: str):
    if not text.strip():
        text = "{"
    before = fuzz.server.counts()
    check(fuzz.send(text))
    assert fuzz.server.counts() == before


@fuzz_settings(50)
@given(data=st.data())
def test_mutated_queries_are_answered_cleanly(fuzz: Fuzz, strategies, data):
    query = data.draw(strategies["queries"], label="query")
    at = data.draw(st.integers(0, len(query) - 1), label="at")
    change = data.draw(st.sampled_from(["delete", "insert", "replace"]), label="change")
    char = data.draw(st.sampled_from([*list('{}()[]:$!"\\@#.'), "\x00", "é", "😀"]), label="char")
    mutated = {
        "delete": query[:at] + query[at + 1:],
        "insert": query[:at] + char + query[at:],
        "replace": query[:at] + char + query[at + 1:],
    }[change]  # fmt: skip
    if not mutated.strip():
        mutated = "{"
    check(fuzz.send(mutated))
