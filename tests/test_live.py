"""Live subscriptions — ``events`` and ``ticketEvents`` — through real WebSocket clients.

Subscriptions go through ``tests.ws_client`` (raw ``graphql-transport-ws`` and ``graphql-ws``
clients, and ``gql``'s ``WebsocketsTransport``); mutations and the expected event log go over
HTTP. What the server holds for live streams (taps, tenant feeds, shared executions, their
tasks) is read on the server's own loop. Every wait is bounded, so a broken stream fails.

A subscription is "ready" once the server holds a tap (and, for a document without ``after``,
a fan-out follower) for it; live-only tests wait for that before writing, and each test starts
on a server with no live subscriber left, so the counts they wait for are their own.
"""

from __future__ import annotations

import asyncio
import gc
import io
import uuid
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest
from graphql import parse, print_ast

from models.entities import Ticket
from resolvers.reactions import shipped
from resolvers.unit import UnitOfWork
from tests import ws_client as ws
from tests.ws_client import LEGACY_WS, PROTOCOLS, TRANSPORT_WS, WAIT

#: How long a burst of concurrent writers may take as a whole (a bound, not a measurement).
BURST_WAIT = 120.0
OTHER_TENANT = "other-tenant"


# --- documents ---------------------------------------------------------------------------------

EVENT = "id type entityType target actor timestamp version sequence data cause { id type } entity { id }"
TICKET_EVENT = f"event {{ {EVENT} }} ticket {{ id status priority version subject }}"


def _document(text: str) -> str:
    """The canonical printing, as ``gql`` sends it (identical documents may share an execution)."""
    return print_ast(parse(text))


def _events_document(*, resumable: bool) -> str:
    after = (", $after: ID", ", after: $after") if resumable else ("", "")
    return _document(
        f"subscription Events($types: [String!], $entityTypes: [String!], $target: ID{after[0]}) {{"
        f" events(types: $types, entityTypes: $entityTypes, target: $target{after[1]}) {{ {EVENT} }} }}"
    )


def _ticket_events_document(*, resumable: bool) -> str:
    after = (", $after: ID", ", after: $after") if resumable else ("", "")
    return _document(
        f"subscription TicketEvents($where: TicketWhere{after[0]}) {{"
        f" ticketEvents(where: $where{after[1]}) {{ {TICKET_EVENT} }} }}"
    )


#: Live only: no ``after`` in the document, so identical subscribers share one execution.
EVENTS = _events_document(resumable=False)
TICKET_EVENTS = _ticket_events_document(resumable=False)
#: Resumable: ``$after`` replays the log after that event first; always an execution of its own.
EVENTS_AFTER = _events_document(resumable=True)
TICKET_EVENTS_AFTER = _ticket_events_document(resumable=True)


# --- HTTP: mutations and the event log ---------------------------------------------------------


class Api(ws.HttpApi):
    """The server over HTTP, from the test's loop."""

    async def create_ticket(self, subject: str | None = None, **fields) -> str:
        subject = subject or f"live {uuid.uuid4().hex[:8]}"
        query = "mutation($input: CreateTicketInput!) { createTicket(input: $input) { id } }"
        return (await self.data(query, {"input": {"subject": subject, **fields}}))["createTicket"]["id"]

    async def update_ticket(self, id_: str, **fields) -> dict:
        query = (
            "mutation($id: ID!, $input: UpdateTicketInput!) {"
            " updateTicket(id: $id, input: $input) { id status version } }"
        )
        return (await self.data(query, {"id": id_, "input": fields}))["updateTicket"]

    async def ticket_verb(self, verb: str, id_: str, **args) -> dict:
        """``escalate``, ``resolve``, ``reopen``, ``close``… with ``reason=``/``resolution=``."""
        declared = "".join(f", ${name}: String" for name in args)
        passed = "".join(f", {name}: ${name}" for name in args)
        field = f"{verb}Ticket"
        query = f"mutation($id: ID!{declared}) {{ {field}(id: $id{passed}) {{ id status version }} }}"
        return (await self.data(query, {"id": id_, **args}))[field]

    async def ticket(self, id_: str) -> dict:
        query = "query($id: ID!) { ticket(id: $id) { id status priority version issues { id } } }"
        return (await self.data(query, {"id": id_}))["ticket"]

    async def latest_event(self) -> dict:
        """The newest event of the tenant (a ticket is created first if the log is empty)."""
        query = f"{{ events(orderBy: [{{field: SEQUENCE, direction: DESC}}], first: 1) {{ nodes {{ {EVENT} }} }} }}"
        nodes = (await self.data(query))["events"]["nodes"]
        if not nodes:
            await self.create_ticket()
            return await self.latest_event()
        return nodes[0]

    async def events_after(self, sequence: int) -> list[dict]:
        """The tenant's events after ``sequence``, in commit order, as the ``events`` query gives them."""
        query = (
            "query($after: String) { events(orderBy: [{field: SEQUENCE, direction: DESC}], first: 100, after: $after)"
            f" {{ nodes {{ {EVENT} }} pageInfo {{ hasNextPage endCursor }} }} }}"
        )
        newest_first: list[dict] = []
        cursor = None
        while True:
            page = (await self.data(query, {"after": cursor}))["events"]
            for node in page["nodes"]:
                if node["sequence"] <= sequence:
                    return newest_first[::-1]
                newest_first.append(node)
            if not page["pageInfo"]["hasNextPage"]:
                return newest_first[::-1]
            cursor = page["pageInfo"]["endCursor"]


