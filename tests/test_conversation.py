"""The conversation on a ticket (API.md, "Conversation"): ``commentTicket``, ``Ticket.comments``,
``commentCount``, ``node(id)`` of a comment, ``deleteComment``, ``asOf``, live delivery and the
statement count of a page of threads, all through the real server on SQLite and PostgreSQL.

Every test builds its own tickets (unique subjects, contacts and tags), so rows other tests leave
in the shared database never enter what it reads. A refused comment must write nothing: the
rows of ``comment``, ``ticket``, ``event`` and ``activity`` are counted before and after.
Merges are in ``test_merge.py``; the helpers in ``conversation_helpers.py``.
"""

from __future__ import annotations

import re

import httpx
import pytest

from tests import ws_client as ws
from tests.conversation_helpers import (
    COMMENT,
    COMMENT_TICKET,
    GHOST,
    TICKET,
    World,
    allowed,
    comment,
    comment_many,
    comment_refused,
    create_contact,
    events,
    make_world,
    other_tenant,
    rows,
    thread,
    ticket,
    ticket_in,
    unique,
    when,
)
from tests.live import create_many
from tests.test_live import ready, released, until

# --- commentTicket: the ticket, the event, the comment -----------------------------------------


def test_a_comment_bumps_the_version_and_records_one_event(server):
    t = ticket_in(server, "OPEN")
    before = events(server, t["id"])
    body = f"Have you tried turning it off and on again? {unique()}"
    after = comment(server, t["id"], body, public=False)
    assert after["id"] == t["id"] and after["version"] == t["version"] + 1
    assert (after["status"], after["commentCount"], after["firstResponseAt"]) == ("OPEN", 1, None)
    assert when(after["updatedAt"]) > when(t["updatedAt"])
    new = events(server, t["id"])[len(before) :]
    assert [(e["type"], e["entityType"], e["version"]) for e in new] == [
        ("Ticket.Commented", "Ticket", after["version"])
    ]
    [note] = thread(server, t["id"])["nodes"]
    # an internal note changes nothing but the version: the event holds the comment only
    assert new[0]["data"] == {
        "comment": {"id": note["id"], "body": body, "public": False, "author": None, "authorRole": "AGENT"}
    }


def test_author_role_is_requester_only_for_the_tickets_requester(server):
    t = ticket_in(server, "OPEN")
    colleague = create_contact(server)
    comment(server, t["id"], "from the requester", author=t["requester"])
    comment(server, t["id"], "from a colleague", author=colleague)
    comment(server, t["id"], "from the caller")
    nodes = [e["node"] for e in thread(server, t["id"])["edges"]]
    expected = [
        ("from the requester", t["requester"], "REQUESTER"),
        ("from a colleague", colleague, "AGENT"),
        ("from the caller", None, "AGENT"),
    ]
    assert [(n["body"], (n["author"] or {}).get("id"), n["authorRole"]) for n in nodes] == expected
    logged = [e["data"]["comment"] for e in events(server, t["id"]) if e["type"] == "Ticket.Commented"]
    assert [(c["body"], c["author"], c["authorRole"]) for c in logged] == expected
    assert [c["id"] for c in logged] == [n["id"] for n in nodes]
    assert all(n["public"] and n["ticket"] == {"id": t["id"]} for n in nodes)


