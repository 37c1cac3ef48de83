"""``mergeTicket`` (API.md, "Conversation") through the real server on SQLite and PostgreSQL.

A merge closes the source ticket into the target: the source is ``CLOSED`` with ``mergedInto``
and takes no verb ever again (``allowedTransitions: []``); the target lists it in
``mergedTickets`` and gets one internal note about it. Events: ``Ticket.Merged`` on the source,
``Ticket.Commented`` on the target. Refusals write nothing (the rows of ``comment``, ``ticket``,
``event`` and ``activity`` are counted before and after). Two opposite merges fired at once must
both finish — one merges, the other is refused — without a deadlock, round after round.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conversation_helpers import (
    GHOST,
    TICKET,
    World,
    allowed,
    comment,
    comment_refused,
    events,
    make_world,
    mutate,
    refused,
    rows,
    thread,
    ticket,
    ticket_in,
    unique,
)

MERGE = "mutation($id: ID!, $into: ID!) { mergeTicket(id: $id, into: $into) { id status mergedInto { id } } }"
ROUNDS = 5


def versions(server, *ids: str) -> list[int]:
    return [ticket(server, i)["version"] for i in ids]


def test_a_merge_closes_the_source_into_the_target(server):
    source, target = ticket_in(server, "PENDING"), ticket_in(server, "OPEN")
    assert "MERGE" in source["allowedTransitions"] and "MERGE" in target["allowedTransitions"]
    logged = {t["id"]: len(events(server, t["id"])) for t in (source, target)}
    text = f"the same printer, again {unique()}"
    merged = mutate(server, "mergeTicket", source["id"], into=target["id"], comment=text)
    assert (merged["id"], merged["status"], merged["mergedInto"]) == (source["id"], "CLOSED", {"id": target["id"]})
    assert merged["version"] == source["version"] + 1 and merged["allowedTransitions"] == []
    assert merged["mergedTickets"] == [] and merged["commentCount"] == 0

    [event] = events(server, source["id"])[logged[source["id"]] :]
    assert (event["type"], event["version"]) == ("Ticket.Merged", merged["version"])
    assert event["data"]["into"] == target["id"]
    assert event["data"]["status"] == {"before": "PENDING", "after": "CLOSED"}
    assert event["data"]["mergedInto"] == {"before": None, "after": target["id"]}

    after = ticket(server, target["id"])
    assert (after["status"], after["version"], after["mergedInto"]) == ("OPEN", target["version"] + 1, None)
    assert after["mergedTickets"] == [{"id": source["id"]}] and after["commentCount"] == 1
    assert after["firstResponseAt"] is None, "an internal note stamps nothing"
    [note] = [e["node"] for e in thread(server, target["id"])["edges"]]
    assert (note["public"], note["authorRole"], note["author"]) == (False, "AGENT", None)
    assert source["id"] in note["body"] and text in note["body"]
    [commented] = events(server, target["id"])[logged[target["id"]] :]
    assert (commented["type"], commented["version"]) == ("Ticket.Commented", after["version"])
    assert commented["data"]["comment"] == {
        "id": note["id"], "body": note["body"], "public": False, "author": None, "authorRole": "AGENT"
    }  # fmt: skip
    assert "status" not in commented["data"]

    query = "query($t: ID!) { tickets(where: {mergedInto: {eq: $t}}) { nodes { id } } }"
    assert server.data(query, {"t": target["id"]})["tickets"]["nodes"] == [{"id": source["id"]}]


def test_a_merge_without_a_comment_names_the_source(server):
    first, second, target = ticket_in(server, "OPEN"), ticket_in(server, "RESOLVED"), ticket_in(server, "ESCALATED")
    mutate(server, "mergeTicket", first["id"], into=target["id"])
    mutate(server, "mergeTicket", second["id"], into=target["id"])
    after = ticket(server, target["id"])
    assert sorted(t["id"] for t in after["mergedTickets"]) == sorted([first["id"], second["id"]])
    assert (after["status"], after["commentCount"]) == ("ESCALATED", 2)
    notes = thread(server, target["id"], public=False)["nodes"]
    assert [first["id"] in n["body"] for n in notes] == [True, False]
    assert [second["id"] in n["body"] for n in notes] == [False, True]


@pytest.mark.parametrize("closed", ["source", "target"])
def test_a_merge_with_a_closed_ticket_is_an_invalid_transition(server, closed):
    source = ticket_in(server, "CLOSED" if closed == "source" else "OPEN")
    target = ticket_in(server, "CLOSED" if closed == "target" else "OPEN")
    assert ("MERGE" in source["allowedTransitions"]) == (closed != "source")
    before, kept = rows(server), versions(server, source["id"], target["id"])
    error = refused(server, "mergeTicket", source["id"], into=target["id"], comment="dup")
    assert error["extensions"]["code"] == "INVALID_TRANSITION", error
    assert error["extensions"]["verb"] == "MERGE"
    if closed == "source":
        assert (error["extensions"]["from"], error["extensions"]["allowed"]) == ("CLOSED", allowed("CLOSED"))
    assert rows(server) == before and versions(server, source["id"], target["id"]) == kept
    assert ticket(server, source["id"])["mergedInto"] is None
    assert ticket(server, target["id"])["mergedTickets"] == []


def test_a_merged_ticket_refuses_every_later_verb(server):
    source, target, third = (ticket_in(server, "OPEN") for _ in range(3))
    mutate(server, "mergeTicket", source["id"], into=target["id"])
    merged = ticket(server, source["id"])
    assert merged["status"] == "CLOSED" and merged["allowedTransitions"] == []
    before, kept = rows(server), versions(server, source["id"], target["id"], third["id"])
    sealed = {
        "reopenTicket": refused(server, "reopenTicket", source["id"]),
        "updateTicket": refused(server, "updateTicket", source["id"], input={"subject": "renamed"}),
        "deleteTicket": refused(server, "deleteTicket", source["id"]),
        "mergeTicket": refused(server, "mergeTicket", source["id"], into=third["id"]),
        "commentTicket": comment_refused(server, source["id"], {"body": "hello?", "public": False}),
    }
    for verb, error in sealed.items():
        assert error["extensions"]["code"] == "INVALID_TRANSITION", (verb, error)
        assert error["extensions"]["allowed"] == [], (verb, error)
    into_merged = refused(server, "mergeTicket", third["id"], into=source["id"])
    assert into_merged["extensions"]["code"] == "INVALID_TRANSITION", into_merged
    assert rows(server) == before
    assert versions(server, source["id"], target["id"], third["id"]) == kept
    assert ticket(server, source["id"]) == merged


# --- bad input writes nothing ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(server) -> World:
    return make_world(server)


BAD_MERGES = {
    "into-itself": ("<ticket>", "<ticket>", {}, "BAD_USER_INPUT"),
    "into-another-tenants-ticket": ("<ticket>", "<other_ticket>", {}, "NOT_FOUND"),
    "another-tenants-ticket-into-ours": ("<other_ticket>", "<ticket>", {}, "NOT_FOUND"),
    "into-an-unknown-ticket": ("<ticket>", GHOST["ticket"], {}, "NOT_FOUND"),
    "an-unknown-ticket": (GHOST["ticket"], "<ticket>", {}, "NOT_FOUND"),
    "into-a-contact": ("<ticket>", "<other_contact>", {}, ("NOT_FOUND", "BAD_USER_INPUT")),
    "stale-expected-version": ("<ticket>", "<target>", {"expectedVersion": 0}, "VERSION_CONFLICT"),
}


@pytest.mark.parametrize("case", BAD_MERGES)
def test_bad_merge_input_is_refused_and_writes_nothing(server, world, case):
    source, into, extra, codes = BAD_MERGES[case]
    target = ticket_in(server, "OPEN")["id"]
    fill = {"<ticket>": world.ticket, "<other_ticket>": world.other_ticket, "<target>": target}
    fill["<other_contact>"] = world.other_contact
    kept = versions(server, world.ticket, target)
    theirs = server.sql("SELECT version, merged_into_id FROM ticket WHERE id = :id", id=world.other_ticket)
    before = rows(server)
    error = refused(server, "mergeTicket", fill.get(source, source), into=fill.get(into, into), **extra)
    assert error["extensions"]["code"] in ((codes,) if isinstance(codes, str) else codes), error
    assert rows(server) == before and versions(server, world.ticket, target) == kept
    assert server.sql("SELECT version, merged_into_id FROM ticket WHERE id = :id", id=world.other_ticket) == theirs
    assert ticket(server, world.ticket)["mergedInto"] is None


def test_another_tenant_cannot_merge_our_tickets(server, world):
    ours = ticket_in(server, "OPEN")["id"]
    before = rows(server)
    error = refused(server, "mergeTicket", world.ticket, world.other_headers, into=ours)
    assert error["extensions"]["code"] == "NOT_FOUND", error
    assert rows(server) == before and ticket(server, world.ticket)["mergedInto"] is None


# --- concurrency -----------------------------------------------------------------------------------


def _merge_at(server, barrier: threading.Barrier, source: str, into: str) -> dict:
    """One merge on a connection of its own, sent when the other thread is ready too."""
    with httpx.Client(base_url=server.url, timeout=60) as client:
        assert client.get("/healthz").status_code == 200  # connected before the start line
        barrier.wait(timeout=30)
        return client.post("/graphql", json={"query": MERGE, "variables": {"id": source, "into": into}}).json()


def test_opposite_merges_at_once_one_merges_the_other_is_refused(server):
    for round_ in range(ROUNDS):
        a, b = ticket_in(server, "OPEN")["id"], ticket_in(server, "OPEN")["id"]
        barrier = threading.Barrier(2)
        with ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(_merge_at, server, barrier, a, b), pool.submit(_merge_at, server, barrier, b, a)]
            results = [f.result(timeout=120) for f in futures]
        won = [r["data"]["mergeTicket"] for r in results if not r.get("errors")]
        lost = [r["errors"][0] for r in results if r.get("errors")]
        assert len(won) == len(lost) == 1, (round_, results)
        assert lost[0]["extensions"]["code"] == "INVALID_TRANSITION", (round_, lost)
        source = won[0]["id"]
        target = b if source == a else a
        assert won[0] == {"id": source, "status": "CLOSED", "mergedInto": {"id": target}}
        after = ticket(server, target)
        assert (after["status"], after["mergedInto"], after["mergedTickets"]) == ("OPEN", None, [{"id": source}])
        assert after["commentCount"] == 1
        assert [e["type"] for e in events(server, source)][-1] == "Ticket.Merged"
        assert [e["type"] for e in events(server, target)][-1] == "Ticket.Commented"
        assert comment(server, target, "still alive", selection="status commentCount") == {
            "status": "OPEN",
            "commentCount": 2,
        }


def test_a_merge_with_the_current_expected_version_succeeds(server):
    """From REOPENED into IN_PROGRESS, with ``expectedVersion`` the source's version."""
    source, target = ticket_in(server, "REOPENED"), ticket_in(server, "IN_PROGRESS")
    merged = mutate(server, "mergeTicket", source["id"], TICKET, into=target["id"], expectedVersion=source["version"])
    assert merged["status"] == "CLOSED" and merged["version"] == source["version"] + 1