def matching(events: list[dict], types=(), entityTypes=(), target=None) -> list[dict]:
    """What an ``events`` subscription with these filters should deliver out of ``events``."""
    return [
        e
        for e in events
        if (not types or e["type"] in types)
        and (not entityTypes or e["entityType"] in entityTypes)
        and (target is None or e["target"] == target)
    ]


def ids(events: list[dict]) -> list[str]:
    return [e["id"] for e in events]


# --- the server's live state, read on its own loop ---------------------------------------------


@dataclass(frozen=True)
class LiveState:
    taps: int  # streams reading a tenant feed (``services.live.subscribers``)
    followers: int  # WebSocket subscribers of shared executions (``services.fanout.subscribers``)
    feeds: dict[str, int]  # tenant → taps on its feed
    shared: int  # shared executions
    tasks: tuple[str, ...]  # live tasks named feed:* or fanout:*


async def live_state(server) -> LiveState:
    async def read() -> LiveState:
        services = server.services
        names = sorted(
            t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith(("feed:", "fanout:")) and not t.done()
        )
        return LiveState(
            taps=services.live.subscribers,
            followers=services.fanout.subscribers,
            feeds={tenant: len(feed.taps) for tenant, feed in services.live.feeds.items()},
            shared=len(services.fanout.executions),
            tasks=tuple(names),
        )

    return await asyncio.to_thread(server.run, read())


async def _stacks(server) -> str:
    """Where the server's live-stream tasks are stuck (for failure messages)."""

    async def read() -> str:
        out = io.StringIO()
        for task in asyncio.all_tasks():
            if task.get_name().startswith(("feed:", "fanout:")) or "run_operation" in repr(task.get_coro()):
                task.print_stack(file=out)
        return out.getvalue()

    return await asyncio.to_thread(server.run, read())