def test_the_thread_is_oldest_first_and_pages_both_ways(server):
    t = ticket_in(server, "OPEN")
    bodies = [f"message {i} {unique()}" for i in range(5)]
    publics = [True, False, True, True, False]
    for body, public in zip(bodies, publics):
        comment(server, t["id"], body, public=public)

    def texts(page: dict) -> list[str]:
        return [n["body"] for n in page["nodes"]]

    whole = thread(server, t["id"])
    assert texts(whole) == bodies and whole["totalCount"] == whole["commentCount"] == 5
    created = [when(e["node"]["createdAt"]) for e in whole["edges"]]
    assert created == sorted(created)
    first = thread(server, t["id"], first=2)
    assert texts(first) == bodies[:2] and first["pageInfo"]["hasNextPage"]
    second = thread(server, t["id"], first=2, after=first["pageInfo"]["endCursor"])
    assert texts(second) == bodies[2:4] and second["pageInfo"]["hasNextPage"]
    third = thread(server, t["id"], first=2, after=second["pageInfo"]["endCursor"])
    assert texts(third) == bodies[4:] and not third["pageInfo"]["hasNextPage"]
    last = thread(server, t["id"], last=2)
    assert texts(last) == bodies[3:] and last["pageInfo"]["hasPreviousPage"]
    earlier = thread(server, t["id"], last=2, before=last["pageInfo"]["startCursor"])
    assert texts(earlier) == bodies[1:3]
    replies = thread(server, t["id"], public=True)
    assert texts(replies) == [b for b, p in zip(bodies, publics) if p] and replies["totalCount"] == 3
    notes = thread(server, t["id"], public=False)
    assert texts(notes) == [b for b, p in zip(bodies, publics) if not p] and notes["totalCount"] == 2
    assert replies["commentCount"] == notes["commentCount"] == 5, "commentCount counts the whole thread"


def test_node_resolves_a_comment_with_its_meta_fields(server):
    t = ticket_in(server, "OPEN")
    comment(server, t["id"], "hello there", author=t["requester"])
    [edge] = thread(server, t["id"])["edges"]
    made = edge["node"]
    assert re.fullmatch(r"comment_[A-Za-z0-9]{8,12}", made["id"]), made["id"]
    assert (made["version"], made["deletedAt"], made["createdBy"]) == (1, None, "anonymous")
    assert made["createdAt"] == made["updatedAt"]
    query = f"query($id: ID!) {{ node(id: $id) {{ __typename ... on Comment {{ {COMMENT} }} }} }}"
    node = server.data(query, {"id": made["id"]})["node"]
    assert node == {"__typename": "Comment", **made}
    assert (node["ticket"], node["author"], node["authorRole"]) == (
        {"id": t["id"]},
        {"id": t["requester"]},
        "REQUESTER",
    )
    assert server.data(query, {"id": made["id"]}, other_tenant(server)) == {"node": None}


# --- the rules -----------------------------------------------------------------------------------

#: a public reply by the requester, from each state that takes comments: the state after it
REPLY_MOVES = {
    "OPEN": "OPEN", "PENDING": "OPEN", "IN_PROGRESS": "IN_PROGRESS", "ESCALATED": "ESCALATED",
    "RESOLVED": "REOPENED", "REOPENED": "REOPENED",
}  # fmt: skip


def test_the_first_public_agent_comment_stamps_first_response(server):
    t = ticket_in(server, "OPEN")
    assert t["firstResponseAt"] is None
    for kind in ({"public": False}, {"author": t["requester"]}):  # an internal note, the requester's reply
        assert comment(server, t["id"], **kind)["firstResponseAt"] is None
    previous = ticket(server, t["id"])["updatedAt"]
    first = comment(server, t["id"], "we are on it")
    stamped = first["firstResponseAt"]
    assert stamped is not None and when(previous) <= when(stamped) <= when(first["updatedAt"])
    change = events(server, t["id"])[-1]["data"]["firstResponseAt"]
    assert change["before"] is None and when(change["after"]) == when(stamped)
    again = comment(server, t["id"], "still on it", author=create_contact(server))
    assert again["firstResponseAt"] == stamped and again["version"] == first["version"] + 1
    assert set(events(server, t["id"])[-1]["data"]) == {"comment"}


def test_a_first_response_already_stamped_is_kept(server):
    earlier = "2026-01-02T03:04:05+00:00"
    t = ticket_in(server, "OPEN", firstResponseAt=earlier)
    after = comment(server, t["id"], "replying here too")
    assert when(after["firstResponseAt"]) == when(earlier)
    assert set(events(server, t["id"])[-1]["data"]) == {"comment"}


