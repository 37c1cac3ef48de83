"""Verbs sent at the same time through the real HTTP server: no lost update, no double
transition, versions and event sequence numbers never repeat or skip.

Each test fires a bounded burst (N requests at once, over N connections) and then reads the
outcome back through the API.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from typing import Any

import httpx
import pytest

N = 12  # requests per burst

TICKET_HISTORY = """
query($id: ID!) {
  ticket(id: $id) {
    version status description tags
    events(first: 100) { totalCount nodes { type version sequence data } }
  }
}
"""
UPDATE = """
mutation($id: ID!, $input: UpdateTicketInput!, $v: Int) {
  updateTicket(id: $id, input: $input, expectedVersion: $v) { id version description tags }
}
"""
ASSIGN = "mutation($id: ID!, $a: ID!) { assignTicket(id: $id, assignee: $a) { id } }"


async def burst(server, requests: list[tuple[str, dict[str, Any]]]) -> list[dict]:
    """POST every request at once, each on its own connection; the response bodies, in order."""
    limits = httpx.Limits(max_connections=len(requests), max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits) as client:
        responses = await asyncio.gather(
            *(client.post("/graphql", json={"query": q, "variables": v}) for q, v in requests)
        )
    return [r.json() for r in responses]


def new_ticket(server, subject: str) -> str:
    return server.data("mutation($s: String!) { createTicket(input: {subject: $s}) { id } }", {"s": subject})[
        "createTicket"
    ]["id"]


def history(server, ticket: str) -> dict:
    return server.data(TICKET_HISTORY, {"id": ticket})["ticket"]


def split(bodies: list[dict], mutation: str) -> tuple[list[dict], list[dict]]:
    """The successful results and the errors of a burst (each response is exactly one of them)."""
    ok, errors = [], []
    for body in bodies:
        if body.get("errors"):
            assert (body.get("data") or {}).get(mutation) is None, body
            errors.extend(body["errors"])
        else:
            ok.append(body["data"][mutation])
    return ok, errors


def codes(errors: list[dict]) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in errors]


@pytest.mark.parametrize(("mutation", "state", "event"), [
    ("resolveTicket", "RESOLVED", "Ticket.Resolved"),
    ("closeTicket", "CLOSED", "Ticket.Closed"),
])  # fmt: skip
async def test_one_transition_wins_a_race(server, mutation, state, event):
    ticket = new_ticket(server, f"Race to {state.lower()}")
    verb = f"mutation($id: ID!) {{ {mutation}(id: $id) {{ id status version }} }}"
    bodies = await burst(server, [(verb, {"id": ticket})] * N)

    ok, errors = split(bodies, mutation)
    assert ok == [{"id": ticket, "status": state, "version": 2}]
    assert codes(errors) == ["INVALID_TRANSITION"] * (N - 1)
    assert {e["extensions"]["from"] for e in errors} == {state}
    after = history(server, ticket)
    assert (after["status"], after["version"]) == (state, 2)
    assert after["events"]["totalCount"] == 2
    assert [(e["type"], e["version"]) for e in after["events"]["nodes"]] == [("Ticket.Created", 1), (event, 2)]


async def test_concurrent_updates_are_all_applied_in_one_order(server):
    ticket = new_ticket(server, "Many hands")
    changes = [{"description": f"note {i}", "tags": [f"tag-{i}", "shared"]} for i in range(N)]
    bodies = await burst(server, [(UPDATE, {"id": ticket, "input": change}) for change in changes])

    ok, errors = split(bodies, "updateTicket")
    assert errors == []
    versions = [result["version"] for result in ok]
    assert sorted(versions) == list(range(2, N + 2))  # each write got its own version, none repeated
    for result, change in zip(ok, changes):  # each response shows its own write
        assert (result["description"], result["tags"]) == (change["description"], change["tags"])

    after = history(server, ticket)
    assert after["version"] == N + 1
    last = max(ok, key=lambda result: result["version"])
    assert (after["description"], after["tags"]) == (last["description"], last["tags"])
    events = after["events"]["nodes"]
    assert after["events"]["totalCount"] == len(events) == after["version"]
    assert [e["version"] for e in events] == list(range(1, N + 2))
    sequences = [e["sequence"] for e in events]
    assert all(a < b for a, b in itertools.pairwise(sequences)), sequences
    by_version = {e["version"]: e for e in events}
    for result in ok:  # the event of version v records the write that returned version v
        assert by_version[result["version"]]["data"]["description"]["after"] == result["description"]


async def test_event_sequence_numbers_stay_gapless_under_concurrent_verbs(server):
    tickets = [new_ticket(server, f"Sequence {i}") for i in range(4)]
    verbs = ["resolveTicket", "escalateTicket", "closeTicket", "assignTicket"]
    assignee = server.data('mutation { createContact(input: {name: "Agent Smith"}) { id } }')["createContact"]["id"]
    requests = []
    for ticket in tickets:
        for verb in verbs:
            if verb == "assignTicket":
                document, variables = ASSIGN, {"id": ticket, "a": assignee}
            else:
                document, variables = f"mutation($id: ID!) {{ {verb}(id: $id) {{ id }} }}", {"id": ticket}
            requests.append((document, variables))
    requests += [(UPDATE, {"id": t, "input": {"tags": [uuid.uuid4().hex]}}) for t in tickets]

    bodies = await burst(server, requests)
    assert set(codes([e for b in bodies for e in b.get("errors", [])])) <= {"INVALID_TRANSITION"}

    nodes = server.data("{ events(last: 100) { nodes { id sequence } } }")["events"]["nodes"]
    sequences = [n["sequence"] for n in nodes]
    assert len(nodes) == 100 or sequences[0] == 1
    assert sequences == list(range(sequences[0], sequences[0] + len(sequences))), sequences
    assert len({n["id"] for n in nodes}) == len(nodes)
    for ticket in tickets:
        own = [e["sequence"] for e in history(server, ticket)["events"]["nodes"]]
        assert all(a < b for a, b in itertools.pairwise(own)), own
        assert set(own) <= set(sequences)


async def test_same_expected_version_lets_exactly_one_update_through(server):
    ticket = new_ticket(server, "Optimistic")
    changes = [{"description": f"draft {i}"} for i in range(N)]
    bodies = await burst(server, [(UPDATE, {"id": ticket, "input": c, "v": 1}) for c in changes])

    ok, errors = split(bodies, "updateTicket")
    assert len(ok) == 1 and ok[0]["version"] == 2
    assert codes(errors) == ["VERSION_CONFLICT"] * (N - 1)
    assert all((e["extensions"]["expected"], e["extensions"]["actual"]) == (1, 2) for e in errors)
    after = history(server, ticket)
    assert (after["version"], after["description"]) == (2, ok[0]["description"])
    assert after["events"]["totalCount"] == 2


async def test_concurrent_creates_all_succeed_with_distinct_ids(server):
    subjects = [f"Created together {uuid.uuid4().hex[:8]}" for _ in range(N)]
    create = "mutation($s: String!) { createTicket(input: {subject: $s}) { id subject version status } }"
    bodies = await burst(server, [(create, {"s": s}) for s in subjects])

    ok, errors = split(bodies, "createTicket")
    assert errors == []
    assert [(t["subject"], t["version"], t["status"]) for t in ok] == [(s, 1, "OPEN") for s in subjects]
    ids = [t["id"] for t in ok]
    assert len(set(ids)) == N
    found = server.data(
        "query($ids: [ID!]) { tickets(where: {id: {in: $ids}}, first: 100) { totalCount nodes { id } } }",
        {"ids": ids},
    )["tickets"]
    assert found["totalCount"] == N and {t["id"] for t in found["nodes"]} == set(ids)