async def until(server, condition: Callable[[LiveState], bool], what: str) -> LiveState:
    """Poll the server's live state until ``condition`` holds; fail after ``WAIT`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while True:
        state = await live_state(server)
        if condition(state):
            return state
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting until {what}; the server's live state: {state}\n{await _stacks(server)}")
        await asyncio.sleep(0.02)


async def ready(server, *, taps: int, followers: int = 0) -> LiveState:
    """Wait until the server holds ``taps`` taps and ``followers`` fan-out followers."""
    return await until(
        server, lambda s: s.taps >= taps and s.followers >= followers, f"{taps} taps and {followers} followers"
    )


def released(state: LiveState) -> bool:
    """No tap, follower, tenant feed or shared execution is left (tasks are compared separately)."""
    return (state.taps, state.followers, state.feeds, state.shared) == (0, 0, {}, 0)


def added_tasks(state: LiveState, baseline: LiveState) -> list[str]:
    """feed:*/fanout:* tasks running now that were not running at ``baseline``."""
    return sorted((Counter(state.tasks) - Counter(baseline.tasks)).elements())


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
async def api(server):
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield Api(client)


@pytest.fixture(autouse=True)
async def quiet(server) -> LiveState:
    """Each test starts with no live subscriber on the server, so the counts it waits for are its own.

    Its value is the server's live state then, to compare tasks with.
    """
    return await until(server, released, "no live subscriber is left from earlier tests")


# --- 1. filtering ------------------------------------------------------------------------------

FILTERS = {
    "types": lambda target: {"types": ["Ticket.Escalated", "Ticket.Reopened"]},
    "entityTypes": lambda target: {"entityTypes": ["Issue", "Metric"]},
    "target": lambda target: {"target": target},
}


async def _escalations(api: Api, a: str, b: str) -> None:
    """Two tickets through escalation, resolution and reopening; the last step matches every filter."""
    await api.ticket_verb("escalate", a, reason="customer is blocked")
    await api.update_ticket(b, subject="renamed while a is escalated")
    await api.ticket_verb("escalate", b, reason="also blocked")
    await api.ticket_verb("resolve", a, resolution="patched")
    await api.ticket_verb("reopen", a, reason="came back")
    await api.ticket_verb("escalate", a, reason="again")


@pytest.mark.parametrize("mode", ["live", "replay"])
async def test_events_filter_by_type_entity_type_and_target(server, api, mode):
    a, b = await api.create_ticket(), await api.create_ticket()
    start = await api.latest_event()
    variables = {name: make(a) for name, make in FILTERS.items()}
    async with ws.connect(server.url) as connection:
        if mode == "live":  # filtered as events arrive from the tenant feed
            operations = {name: await connection.subscribe(EVENTS, v) for name, v in variables.items()}
            await ready(server, taps=len(operations), followers=len(operations))
            await _escalations(api, a, b)
        else:  # filtered in SQL while replaying the log after ``start``
            await _escalations(api, a, b)
            operations = {
                name: await connection.subscribe(EVENTS_AFTER, {**v, "after": start["id"]})
                for name, v in variables.items()
            }
        log = await api.events_after(start["sequence"])
        for name, operation in operations.items():
            expected = matching(log, **variables[name])
            assert 2 <= len(expected) < len(log), f"the {name} filter should keep some events and drop others"
            received = [data["events"] for data in await operation.take(len(expected))]
            assert received == expected, name
    assert {e["type"] for e in matching(log, **variables["types"])} == {"Ticket.Escalated", "Ticket.Reopened"}
    assert {e["entityType"] for e in matching(log, **variables["entityTypes"])} == {"Issue", "Metric"}


async def test_ticket_events_where_sees_only_tickets_matching_after_the_event(server, api):
    async with ws.connect(server.url) as connection:
        escalated = await connection.subscribe(TICKET_EVENTS, {"where": {"status": {"eq": "ESCALATED"}}})
        urgent = await connection.subscribe(TICKET_EVENTS, {"where": {"priority": {"in": ["HIGH", "URGENT"]}}})
        await ready(server, taps=2, followers=2)

        a = await api.create_ticket(priority="LOW")
        await api.ticket_verb("escalate", a, reason="blocked")  # escalated, LOW
        await api.ticket_verb("resolve", a, resolution="done")  # neither
        b = await api.create_ticket(priority="HIGH")  # HIGH
        await api.ticket_verb("escalate", b)  # escalated, HIGH
        await api.update_ticket(b, priority="URGENT")  # escalated, URGENT
        await api.update_ticket(b, priority="LOW")  # escalated only
        c = await api.create_ticket(priority="URGENT")  # URGENT
        await api.ticket_verb("escalate", c)  # both: the last event of either stream

        def seen(results: list[dict]) -> list[tuple]:
            return [
                (r["ticketEvents"]["event"]["type"], r["ticketEvents"]["ticket"]["id"],
                 r["ticketEvents"]["ticket"]["status"], r["ticketEvents"]["ticket"]["priority"])
                for r in results
            ]  # fmt: skip

        assert seen(await escalated.take(5)) == [
            ("Ticket.Escalated", a, "ESCALATED", "LOW"),
            ("Ticket.Escalated", b, "ESCALATED", "HIGH"),
            ("Ticket.Updated", b, "ESCALATED", "URGENT"),
            ("Ticket.Updated", b, "ESCALATED", "LOW"),
            ("Ticket.Escalated", c, "ESCALATED", "URGENT"),
        ]
        assert seen(await urgent.take(5)) == [
            ("Ticket.Created", b, "OPEN", "HIGH"),
            ("Ticket.Escalated", b, "ESCALATED", "HIGH"),
            ("Ticket.Updated", b, "ESCALATED", "URGENT"),
            ("Ticket.Created", c, "OPEN", "URGENT"),
            ("Ticket.Escalated", c, "ESCALATED", "URGENT"),
        ]
    assert (await api.ticket(a))["status"] == "RESOLVED"


async def test_ticket_event_carries_the_ticket_as_it_stood_right_after_the_event(server, api):
    start = await api.latest_event()
    a = await api.create_ticket(priority="MEDIUM")
    await api.ticket_verb("escalate", a, reason="blocked")
    await api.ticket_verb("resolve", a, resolution="fixed")
    assert (await api.ticket(a))["status"] == "RESOLVED"  # before anything is read

    async with ws.connect(server.url) as connection:
        every = await connection.subscribe(TICKET_EVENTS_AFTER, {"where": {"id": {"eq": a}}, "after": start["id"]})
        escalated = await connection.subscribe(
            TICKET_EVENTS_AFTER, {"where": {"id": {"eq": a}, "status": {"eq": "ESCALATED"}}, "after": start["id"]}
        )
        replayed = [r["ticketEvents"] for r in await every.take(3)]
        assert [(t["event"]["type"], t["ticket"]["status"]) for t in replayed] == [
            ("Ticket.Created", "OPEN"),
            ("Ticket.Escalated", "ESCALATED"),
            ("Ticket.Resolved", "RESOLVED"),
        ]
        for item in replayed:
            assert item["ticket"]["id"] == item["event"]["target"] == a
            assert item["ticket"]["version"] == item["event"]["version"]
        only = (await escalated.next())["ticketEvents"]
        assert only["event"] == replayed[1]["event"] and only["ticket"]["status"] == "ESCALATED"

        # live now: a reopen reaches only the unfiltered stream, the next escalation both
        await api.ticket_verb("reopen", a, reason="not fixed")
        await api.ticket_verb("escalate", a, reason="still broken")
        live = [r["ticketEvents"] for r in await every.take(2)]
        assert [(t["event"]["type"], t["ticket"]["status"], t["ticket"]["version"]) for t in live] == [
            ("Ticket.Reopened", "REOPENED", 4),
            ("Ticket.Escalated", "ESCALATED", 5),
        ]
        assert (await escalated.next())["ticketEvents"]["event"] == live[1]["event"]


async def test_ticket_events_include_changes_made_by_hooks(server, api):
    a = await api.create_ticket()
    await api.ticket_verb("escalate", a, reason="engineering please")
    issue = (await api.ticket(a))["issues"][0]["id"]
    start = await api.latest_event()
    variables = {"where": {"id": {"eq": a}}, "after": start["id"]}
    async with ws.subscription(server.url, TICKET_EVENTS_AFTER, variables) as op:
        await api.data('mutation($id: ID!) { closeIssue(id: $id, reason: "fixed") { id } }', {"id": issue})
        item = (await op.next())["ticketEvents"]
    assert item["event"]["type"] == "Ticket.Resolved" and item["event"]["cause"]["type"] == "Issue.Closed"
    assert item["ticket"]["status"] == "RESOLVED"


# --- 2. both protocols, raw and through gql ----------------------------------------------------


async def test_both_protocols_and_gql_deliver_the_same_events(server, api):
    a = await api.create_ticket()
    async with (
        ws.subscription(server.url, EVENTS, {}, TRANSPORT_WS) as raw_current,
        ws.subscription(server.url, EVENTS, {}, LEGACY_WS) as raw_legacy,
        ws.gql_subscription(server.url, EVENTS, {}, TRANSPORT_WS) as gql_current,
        ws.gql_subscription(server.url, EVENTS, {}, LEGACY_WS) as gql_legacy,
    ):
        # the same document and variables: one shared execution, one tap, four followers
        await ready(server, taps=1, followers=4)
        start = (await api.latest_event())["sequence"]
        await api.ticket_verb("escalate", a, reason="blocked")
        await api.update_ticket(a, subject="seen by everyone")
        await api.ticket_verb("resolve", a)
        expected = await api.events_after(start)
        assert len(expected) == 6  # escalate + issue + follow-up, update, resolve + metric
        streams = {
            "raw graphql-transport-ws": raw_current,
            "raw graphql-ws": raw_legacy,
            "gql graphql-transport-ws": gql_current,
            "gql graphql-ws": gql_legacy,
        }
        for name, stream in streams.items():
            assert [r["events"] for r in await stream.take(len(expected))] == expected, name


# --- 3. resuming after a disconnect --------------------------------------------------------------

RESUME_WRITES = 10


async def _changes_while_away(api: Api, ticket: str) -> None:
    """``RESUME_WRITES`` mutations of one ticket, three of them with hook-made events."""
    await api.update_ticket(ticket, subject="while away 1")
    await api.update_ticket(ticket, priority="HIGH")
    await api.update_ticket(ticket, subject="while away 2")
    await api.ticket_verb("escalate", ticket, reason="blocked")  # + Issue.Created, Activity.Created
    await api.update_ticket(ticket, category="billing")
    await api.ticket_verb("resolve", ticket, resolution="done")  # + Metric.Created
    await api.ticket_verb("reopen", ticket, reason="not done")
    await api.update_ticket(ticket, status="OPEN")
    await api.update_ticket(ticket, subject="while away 3")
    await api.update_ticket(ticket, priority="LOW")


@pytest.mark.parametrize("scope", ["all", "target"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_resume_after_disconnect_gets_exactly_what_was_missed(server, api, protocol, scope):
    ticket = await api.create_ticket()
    filters = {"target": ticket} if scope == "target" else {}
    async with ws.subscription(server.url, EVENTS, filters, protocol) as op:
        await ready(server, taps=1, followers=1)
        await api.update_ticket(ticket, subject="before the disconnect")
        last_seen = (await op.next())["events"]
    assert last_seen["type"] == "Ticket.Updated" and last_seen["target"] == ticket
    await until(server, released, "the disconnected subscriber is released")

    await _changes_while_away(api, ticket)
    missed = matching(await api.events_after(last_seen["sequence"]), **filters)
    expected_count = RESUME_WRITES if scope == "target" else RESUME_WRITES + 3  # hook-made events too
    assert len(missed) == expected_count

    async with ws.subscription(server.url, EVENTS_AFTER, {**filters, "after": last_seen["id"]}, protocol) as op:
        assert [r["events"] for r in await op.take(len(missed))] == missed
        await api.update_ticket(ticket, subject="after the reconnect")
        fresh = (await op.next())["events"]
        assert fresh == (await api.events_after(missed[-1]["sequence"]))[0]
        assert fresh["type"] == "Ticket.Updated" and fresh["sequence"] > missed[-1]["sequence"]


# --- 4. resuming in the middle of a burst of concurrent writers ----------------------------------

WRITERS = 4
WRITES = 25  # per writer: a create, updates, an escalation and a resolution
FIRST_SESSION = 10  # events the first session reads before it disconnects


async def _writer(api: Api, number: int, halfway: asyncio.Event) -> None:
    ticket = await api.create_ticket(f"burst {number} {uuid.uuid4().hex[:6]}")
    updates = WRITES - 3
    for i in range(updates):
        if i == updates // 2:
            await halfway.wait()  # the second half runs while the subscriber is away and reconnecting
        await api.update_ticket(ticket, subject=f"burst {number} write {i}")
    await api.ticket_verb("escalate", ticket, reason="burst")
    await api.ticket_verb("resolve", ticket)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_resume_during_a_burst_loses_and_repeats_nothing(server, api, protocol):
    start = await api.latest_event()
    halfway = asyncio.Event()
    writers = [asyncio.create_task(_writer(api, n, halfway)) for n in range(WRITERS)]
    try:
        async with ws.subscription(server.url, EVENTS_AFTER, {"after": start["id"]}, protocol) as op:
            first = [(await op.next())["events"] for _ in range(FIRST_SESSION)]
        halfway.set()  # disconnected mid-burst: the writers carry on
        async with ws.subscription(server.url, EVENTS_AFTER, {"after": first[-1]["id"]}, protocol) as op:
            await asyncio.wait_for(asyncio.gather(*writers), BURST_WAIT)
            expected = await api.events_after(start["sequence"])
            second: list[dict] = []
            while len(first) + len(second) < len(expected):
                second.append((await op.next())["events"])
    finally:
        halfway.set()
        for writer in writers:
            writer.cancel()
        await asyncio.gather(*writers, return_exceptions=True)

    assert len(expected) == WRITERS * (WRITES + 4)  # every write, plus the hooks' events
    union = first + second
    assert ids(union) == ids(expected)
    assert [e["sequence"] for e in union] == list(range(start["sequence"] + 1, start["sequence"] + 1 + len(union)))
    assert union == expected


# --- 5. bad cursors ------------------------------------------------------------------------------

BAD_CURSORS = {
    "unknown event": "evt_zzzzzzzz",
    "not an event id": "ticket_zzzzzzzz",
    "malformed": "not a cursor",
    "empty": "",
}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("document", [EVENTS_AFTER, TICKET_EVENTS_AFTER], ids=["events", "ticketEvents"])
@pytest.mark.parametrize("cursor", BAD_CURSORS.values(), ids=BAD_CURSORS.keys())
async def test_bad_cursor_is_bad_user_input(server, protocol, document, cursor):
    async with ws.subscription(server.url, document, {"after": cursor}, protocol) as op:
        error = await op.error()
        assert error["extensions"]["code"] == "BAD_USER_INPUT", error
        assert error["extensions"].get("argument") == "after"
        await op.completes()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_gql_client_sees_bad_cursor_as_bad_user_input(server, protocol):
    async with ws.gql_subscription(server.url, EVENTS_AFTER, {"after": "evt_zzzzzzzz"}, protocol) as op:
        error = await op.error()
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


# --- 6. cleanup on disconnect ----------------------------------------------------------------------


async def test_disconnects_and_completes_release_taps_feeds_and_tasks(server, api, quiet):
    subject = f"cleanup {uuid.uuid4().hex[:8]}"
    start = await api.latest_event()
    created = {"types": ["Ticket.Created"]}
    async with (
        ws.connect(server.url, TRANSPORT_WS) as current,
        ws.connect(server.url, LEGACY_WS) as legacy,
        ws.connect(server.url, TRANSPORT_WS) as dropped,
    ):
        kept = await current.subscribe(EVENTS, created)
        completed = await current.subscribe(TICKET_EVENTS, {"where": {"subject": {"eq": subject}}})
        on_legacy = await legacy.subscribe(EVENTS, {"entityTypes": ["Ticket"]})
        resumed = await dropped.subscribe(EVENTS_AFTER, {**created, "after": start["id"]})
        await ready(server, taps=4, followers=3)

        ticket = await api.create_ticket(subject)
        for operation in (kept, on_legacy, resumed):
            assert (await operation.next())["events"]["target"] == ticket
        assert (await completed.next())["ticketEvents"]["ticket"]["id"] == ticket

        # ``complete`` one operation: its socket stays open and its sibling keeps streaming
        await completed.stop()
        await until(
            server,
            lambda s: (s.taps, s.followers, s.shared, s.feeds) == (3, 2, 2, {"default": 3}),
            "the completed operation is released",
        )
        other = await api.create_ticket(subject)
        assert (await kept.next())["events"]["target"] == other

        await legacy.close()  # a clean close of a graphql-ws connection
        await dropped.abort()  # a client vanishing without a closing handshake
        await until(
            server,
            lambda s: (
                (s.taps, s.followers, s.shared, s.feeds) == (1, 1, 1, {"default": 1})
                and added_tasks(s, quiet) == ["fanout:default", "feed:default"]
            ),
            "the closed sockets are released",
        )
    # the last socket closed: no tap, follower, feed, shared execution or task of theirs is left
    await until(
        server, lambda s: released(s) and not added_tasks(s, quiet), "every live stream and its tasks are released"
    )


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_closing_while_results_are_on_their_way_releases_everything(server, api, quiet, protocol):
    """A client that closes in the middle of a burst: a send can fail on the closed socket, and
    the operation's stream must be released all the same (not left to garbage collection)."""
    for _ in range(3):
        async with ws.connect(server.url, protocol) as socket:
            operation = await socket.subscribe(EVENTS, {"entityTypes": ["Ticket"]})
            await ready(server, taps=1, followers=1)
            burst = asyncio.gather(*(api.create_ticket() for _ in range(12)))
            await operation.next()  # results are flowing: close while more are being sent
        await burst
        await until(
            server, lambda s: released(s) and not added_tasks(s, quiet), "the closed socket's stream is released"
        )


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_last_subscriber_leaving_mid_result_leaves_no_coroutine_unawaited(server, api, quiet, protocol):
    """The last subscriber of a shared execution vanishes while it resolves a burst's results
    (``entity`` reads the database): the execution ends between results, so no resolver
    coroutine of graphql-core is left never awaited (a RuntimeWarning when it is collected)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        for _ in range(5):
            async with ws.connect(server.url, protocol) as socket:
                operation = await socket.subscribe(EVENTS, {"entityTypes": ["Ticket", "Activity"]})
                await ready(server, taps=1, followers=1)
                burst = asyncio.gather(*(api.create_ticket() for _ in range(12)))
                await operation.next()  # results are being resolved one after another: vanish
                await socket.abort()
            await burst
            await until(server, lambda s: released(s) and not added_tasks(s, quiet), "the shared execution has ended")
        gc.collect()  # (the server runs in this process) a left coroutine warns when collected
    unawaited = [str(w.message) for w in caught if "never awaited" in str(w.message)]
    assert not unawaited, unawaited


# --- 7. tenant scoping -------------------------------------------------------------------------------


async def _write_in_other_tenant(server) -> list[dict]:
    """A ticket created in another tenant directly on the server's loop; its events."""

    async def write() -> list[dict]:
        services = server.services
        async with UnitOfWork(
            services.db, tenant=OTHER_TENANT, actor="robot", hooks=shipped(), publish=services.broker.publish
        ) as uow:
            await uow.create(Ticket, {"subject": "elsewhere"})
        return [{"id": e.id, "sequence": e.seq, "type": e.type, "target": e.target} for e in uow.events]

    events = await asyncio.to_thread(server.run, write())
    assert [e["type"] for e in events] == ["Ticket.Created", "Activity.Created"]
    return events