@pytest.mark.parametrize("state", REPLY_MOVES)
def test_a_public_requester_reply_moves_pending_and_resolved(server, state):
    t = ticket_in(server, state)
    assert "COMMENT" in t["allowedTransitions"] and t["allowedTransitions"] == allowed(state)
    after = comment(server, t["id"], "any news?", author=t["requester"])
    moved = REPLY_MOVES[state]
    # the requester's reply is no response (other verbs may have stamped one: it is kept)
    assert after["status"] == moved and after["firstResponseAt"] == t["firstResponseAt"]
    assert after["allowedTransitions"] == allowed(moved)
    new = events(server, t["id"])[-1]
    assert new["type"] == "Ticket.Commented" and new["version"] == after["version"] == t["version"] + 1
    assert new["data"]["comment"]["authorRole"] == "REQUESTER"
    if moved != state:
        assert new["data"]["status"] == {"before": state, "after": moved}
    else:
        assert "status" not in new["data"]
    if state == "RESOLVED":
        assert t["resolvedAt"] is not None and after["resolvedAt"] is None


@pytest.mark.parametrize("state", ["PENDING", "RESOLVED"])
def test_an_agent_reply_moves_no_status(server, state):
    t = ticket_in(server, state)
    after = comment(server, t["id"], "we are looking into it", author=create_contact(server))
    assert after["status"] == state and after["resolvedAt"] == t["resolvedAt"]
    assert "status" not in events(server, t["id"])[-1]["data"]


@pytest.mark.parametrize("who", ["requester", "agent"])
@pytest.mark.parametrize("state", REPLY_MOVES)
def test_an_internal_note_changes_no_status_and_stamps_nothing(server, state, who):
    t = ticket_in(server, state)
    after = comment(
        server, t["id"], "note to self", public=False, author=t["requester"] if who == "requester" else None
    )
    assert after["version"] == t["version"] + 1
    same = ("status", "firstResponseAt", "resolvedAt", "allowedTransitions")
    assert {k: after[k] for k in same} == {k: t[k] for k in same}
    assert set(events(server, t["id"])[-1]["data"]) == {"comment"}


def test_a_closed_ticket_takes_no_comment(server):
    t = ticket_in(server, "CLOSED")
    assert "COMMENT" not in t["allowedTransitions"] and t["allowedTransitions"] == allowed("CLOSED")
    before = rows(server)
    for public in (True, False):
        error = comment_refused(server, t["id"], {"body": "too late", "public": public, "author": t["requester"]})
        extensions = error["extensions"]
        assert extensions["code"] == "INVALID_TRANSITION", error
        assert (extensions["from"], extensions["verb"], extensions["allowed"]) == (
            "CLOSED",
            "COMMENT",
            allowed("CLOSED"),
        )
    assert rows(server) == before
    assert ticket(server, t["id"])["version"] == t["version"]


def test_a_stale_expected_version_is_a_conflict(server):
    t = ticket_in(server, "PENDING")  # version 2
    before = rows(server)
    error = comment_refused(server, t["id"], {"body": "late", "author": t["requester"]}, expectedVersion=1)
    assert error["extensions"]["code"] == "VERSION_CONFLICT", error
    assert rows(server) == before
    assert ticket(server, t["id"])["status"] == "PENDING"
    after = comment(server, t["id"], "on time", author=t["requester"], expected_version=t["version"])
    assert (after["version"], after["status"], after["commentCount"]) == (3, "OPEN", 1)


# --- bad input writes nothing --------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(server) -> World:
    return make_world(server)


BAD_COMMENTS = {
    "empty-body": ("<ticket>", {"body": ""}, "BAD_USER_INPUT"),
    "blank-body": ("<ticket>", {"body": "   "}, "BAD_USER_INPUT"),
    "blank-lines-body": ("<ticket>", {"body": " \n\t\n "}, "BAD_USER_INPUT"),
    "body-65537-chars": ("<ticket>", {"body": "b" * 65_537}, "BAD_USER_INPUT"),
    "unknown-author": ("<ticket>", {"body": "hi", "author": GHOST["contact"]}, "NOT_FOUND"),
    "other-tenants-author": ("<ticket>", {"body": "hi", "author": "<other_contact>"}, "NOT_FOUND"),
    "other-tenants-ticket": ("<other_ticket>", {"body": "hi"}, "NOT_FOUND"),
    "unknown-ticket": (GHOST["ticket"], {"body": "hi"}, "NOT_FOUND"),
}


