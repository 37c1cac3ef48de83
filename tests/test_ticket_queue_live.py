"""Live queues under load: concurrent writers, resuming from a cursor, and one evaluation per queue.

The concurrency test checks every message against an oracle computed here from the event log:
each ticket's state replayed event by event, each queue's page after every event listed and
sorted in Python. A client's page after the messages of an event must equal the oracle's page
at that event — positions and all, in commit order — and its last page what the list query
returns. Statement counts come from the server's own SQL counter (``LiveServer.statements``).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import random
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest

import resolvers.queue
from models.enums import TicketStatus
from resolvers.queue import queues_for
from tests import ws_client as ws
from tests.test_feed_recovery import _terminate_backends
from tests.test_ticket_queue import (
    QUEUE,
    QUEUE_AFTER,
    TICKET,
    Api,
    QueuePage,
    category,
    order,
    queue_document,
    queue_state,
    read,
    released,
    until,
)
from tests.ws_client import PROTOCOLS, WAIT

#: how long a burst of writers may take as a whole (a bound, not a measurement)
BURST_WAIT = 180.0
PRIORITY = {None: 0, "LOW": 1, "MEDIUM": 2, "HIGH": 3, "URGENT": 4}
STATUS = {status.value: rank for rank, status in enumerate(TicketStatus, start=1)}


@pytest.fixture
async def api(server):
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield Api(client)


@pytest.fixture(autouse=True)
async def quiet(server) -> None:
    """Each test starts with no queue left on the server, so the counts it waits for are its own."""
    await until(server, released, "no queue is left from earlier tests")


# --- the oracle: queues computed from the event log ------------------------------------------------


@dataclass(frozen=True)
class Queue:
    """A queue under test: its arguments, and the same list computed in Python."""

    where: dict
    admits: Callable[[dict], bool]
    order_by: list[dict] | None
    first: int

    def variables(self, kind: str) -> dict:
        return {"where": {**self.where, "category": {"eq": kind}}, "orderBy": self.order_by, "first": self.first}

    def page(self, tickets: dict[str, dict], kind: str) -> list[dict]:
        rows = [t for t in tickets.values() if t["category"] == kind and not t.get("deletedAt") and self.admits(t)]
        keys = [(o["field"], o["direction"] == "DESC") for o in (self.order_by or [])] or [("CREATED_AT", False)]
        rows.sort(key=lambda t: t["id"], reverse=keys[-1][1] if self.order_by else False)
        for name, descending in reversed(keys):
            rows.sort(key=SORT[name], reverse=descending)  # stable: earlier keys win
        return rows[: self.first]


SORT: dict[str, Callable[[dict], Any]] = {
    "PRIORITY": lambda t: PRIORITY[t["priority"]],
    "STATUS": lambda t: STATUS[t["status"]],
    "SUBJECT": lambda t: t["subject"],
    "CREATED_AT": lambda t: datetime.fromisoformat(t["createdAt"]),
    "UPDATED_AT": lambda t: datetime.fromisoformat(t["updatedAt"]),
}
ACTIVE = ["OPEN", "IN_PROGRESS", "PENDING", "REOPENED"]
QUEUES = {
    "active by priority": Queue({"status": {"in": ACTIVE}}, lambda t: t["status"] in ACTIVE, order("PRIORITY DESC"), 3),
    "recently updated": Queue({}, lambda t: True, order("UPDATED_AT DESC"), 4),
    "urgent, oldest first": Queue(
        {"priority": {"in": ["HIGH", "URGENT"]}}, lambda t: t["priority"] in ("HIGH", "URGENT"), None, 2
    ),
    "open or alpha, by subject": Queue(
        {"or": [{"status": {"eq": "OPEN"}}, {"subject": {"contains": "alpha"}}]},
        lambda t: t["status"] == "OPEN" or "alpha" in t["subject"].lower(),
        order("SUBJECT", "PRIORITY DESC"),
        5,
    ),
    "not done, by status then newest": Queue(
        {"not": {"status": {"in": ["CLOSED", "RESOLVED"]}}},
        lambda t: t["status"] not in ("CLOSED", "RESOLVED"),
        order("STATUS", "CREATED_AT DESC"),
        3,
    ),
}

LOG = (
    'query($after: String) { events(where: {entityType: {eq: "Ticket"}}, first: 100, after: $after) {'
    " nodes { id type target sequence version timestamp data } pageInfo { hasNextPage endCursor } } }"
)


async def ticket_log(api, since: int) -> list[dict]:
    """Every ticket event after sequence ``since``, in commit order."""
    events, cursor = [], None
    while True:
        page = (await api.data(LOG, {"after": cursor}))["events"]
        events += [e for e in page["nodes"] if e["sequence"] > since]
        if not page["pageInfo"]["hasNextPage"]:
            return events
        cursor = page["pageInfo"]["endCursor"]


def replayed(events: list[dict]) -> dict[int, dict[str, dict]]:
    """Every ticket created in ``events`` as it stood after each event: sequence → id → state."""
    tickets: dict[str, dict] = {}
    after: dict[int, dict[str, dict]] = {}
    for event in events:
        data, target = event["data"], event["target"]
        if event["type"] == "Ticket.Created":
            tickets[target] = dict(data)
        elif target in tickets:
            state = tickets[target] = dict(tickets[target])
            state |= {k: v["after"] for k, v in data.items() if isinstance(v, dict) and "after" in v}
            state["updatedAt"] = event["timestamp"]
            if event["type"] == "Ticket.Deleted":
                state["deletedAt"] = event["timestamp"]
        if target in tickets:
            tickets[target]["version"] = event["version"]
        after[event["sequence"]] = dict(tickets)
    return after


def summary(tickets: list[dict]) -> list[tuple]:
    return [(t["id"], t["version"], t["subject"], t["status"], t["priority"]) for t in tickets]


class Oracle:
    """Each queue's page after every ticket event of ``log``, computed from the log alone."""

    def __init__(self, log: list[dict], kind: str) -> None:
        self.kind, self.states = kind, replayed(log)
        self.sequences = [event["sequence"] for event in log]

    def page(self, queue: Queue, sequence: int) -> list[dict]:
        """The page of ``queue`` once event ``sequence`` (any event) has committed."""
        index = bisect.bisect_right(self.sequences, sequence) - 1
        return queue.page(self.states[self.sequences[index]] if index >= 0 else {}, self.kind)

    def last_change(self, queue: Queue, since: int) -> int | None:
        """The last event after ``since`` that changed the page (a client must hear of it)."""
        last, shown = None, summary(self.page(queue, since))
        for sequence in self.sequences:
            if sequence > since and (now := summary(self.page(queue, sequence))) != shown:
                last, shown = sequence, now
        return last


