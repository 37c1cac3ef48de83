"""Big ``in``/``nin`` lists are refused as the client's mistake, not failed as ours.

A list of 40,000 ids once went to PostgreSQL as 40,000 bound parameters (asyncpg takes at most
32,767): INTERNAL, and a 2 MB log line. ``resolvers.query.compile_where`` now refuses a list over
``MAX_LIST_VALUES`` and a whole ``where`` over ``MAX_WHERE_VALUES`` as ``BAD_USER_INPUT`` naming
the field, on every path that compiles a filter: root lists, aliased ones, reverse relations
(through the loaders), metrics. A list at the limit works.
"""

from __future__ import annotations

import uuid

import pytest

from resolvers.query import MAX_LIST_VALUES, MAX_WHERE_VALUES
from tests.live import LiveServer

CREATE = "mutation($s: String!, $o: ID) { createTicket(input: {subject: $s, organization: $o}) { id } }"
ORGANIZATION = "mutation($n: String!) { createOrganization(input: {name: $n}) { id } }"

#: the same filter, on each path that compiles it
PATHS = {
    "root list": "query($ids: [ID!]) { tickets(where: {id: {OP: $ids}}) { totalCount nodes { id } } }",
    "aliased, with first": (
        "query($ids: [ID!]) { found: tickets(first: 100, where: {id: {OP: $ids}}) { totalCount nodes { id } } }"
    ),
    "reverse relation": (
        "query($org: ID!, $ids: [ID!]) { organization(id: $org) {"
        " tickets(where: {id: {OP: $ids}}) { totalCount nodes { id } } } }"
    ),
    "metrics": "query($ids: [ID!]) { supportMetrics(where: {id: {OP: $ids}}) { ticketCount } }",
}


def fake_ids(n: int) -> list[str]:
    return [f"ticket_{uuid.uuid4().hex[:10]}" for _ in range(n)]


@pytest.fixture(scope="module")
def tickets(server: LiveServer) -> tuple[str, list[str]]:
    """An organization of its own and three tickets in it."""
    org = server.data(ORGANIZATION, {"n": f"big-in {uuid.uuid4().hex[:8]}"})["createOrganization"]["id"]
    ids = [server.data(CREATE, {"s": f"big-in {i}", "o": org})["createTicket"]["id"] for i in range(3)]
    return org, ids


def page(data: dict) -> dict:
    found = data.get("found") or data.get("tickets") or (data.get("organization") or {}).get("tickets")
    return found if found is not None else data["supportMetrics"][0]


def refused(body: dict) -> str:
    assert body.get("data") in (None, {}) or not any(body["data"].values()), body
    codes = [e["extensions"]["code"] for e in body["errors"]]
    assert codes == ["BAD_USER_INPUT"], body["errors"]
    return body["errors"][0]["message"]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("op", ["in", "nin"])
def test_a_list_over_the_limit_is_bad_user_input(server: LiveServer, tickets, path: str, op: str):
    org, _ = tickets
    body = server.post(PATHS[path].replace("OP", op), {"org": org, "ids": fake_ids(40_000)})
    message = refused(body)
    assert f"where.id.{op}" in message and str(MAX_LIST_VALUES) in message, message


@pytest.mark.parametrize("path", PATHS)
def test_a_list_at_the_limit_works(server: LiveServer, tickets, path: str):
    org, ids = tickets
    listed = [*fake_ids(MAX_LIST_VALUES - 2), ids[0], ids[2]]
    found = page(server.data(PATHS[path].replace("OP", "in"), {"org": org, "ids": listed}))
    if path == "metrics":
        assert found["ticketCount"] == 2
    else:
        assert found["totalCount"] == 2 and {n["id"] for n in found["nodes"]} == {ids[0], ids[2]}
    # nin, on the same organization's tickets: all but those two
    scoped = PATHS["reverse relation"].replace("OP", "nin")
    rest = page(server.data(scoped, {"org": org, "ids": listed}))
    assert [n["id"] for n in rest["nodes"]] == [ids[1]]


def test_many_lists_within_the_limit_are_refused_together(server: LiveServer):
    """Forty lists of 1,000 are each allowed, but not in one ``where``: the total is bounded."""
    query = "query($w: TicketWhere) { tickets(where: $w) { totalCount } }"
    where = {"or": [{"id": {"in": fake_ids(MAX_LIST_VALUES)}} for _ in range(40)]}
    message = refused(server.post(query, {"w": where}))
    assert str(MAX_WHERE_VALUES) in message, message
    # so are forty thousand single conditions
    where = {"or": [{"id": {"eq": i}} for i in fake_ids(40_000)]}
    refused(server.post(query, {"w": where}))


def test_a_filter_in_the_document_is_held_to_the_same_limit(server: LiveServer):
    """Literal lists (no variables) take the same check."""
    listed = ", ".join(f'"{i}"' for i in fake_ids(MAX_LIST_VALUES + 1))
    body = server.post(f"{{ tickets(where: {{id: {{in: [{listed}]}}}}) {{ totalCount }} }}")
    assert "where.id.in" in refused(body)
