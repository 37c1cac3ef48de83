"""Service levels in time (API.md, "Service levels (SLA)") through the real server on SQLite and
PostgreSQL: pauses, breaches in real time (exactly once, by the ``system`` actor, within 2 s of
the due time, replayed by ``asOf``), ``slaState``, ``SLA_DUE_AT``, ``supportMetrics.sla``, and
the catch-up of a server that starts after targets fell due. Policies themselves (CRUD, refused
input, which policy applies, the due times their hours give) are in ``test_sla_policies.py``.

Policies are per tenant, so every test works in a tenant of its own. Waits poll the API until a
deadline; the only sleeps are the pauses whose length a test measures. A target that could fall
due while the session runs is short and settled before its test ends, or days long: a breach
recorded during another test would change the statements that test counts.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import resolvers.keys
from graph.server.settings import Settings
from tests.conftest import UNTHROTTLED
from tests.databases import fresh_database
from tests.live import GraphQLError, LiveServer

WEEKDAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
DAY = 86_400
POLICY = (
    "id version createdBy deletedAt name position priorities organizationTiers channels firstResponseSeconds"
    " resolutionSeconds active businessHours { timezone days { weekday start end } holidays }"
)
SLA = "sla { state firstResponseDueAt resolutionDueAt firstResponseBreachedAt resolutionBreachedAt policy { id } }"
TICKET = f"id version status createdAt updatedAt firstResponseAt resolvedAt {SLA}"
SLA_STATS = "firstResponseMet firstResponseBreached resolutionMet resolutionBreached attainment"


def unique(prefix: str = "sla") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def whole(moment: datetime) -> datetime:
    """``moment`` rounded up to a whole second (due times never come before their target)."""
    return moment if not moment.microsecond else moment.replace(microsecond=0) + timedelta(seconds=1)


@dataclass
class Tenant:
    """A key of a tenant of its own on a server."""

    server: LiveServer
    name: str
    headers: dict[str, str]

    def post(self, query: str, variables: dict | None = None) -> dict:
        return self.server.post(query, variables, self.headers)

    def data(self, query: str, variables: dict | None = None) -> dict:
        body = self.post(query, variables)
        if body.get("errors"):
            raise GraphQLError(body["errors"])
        return body["data"]


def tenant(server: LiveServer) -> Tenant:
    name = unique("tenant")
    _, key = server.run(resolvers.keys.create_key(server.services.db, tenant=name))
    return Tenant(server, name, {"Authorization": f"Bearer {key}"})


def create_policy(t: Tenant, **fields: Any) -> dict:
    fields.setdefault("name", unique("policy"))
    query = f"mutation($i: CreateSlaPolicyInput!) {{ createSlaPolicy(input: $i) {{ {POLICY} }} }}"
    return t.data(query, {"i": fields})["createSlaPolicy"]


def hours(timezone: str, *days: tuple[int, str, str], holidays: tuple[date, ...] = ()) -> dict:
    return {
        "timezone": timezone,
        "days": [{"weekday": WEEKDAYS[w], "start": start, "end": end} for w, start, end in days],
        "holidays": [h.isoformat() for h in holidays],
    }


def create_ticket(t: Tenant, **fields: Any) -> dict:
    query = f"mutation($i: CreateTicketInput!) {{ createTicket(input: $i) {{ {TICKET} }} }}"
    return t.data(query, {"i": {"subject": unique("ticket"), **fields}})["createTicket"]


def update_ticket(t: Tenant, id_: str, **fields: Any) -> dict:
    query = f"mutation($id: ID!, $i: UpdateTicketInput!) {{ updateTicket(id: $id, input: $i) {{ {TICKET} }} }}"
    return t.data(query, {"id": id_, "i": fields})["updateTicket"]


def act(t: Tenant, verb: str, id_: str) -> dict:
    """``resolveTicket``, ``closeTicket``… or ``commentTicket`` (a public reply of an agent: a first response)."""
    if verb == "comment":
        query = f'mutation($id: ID!) {{ commentTicket(id: $id, input: {{body: "on it"}}) {{ {TICKET} }} }}'
    else:
        query = f"mutation($id: ID!) {{ {verb}Ticket(id: $id) {{ {TICKET} }} }}"
    return t.data(query, {"id": id_})[f"{verb}Ticket"]


def read(t: Tenant, id_: str, as_of: datetime | None = None) -> dict:
    query = f"query($id: ID!, $at: DateTime) {{ ticket(id: $id, asOf: $at) {{ {TICKET} }} }}"
    return t.data(query, {"id": id_, "at": as_of and as_of.isoformat()})["ticket"]


def breaches(t: Tenant, id_: str) -> list[dict]:
    query = "query($id: ID!) { ticket(id: $id) { events(first: 100) { nodes { type actor timestamp version data } } } }"
    nodes = t.data(query, {"id": id_})["ticket"]["events"]["nodes"]
    return [e for e in nodes if e["type"] == "Ticket.SlaBreached"]


def sla_metrics(t: Tenant) -> dict:
    [bucket] = t.data(f"{{ supportMetrics {{ sla {{ {SLA_STATS} }} }} }}")["supportMetrics"]
    return bucket["sla"]


def ids(t: Tenant, where: dict | None = None, order: list | None = None, first: int = 50, after: str | None = None):
    query = (
        "query($w: TicketWhere, $o: [TicketOrder!], $f: Int, $a: String) {"
        " tickets(where: $w, orderBy: $o, first: $f, after: $a) { pageInfo { hasNextPage endCursor } nodes { id } } }"
    )
    page = t.data(query, {"w": where, "o": order, "f": first, "a": after})["tickets"]
    return [n["id"] for n in page["nodes"]], page["pageInfo"]


def poll(fetch: Callable[[], dict], done: Callable[[dict], Any], deadline: datetime, what: str) -> dict:
    """``fetch()`` until ``done`` holds; fail once the wall clock passes ``deadline``."""
    while True:
        found = fetch()
        if done(found):
            return found
        if datetime.now(UTC) > deadline:
            pytest.fail(f"not by {deadline.isoformat()}: {what}; last seen {found}")
        time.sleep(0.05)


def next_opening(after: date, weekday: int) -> date:
    """The first date after ``after`` that falls on ``weekday``."""
    return after + timedelta(days=(weekday - after.weekday()) % 7 or 7)


def two_days_ahead(zone: ZoneInfo) -> int:
    """A weekday that is neither today nor tomorrow in ``zone``: its next opening is at least a day away."""
    return (datetime.now(zone) + timedelta(days=2)).weekday()


# --- pauses -----------------------------------------------------------------------------------


def test_time_pending_moves_the_due_times_later(server):
    t = tenant(server)
    create_policy(t, firstResponseSeconds=DAY, resolutionSeconds=2 * DAY)
    ticket = create_ticket(t)
    due = {k: when(ticket["sla"][k]) for k in ("firstResponseDueAt", "resolutionDueAt")}
    current, total = ticket["sla"], timedelta(0)
    for pause in (2.2, 1.2):  # two pauses add up
        pending = update_ticket(t, ticket["id"], status="PENDING")
        assert pending["sla"]["state"] == "PAUSED"
        assert {k: pending["sla"][k] for k in due} == {k: current[k] for k in due}, "due times move on resuming"
        time.sleep(pause)  # the pause to measure, not a wait for the server
        back = update_ticket(t, ticket["id"], status="IN_PROGRESS")
        current, total = back["sla"], total + (when(back["updatedAt"]) - when(pending["updatedAt"]))
        assert back["sla"]["state"] == "ACTIVE" and back["firstResponseAt"] is not None  # PENDING answered it
        # the first PENDING answered the ticket: its first-response target was settled before
        # any pause began and keeps its due time; the resolution target was held by both pauses
        held = {"firstResponseDueAt": timedelta(0), "resolutionDueAt": total}
        for key, before in due.items():
            moved = when(back["sla"][key]) - before
            assert abs((moved - held[key]).total_seconds()) <= 1, (key, moved, held[key])
            assert when(back["sla"][key]).microsecond == 0
    assert total >= timedelta(seconds=3.4)


def test_time_pending_outside_business_hours_moves_nothing(server):
    t = tenant(server)
    w = two_days_ahead(ZoneInfo("UTC"))
    create_policy(
        t, firstResponseSeconds=3600, resolutionSeconds=7200, businessHours=hours("UTC", (w, "09:00", "17:00"))
    )
    ticket = create_ticket(t)
    update_ticket(t, ticket["id"], status="PENDING")
    time.sleep(1.2)  # more than a second of wall time passes, none of it business time
    back = update_ticket(t, ticket["id"], status="IN_PROGRESS")
    assert back["sla"]["state"] == "ACTIVE"
    assert back["sla"]["resolutionDueAt"] == ticket["sla"]["resolutionDueAt"]
    assert back["sla"]["firstResponseDueAt"] == ticket["sla"]["firstResponseDueAt"]


# --- breaches in real time --------------------------------------------------------------------


def test_targets_are_met_or_breached_once_in_real_time(server):
    t = tenant(server)
    policy = create_policy(t, firstResponseSeconds=2, resolutionSeconds=4)
    late = create_ticket(t)  # left alone: both targets missed
    answered = create_ticket(t)
    act(t, "comment", answered["id"])
    answered = act(t, "resolve", answered["id"])
    partial = act(t, "comment", create_ticket(t)["id"])  # answered in time, never resolved
    closed = act(t, "close", create_ticket(t)["id"])
    paused = update_ticket(t, create_ticket(t)["id"], status="PENDING")
    fr_due, res_due = when(late["sla"]["firstResponseDueAt"]), when(late["sla"]["resolutionDueAt"])
    assert (fr_due, res_due) == (whole(when(late["createdAt"])) + timedelta(seconds=2), fr_due + timedelta(seconds=2))

    first = poll(lambda: read(t, late["id"]), lambda x: x["sla"]["firstResponseBreachedAt"],
                 fr_due + timedelta(seconds=3), "the first response is breached")  # fmt: skip
    assert first["sla"]["state"] == "BREACHED"
    if first["sla"]["resolutionBreachedAt"] is None:
        assert first["version"] == 2
    last_due = when(partial["sla"]["resolutionDueAt"])
    poll(lambda: {"late": read(t, late["id"]), "partial": read(t, partial["id"])},
         lambda x: x["late"]["sla"]["resolutionBreachedAt"] and x["partial"]["sla"]["resolutionBreachedAt"],
         last_due + timedelta(seconds=3), "both resolutions are breached")  # fmt: skip

    def check(ticket: dict, metrics: list[str]) -> dict:
        now = read(t, ticket["id"])
        events = breaches(t, ticket["id"])
        assert [e["data"]["metric"] for e in events] == metrics
        for event in events:
            stamp = "firstResponse" if event["data"]["metric"] == "FIRST_RESPONSE" else "resolution"
            due, breached = when(now["sla"][f"{stamp}DueAt"]), when(now["sla"][f"{stamp}BreachedAt"])
            assert event["actor"] == "system" and event["data"]["policy"] == policy["id"]
            assert when(event["data"]["dueAt"]) == due == when(ticket["sla"][f"{stamp}DueAt"])
            assert due <= breached <= due + timedelta(seconds=2) and due <= when(event["timestamp"])
        assert now["version"] == ticket["version"] + len(metrics)
        return now

    assert check(late, ["FIRST_RESPONSE", "RESOLUTION"])["sla"]["state"] == "BREACHED"
    assert check(partial, ["RESOLUTION"])["sla"]["firstResponseBreachedAt"] is None
    for quiet in (answered, closed, paused):
        now = check(quiet, [])
        assert now["sla"]["firstResponseBreachedAt"] is now["sla"]["resolutionBreachedAt"] is None
    assert read(t, answered["id"])["sla"]["state"] == "MET"
    assert read(t, paused["id"])["sla"]["state"] == "PAUSED"
    assert read(t, closed["id"])["sla"]["state"] != "BREACHED"

    # asOf: between the two breaches only the first stamp; before its due time neither
    fr_event, res_event = breaches(t, late["id"])
    between = when(fr_event["timestamp"]) + (when(res_event["timestamp"]) - when(fr_event["timestamp"])) / 2
    then = read(t, late["id"], as_of=between)["sla"]
    stamped = first["sla"]["firstResponseBreachedAt"]
    assert (then["firstResponseBreachedAt"], then["resolutionBreachedAt"], then["state"]) == (stamped, None, "BREACHED")
    before = read(t, late["id"], as_of=fr_due - timedelta(milliseconds=500))["sla"]
    assert (before["firstResponseBreachedAt"], before["state"]) == (None, "ACTIVE")

    assert set(ids(t, {"slaState": {"eq": "BREACHED"}})[0]) == {late["id"], partial["id"]}
    assert ids(t, {"slaState": {"eq": "PAUSED"}})[0] == [paused["id"]]
    # first responses: answered, partial and paused (PENDING answers) met, late missed; resolutions: 1 met, 2 missed
    assert sla_metrics(t) == {"firstResponseMet": 3, "firstResponseBreached": 1, "resolutionMet": 1,
                              "resolutionBreached": 2, "attainment": pytest.approx(4 / 7)}  # fmt: skip

    # later: a new ticket falls due and is breached, the old ones get nothing more
    control = create_ticket(t)
    poll(lambda: read(t, control["id"]), lambda x: x["sla"]["firstResponseBreachedAt"],
         when(control["sla"]["firstResponseDueAt"]) + timedelta(seconds=3), "the control ticket is breached")  # fmt: skip
    act(t, "close", control["id"])  # leave nothing running
    check(late, ["FIRST_RESPONSE", "RESOLUTION"])
    check(partial, ["RESOLUTION"])


def test_sla_due_at_orders_the_earliest_running_target_first(server):
    t = tenant(server)
    zeros = {"firstResponseMet": 0, "firstResponseBreached": 0, "resolutionMet": 0, "resolutionBreached": 0}
    assert sla_metrics(t) == zeros | {"attainment": None}
    create_policy(t, priorities=["MEDIUM"], firstResponseSeconds=DAY)
    create_policy(t, priorities=["URGENT"], firstResponseSeconds=2 * DAY, resolutionSeconds=10 * DAY)
    create_policy(t, priorities=["HIGH"], firstResponseSeconds=4 * DAY, resolutionSeconds=3 * DAY)
    high, medium, urgent = (create_ticket(t, priority=p) for p in ("HIGH", "MEDIUM", "URGENT"))
    answered = act(t, "comment", create_ticket(t, priority="URGENT")["id"])  # its resolution still runs
    none = create_ticket(t, priority="LOW")  # no policy
    paused = update_ticket(t, create_ticket(t, priority="URGENT")["id"], status="PENDING")
    done = act(t, "comment", create_ticket(t, priority="MEDIUM")["id"])  # its only target met
    closed = act(t, "close", create_ticket(t, priority="MEDIUM")["id"])  # its target waived
    assert none["sla"] is None
    running = [medium, urgent, high, answered]
    earliest = [when(medium["sla"]["firstResponseDueAt"]), when(urgent["sla"]["firstResponseDueAt"]),
                when(high["sla"]["resolutionDueAt"]), when(answered["sla"]["resolutionDueAt"])]  # fmt: skip
    assert earliest == sorted(earliest) and len(set(earliest)) == 4

    order = [{"field": "SLA_DUE_AT"}]
    listed, _ = ids(t, order=order)
    assert listed[:4] == [x["id"] for x in running]
    assert set(listed[4:]) == {none["id"], paused["id"], done["id"], closed["id"]} and len(listed) == 8
    walked, after = [], None
    while True:
        page, info = ids(t, order=order, first=2, after=after)
        walked += page
        if not info["hasNextPage"]:
            break
        after = info["endCursor"]
    assert walked == listed
    assert ids(t, order=[{"field": "SLA_DUE_AT", "direction": "DESC"}])[0] == listed[::-1]
    assert set(ids(t, {"slaState": {"eq": "ACTIVE"}})[0]) == {x["id"] for x in running}
    assert set(ids(t, {"slaState": {"eq": "MET"}})[0]) == {done["id"], closed["id"]}  # no target still runs
    assert sla_metrics(t) == zeros | {"firstResponseMet": 3, "attainment": 1.0}


# --- restarts, and targets that must stay settled ---------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_target_missed_while_no_server_ran_is_recorded_once_on_start(kind, tmp_path):
    with fresh_database(kind, tmp_path) as url:

        def start() -> LiveServer:
            return LiveServer(Settings(database_url=url, limits=UNTHROTTLED)).start()

        first = start()
        try:
            t = tenant(first)
            policy = create_policy(t, firstResponseSeconds=4)
            ticket = create_ticket(t)
        finally:
            first.stop()
        due = when(ticket["sla"]["firstResponseDueAt"])
        assert datetime.now(UTC) < due and first.app.state.breach_timer.recorded == 0, "stopped before it fell due"
        time.sleep((due - datetime.now(UTC)).total_seconds() + 1)  # no server runs while it falls due
        servers = [start()]
        ready = datetime.now(UTC)
        try:
            t = Tenant(servers[0], t.name, t.headers)
            found = poll(lambda: read(t, ticket["id"]), lambda x: x["sla"]["firstResponseBreachedAt"],
                         ready + timedelta(seconds=3), "the missed target is recorded on start")  # fmt: skip
            assert due < when(found["sla"]["firstResponseBreachedAt"]) <= ready + timedelta(seconds=2)
            [event] = breaches(t, ticket["id"])
            data = event["data"]
            assert (event["actor"], data["metric"], data["policy"]) == ("system", "FIRST_RESPONSE", policy["id"])
            assert when(event["data"]["dueAt"]) == due and found["version"] == 2
            # a second worker starts on the same database; once it has breached a ticket of its own, it has looked
            servers.append(start())
            t = Tenant(servers[1], t.name, t.headers)
            control = create_ticket(t)
            poll(lambda: read(t, control["id"]), lambda x: x["sla"]["firstResponseBreachedAt"],
                 when(control["sla"]["firstResponseDueAt"]) + timedelta(seconds=3), "the control ticket is breached")  # fmt: skip
            assert len(breaches(t, ticket["id"])) == 1 and read(t, ticket["id"])["version"] == 2
            assert sum(s.app.state.breach_timer.recorded for s in servers) == 2
        finally:
            for server in servers:
                server.stop()


def test_a_pause_after_a_missed_target_leaves_it_missed(server):
    """A target is met or missed, never both; its breach stamp never precedes its due time."""
    t = tenant(server)
    create_policy(t, firstResponseSeconds=2)
    ticket = create_ticket(t)
    poll(lambda: read(t, ticket["id"]), lambda x: x["sla"]["firstResponseBreachedAt"],
         when(ticket["sla"]["firstResponseDueAt"]) + timedelta(seconds=3), "the first response is breached")  # fmt: skip
    update_ticket(t, ticket["id"], status="PENDING")  # the (late) first response, then waiting on the customer
    time.sleep(3)  # a pause longer than the time since the due time
    sla = update_ticket(t, ticket["id"], status="IN_PROGRESS")["sla"]
    assert sla["state"] == "BREACHED"
    assert when(sla["firstResponseDueAt"]) <= when(sla["firstResponseBreachedAt"]), sla
    assert sla_metrics(t) == {"firstResponseMet": 0, "firstResponseBreached": 1, "resolutionMet": 0,
                              "resolutionBreached": 0, "attainment": 0.0}  # fmt: skip


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_deleted_ticket_never_breaches_and_the_timer_goes_idle(kind, tmp_path):
    """On a server of its own: a timer that cannot settle a due ticket would poll for the rest of the session.
    Idle, the timer sleeps until the next due time (here: none) and runs no statement."""
    with fresh_database(kind, tmp_path) as url:
        live = LiveServer(Settings(database_url=url, limits=UNTHROTTLED)).start()
        try:
            t = tenant(live)
            create_policy(t, firstResponseSeconds=1)
            gone, kept = create_ticket(t), create_ticket(t)
            t.data("mutation($id: ID!) { deleteTicket(id: $id) { id } }", {"id": gone["id"]})
            poll(lambda: read(t, kept["id"]), lambda x: x["sla"]["firstResponseBreachedAt"],
                 when(kept["sla"]["firstResponseDueAt"]) + timedelta(seconds=3), "the kept ticket is breached")  # fmt: skip
            before = live.all_statements
            time.sleep(2)  # two seconds in which nothing is due and no request comes
            idle = live.all_statements - before
            recorded = "SELECT COUNT(*) FROM event WHERE target = :id AND type = 'Ticket.SlaBreached'"
            assert live.sql(recorded, id=gone["id"]) == [(0,)]
            assert live.app.state.breach_timer.recorded == 1
            assert idle <= 2, f"the breach timer ran {idle} statements in two idle seconds"
        finally:
            live.stop()