async def sequence_of(api, event_id: str) -> int:
    return (await api.data("query($id: ID!) { event(id: $id) { sequence } }", {"id": event_id}))["event"]["sequence"]


async def start_of(api, page: QueuePage) -> int:
    """The event a client's page first stood at: its snapshot's, or the cursor it resumed after."""
    return await sequence_of(api, page.messages[0]["cursor"] if page.messages[0]["kind"] == "SNAPSHOT" else page.start)


async def hear_all(operation: ws.Results, page: QueuePage, oracle: Oracle, queue: Queue, start: int, name: str) -> None:
    """Read until ``page`` has the messages of the last event that changed its queue."""
    last = oracle.last_change(queue, start)
    while last is not None and not (
        page.history and page.history[-1][0] == last and page.messages[-1]["remaining"] == 0
    ):
        await read(operation, page, 1, name)


def follows(oracle: Oracle, queue: Queue, page: QueuePage, start: int, label: str) -> None:
    """After every event since ``start``, ``page`` (as the client rebuilt it) is the oracle's."""
    if page.messages[0]["kind"] == "SNAPSHOT":
        assert summary(page.history[0][1]) == summary(oracle.page(queue, start)), f"{label}: the snapshot"
    settled: dict[int, list[dict]] = {}
    for message, (sequence, tickets) in zip(page.messages, page.history):
        if sequence is not None:
            assert sequence in oracle.sequences and sequence > start, f"{label}: a message of event {sequence}"
            if message["remaining"] == 0:
                settled[sequence] = tickets
    current = page.history[0][1] if page.messages[0]["kind"] == "SNAPSHOT" else page.initial
    for sequence in oracle.sequences:
        if sequence > start:
            current = settled.get(sequence, current)
            assert summary(current) == summary(oracle.page(queue, sequence)), f"{label}: after event {sequence}"