async def test_events_of_another_tenant_are_never_delivered(server, api):
    start = await api.latest_event()
    async with ws.connect(server.url) as connection:
        live = await connection.subscribe(EVENTS, {})
        await ready(server, taps=1, followers=1)
        foreign = await _write_in_other_tenant(server)
        ours = await api.create_ticket()
        foreign += await _write_in_other_tenant(server)
        second = await api.create_ticket()

        received = [r["events"] for r in await live.take(4)]
        assert [(e["type"], e["entityType"]) for e in received] == [
            ("Ticket.Created", "Ticket"), ("Activity.Created", "Activity")
        ] * 2  # fmt: skip
        assert [received[0]["target"], received[2]["target"]] == [ours, second]
        assert not set(ids(received)) & set(ids(foreign))

        # replaying the log after a cursor stays in the tenant too
        replay = await connection.subscribe(EVENTS_AFTER, {"after": start["id"]})
        assert [r["events"] for r in await replay.take(4)] == received
    assert received == await api.events_after(start["sequence"])


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_resuming_after_another_tenants_event_is_bad_user_input(server, protocol):
    foreign = await _write_in_other_tenant(server)
    async with ws.subscription(server.url, EVENTS_AFTER, {"after": foreign[0]["id"]}, protocol) as op:
        error = await op.error()
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error