@pytest.mark.parametrize("case", BAD_COMMENTS)
def test_bad_comment_input_is_refused_and_writes_nothing(server, world, case):
    target, values, code = BAD_COMMENTS[case]
    fill = {"<ticket>": world.ticket, "<other_ticket>": world.other_ticket, "<other_contact>": world.other_contact}
    values = {k: fill.get(v, v) for k, v in values.items()}
    version = ticket(server, world.ticket)["version"]
    theirs = server.sql("SELECT version FROM ticket WHERE id = :id", id=world.other_ticket)
    before = rows(server)
    error = comment_refused(server, fill.get(target, target), values)
    assert error["extensions"]["code"] == code, error
    assert rows(server) == before
    assert ticket(server, world.ticket)["version"] == version
    assert server.sql("SELECT version FROM ticket WHERE id = :id", id=world.other_ticket) == theirs


def test_the_longest_body_is_accepted(server):
    t = ticket_in(server, "OPEN")
    body = ("long enough " * 6000)[:65_536]
    assert comment(server, t["id"], body)["commentCount"] == 1
    assert thread(server, t["id"])["nodes"][0]["body"] == body


# --- deleteComment, asOf ---------------------------------------------------------------------------

DELETE = "mutation($id: ID!) { deleteComment(id: $id) { id version deletedAt body } }"


def test_a_deleted_comment_leaves_the_thread(server):
    t = ticket_in(server, "OPEN")
    for body in ("one", "two", "three"):
        comment(server, t["id"], body)
    ids = [n["id"] for n in thread(server, t["id"])["nodes"]]
    deleted = server.data(DELETE, {"id": ids[1]})["deleteComment"]
    assert (deleted["id"], deleted["version"], deleted["body"]) == (ids[1], 2, "two") and deleted["deletedAt"]
    live = thread(server, t["id"])
    assert [n["body"] for n in live["nodes"]] == ["one", "three"] and live["commentCount"] == live["totalCount"] == 2
    every = thread(server, t["id"], includeDeleted=True)
    assert [n["body"] for n in every["nodes"]] == ["one", "two", "three"] and every["commentCount"] == 2
    assert [e["node"]["deletedAt"] is not None for e in every["edges"]] == [False, True, False]
    logged = [e for e in events(server, ids[1]) if e["type"] == "Comment.Deleted"]
    assert [(e["entityType"], e["target"], e["version"]) for e in logged] == [("Comment", ids[1], 2)]
    assert when(logged[0]["data"]["deletedAt"]["after"]) == when(deleted["deletedAt"])


def test_as_of_shows_the_thread_as_it_was(server):
    t = ticket_in(server, "OPEN")
    for body in ("first", "second", "third"):
        comment(server, t["id"], body)
    edges = thread(server, t["id"])["edges"]
    made = [when(e["node"]["createdAt"]) for e in edges]
    gone = when(server.data(DELETE, {"id": edges[1]["node"]["id"]})["deleteComment"]["deletedAt"])
    assert when(t["updatedAt"]) < made[0] < made[1] < made[2] < gone

    def at(moment) -> tuple[list[str], int]:
        page = thread(server, t["id"], asOf=moment.isoformat())
        return [n["body"] for n in page["nodes"]], page["commentCount"]

    assert at(when(t["updatedAt"]) + (made[0] - when(t["updatedAt"])) / 2) == ([], 0)
    assert at(made[0] + (made[1] - made[0]) / 2) == (["first"], 1)
    assert at(made[1]) == (["first", "second"], 2), "created at or before the moment"
    assert at(made[2] + (gone - made[2]) / 2) == (["first", "second", "third"], 3)
    assert at(gone) == (["first", "third"], 2)


