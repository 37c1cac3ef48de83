"""Live queues — ``ticketQueue`` — through real WebSocket clients: the snapshot, each kind of
change with its position, refilling a page, bad input, tenants, and releasing what a queue holds.

Each test lists the tickets of a category of its own, so what other tests write to the shared
database never reaches its queues. A client here is a ``QueuePage``: it applies every message as
a client would and checks it as it goes (a REMOVED ticket was at its position, an ADDED one was
not on the page…). What the server holds for queues is read on its own loop.
More (concurrent writers, resuming, shared evaluation) is in tests/test_ticket_queue_live.py.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from graphql import parse, print_ast

from models.entities import Ticket
from resolvers.keys import create_key
from resolvers.queue import queues_for
from resolvers.reactions import shipped
from resolvers.unit import UnitOfWork
from tests import ws_client as ws
from tests.live import create_many
from tests.ws_client import PROTOCOLS, WAIT

TICKET = "id subject status priority category version updatedAt"
EVENT = "id type target sequence version"


def _document(text: str) -> str:
    """The canonical printing, as ``gql`` sends it (identical documents may share an execution)."""
    return print_ast(parse(text))


def queue_document(*, resumable: bool = False, ticket: str = TICKET, alias: str = "ticketQueue") -> str:
    after = (", $after: ID", ", after: $after") if resumable else ("", "")
    return _document(
        f"subscription Queue($where: TicketWhere, $orderBy: [TicketOrder!], $first: Int{after[0]}) {{"
        f" {alias}: ticketQueue(where: $where, orderBy: $orderBy, first: $first{after[1]}) {{"
        f" kind position cursor remaining tickets {{ {ticket} }} event {{ {EVENT} }} }} }}"
    )


QUEUE = queue_document()
QUEUE_AFTER = queue_document(resumable=True)
LIST = (
    "query($where: TicketWhere, $orderBy: [TicketOrder!], $first: Int) {"
    f" tickets(where: $where, orderBy: $orderBy, first: $first) {{ nodes {{ {TICKET} }} }} }}"
)


def order(*keys: str) -> list[dict]:
    """``order("PRIORITY DESC", "SUBJECT")`` → ``orderBy`` input."""
    pairs = [key.split() for key in keys]
    return [{"field": p[0], "direction": p[1] if len(p) > 1 else "ASC"} for p in pairs]


def category() -> str:
    return f"queue-{uuid.uuid4().hex[:10]}"


# --- a client's page ----------------------------------------------------------------------------


class Mismatch(AssertionError):
    """A message that does not fit the page the client holds."""


@dataclass
class QueuePage:
    """What a client holds: the page, rebuilt from the messages in order, each one checked."""

    first: int
    tickets: list[dict] = field(default_factory=list)
    messages: list[dict] = field(default_factory=list)
    #: ``(event sequence or None for a snapshot, page after it)``, one per message
    history: list[tuple[int | None, list[dict]]] = field(default_factory=list)
    #: the page once the last event was applied whole, and that event's id (resume from it)
    settled: list[dict] = field(default_factory=list)
    cursor: str | None = None
    #: for a client that resumed: the page it held, and the cursor it resumed after
    initial: list[dict] = field(default_factory=list)
    start: str | None = None

    @classmethod
    def resumed(cls, before: QueuePage) -> QueuePage:
        """A client that reconnects holding ``before``'s page as of its last whole event."""
        held = list(before.settled)
        return cls(before.first, tickets=list(held), settled=list(held), cursor=before.cursor, initial=held,
                   start=before.cursor)  # fmt: skip

    def ids(self) -> list[str]:
        return [t["id"] for t in self.tickets]

    def apply(self, message: dict) -> None:
        kind, tickets, position, event = message["kind"], message["tickets"], message["position"], message["event"]
        previous = self.messages[-1] if self.messages else None
        if (
            previous is not None
            and previous["remaining"]
            and (message["cursor"] != previous["cursor"] or message["remaining"] != previous["remaining"] - 1)
        ):
            raise Mismatch(f"{previous['remaining']} more messages of {previous['cursor']} were due, got {message}")
        self.messages.append(message)
        if kind == "SNAPSHOT":
            if event is not None or position is not None or message["remaining"]:
                raise Mismatch(f"a snapshot has neither event nor position, and is whole: {message}")
            self.tickets = list(tickets)
        else:
            if len(tickets) != 1 or event is None or message["cursor"] != event["id"]:
                raise Mismatch(f"a change holds one ticket, its event, and that event's id as cursor: {message}")
            (ticket,) = tickets
            ids = self.ids()
            if kind == "REMOVED":
                if ticket["id"] not in ids or ids.index(ticket["id"]) != position:
                    raise Mismatch(f"REMOVED {ticket['id']} at {position}, but the page is {ids}")
                del self.tickets[position]
            else:
                if (kind == "ADDED") == (ticket["id"] in ids):
                    raise Mismatch(f"{kind} {ticket['id']}, but the page is {ids}")
                self.tickets = [t for t in self.tickets if t["id"] != ticket["id"]]
                if not 0 <= position <= len(self.tickets):
                    raise Mismatch(f"{kind} at {position} on a page of {len(self.tickets)}")
                self.tickets.insert(position, ticket)
        if len(self.tickets) > self.first:
            raise Mismatch(f"the page holds {len(self.tickets)} tickets, more than first: {self.first}")
        self.history.append((None if event is None else event["sequence"], list(self.tickets)))
        if message["remaining"] == 0:
            self.settled, self.cursor = list(self.tickets), message["cursor"]