# --- 8. per-connection subscription limit ------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_subscriptions_beyond_the_per_connection_limit_are_refused(server, api, protocol):
    limit = server.settings.max_subscriptions_per_connection
    assert limit, "a per-connection limit is configured"
    async with ws.connect(server.url, protocol) as connection:
        operations = [await connection.subscribe(EVENTS, {"types": ["Ticket.Created"]}) for _ in range(limit)]
        extra = await connection.subscribe(EVENTS, {"types": ["Ticket.Created"]})
        error = await extra.error()
        assert "limit" in error["message"].lower(), error
        await ready(server, taps=1, followers=limit)  # one shared execution for identical documents

        # a freed slot can be used again, and the connection still works
        await operations[0].stop()
        await until(server, lambda s: s.followers == limit - 1, "the stopped operation is released")
        replacement = await connection.subscribe(EVENTS, {"types": ["Ticket.Created"]})
        await ready(server, taps=1, followers=limit)
        ticket = await api.create_ticket()
        assert (await replacement.next())["events"]["target"] == ticket
        assert (await operations[-1].next())["events"]["target"] == ticket


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_subscription_limit_error_carries_a_code(server, protocol):
    limit = server.settings.max_subscriptions_per_connection
    async with ws.connect(server.url, protocol) as connection:
        for _ in range(limit):
            await connection.subscribe(EVENTS, {"types": ["Ticket.Created"]})
        error = await (await connection.subscribe(EVENTS, {"types": ["Ticket.Created"]})).error()
        # leave only once they have all started (see the feed-start race below)
        await ready(server, taps=1, followers=limit)
    assert error.get("extensions", {}).get("code") in {"RATE_LIMITED", "BAD_USER_INPUT", "FORBIDDEN"}, error


