"""``supportMetrics``: counts, escalations, durations with percentiles, CSAT — per group.

Two layers:

* ``resolvers.metrics`` against a private database (a fresh SQLite file, and a fresh
  PostgreSQL database where ``tests.databases`` reaches one), where timestamps are set by SQL
  so every average and percentile is hand-computed exactly (10, 20, 30, 40 → p50 25, p90 37).
* The GraphQL field through the real server, on a data set made through the API and tagged
  with a tag of its own. Counts, first-response times and ratings are hand-computed; resolution
  times are stamped by the server, so their expectations are computed from the timestamps the
  API returns.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import text, update

from models.db import migrate
from models.db.engine import Database
from models.entities import Ticket
from resolvers.metrics import support_metrics
from resolvers.reactions import shipped
from resolvers.unit import UnitOfWork
from tests.databases import fresh_database

#: SQLite's date functions keep milliseconds, so durations computed from timestamps with
#: microseconds may be off by up to a millisecond there.
MS = 2e-3
BASE = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
GROUPINGS = ["NONE", "PRIORITY", "CHANNEL", "CATEGORY", "ORGANIZATION", "ASSIGNEE"]


def percentile(values: list[float], p: Fraction) -> float | None:
    """Linear interpolation between closest ranks (PostgreSQL's ``percentile_cont``)."""
    if not values:
        return None
    ordered = sorted(values)
    position = 1 + p * (len(ordered) - 1)
    low = int(position)  # floor: position ≥ 1
    if low == len(ordered):
        return float(ordered[-1])
    frac = float(position - low)
    return ordered[low - 1] * (1 - frac) + ordered[low] * frac


def stats(values: list[float]) -> dict:
    """``{avg, p50, p90}`` of ``values`` (all None when empty)."""
    if not values:
        return {"avg": None, "p50": None, "p90": None}
    return {
        "avg": sum(values) / len(values),
        "p50": percentile(values, Fraction(1, 2)),
        "p90": percentile(values, Fraction(9, 10)),
    }


def assert_stats(actual, expected: dict, tolerance: float = 1e-9) -> None:
    """``actual`` is a DurationStats (resolver) or a dict (GraphQL)."""
    for name in ("avg", "p50", "p90"):
        got = actual[name] if isinstance(actual, dict) else getattr(actual, name)
        want = expected[name]
        if want is None:
            assert got is None, (name, got)
        else:
            assert got == pytest.approx(want, abs=tolerance), (name, got, want)


# =============================================================================================
# The resolver, on a private database
# =============================================================================================


@pytest.fixture(scope="module")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private PostgreSQL database for this module's resolver tests."""
    with fresh_database("postgresql", tmp_path_factory.mktemp("metrics")) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """A fresh SQLite file per test; the module's PostgreSQL database (tests use own tenants)."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'metrics.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    await migrate.upgrade(database)
    yield database
    await database.dispose()


@pytest.fixture
def tenant() -> str:
    """A tenant of the test's own, so a shared PostgreSQL database needs no cleaning."""
    return f"metrics-{uuid.uuid4().hex[:10]}"


async def ticket(
    db: Database,
    tenant: str,
    *,
    created: datetime = BASE,
    first_response: float | None = None,
    resolved: float | None = None,
    verbs: tuple[str, ...] = (),
    **values,
) -> str:
    """A ticket taken through ``verbs``, then stamped by SQL: created at ``created``, answered and
    resolved that many seconds later (None clears the stamp a verb may have set)."""
    async with UnitOfWork(db, tenant=tenant, actor="tester", hooks=shipped()) as uow:
        row = await uow.create(Ticket, {"subject": "Metrics", **values})
        for verb in verbs:
            await uow.transition(Ticket, row.id, verb)
    stamps = {
        "created_at": created,
        "first_response_at": None if first_response is None else created + timedelta(seconds=first_response),
        "resolved_at": None if resolved is None else created + timedelta(seconds=resolved),
    }
    async with db.writing() as session:
        await session.execute(update(Ticket).where(Ticket.id == row.id).values(**stamps))
        await session.commit()
    return row.id


async def test_percentiles_interpolate_between_ranks(db, tenant):
    # Resolution 10, 20, 30, 40 s; first response 5, 5, 5, 100 s (ties); inserted out of order.
    for resolution, first in ((30, 5), (10, 100), (40, 5), (20, 5)):
        await ticket(db, tenant, first_response=first, resolved=resolution)
    (bucket,) = await support_metrics(db, tenant=tenant)
    assert bucket.key == "ALL" and bucket.ticket_count == 4 and bucket.resolved_count == 4
    assert_stats(bucket.resolution_seconds, {"avg": 25, "p50": 25, "p90": 37})
    # p90 at position 3.7: 5·0.3 + 100·0.7
    assert_stats(bucket.first_response_seconds, {"avg": 28.75, "p50": 5, "p90": 71.5})


async def test_percentiles_are_computed_per_group_and_per_measure(db, tenant):
    for seconds in (10, 20):
        await ticket(db, tenant, priority="HIGH", resolved=seconds)
    await ticket(db, tenant, priority="LOW", resolved=7, first_response=3)
    for seconds in (5, 1, 4, 2, 3):
        await ticket(db, tenant, priority="MEDIUM", resolved=seconds * 60, first_response=seconds)
    await ticket(db, tenant, first_response=0.25)  # no priority, never resolved
    buckets = await support_metrics(db, tenant=tenant, group_by="PRIORITY")
    assert [b.key for b in buckets] == ["HIGH", "LOW", "MEDIUM", None]
    high, low, medium, none = buckets
    assert_stats(high.resolution_seconds, {"avg": 15, "p50": 15, "p90": 19})
    assert_stats(high.first_response_seconds, stats([]))
    assert_stats(low.resolution_seconds, {"avg": 7, "p50": 7, "p90": 7})
    assert_stats(low.first_response_seconds, {"avg": 3, "p50": 3, "p90": 3})
    assert_stats(medium.resolution_seconds, {"avg": 180, "p50": 180, "p90": 276})
    assert_stats(medium.first_response_seconds, {"avg": 3, "p50": 3, "p90": 4.6})
    assert none.resolved_count == 0
    assert_stats(none.resolution_seconds, stats([]))
    assert_stats(none.first_response_seconds, {"avg": 0.25, "p50": 0.25, "p90": 0.25})


async def test_percentiles_match_a_reference_on_random_data(db, tenant):
    rng = random.Random(20260105)
    expected: dict[str, list[int]] = {}
    for category in ("alpha", "beta", "gamma"):
        for _ in range(rng.randint(1, 9)):
            seconds = rng.choice((30, 60, 90, 600, 3600, 86400)) * rng.randint(1, 3)
            await ticket(db, tenant, category=category, resolved=seconds)
            expected.setdefault(category, []).append(seconds)
    buckets = await support_metrics(db, tenant=tenant, group_by="CATEGORY")
    assert [b.key for b in buckets] == sorted(expected)
    for bucket in buckets:
        assert_stats(bucket.resolution_seconds, stats(expected[bucket.key]), tolerance=1e-6)
    if db.dialect == "postgresql":  # the very function the interpolation imitates
        async with db.reading() as session:
            rows = await session.execute(
                text(
                    "SELECT category, percentile_cont(0.5) WITHIN GROUP (ORDER BY s),"
                    " percentile_cont(0.9) WITHIN GROUP (ORDER BY s) FROM (SELECT category,"
                    " EXTRACT(EPOCH FROM resolved_at - created_at) AS s FROM ticket"
                    " WHERE tenant = :tenant) t GROUP BY category ORDER BY category"
                ),
                {"tenant": tenant},
            )
            native = [(c, float(p50), float(p90)) for c, p50, p90 in rows]
        assert [n[0] for n in native] == [b.key for b in buckets]
        for (_, p50, p90), b in zip(native, buckets):
            assert (b.resolution_seconds.p50, b.resolution_seconds.p90) == pytest.approx((p50, p90))


async def test_counts_escalations_and_csat(db, tenant):
    await ticket(db, tenant, satisfaction=5, resolved=60, verbs=("resolve",))
    await ticket(db, tenant, satisfaction=4, verbs=("escalate", "resolve"), resolved=120)
    await ticket(db, tenant, satisfaction=1, verbs=("escalate",))
    await ticket(db, tenant, verbs=("resolve", "close"), resolved=30)
    await ticket(db, tenant, verbs=("resolve", "reopen"))
    await ticket(db, tenant)
    (bucket,) = await support_metrics(db, tenant=tenant)
    assert (bucket.ticket_count, bucket.open_count, bucket.resolved_count, bucket.escalated_count) == (6, 3, 3, 2)
    assert bucket.escalation_rate == pytest.approx(2 / 6)
    assert bucket.csat.responses == 3
    assert bucket.csat.average == pytest.approx(10 / 3)
    assert bucket.csat.satisfied_rate == pytest.approx(2 / 3)
    assert_stats(bucket.resolution_seconds, {"avg": 70, "p50": 60, "p90": 108})


async def test_other_tenants_and_deleted_tickets_are_left_out(db, tenant):
    await ticket(db, tenant, resolved=10, satisfaction=5)
    await ticket(db, tenant, resolved=1000, satisfaction=1, verbs=("escalate", "delete"))
    await ticket(db, f"{tenant}-other", resolved=5000, satisfaction=1, verbs=("escalate",))
    (bucket,) = await support_metrics(db, tenant=tenant)
    assert (bucket.ticket_count, bucket.escalated_count, bucket.csat.responses) == (1, 0, 1)
    assert_stats(bucket.resolution_seconds, {"avg": 10, "p50": 10, "p90": 10})


async def test_from_is_inclusive_and_to_exclusive(db, tenant):
    for hours in (0, 1, 2):
        await ticket(db, tenant, created=BASE + timedelta(hours=hours), resolved=(hours + 1) * 10)
    one, two = BASE + timedelta(hours=1), BASE + timedelta(hours=2)
    (middle,) = await support_metrics(db, tenant=tenant, from_=one, to=two)
    assert middle.ticket_count == 1 and middle.resolution_seconds.avg == pytest.approx(20)
    (later,) = await support_metrics(db, tenant=tenant, from_=one)
    assert later.ticket_count == 2 and later.resolution_seconds.avg == pytest.approx(25)
    (earlier,) = await support_metrics(db, tenant=tenant, to=one)
    assert earlier.ticket_count == 1 and earlier.resolution_seconds.avg == pytest.approx(10)


async def test_nothing_matching(db, tenant):
    await ticket(db, tenant, category="billing", resolved=10)
    (empty,) = await support_metrics(db, tenant=tenant, where={"category": {"eq": "nothing"}})
    assert (empty.key, empty.ticket_count, empty.open_count, empty.resolved_count) == ("ALL", 0, 0, 0)
    assert (empty.escalated_count, empty.escalation_rate) == (0, 0)
    assert_stats(empty.resolution_seconds, stats([]))
    assert (empty.csat.average, empty.csat.responses, empty.csat.satisfied_rate) == (None, 0, None)
    for grouping in GROUPINGS[1:]:
        assert await support_metrics(db, tenant=tenant, where={"category": {"eq": "nothing"}}, group_by=grouping) == []


async def test_a_fixed_number_of_statements_whatever_the_tickets(db, tenant):
    statements = 0

    def count(*_):
        nonlocal statements
        statements += 1

    await ticket(db, tenant, category="few", priority="LOW", resolved=10, first_response=1)
    for i in range(25):
        await ticket(db, tenant, category="many", priority=("LOW", "HIGH")[i % 2], resolved=i, first_response=i)
    sa_event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        seen = set()
        for category in ("few", "many"):
            for grouping in GROUPINGS:
                statements = 0
                await support_metrics(db, tenant=tenant, where={"category": {"eq": category}}, group_by=grouping)
                seen.add(statements)
    finally:
        sa_event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    assert seen == {2}


# =============================================================================================
# The GraphQL field, through the real server
# =============================================================================================

METRICS = """
query($where: TicketWhere, $from: DateTime, $to: DateTime, $groupBy: SupportMetricsGroupBy) {
  supportMetrics(where: $where, from: $from, to: $to, groupBy: $groupBy) {
    key ticketCount openCount resolvedCount escalatedCount escalationRate
    firstResponseSeconds { avg p50 p90 }
    resolutionSeconds { avg p50 p90 }
    csat { average responses satisfiedRate }
  }
}
"""
TICKET_FIELDS = "id status createdAt firstResponseAt resolvedAt"


def parse(stamp: str | None) -> datetime | None:
    return None if stamp is None else datetime.fromisoformat(stamp.replace("Z", "+00:00"))


class DataSet:
    """Tickets T1…T9 made through the API; T7 is deleted and T9 carries another tag."""

    def __init__(self, server) -> None:
        suffix = uuid.uuid4().hex[:10]
        self.server = server
        self.tag = f"metrics-{suffix}"
        self.billing, self.login = f"billing-{suffix}", f"login-{suffix}"
        self.org_a = self._create("Organization", {"name": f"Acme {suffix}"})["id"]
        self.org_b = self._create("Organization", {"name": f"Globex {suffix}"})["id"]
        self.agent_x = self._create("Contact", {"name": f"Xavier {suffix}"})["id"]
        self.agent_y = self._create("Contact", {"name": f"Yolanda {suffix}"})["id"]
        a, b, x, y = self.org_a, self.org_b, self.agent_x, self.agent_y
        self.tickets: dict[str, dict] = {}
        # name: (input, first response after N seconds, verbs / status moves). Leaving OPEN
        # stamps a first response unless one is set, so every ticket that leaves OPEN gets one.
        # T5 stays OPEN and never gets one.
        plan = {
            "T1": ({"priority": "HIGH", "channel": "EMAIL", "organization": a, "assignee": x,
                    "category": self.billing, "satisfaction": 5}, 60, ["resolve"]),
            "T2": ({"priority": "HIGH", "channel": "EMAIL", "organization": a, "assignee": x,
                    "category": self.billing, "satisfaction": 4}, 120, ["escalate", "resolve"]),
            "T3": ({"priority": "HIGH", "channel": "CHAT", "organization": b, "assignee": y,
                    "category": self.billing, "satisfaction": 2}, 120, ["escalate"]),
            "T4": ({"priority": "LOW", "channel": "CHAT", "organization": b,
                    "category": self.login}, 300, ["pending"]),
            "T5": ({"priority": "LOW"}, None, []),
            "T6": ({"channel": "PHONE", "organization": a, "assignee": y,
                    "category": self.login, "satisfaction": 3}, 60, ["resolve", "close"]),
            "T7": ({"priority": "MEDIUM", "channel": "WEB", "organization": a, "assignee": x,
                    "category": self.billing, "satisfaction": 1}, 1000, ["escalate", "delete"]),
            "T8": ({"priority": "MEDIUM", "channel": "EMAIL", "organization": b, "assignee": x},
                   240, ["escalate", "resolve", "reopen"]),
            "T9": ({"priority": "HIGH", "channel": "EMAIL", "organization": a, "assignee": x,
                    "category": self.billing, "satisfaction": 1, "tags": [f"{self.tag}-other"]},
                   60, ["escalate"]),
        }  # fmt: skip
        for name, (values, first_response, verbs) in plan.items():
            self.tickets[name] = self._ticket(values, first_response, verbs)

    def _create(self, entity: str, values: dict) -> dict:
        query = f"mutation($input: Create{entity}Input!) {{ create{entity}(input: $input) {{ id }} }}"
        return self.server.data(query, {"input": values})[f"create{entity}"]

    def _ticket(self, values: dict, first_response: int | None, verbs: list[str]) -> dict:
        values = {"subject": "Where is my invoice?", "tags": [self.tag], **values}
        created = self.server.data(
            f"mutation($input: CreateTicketInput!) {{ createTicket(input: $input) {{ {TICKET_FIELDS} }} }}",
            {"input": values},
        )["createTicket"]
        id_ = created["id"]
        if first_response is not None:
            answered = parse(created["createdAt"]) + timedelta(seconds=first_response)
            self.server.data(
                "mutation($id: ID!, $at: DateTime) { updateTicket(id: $id, input: {firstResponseAt: $at}) { id } }",
                {"id": id_, "at": answered.isoformat()},
            )
        for verb in verbs:
            if verb == "pending":
                mutation = "updateTicket(id: $id, input: {status: PENDING})"
            else:
                mutation = f"{verb}Ticket(id: $id)"
            self.server.data(f"mutation($id: ID!) {{ {mutation} {{ id }} }}", {"id": id_})
        state = self.server.data(
            f"query($id: ID!) {{ tickets(where: {{id: {{eq: $id}}}}, includeDeleted: true) {{ nodes {{ {TICKET_FIELDS} }} }} }}",
            {"id": id_},
        )["tickets"]["nodes"][0]
        return state

    # --- expectations -----------------------------------------------------------------------

    def seconds(self, names: list[str], end: str) -> list[float]:
        """``end − createdAt`` of the named tickets, from the timestamps the API returned."""
        values = []
        for name in names:
            t = self.tickets[name]
            assert t[end] is not None, (name, end)
            values.append((parse(t[end]) - parse(t["createdAt"])).total_seconds())
        return values

    def where(self, **extra) -> dict:
        return {"tags": {"hasAny": [self.tag]}, **extra}

    def metrics(self, **variables) -> list[dict]:
        variables.setdefault("where", self.where())
        return self.server.data(METRICS, variables)["supportMetrics"]


@pytest.fixture(scope="module")
def data(server) -> DataSet:
    return DataSet(server)


def bucket(key, count, open_, resolved, escalated, first_response, csat, resolved_tickets) -> dict:
    """An expected bucket; ``first_response`` values and ``csat`` ratings are hand-picked,
    ``resolved_tickets`` name the tickets whose resolution times the API stamped."""
    return {
        "key": key, "ticketCount": count, "openCount": open_, "resolvedCount": resolved,
        "escalatedCount": escalated, "escalationRate": escalated / count if count else 0,
        "firstResponseSeconds": first_response, "csat": csat, "resolvedTickets": resolved_tickets,
    }  # fmt: skip


NO_TIMES = {"avg": None, "p50": None, "p90": None}
NO_CSAT = {"average": None, "responses": 0, "satisfiedRate": None}


def times(avg, p50, p90) -> dict:
    return {"avg": avg, "p50": p50, "p90": p90}


def csat(average, responses, satisfied_rate) -> dict:
    return {"average": average, "responses": responses, "satisfiedRate": satisfied_rate}


def expected_buckets(data: DataSet, grouping: str) -> list[dict]:
    """Hand-computed from the plan in ``DataSet``: first responses of T1…T8 after 60, 120,
    120, 300, none, 60, (T7 deleted), 240 seconds."""
    a, b = sorted([data.org_a, data.org_b])
    x, y = sorted([data.agent_x, data.agent_y])
    by_org = {
        data.org_a: bucket(data.org_a, 3, 0, 3, 1, times(80, 60, 108), csat(4, 3, 2 / 3), ["T1", "T2", "T6"]),
        data.org_b: bucket(data.org_b, 3, 3, 0, 2, times(220, 240, 288), csat(2, 1, 0), []),
    }
    by_agent = {
        data.agent_x: bucket(data.agent_x, 3, 1, 2, 2, times(140, 120, 216), csat(4.5, 2, 1), ["T1", "T2"]),
        data.agent_y: bucket(data.agent_y, 2, 1, 1, 1, times(90, 90, 114), csat(2.5, 2, 0), ["T6"]),
    }
    t5 = bucket(None, 1, 1, 0, 0, NO_TIMES, NO_CSAT, [])
    high = ("HIGH", 3, 1, 2, 2, times(100, 120, 120), csat(11 / 3, 3, 2 / 3), ["T1", "T2"])
    return {
        "NONE": [bucket("ALL", 7, 4, 3, 3, times(150, 120, 270), csat(3.5, 4, 0.5), ["T1", "T2", "T6"])],
        "PRIORITY": [
            bucket(*high),
            bucket("LOW", 2, 2, 0, 0, times(300, 300, 300), NO_CSAT, []),
            bucket("MEDIUM", 1, 1, 0, 1, times(240, 240, 240), NO_CSAT, []),
            bucket(None, 1, 0, 1, 0, times(60, 60, 60), csat(3, 1, 0), ["T6"]),
        ],
        "CHANNEL": [
            bucket("CHAT", 2, 2, 0, 1, times(210, 210, 282), csat(2, 1, 0), []),
            bucket("EMAIL", 3, 1, 2, 2, times(140, 120, 216), csat(4.5, 2, 1), ["T1", "T2"]),
            bucket("PHONE", 1, 0, 1, 0, times(60, 60, 60), csat(3, 1, 0), ["T6"]),
            t5,
        ],
        "CATEGORY": [
            bucket(data.billing, *high[1:]),
            bucket(data.login, 2, 1, 1, 0, times(180, 180, 276), csat(3, 1, 0), ["T6"]),
            bucket(None, 2, 2, 0, 1, times(240, 240, 240), NO_CSAT, []),
        ],
        "ORGANIZATION": [by_org[a], by_org[b], t5],
        "ASSIGNEE": [by_agent[x], by_agent[y], bucket(None, 2, 2, 0, 0, times(300, 300, 300), NO_CSAT, [])],
    }[grouping]


def assert_buckets(data: DataSet, actual: list[dict], expected: list[dict]) -> None:
    assert [b["key"] for b in actual] == [b["key"] for b in expected]
    for got, want in zip(actual, expected):
        counts = ("ticketCount", "openCount", "resolvedCount", "escalatedCount")
        assert {k: got[k] for k in counts} == {k: want[k] for k in counts}, got["key"]
        assert got["escalationRate"] == pytest.approx(want["escalationRate"]), got["key"]
        assert_stats(got["firstResponseSeconds"], want["firstResponseSeconds"], MS)
        assert_stats(got["resolutionSeconds"], stats(data.seconds(want["resolvedTickets"], "resolvedAt")), MS)
        assert got["csat"]["responses"] == want["csat"]["responses"], got["key"]
        for name in ("average", "satisfiedRate"):
            if want["csat"][name] is None:
                assert got["csat"][name] is None, (got["key"], name)
            else:
                assert got["csat"][name] == pytest.approx(want["csat"][name]), (got["key"], name)


def test_the_data_set_is_as_planned(data):
    statuses = {name: t["status"] for name, t in data.tickets.items()}
    assert statuses == {
        "T1": "RESOLVED", "T2": "RESOLVED", "T3": "ESCALATED", "T4": "PENDING", "T5": "OPEN",
        "T6": "CLOSED", "T7": "ESCALATED", "T8": "REOPENED", "T9": "ESCALATED",
    }  # fmt: skip
    assert data.tickets["T8"]["resolvedAt"] is None and data.tickets["T6"]["resolvedAt"] is not None
    answered = ["T1", "T2", "T3", "T4", "T6", "T8"]
    assert data.seconds(answered, "firstResponseAt") == [60, 120, 120, 300, 60, 240]
    assert data.tickets["T5"]["firstResponseAt"] is None


@pytest.mark.parametrize("grouping", GROUPINGS)
def test_metrics_by_grouping(data, grouping):
    assert_buckets(data, data.metrics(groupBy=grouping), expected_buckets(data, grouping))


def test_group_by_defaults_to_none(data):
    assert_buckets(data, data.metrics(), expected_buckets(data, "NONE"))


def test_where_narrows_the_tickets(data):
    open_only = data.metrics(where=data.where(status={"in": ["OPEN", "PENDING", "ESCALATED"]}))
    expected = bucket("ALL", 3, 3, 0, 1, times(210, 210, 282), csat(2, 1, 0), [])  # T3 T4 T5
    assert_buckets(data, open_only, [expected])


def test_from_is_inclusive_and_to_is_exclusive(data):
    created = {name: t["createdAt"] for name, t in data.tickets.items()}
    assert sorted(created, key=lambda n: parse(created[n])) == list(created)  # made in order
    window = data.metrics(**{"from": created["T3"], "to": created["T6"]})  # T3 T4 T5
    assert_buckets(data, window, [bucket("ALL", 3, 3, 0, 1, times(210, 210, 282), csat(2, 1, 0), [])])
    since = data.metrics(**{"from": created["T6"]})  # T6 T8 (T7 is deleted)
    assert_buckets(data, since, [bucket("ALL", 2, 1, 1, 1, times(150, 150, 222), csat(3, 1, 0), ["T6"])])
    until = data.metrics(to=created["T2"])  # T1
    assert_buckets(data, until, [bucket("ALL", 1, 0, 1, 0, times(60, 60, 60), csat(5, 1, 1), ["T1"])])


def test_nothing_matching_gives_one_empty_bucket_or_none(data):
    nothing = {"tags": {"hasAny": [f"{data.tag}-nobody"]}}
    (empty,) = data.metrics(where=nothing)
    assert empty == {
        "key": "ALL", "ticketCount": 0, "openCount": 0, "resolvedCount": 0, "escalatedCount": 0,
        "escalationRate": 0, "firstResponseSeconds": NO_TIMES, "resolutionSeconds": NO_TIMES,
        "csat": NO_CSAT,
    }  # fmt: skip
    for grouping in GROUPINGS[1:]:
        assert data.metrics(where=nothing, groupBy=grouping) == []


def test_statements_do_not_grow_with_tickets(data):
    seen = set()
    for tag in (data.tag, f"{data.tag}-other", f"{data.tag}-nobody"):
        for grouping in GROUPINGS:
            result, statements = data.server.count_statements(
                METRICS, {"where": {"tags": {"hasAny": [tag]}}, "groupBy": grouping}
            )
            assert result["supportMetrics"] is not None
            seen.add(statements)
    assert len(seen) == 1 and seen.pop() <= 3, seen


def test_metrics_write_nothing(data):
    before = data.server.counts()
    data.metrics(groupBy="ASSIGNEE")
    assert data.server.counts() == before


def test_an_unknown_grouping_is_bad_input(data):
    error = data.server.error(METRICS, {"groupBy": "WEEKDAY"})
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and "WEEKDAY" in error["message"]