async def read(operation: ws.Results, page: QueuePage, count: int, field_name: str = "ticketQueue") -> list[dict]:
    """The next ``count`` messages, applied to ``page``."""
    messages = [(await operation.next())[field_name] for _ in range(count)]
    for message in messages:
        page.apply(message)
    return messages


# --- the server over HTTP -------------------------------------------------------------------------


class Api(ws.HttpApi):
    async def create(self, subject: str, kind: str, **fields: Any) -> str:
        query = "mutation($input: CreateTicketInput!) { createTicket(input: $input) { id } }"
        variables = {"input": {"subject": subject, "category": kind, **fields}}
        return (await self.data(query, variables))["createTicket"]["id"]

    async def update(self, id_: str, **fields: Any) -> dict:
        query = (
            f"mutation($id: ID!, $input: UpdateTicketInput!) {{ updateTicket(id: $id, input: $input) {{ {TICKET} }} }}"
        )
        return (await self.data(query, {"id": id_, "input": fields}))["updateTicket"]

    async def verb(self, verb: str, id_: str) -> dict:
        field_name = f"{verb}Ticket"
        return (await self.data(f"mutation($id: ID!) {{ {field_name}(id: $id) {{ {TICKET} }} }}", {"id": id_}))[
            field_name
        ]

    async def listed(self, where: dict, order_by: list | None = None, first: int = 50) -> list[dict]:
        """The list query's page: what a queue of the same arguments must hold."""
        variables = {"where": where, "orderBy": order_by, "first": first}
        return (await self.data(LIST, variables))["tickets"]["nodes"]


@pytest.fixture
async def api(server):
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield Api(client)


# --- the server's queues, read on its own loop ----------------------------------------------------


@dataclass(frozen=True)
class QueueState:
    queues: int  # shared queues
    followers: int  # their followers
    tasks: int  # queue:* tasks still running
    seqs: tuple[int, ...]  # the event each queue stands at
    taps: int  # live streams reading a tenant feed (queues' own among them)


async def queue_state(server) -> QueueState:
    async def read() -> QueueState:
        queues = queues_for(server.services.live)
        tasks = [t for t in asyncio.all_tasks() if t.get_name().startswith("queue:") and not t.done()]
        seqs = tuple(q.seq for q in queues.shared.values())
        return QueueState(len(queues.shared), queues.subscribers, len(tasks), seqs, server.services.live.subscribers)

    return await asyncio.to_thread(server.run, read())


async def until(server, condition, what: str) -> QueueState:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while True:
        state = await queue_state(server)
        if condition(state):
            return state
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting until {what}; the server's queues: {state}")
        await asyncio.sleep(0.02)