# --- writers -----------------------------------------------------------------------------------------

SUBJECTS = ["alpha", "bravo", "charlie", "delta", "Alpha two", "echo", "zulu"]
PRIORITIES = ["LOW", "MEDIUM", "HIGH", "URGENT"]
VERBS = {
    "priority": 3, "subject": 2, "status": 2, "resolve": 1, "reopen": 1, "close": 1, "escalate": 1,
    "description": 2, "note": 1, "create": 2, "delete": 0.3,
}  # fmt: skip
#: refusals a random walk runs into (a verb its state does not allow, a deleted ticket)
EXPECTED_REFUSALS = {"INVALID_TRANSITION", "NOT_FOUND"}


class Writers:
    """Threads that each make random changes to the category's tickets over HTTP."""

    def __init__(self, url: str, kind: str, tickets: list[str], count: int, changes: int) -> None:
        self.url, self.kind, self.count, self.changes = url, kind, count, changes
        self.tickets, self.lock = list(tickets), threading.Lock()
        self.halfway = threading.Barrier(count + 1)
        self.resume = threading.Event()
        self.problems: list[str] = []
        self.made = Counter[str]()

    def run(self) -> None:
        threads = [threading.Thread(target=self._write, args=(n,), name=f"writer-{n}") for n in range(self.count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(BURST_WAIT)

    def _write(self, number: int) -> None:
        rng = random.Random(number)
        try:
            with httpx.Client(base_url=self.url, timeout=30) as http:
                for i in range(self.changes):
                    if i == self.changes // 2:
                        self.halfway.wait(WAIT)
                        self.resume.wait(WAIT)
                    self._change(http, rng)
        except Exception as error:  # a writer's failure fails the test, with what it was doing
            self.problems.append(f"writer {number}: {type(error).__name__}: {error}")
            self.halfway.abort()

    def _change(self, http: httpx.Client, rng: random.Random) -> None:
        verb = rng.choices(list(VERBS), weights=list(VERBS.values()))[0]
        with self.lock:
            ticket = rng.choice(self.tickets)
        if verb == "create":
            fields = {"subject": rng.choice(SUBJECTS), "priority": rng.choice(PRIORITIES), "category": self.kind}
            query, variables = "mutation($i: CreateTicketInput!) { createTicket(input: $i) { id } }", {"i": fields}
        elif verb in ("priority", "subject", "status", "description"):
            value = {
                "priority": lambda: rng.choice(PRIORITIES), "subject": lambda: rng.choice(SUBJECTS),
                "status": lambda: rng.choice(["IN_PROGRESS", "PENDING", "OPEN"]), "description": lambda: str(rng.random()),
            }[verb]()  # fmt: skip
            query = "mutation($id: ID!, $i: UpdateTicketInput!) { updateTicket(id: $id, input: $i) { id } }"
            variables = {"id": ticket, "i": {verb: value}}
        elif verb == "note":
            query = 'mutation($id: ID!) { commentTicket(id: $id, input: {body: "note", public: false}) { id } }'
            variables = {"id": ticket}
        else:
            query, variables = f"mutation($id: ID!) {{ {verb}Ticket(id: $id) {{ id }} }}", {"id": ticket}
        body = http.post("/graphql", json={"query": query, "variables": variables}).json()
        codes = {e.get("extensions", {}).get("code") for e in body.get("errors") or []}
        if codes - EXPECTED_REFUSALS:
            raise AssertionError(f"{verb} {ticket}: {body['errors']}")
        self.made[verb if not codes else "refused"] += 1
        if verb == "create" and not codes:
            with self.lock:
                self.tickets.append(body["data"]["createTicket"]["id"])


WRITERS, CHANGES = 4, 30


async def newest(api) -> int:
    query = "{ events(orderBy: [{field: SEQUENCE, direction: DESC}], first: 1) { nodes { sequence } } }"
    nodes = (await api.data(query))["events"]["nodes"]
    return nodes[0]["sequence"] if nodes else 0


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_concurrent_writers_each_page_follows_the_log_and_ends_as_the_list(server, api, protocol):
    kind, rng = category(), random.Random(7)
    since = await newest(api)
    tickets = [await api.create(rng.choice(SUBJECTS), kind, priority=rng.choice(PRIORITIES)) for _ in range(10)]
    writers = Writers(server.url, kind, tickets, WRITERS, CHANGES)
    # (label, queue, field) of every client: all queues from the start, two of them joined halfway
    # by the same document (a late subscriber of a shared execution) and one by another document
    clients: list[tuple[str, Queue, str, ws.Results, QueuePage]] = []
    async with ws.connect(server.url, protocol) as early, ws.connect(server.url, protocol) as late:
        for name, queue in QUEUES.items():
            operation = await early.subscribe(QUEUE, queue.variables(kind))
            clients.append((name, queue, "ticketQueue", operation, QueuePage(queue.first)))
        writing = asyncio.create_task(asyncio.to_thread(writers.run))
        try:
            await asyncio.to_thread(writers.halfway.wait, WAIT)
            for name in list(QUEUES)[:2]:
                operation = await late.subscribe(QUEUE, QUEUES[name].variables(kind))
                clients.append(
                    (f"{name}, joined halfway", QUEUES[name], "ticketQueue", operation, QueuePage(QUEUES[name].first))
                )
            name = next(iter(QUEUES))
            other = queue_document(ticket=TICKET + " tags", alias="queue")
            operation = await late.subscribe(other, QUEUES[name].variables(kind))
            clients.append(
                (f"{name}, another document", QUEUES[name], "queue", operation, QueuePage(QUEUES[name].first))
            )
            for _, _, field_name, operation, page in clients:
                if not page.messages:
                    await read(operation, page, 1, field_name)  # the snapshots, while the writers wait
            writers.resume.set()
            await asyncio.wait_for(writing, BURST_WAIT)
        finally:
            writers.resume.set()
            writers.halfway.abort()
            await asyncio.gather(writing, return_exceptions=True)
        assert not writers.problems, writers.problems
        oracle = Oracle(await ticket_log(api, since), kind)
        starts = [await start_of(api, page) for *_, page in clients]
        for (_, queue, field_name, operation, page), start in zip(clients, starts):
            await hear_all(operation, page, oracle, queue, start, field_name)

    for (label, queue, _, _, page), start in zip(clients, starts):
        follows(oracle, queue, page, start, label)
        listed = await api.listed(queue.variables(kind)["where"], queue.order_by, queue.first)
        assert summary(page.tickets) == summary(listed), label
    kinds = Counter(m["kind"] for *_, page in clients for m in page.messages)
    assert min(kinds["ADDED"], kinds["REMOVED"], kinds["CHANGED"]) >= 5, kinds  # the walk exercised all three
    assert writers.made["create"] and writers.made["refused"], writers.made


# --- resuming from a cursor --------------------------------------------------------------------------


async def _away(api, kind: str, made: dict[str, str]) -> None:
    """Changes to a page of two (by subject) while its client is away: every one touches it."""
    made["a"] = await api.create("a", kind)  # pushes c off
    await api.update(made["b"], subject="bb")  # in place
    await api.verb("resolve", made["a"])  # leaves: c comes back
    await api.update(made["d"], subject="0")  # from outside the window, to the top
    await api.update(made["c"], description="read by nobody")  # on the page: its new state


RESUME = Queue({"status": {"in": ACTIVE}}, lambda t: t["status"] in ACTIVE, order("SUBJECT"), 2)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(
    "queue_runs,ring",
    [(True, resolvers.queue.RING), (True, 2), (False, resolvers.queue.RING)],
    ids=["from the ring", "past the ring, computed afresh", "queue ended, computed afresh"],
)
async def test_resume_gets_the_changes_since_the_cursor_and_no_snapshot(
    server, api, protocol, queue_runs, ring, monkeypatch
):
    """With another subscriber the queue keeps running and remembers its recent messages (here
    all of them, or only the last two); alone, the queue ends with the client. Whatever it no
    longer remembers is computed from the log on resume: the same messages."""
    monkeypatch.setattr(resolvers.queue, "RING", ring)  # (the server runs in this process)
    kind = category()
    since = await newest(api)
    made = {s: await api.create(s, kind) for s in "bcdef"}
    variables = RESUME.variables(kind)
    async with ws.connect(server.url, protocol) as witness_socket:
        witness = await witness_socket.subscribe(queue_document(alias="witness"), variables) if queue_runs else None
        async with ws.subscription(server.url, QUEUE, variables, protocol) as op:
            before = QueuePage(2)
            await read(op, before, 1)
            await api.update(made["c"], subject="ca")
            await read(op, before, 1)
        await until(server, lambda s: s.queues == (1 if queue_runs else 0), "the client is away")
        await _away(api, kind, made)
        if not queue_runs:
            assert released(await queue_state(server))

        async with ws.subscription(server.url, QUEUE_AFTER, {**variables, "after": before.cursor}, protocol) as op:
            after = QueuePage.resumed(before)
            oracle = Oracle(await ticket_log(api, since), kind)
            start = await sequence_of(api, before.cursor)
            await hear_all(op, after, oracle, RESUME, start, "ticketQueue")
            assert after.messages[0]["kind"] != "SNAPSHOT" and len(after.messages) >= 5
            follows(oracle, RESUME, after, start, "resumed")
            assert summary(after.tickets) == summary(await api.listed(variables["where"], RESUME.order_by, 2))

            # then live, like everyone else
            await api.update(made["b"], subject="b")
            (live,) = await read(op, after, 1)
            assert (live["kind"], live["tickets"][0]["subject"]) == ("CHANGED", "b")
        if witness is not None:  # what the witness saw after the cursor is what the resumed client got
            seen = []
            while len(seen) < 2 or seen[-1]["cursor"] != live["cursor"]:
                seen.append((await witness.next())["witness"])
            replay = [m for m in seen if m["event"] and m["event"]["sequence"] > start]
            assert replay == after.messages


async def test_a_cursor_too_old_to_replay_gets_a_snapshot(server, api, monkeypatch):
    kind = category()
    made = {s: await api.create(s, kind) for s in "bcdef"}
    variables = RESUME.variables(kind)
    async with ws.subscription(server.url, QUEUE, variables) as op:
        before = QueuePage(2)
        await read(op, before, 1)
    await until(server, released, "the client is away")
    await _away(api, kind, made)
    monkeypatch.setattr(resolvers.queue, "CATCH_UP", 3)  # (the server runs in this process)
    async with ws.subscription(server.url, QUEUE_AFTER, {**variables, "after": before.cursor}) as op:
        after = QueuePage.resumed(before)
        (snapshot,) = await read(op, after, 1)
    assert snapshot["kind"] == "SNAPSHOT"
    assert after.tickets == await api.listed(variables["where"], RESUME.order_by, 2)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_resuming_from_the_newest_cursor_sends_nothing_until_the_next_change(server, api, protocol):
    kind = category()
    made = {s: await api.create(s, kind) for s in "bcd"}
    variables = RESUME.variables(kind)
    async with ws.subscription(server.url, QUEUE, variables, protocol) as op:
        before = QueuePage(2)
        await read(op, before, 1)
    await api.update(made["d"], description="off the page: no message")
    async with ws.subscription(server.url, QUEUE_AFTER, {**variables, "after": before.cursor}, protocol) as op:
        after = QueuePage.resumed(before)
        await until(server, lambda s: s.queues == 1 and s.followers == 1, "the resumed client follows")
        await api.update(made["b"], subject="ba")
        (changed,) = await read(op, after, 1)
    assert (changed["kind"], changed["position"], changed["tickets"][0]["subject"]) == ("CHANGED", 0, "ba")


# --- one evaluation per queue ------------------------------------------------------------------------


@dataclass
class Cost:
    """Statements the server ran for one mutation and whatever it set off, until it was heard."""

    statements: int


async def _cost(server, api, change: Callable, heard: Callable) -> int:
    before = server.statements
    await change()
    await heard()
    return server.statements - before


async def _queue_setup(api) -> tuple[str, dict[str, str], dict]:
    """Seven tickets; a page of two by subject holds a, b (and its window c, d too)."""
    kind = category()
    made = {s: await api.create(s, kind) for s in "abcdefg"}
    return kind, made, {"where": {"category": {"eq": kind}}, "orderBy": order("SUBJECT"), "first": 2}


SHARING = {
    "one": (1, False),
    "five, one document": (5, False),
    "five, five documents": (5, True),
}


async def _moving_onto_the_page(server, api, subscribers: int, documents: bool) -> int:
    """Statements for a ticket from outside the window moving to the top of a page that
    ``subscribers`` clients watch (through one document, or each through its own)."""
    _, made, variables = await _queue_setup(api)
    fields = [f"q{n}" if documents else "ticketQueue" for n in range(subscribers)]
    async with contextlib.AsyncExitStack() as stack:
        operations = []
        for name in fields:
            socket = await stack.enter_async_context(ws.connect(server.url))
            operations.append(await socket.subscribe(queue_document(alias=name), variables))
        pages = [QueuePage(2) for _ in fields]
        for operation, page, name in zip(operations, pages, fields):
            await read(operation, page, 1, name)
        executions = subscribers if documents else 1
        await until(server, lambda s: (s.queues, s.followers) == (1, executions), "one queue, its followers")

        async def heard() -> None:
            for operation, page, name in zip(operations, pages, fields):
                await read(operation, page, 2, name)

        cost = await _cost(server, api, lambda: api.update(made["g"], subject="0"), heard)
        assert all([t["subject"] for t in page.tickets] == ["0", "a"] for page in pages)
    await until(server, released, "the queue is released")
    return cost


@pytest.mark.parametrize("subscribers", list(SHARING)[1:])
async def test_subscribers_of_one_queue_cost_the_statements_of_one(server, api, subscribers):
    """Bringing a ticket from outside the window onto the page reads it once for the queue,
    however many watch it: the same statements as with one subscriber, measured in the same test."""
    one = await _moving_onto_the_page(server, api, *SHARING["one"])
    assert await _moving_onto_the_page(server, api, *SHARING[subscribers]) == one


IRRELEVANT = {
    "another entity": lambda api, made: api.data(
        "mutation($n: String!) { createOrganization(input: {name: $n}) { id } }", {"n": category()}
    ),
    "a field it does not read, off its window": lambda api, made: api.update(made["f"], description=category()),
}


@pytest.mark.parametrize("change", IRRELEVANT.values(), ids=IRRELEVANT.keys())
async def test_an_event_that_cannot_change_a_queue_costs_it_no_statement(server, api, change):
    """The same kind of event costs as much with a queue listening as without one; a relevant one
    (a column the queue reads, on a ticket off its window) costs more — so the count can tell."""
    _, made, variables = await _queue_setup(api)
    marker = made["g"]  # each change is followed by one on g, which an events subscription hears

    async def measured(with_queue: bool, mutation: Callable) -> int:
        async with ws.connect(server.url) as socket:
            events = await socket.subscribe(
                "subscription($t: ID) { events(target: $t) { id sequence } }", {"t": marker}
            )
            if with_queue:
                await (await socket.subscribe(QUEUE, variables)).next()
            await until(server, lambda s: (s.followers, s.taps) == ((1, 2) if with_queue else (0, 1)), "ready")

            async def write() -> None:
                await mutation()
                await api.update(marker, description=category())

            async def heard() -> None:
                sequence = (await events.next())["events"]["sequence"]
                await until(server, lambda s: all(seq >= sequence for seq in s.seqs), "the queue has read it")

            return await _cost(server, api, write, heard)

    assert await measured(True, lambda: change(api, made)) == await measured(False, lambda: change(api, made))
    relevant = await measured(False, lambda: api.update(made["e"], subject="ee"))
    assert await measured(True, lambda: api.update(made["f"], subject="ff")) > relevant


# --- a follower that falls behind ----------------------------------------------------------------------


async def test_a_follower_that_falls_too_far_behind_gets_a_fresh_snapshot(server, api, monkeypatch):
    """Driven on the server's loop: a follower that reads nothing while its queue makes more
    messages than ``BACKLOG`` finds a snapshot of the page as it then is, not the messages."""
    monkeypatch.setattr(resolvers.queue, "BACKLOG", 3)
    kind = category()
    made = {s: await api.create(s, kind) for s in "bcd"}
    queues = queues_for(server.services.live)
    spec = queues.spec("default", where={"category": {"eq": kind}}, order=[("subject", False)], first=2)
    stream = queues.follow(spec)

    async def step() -> Any:
        return await anext(stream)

    snapshot = await asyncio.to_thread(server.run, step())
    for subject in ("a", "ba", "bb", "bc"):
        await api.update(made["b"], subject=subject)  # four changes, each a message
    last = await newest(api)
    await until(server, lambda s: bool(s.seqs) and s.seqs[0] >= last, "the queue has read them")
    later = await asyncio.to_thread(server.run, step())
    await asyncio.to_thread(server.run, stream.aclose())
    assert [t.subject for t in snapshot.tickets] == ["b", "c"]
    assert later.kind.value == "SNAPSHOT" and [t.subject for t in later.tickets] == ["bc", "c"]


# --- an outage ---------------------------------------------------------------------------------------

CUTS = 8


async def test_a_queue_outlives_terminated_database_connections(server, api):
    """Every connection the server holds is cut again and again while tickets change: the queue
    retries its reads, and its messages still follow the log exactly."""
    if server.services.db.dialect != "postgresql":
        pytest.skip("terminating backend connections is a PostgreSQL fault (the sqlite run has none)")
    kind, rng = category(), random.Random(11)
    since = await newest(api)
    made = [await api.create(rng.choice(SUBJECTS), kind, priority=rng.choice(PRIORITIES)) for _ in range(8)]
    queue = QUEUES["active by priority"]
    async with ws.connect(server.url) as socket:
        operation = await socket.subscribe(QUEUE, queue.variables(kind))
        page = QueuePage(queue.first)
        await read(operation, page, 1)
        cutting, outcomes = asyncio.Event(), Counter[bool]()

        async def writer() -> None:
            while not cutting.is_set():
                change = rng.choice([{"priority": rng.choice(PRIORITIES)}, {"subject": rng.choice(SUBJECTS)},
                                     {"status": rng.choice(["OPEN", "IN_PROGRESS", "PENDING"])}])  # fmt: skip
                try:
                    await api.update(rng.choice(made), **change)
                    outcomes[True] += 1
                except AssertionError:  # cut mid-write (nothing written), or a refused move
                    outcomes[False] += 1

        writers = [asyncio.create_task(writer()) for _ in range(3)]
        try:
            for _ in range(CUTS):
                seen = sum(outcomes.values())
                await _terminate_backends(server.settings.database_url)
                while sum(outcomes.values()) < seen + 3:
                    await asyncio.sleep(0.01)
        finally:
            cutting.set()
            await asyncio.gather(*writers, return_exceptions=True)
        oracle = Oracle(await ticket_log(api, since), kind)
        start = await start_of(api, page)
        await hear_all(operation, page, oracle, queue, start, "ticketQueue")
    assert outcomes[True] >= CUTS, outcomes
    follows(oracle, queue, page, start, "through the outage")
    assert summary(page.tickets) == summary(await api.listed(queue.variables(kind)["where"], queue.order_by, 3))