# --- live ------------------------------------------------------------------------------------------

EVENTS = "subscription($types: [String!]) { events(types: $types) { id type target version data } }"
TICKET_EVENTS = (
    "subscription($where: TicketWhere) { ticketEvents(where: $where) {"
    " event { id type version data } ticket { id status version commentCount comments(last: 1) { nodes { id body } } } } }"
)


async def test_a_comment_arrives_live_with_the_ticket_after_it(server):
    t = ticket_in(server, "PENDING")
    body = f"it works again {unique()}"
    await until(server, released, "no live subscriber is left from earlier tests")
    async with ws.connect(server.url) as connection:
        commented = await connection.subscribe(EVENTS, {"types": ["Ticket.Commented"]})
        changes = await connection.subscribe(TICKET_EVENTS, {"where": {"id": {"eq": t["id"]}}})
        await ready(server, taps=2, followers=2)
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            variables = {"id": t["id"], "input": {"body": body, "author": t["requester"]}}
            after = (await ws.HttpApi(client).data(COMMENT_TICKET % TICKET, variables))["commentTicket"]
        event = (await commented.next())["events"]
        item = (await changes.next())["ticketEvents"]
    [made] = thread(server, t["id"])["nodes"]
    assert (event["type"], event["target"], event["version"]) == ("Ticket.Commented", t["id"], after["version"])
    assert event["data"]["comment"] == {
        "id": made["id"], "body": body, "public": True, "author": t["requester"], "authorRole": "REQUESTER"
    }  # fmt: skip
    assert event["data"]["status"] == {"before": "PENDING", "after": "OPEN"}
    assert item["event"] == {k: event[k] for k in ("id", "type", "version", "data")}
    assert item["ticket"] == {
        "id": t["id"], "status": "OPEN", "version": after["version"], "commentCount": 1,
        "comments": {"nodes": [{"id": made["id"], "body": body}]},
    }  # fmt: skip


# --- statement count -------------------------------------------------------------------------------

THREADS = """query($ids: [ID!]) {
  tickets(first: 50, where: {id: {in: $ids}}) {
    nodes { id commentCount comments(last: 3) { nodes { id body author { id } } } }
  }
}"""


def test_a_page_of_threads_costs_the_same_for_every_page_size(server):
    tag = unique("threads")
    requesters = create_many(server, "Contact", [{"name": f"{tag} requester {i}"} for i in range(50)])
    agent = create_contact(server)
    tickets = create_many(
        server,
        "Ticket",
        [{"subject": f"{tag} {i}", "tags": [tag], "requester": r["id"]} for i, r in enumerate(requesters)],
    )
    # four comments a ticket: a note, the requester's reply, a colleague's reply, the caller's reply
    plan = [
        (t["id"], {"body": f"{tag} {i} {n}", "public": n != 0, **({"author": who} if who else {})})
        for i, (t, r) in enumerate(zip(tickets, requesters))
        for n, who in enumerate((None, r["id"], agent, None))
    ]
    comment_many(server, plan)
    counts = {}
    for size in (5, 20, 50):
        data, counts[size] = server.count_statements(THREADS, {"ids": [t["id"] for t in tickets[:size]]})
        nodes = data["tickets"]["nodes"]
        assert [n["id"] for n in nodes] == [t["id"] for t in tickets[:size]]
        for i, (node, requester) in enumerate(zip(nodes, requesters)):
            assert node["commentCount"] == 4
            assert [(c["body"], (c["author"] or {}).get("id")) for c in node["comments"]["nodes"]] == [
                (f"{tag} {i} 1", requester["id"]), (f"{tag} {i} 2", agent), (f"{tag} {i} 3", None),
            ]  # fmt: skip
    print(f"\nstatements for a page of threads: {counts}")
    assert counts[5] == counts[20] == counts[50], counts
    assert counts[5] <= 6, f"a page, then one batch per kind: {counts}"