def released(state: QueueState) -> bool:
    return (state.queues, state.followers, state.tasks) == (0, 0, 0)


@pytest.fixture(autouse=True)
async def quiet(server) -> None:
    """Each test starts with no queue left on the server, so the counts it waits for are its own."""
    await until(server, released, "no queue is left from earlier tests")


# --- 1. the snapshot ----------------------------------------------------------------------------------

SPECS = {
    "priority, then id": ({}, order("PRIORITY DESC"), 3),
    "subject then priority": ({}, order("SUBJECT", "PRIORITY DESC"), 4),
    "newest first": ({"priority": {"in": ["HIGH", "URGENT"]}}, order("CREATED_AT DESC"), 50),
    "oldest first (no orderBy)": ({"or": [{"status": {"eq": "IN_PROGRESS"}}, {"priority": {"eq": "LOW"}}]}, None, 2),
    "status, one ticket": ({"not": {"subject": {"contains": "B"}}}, order("STATUS", "UPDATED_AT DESC"), 1),
}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())
async def test_first_message_is_a_snapshot_of_the_page_in_order(server, api, spec, protocol):
    kind = category()
    for subject, priority in [("b", "LOW"), ("a", "HIGH"), ("d", "URGENT"), ("c", "HIGH"), ("e", "MEDIUM")]:
        await api.create(subject, kind, priority=priority)
    busy = await api.create("f", kind, priority="LOW")
    await api.update(busy, status="IN_PROGRESS")
    where, order_by, first = spec
    where = {**where, "category": {"eq": kind}}
    expected = await api.listed(where, order_by, first)
    assert 0 < len(expected) <= first

    async with ws.subscription(
        server.url, QUEUE, {"where": where, "orderBy": order_by, "first": first}, protocol
    ) as op:
        page = QueuePage(first)
        (snapshot,) = await read(op, page, 1)
    assert snapshot["kind"] == "SNAPSHOT"
    assert page.tickets == expected
    latest = await api.data("{ events(orderBy: [{field: SEQUENCE, direction: DESC}], first: 1) { nodes { id } } }")
    assert snapshot["cursor"] == latest["events"]["nodes"][0]["id"]  # the page stands at the newest event


async def test_first_defaults_to_fifty(server, api):
    kind = category()
    made = create_many(server, "Ticket", [{"subject": f"t{i:02}", "category": kind} for i in range(51)])
    document = _document("subscription($where: TicketWhere) { ticketQueue(where: $where) { kind tickets { id } } }")
    async with ws.subscription(server.url, document, {"where": {"category": {"eq": kind}}}) as op:
        snapshot = (await op.next())["ticketQueue"]
    assert [t["id"] for t in snapshot["tickets"]] == [t["id"] for t in made[:50]]


# --- 2. each kind of change, with its position ----------------------------------------------------------


def seen(messages: list[dict]) -> list[tuple]:
    return [(m["kind"], m["tickets"][0]["subject"], m["position"], m["event"]["type"]) for m in messages]


