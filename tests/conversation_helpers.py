"""Small helpers for the conversation tests (comments and merges) through the real server.

Every ticket gets a subject unique to its test, so rows other tests leave in the shared
database never enter what these tests read; ``rows`` counts the tables a comment or a merge
writes, to prove that a refused one wrote nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import resolvers.keys
from models.lifecycle import LIFECYCLES
from tests.live import LiveServer

TICKET = (
    "id version status updatedAt firstResponseAt resolvedAt allowedTransitions commentCount"
    " mergedInto { id } mergedTickets { id }"
)
COMMENT = "id version createdAt updatedAt createdBy deletedAt body public authorRole author { id } ticket { id }"
EVENT = "id type entityType target version data"
#: a well-formed id of each kind that no row has
GHOST = {"ticket": "ticket_zzzzzzzz", "contact": "contact_zzzzzzzz", "comment": "comment_zzzzzzzz"}


def unique(prefix: str = "conv") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def allowed(state: str) -> list[str]:
    """What ``allowedTransitions`` and ``extensions.allowed`` must say in ``state`` (unmerged)."""
    return [verb.upper() for verb in LIFECYCLES["Ticket"].allowed(state)]


def create_ticket(server: LiveServer, headers: dict | None = None, **fields: Any) -> dict:
    query = f"mutation($input: CreateTicketInput!) {{ createTicket(input: $input) {{ {TICKET} }} }}"
    values = {"subject": unique("ticket"), **fields}
    return server.data(query, {"input": values}, headers)["createTicket"]


def create_contact(server: LiveServer, headers: dict | None = None) -> str:
    query = "mutation($input: CreateContactInput!) { createContact(input: $input) { id } }"
    name = unique("contact")
    return server.data(query, {"input": {"name": name, "email": f"{name}@example.com"}}, headers)["createContact"]["id"]


def ticket_in(server: LiveServer, state: str, **fields: Any) -> dict:
    """A new ticket (with a requester of its own unless given) walked to ``state`` through the API."""
    fields.setdefault("requester", create_contact(server))
    ticket = create_ticket(server, **fields)
    steps = {
        "OPEN": [], "PENDING": [("update", "PENDING")], "IN_PROGRESS": [("update", "IN_PROGRESS")],
        "ESCALATED": [("escalate", None)], "RESOLVED": [("resolve", None)], "CLOSED": [("close", None)],
        "REOPENED": [("resolve", None), ("reopen", None)],
    }[state]  # fmt: skip
    for verb, status in steps:
        if verb == "update":
            ticket = mutate(server, "updateTicket", ticket["id"], input={"status": status})
        else:
            ticket = mutate(server, f"{verb}Ticket", ticket["id"])
    assert ticket["status"] == state
    ticket["requester"] = fields["requester"]
    return ticket


# --- mutations ---------------------------------------------------------------------------------

_TYPES = {"input": "UpdateTicketInput!", "into": "ID!", "comment": "String", "expectedVersion": "Int"}


def _document(field: str, args: dict[str, Any], selection: str) -> str:
    declared = "".join(f", ${name}: {_TYPES[name]}" for name in args)
    passed = "".join(f", {name}: ${name}" for name in args)
    return f"mutation($id: ID!{declared}) {{ {field}(id: $id{passed}) {{ {selection} }} }}"


def mutate(server: LiveServer, field: str, id_: str, selection: str = TICKET, **args: Any) -> dict:
    """A ticket mutation (``updateTicket``, ``resolveTicket``, ``mergeTicket``…) that must succeed."""
    return server.data(_document(field, args, selection), {"id": id_, **args})[field]


def refused(server: LiveServer, field: str, id_: str, headers: dict | None = None, **args: Any) -> dict:
    """A ticket mutation that must fail: its first error, after checking ``data`` holds nothing."""
    body = server.post(_document(field, args, "id"), {"id": id_, **args}, headers)
    assert body.get("errors"), f"expected {field} to fail, got {body}"
    assert not (body.get("data") or {}).get(field), body
    return body["errors"][0]


COMMENT_TICKET = (
    "mutation($id: ID!, $input: CommentInput!, $expectedVersion: Int) {"
    " commentTicket(id: $id, input: $input, expectedVersion: $expectedVersion) { %s } }"
)


def comment_input(body: str, public: bool | None, author: str | None) -> dict:
    values: dict[str, Any] = {"body": body}
    if public is not None:
        values["public"] = public
    if author is not None:
        values["author"] = author
    return values


def comment(
    server: LiveServer,
    ticket: str,
    body: str | None = None,
    *,
    public: bool | None = None,
    author: str | None = None,
    expected_version: int | None = None,
    selection: str = TICKET,
) -> dict:
    """``commentTicket`` that must succeed: the ticket after it."""
    variables = {"id": ticket, "input": comment_input(body or unique("body"), public, author)}
    variables["expectedVersion"] = expected_version
    return server.data(COMMENT_TICKET % selection, variables)["commentTicket"]


def comment_refused(server: LiveServer, ticket: str, input: dict, headers: dict | None = None, **extra: Any) -> dict:
    body = server.post(COMMENT_TICKET % "id", {"id": ticket, "input": input, **extra}, headers)
    assert body.get("errors"), f"expected commentTicket to fail, got {body}"
    assert not (body.get("data") or {}).get("commentTicket"), body
    return body["errors"][0]


def comment_many(server: LiveServer, plan: list[tuple[str, dict]]) -> None:
    """``commentTicket`` for each (ticket, input), in order, twenty aliased mutations per request."""
    for start in range(0, len(plan), 20):
        chunk = plan[start : start + 20]
        params = ", ".join(f"$t{n}: ID!, $i{n}: CommentInput!" for n in range(len(chunk)))
        fields = " ".join(f"m{n}: commentTicket(id: $t{n}, input: $i{n}) {{ id }}" for n in range(len(chunk)))
        variables = {k: v for n, (t, i) in enumerate(chunk) for k, v in ((f"t{n}", t), (f"i{n}", i))}
        server.data(f"mutation({params}) {{ {fields} }}", variables)


# --- reads -------------------------------------------------------------------------------------


def ticket(server: LiveServer, id_: str, extra: str = "") -> dict:
    return server.data(f"query($id: ID!) {{ ticket(id: $id) {{ {TICKET} {extra} }} }}", {"id": id_})["ticket"]


_ARGUMENTS = {"first": "Int", "after": "String", "last": "Int", "before": "String", "public": "Boolean",
              "includeDeleted": "Boolean", "asOf": "DateTime"}  # fmt: skip


def thread(server: LiveServer, id_: str, asOf: str | None = None, **args: Any) -> dict:
    """``ticket(id, asOf).comments(**args)`` with page info, total and ``commentCount``."""
    given = {"asOf": asOf, **args} if asOf else args
    declared = "".join(f", ${name}: {_ARGUMENTS[name]}" for name in given)
    passed = ", ".join(f"{name}: ${name}" for name in args)
    query = (
        f"query($id: ID!{declared}) {{ ticket(id: $id{', asOf: $asOf' if asOf else ''}) {{ commentCount"
        f" comments{f'({passed})' if passed else ''} {{ totalCount"
        f" pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}"
        f" edges {{ cursor node {{ {COMMENT} }} }} nodes {{ id body public }} }} }} }}"
    )
    found = server.data(query, {"id": id_, **given})["ticket"]
    return {**found["comments"], "commentCount": found["commentCount"]}


def events(server: LiveServer, target: str) -> list[dict]:
    """The events of ``target``, in commit order."""
    query = f"query($t: ID!) {{ events(where: {{target: {{eq: $t}}}}, first: 100) {{ nodes {{ {EVENT} }} }} }}"
    return server.data(query, {"t": target})["events"]["nodes"]


def rows(server: LiveServer) -> dict[str, int]:
    """Rows of the tables a comment or merge writes to (compare before and after a refusal)."""
    return {t: server.sql(f"SELECT COUNT(*) FROM {t}")[0][0] for t in ("comment", "ticket", "event", "activity")}


def other_tenant(server: LiveServer) -> dict[str, str]:
    """Headers of a key in a tenant of its own."""
    _, key = server.run(resolvers.keys.create_key(server.services.db, tenant=unique("tenant")))
    return {"Authorization": f"Bearer {key}"}


@dataclass
class World:
    """An open ticket of the default tenant, and a tenant of its own with a contact and a ticket."""

    ticket: str
    other_headers: dict
    other_contact: str
    other_ticket: str


def make_world(server: LiveServer) -> World:
    headers = other_tenant(server)
    theirs = create_ticket(server, headers)["id"]
    return World(ticket_in(server, "OPEN")["id"], headers, create_contact(server, headers), theirs)