# --- 9. a tenant feed starting or stopping while its only subscriber comes and goes ------------------
#
# These races sit between two awaits on the server, so they are driven on the server's own loop,
# with ``services.live.stream`` (what both subscription fields iterate), each in a tenant of its
# own so that a feed left broken cannot disturb the other tests.


#: Loop turns over which a subscriber is cancelled while its feed may still be starting.
STARTING_TURNS = 60


def _race_tenant() -> str:
    return f"race-{uuid.uuid4().hex[:8]}"


async def _soon(condition: Callable[[], bool]) -> bool:
    """On the server's loop: yield to it until ``condition()`` holds, for at most ``WAIT`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not condition():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0)
    return True


async def _drop_feed(live, tenant: str) -> None:
    """Stop and forget a tenant's feed a test left behind, so nothing of it outlives the test."""
    feed = live.feeds.pop(tenant, None)
    if feed is not None and feed.task is not None:
        feed.task.cancel()  # a second cancel, in case the first was lost
    if feed is not None:
        await asyncio.wait_for(feed.stop(), WAIT)


async def test_subscriber_leaving_while_its_feed_starts_leaves_the_tenant_working(server):
    live, broker, db = server.services.live, server.services.broker, server.services.db

    async def race() -> tuple[bool, bool]:
        # cancel the only subscriber after 0, 1, 2… turns of the loop, so that one cancel lands
        # while its feed is starting; stop at the first tenant it leaves a feed behind in
        for turns in range(STARTING_TURNS):
            tenant = _race_tenant()
            first = asyncio.ensure_future(live.stream(tenant).__anext__())
            for _ in range(turns):
                await asyncio.sleep(0)
            first.cancel()  # the client completes (or disconnects) at that moment
            await asyncio.gather(first, return_exceptions=True)
            if tenant in live.feeds:
                break
        left_over = tenant in live.feeds

        # a later subscriber of the tenant must still see what commits
        second = asyncio.ensure_future(live.stream(tenant).__anext__())
        try:
            await _soon(lambda: bool(live.feeds.get(tenant) and live.feeds[tenant].taps))
            async with UnitOfWork(db, tenant=tenant, actor="robot", hooks=shipped(), publish=broker.publish) as uow:
                await uow.create(Ticket, {"subject": "after the race"})
            done, _ = await asyncio.wait([second], timeout=WAIT)
            delivered = bool(done) and second.result().id == uow.events[0].id
        finally:
            second.cancel()
            await asyncio.gather(second, return_exceptions=True)
            await _drop_feed(live, tenant)
        return left_over, delivered

    left_over, delivered = await asyncio.to_thread(server.run, race())
    assert not left_over, "the feed of a subscriber cancelled while it started was left in Live.feeds"
    assert delivered, "a later subscriber of the tenant received nothing"


async def test_feed_stops_when_its_last_subscriber_leaves_as_a_wake_up_arrives(server):
    live, broker = server.services.live, server.services.broker

    async def race() -> tuple[bool, bool]:
        tenant = _race_tenant()
        reader = asyncio.ensure_future(live.stream(tenant).__anext__())
        assert await _soon(lambda: bool(live.feeds.get(tenant) and live.feeds[tenant].taps)), "no tap"
        feed = live.feeds[tenant]
        await asyncio.sleep(0.05)  # the feed idles, waiting for a wake-up
        broker.deliver(tenant, feed.cursor + 1)  # a commit's wake-up arrives ...
        reader.cancel()  # ... as the only subscriber disconnects
        _done, _ = await asyncio.wait([reader, feed.task], timeout=WAIT)
        stopped = feed.task.done() and reader.done()
        feed.task.cancel()  # a second cancel gets through: leave nothing running
        await asyncio.gather(reader, feed.task, return_exceptions=True)
        await _drop_feed(live, tenant)
        return stopped, tenant in live.feeds

    stopped, left_over = await asyncio.to_thread(server.run, race())
    assert not left_over
    assert stopped, "the feed task kept running and the leaving subscriber's stream never finished"