async def test_added_removed_and_changed_with_positions_events_and_cursors(server, api):
    kind = category()
    where = {"category": {"eq": kind}, "status": {"in": ["OPEN", "IN_PROGRESS"]}}
    variables = {"where": where, "orderBy": order("SUBJECT"), "first": 2}
    b = await api.create("b", kind)
    d = await api.create("d", kind)
    async with ws.subscription(server.url, QUEUE, variables) as op:
        page = QueuePage(2)
        await read(op, page, 1)
        assert [t["subject"] for t in page.tickets] == ["b", "d"]

        a = await api.create("a", kind)  # sorts first: d is pushed off the page
        assert seen(await read(op, page, 2)) == [
            ("REMOVED", "d", 1, "Ticket.Created"), ("ADDED", "a", 0, "Ticket.Created")
        ]  # fmt: skip
        assert page.messages[-1]["event"]["target"] == a

        await api.update(b, subject="c")  # still second: a new state in place
        (changed,) = await read(op, page, 1)
        assert seen([changed]) == [("CHANGED", "c", 1, "Ticket.Updated")]
        assert changed["tickets"][0]["version"] == changed["event"]["version"] == 2

        await api.update(a, subject="e")  # sorts after d now: d, from the tail, takes the page back
        assert seen(await read(op, page, 2)) == [
            ("REMOVED", "e", 0, "Ticket.Updated"),
            ("ADDED", "d", 1, "Ticket.Updated"),
        ]

        await api.verb("resolve", b)  # no longer matches: removed as it now stands
        removed, added = await read(op, page, 2)
        assert seen([removed, added]) == [("REMOVED", "c", 0, "Ticket.Resolved"), ("ADDED", "e", 1, "Ticket.Resolved")]
        assert removed["tickets"][0]["status"] == "RESOLVED"

        await api.update(d, description="not a field the queue reads")  # on the page: its new state
        (changed,) = await read(op, page, 1)
        assert seen([changed]) == [("CHANGED", "d", 0, "Ticket.Updated")] and changed["tickets"][0]["version"] == 2

        # changes that do not touch the page send nothing: the next message is the delete's
        await api.update(b, description="resolved and off the page")
        z = await api.create("z", kind)  # matches, but sorts past the page
        await api.update(z, subject="y")
        await api.data("mutation($n: String!) { createOrganization(input: {name: $n}) { id } }", {"n": kind})
        await api.data("mutation($id: ID!) { deleteTicket(id: $id) { id } }", {"id": d})
        assert seen(await read(op, page, 2)) == [
            ("REMOVED", "d", 0, "Ticket.Deleted"),
            ("ADDED", "y", 1, "Ticket.Deleted"),
        ]

    assert page.tickets == await api.listed(where, order("SUBJECT"), 2)
    sequences = [m["event"]["sequence"] for m in page.messages[1:]]
    assert sequences == sorted(sequences)


async def test_page_refills_from_the_list_once_its_tail_runs_out(server, api):
    """A page of one keeps one more ticket behind it; a second removal reads the list again."""
    kind = category()
    where = {"category": {"eq": kind}, "status": {"in": ["OPEN", "REOPENED"]}}
    made = {s: await api.create(s, kind) for s in "abcd"}
    async with ws.subscription(server.url, QUEUE, {"where": where, "orderBy": order("SUBJECT"), "first": 1}) as op:
        page = QueuePage(1)
        await read(op, page, 1)
        for gone, comes in ("ab", "bc", "cd"):
            await api.verb("resolve", made[gone])
            assert seen(await read(op, page, 2)) == [
                ("REMOVED", gone, 0, "Ticket.Resolved"), ("ADDED", comes, 0, "Ticket.Resolved")
            ]  # fmt: skip
            assert page.tickets == await api.listed(where, order("SUBJECT"), 1)
        await api.verb("resolve", made["d"])  # the last one: the page empties
        assert seen(await read(op, page, 1)) == [("REMOVED", "d", 0, "Ticket.Resolved")]
        await api.verb("reopen", made["b"])  # and fills again
        assert seen(await read(op, page, 1)) == [("ADDED", "b", 0, "Ticket.Reopened")]
    assert page.tickets == await api.listed(where, order("SUBJECT"), 1) and page.tickets[0]["status"] == "REOPENED"


# --- 3. bad input ---------------------------------------------------------------------------------------

BAD = {
    "first 0": ({"first": 0}, "first"),
    "first over the list limit": ({"first": 101}, "first"),
    "first negative": ({"first": -5}, "first"),
    "a NUL in a filter": ({"where": {"subject": {"eq": "a\x00b"}}}, None),
    "too many values": ({"where": {"subject": {"in": [f"s{i}" for i in range(1_001)]}}}, "where"),
}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("variables,argument", BAD.values(), ids=BAD.keys())
async def test_bad_arguments_are_bad_user_input(server, protocol, variables, argument):
    async with ws.subscription(server.url, QUEUE, variables, protocol) as op:
        error = await op.error()
        assert error["extensions"]["code"] == "BAD_USER_INPUT", error
        assert error["extensions"].get("argument") == argument, error
        assert "Traceback" not in error["message"]
        await op.completes()


BAD_CURSORS = {"unknown event": "evt_zzzzzzzz", "not an event id": "ticket_zzzzzzzz", "malformed": "?", "empty": ""}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("cursor", BAD_CURSORS.values(), ids=BAD_CURSORS.keys())
async def test_bad_cursor_is_bad_user_input(server, protocol, cursor):
    async with ws.subscription(server.url, QUEUE_AFTER, {"after": cursor}, protocol) as op:
        error = await op.error()
        assert error["extensions"]["code"] == "BAD_USER_INPUT" and error["extensions"]["argument"] == "after", error
        await op.completes()
    await until(server, released, "the refused subscriptions hold no queue")


# --- 4. tenants -----------------------------------------------------------------------------------------


async def _key(server, tenant: str) -> str:
    async def make() -> str:
        return (await create_key(server.services.db, tenant=tenant))[1]

    return await asyncio.to_thread(server.run, make())


async def test_a_queue_sees_only_its_own_tenant(server, api):
    kind = category()
    other = f"queue-tenant-{uuid.uuid4().hex[:8]}"
    key = await _key(server, other)
    variables = {"where": {"category": {"eq": kind}}, "orderBy": order("SUBJECT"), "first": 5}
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=30, headers={"authorization": f"Bearer {key}"}) as client,
        ws.connect(server.url, payload={"authorization": f"Bearer {key}"}) as theirs,
        ws.connect(server.url) as ours,
    ):
        elsewhere = Api(client)
        mine, their = QueuePage(5), QueuePage(5)
        our_queue, their_queue = await ours.subscribe(QUEUE, variables), await theirs.subscribe(QUEUE, variables)
        await read(our_queue, mine, 1)
        await read(their_queue, their, 1)
        assert mine.tickets == their.tickets == []
        await until(server, lambda s: s.queues == 2, "one queue per tenant")  # the same arguments, two tenants

        foreign = await elsewhere.create("a", kind)
        ours_too = await api.create("b", kind)
        assert seen(await read(our_queue, mine, 1)) == [("ADDED", "b", 0, "Ticket.Created")]
        assert seen(await read(their_queue, their, 1)) == [("ADDED", "a", 0, "Ticket.Created")]
        assert mine.ids() == [ours_too] and their.ids() == [foreign]

        # a write made directly in yet another tenant (no one listens there) reaches neither
        async def write() -> str:
            services = server.services
            async with UnitOfWork(services.db, tenant="queue-nobody", actor="robot", hooks=shipped(),
                                  publish=services.broker.publish) as uow:  # fmt: skip
                await uow.create(Ticket, {"subject": "0", "category": kind})
            return str(uow.events[0].id)

        nobody = await asyncio.to_thread(server.run, write())
        await api.update(ours_too, subject="c")
        assert seen(await read(our_queue, mine, 1)) == [("CHANGED", "c", 0, "Ticket.Updated")]
        assert their.ids() == [foreign] and their_queue.queue.empty()

        # nor can a cursor of another tenant be resumed from
        resumed = await ours.subscribe(QUEUE_AFTER, {**variables, "after": nobody})
        error = await resumed.error()
        assert error["extensions"]["code"] == "BAD_USER_INPUT", error


# --- 5. what a queue holds is released ----------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_completing_and_disconnecting_release_queues_and_their_tasks(server, api, protocol):
    kind = category()
    variables = {"where": {"category": {"eq": kind}}, "first": 3}
    async with ws.connect(server.url, protocol) as kept, ws.connect(server.url, protocol) as dropped:
        first = await kept.subscribe(QUEUE, variables)
        other = await kept.subscribe(QUEUE, {**variables, "first": 4})
        gone = await dropped.subscribe(QUEUE, variables)
        for operation in (first, other, gone):
            await operation.next()
        await until(server, lambda s: (s.queues, s.followers, s.tasks) == (2, 2, 2), "two queues, shared")
        await other.stop()
        await until(server, lambda s: (s.queues, s.tasks) == (1, 1), "the completed queue is released")
        await dropped.abort()
        ticket = await api.create("a", kind)
        assert (await first.next())["ticketQueue"]["tickets"][0]["id"] == ticket
    await until(server, released, "every queue and its task are released")
