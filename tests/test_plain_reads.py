"""Plain reads (models/db/plain.py) return exactly what ``session.execute`` returns for the same
statement — same rows, same keys, same Python types — on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from copy import deepcopy
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import JSON, BigInteger, Boolean, Date, Float, Integer, Numeric, String, bindparam, cast, func, select
from sqlmodel import SQLModel

from models.base import ENTITIES
from models.db import migrate
from models.db.engine import Database
from models.db.plain import ids_value, in_ids
from models.entities import Contact, Deal, Organization, Ticket
from models.event import Event
from models.types import UTCDateTime
from tests.databases import fresh_database

#: every table, each after the tables it refers to (rows refer to other tables' rows)
_ORDER = [table.name for table in SQLModel.metadata.sorted_tables]
MODELS = sorted([*ENTITIES.values(), Event], key=lambda model: _ORDER.index(model.__tablename__))
TENANTS = ("tenant-a", "tenant-b")
SPARSE, FULL = 0, 1  # row numbers: nullable columns NULL / every column set
EXTRA_TICKETS = range(2, 7)  # more tickets per tenant, for "many" ids and timestamp ranges
BASE_TIME = datetime(2025, 3, 30, 1, 2, 3, 456789, tzinfo=UTC)
JSON_SAMPLES = {
    "tags": ["billing", "Zoë ☃", ""],
    "labels": ["bug", "p1"],
    "dimensions": {
        "region": "eu",
        "weight": 0.1,
        "count": 3,
        "ok": True,
        "none": None,
        "nested": {"list": [1, 2.5, "x"]},
    },
    "data": {"changes": {"status": ["OPEN", "ESCALATED"]}, "note": "ünïcode", "n": 7, "f": 1.25, "empty": []},
    "priorities": ["HIGH", "URGENT"],
    "organization_tiers": ["ENTERPRISE"],
    "channels": [],
    "business_hours": {
        "timezone": "Europe/Berlin",
        "days": [{"weekday": "MONDAY", "start": "09:00", "end": "17:00"}],
        "holidays": ["2026-12-25"],
    },
    "sla_pauses": [["2026-01-05T09:00:00+00:00", "2026-01-05T10:30:00+00:00", ["RESOLUTION"]]],
}


def row_id(table: str, tenant: str, n: int) -> str:
    return f"{table}_{tenant}_{n}"


def sample(column: Any, tenant: str, n: int, position: int) -> Any:
    """A value for ``column`` in row ``n``, different per column, row and tenant where it can be."""
    if column.foreign_keys:
        (key,) = column.foreign_keys
        return row_id(key.column.table.name, tenant, SPARSE)
    enum = column.info.get("enum")
    if enum is not None:
        members = list(enum)
        return members[(n + position) % len(members)].value
    kind = column.type
    if isinstance(kind, UTCDateTime):
        return BASE_TIME + timedelta(days=40 * n + position, microseconds=position)
    if isinstance(kind, Date):
        return date(2026, 2, 27) + timedelta(days=n + position)
    if isinstance(kind, Boolean):
        return n % 2 == 1
    if isinstance(kind, BigInteger):
        return 2**40 + n
    if isinstance(kind, Integer):
        return 1 + (n + position) % 5  # within every bounded range (1–5, 0–100, ≥ 1)
    if isinstance(kind, Float):
        return 0.1 + n + 1000.25 * position
    if isinstance(kind, JSON):
        return deepcopy(JSON_SAMPLES[column.key])
    if isinstance(kind, String):
        return f"{n} {tenant} {column.key} Zoë ☃ 'quoted' \"double\""[: kind.length]
    raise TypeError(f"no sample value for {column} ({kind!r})")


def sample_row(model: type, tenant: str, n: int, *, full: bool) -> dict[str, Any]:
    table = model.__table__
    values: dict[str, Any] = {}
    for position, column in enumerate(table.columns):
        if column.key == "id":
            values["id"] = row_id(table.name, tenant, n)
        elif column.key == "tenant":
            values["tenant"] = tenant
        elif column.nullable and not full:
            values[column.key] = None
        else:
            values[column.key] = sample(column, tenant, n, position)
    return values


def typed(value: Any) -> Any:
    """``value`` with the type of every part spelled out, so 1 ≠ 1.0 ≠ True and naive ≠ aware."""
    if isinstance(value, dict):
        return {key: typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [typed(item) for item in value]
    if isinstance(value, datetime):
        return (type(value), value, value.utcoffset())
    return (type(value), value)


# --- the databases -----------------------------------------------------------------------------


@dataclass
class Seeded:
    db: Database
    rows: dict[str, list[dict[str, Any]]]  # table name → the values inserted, row by row

    @property
    def dialect(self) -> str:
        return self.db.dialect

    def ids(self, table: str, tenant: str | None = None) -> list[str]:
        return sorted(r["id"] for r in self.rows[table] if tenant is None or r["tenant"] == tenant)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def plain_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with fresh_database(request.param, tmp_path_factory.mktemp("plain")) as url:
        yield url


@pytest.fixture(scope="module")
async def seeded(plain_url: str) -> AsyncIterator[Seeded]:
    """Two tenants, each with a sparse and a full row in every table, and a few more tickets."""
    db = Database(plain_url)
    try:
        await migrate.upgrade(db)
        rows: dict[str, list[dict[str, Any]]] = {model.__tablename__: [] for model in MODELS}
        async with db.writing() as session:
            for n, full in ((SPARSE, False), (FULL, True)):  # full rows refer to the sparse ones
                for tenant in TENANTS:
                    for model in MODELS:
                        values = sample_row(model, tenant, n, full=full)
                        rows[model.__tablename__].append(values)
                        session.add(model(**values))
                        await session.flush()  # in MODELS' order: a row after those it refers to
            for tenant in TENANTS:
                for n in EXTRA_TICKETS:
                    values = sample_row(Ticket, tenant, n, full=False)
                    values["requester_id"] = row_id("contact", tenant, FULL)
                    rows["ticket"].append(values)
                    session.add(Ticket(**values))
            await session.commit()
        assert db.plain is not None
        yield Seeded(db, rows)
    finally:
        await db.dispose()


async def plain_rows(seeded: Seeded, statement: Any, values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The rows of ``statement`` as one plain read."""
    compiled = seeded.db.plain.compile(statement)

    def read():
        return (yield compiled, values or {})

    return await seeded.db.plain.run(read())


async def session_rows(seeded: Seeded, statement: Any, values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    async with seeded.db.reading() as session:
        return [dict(row._mapping) for row in await session.execute(statement, values or {})]


# --- every table, every column type ------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS, ids=[m.__tablename__ for m in MODELS])
async def test_every_column_reads_as_the_session_reads_it(seeded: Seeded, model: type):
    table = model.__table__
    statement = select(table).order_by(table.c.id)
    plain = await plain_rows(seeded, statement)
    through_session = await session_rows(seeded, statement)
    inserted = sorted(seeded.rows[table.name], key=lambda r: r["id"])

    assert [list(row) for row in plain] == [[c.key for c in table.columns]] * len(inserted)
    assert [typed(row) for row in plain] == [typed(row) for row in through_session]
    assert [typed(row) for row in plain] == [typed(row) for row in inserted]


async def test_values_come_back_in_their_python_types(seeded: Seeded):
    """Full rows of tenant-a, spot-checked value by value."""
    by_id = {}
    for model in (Ticket, ENTITIES["Metric"], ENTITIES["Deal"], ENTITIES["Subscription"]):
        table = model.__table__
        for row in await plain_rows(seeded, select(table).where(table.c.id == row_id(table.name, "tenant-a", FULL))):
            by_id[row["id"]] = row
    ticket, metric = by_id["ticket_tenant-a_1"], by_id["metric_tenant-a_1"]
    deal, subscription = by_id["deal_tenant-a_1"], by_id["subscription_tenant-a_1"]

    assert ticket["created_at"].tzinfo is not None and ticket["created_at"].utcoffset() == timedelta(0)
    assert ticket["created_at"] == ticket_time(FULL) == BASE_TIME + timedelta(days=43, microseconds=3)
    assert ticket["tags"] == ["billing", "Zoë ☃", ""]
    assert ticket["requester_id"] == "contact_tenant-a_0"
    assert ticket["status"] in {"OPEN", "PENDING", "IN_PROGRESS", "RESOLVED", "ESCALATED", "CLOSED", "REOPENED"}
    assert type(metric["value"]) is float and metric["value"] == 0.1 + FULL + 1000.25 * 8  # "value" is column 8
    assert metric["dimensions"] == JSON_SAMPLES["dimensions"]
    assert type(metric["dimensions"]["weight"]) is float and type(metric["dimensions"]["count"]) is int
    assert type(deal["value"]) is float
    assert type(deal["expected_close_date"]) is date
    assert subscription["cancel_at_period_end"] is True
    sparse = await plain_rows(seeded, select(Ticket.resolved_at, Ticket.tags).where(Ticket.id == "ticket_tenant-a_0"))
    assert sparse == [{"resolved_at": None, "tags": ["billing", "Zoë ☃", ""]}]


# --- bind processing ---------------------------------------------------------------------------


def ticket_time(n: int, column: str = "created_at") -> datetime:
    position = [c.key for c in Ticket.__table__.columns].index(column)
    return BASE_TIME + timedelta(days=40 * n + position, microseconds=position)


BIND_CASES = {
    # (column, operator, value, ids of tenant-a tickets it selects)
    "since, given in another zone": (
        "created_at", ">=", ticket_time(3).astimezone(timezone(timedelta(hours=5, minutes=30))), [3, 4, 5, 6],
    ),
    "before": ("created_at", "<", ticket_time(2), [0, 1]),
    "to the microsecond": ("created_at", "==", ticket_time(4), [4]),
    "one microsecond off": ("created_at", "==", ticket_time(4) + timedelta(microseconds=1), []),
    "a nullable timestamp": ("resolved_at", ">=", ticket_time(0, "resolved_at"), [1]),
}  # fmt: skip


@pytest.mark.parametrize("case", BIND_CASES)
async def test_an_aware_datetime_bind_selects_what_the_session_selects(seeded: Seeded, case: str):
    name, operator, value, expected = BIND_CASES[case]
    column = Ticket.__table__.c[name]
    at = bindparam("at", type_=column.type)
    condition = {">=": column >= at, "<": column < at, "==": column == at}[operator]
    statement = (
        select(Ticket.__table__.c.id, column)
        .where(Ticket.__table__.c.tenant == bindparam("tenant"), condition)
        .order_by(Ticket.__table__.c.id)
    )
    values = {"tenant": "tenant-a", "at": value}

    plain = await plain_rows(seeded, statement, values)
    assert [typed(row) for row in plain] == [typed(row) for row in await session_rows(seeded, statement, values)]
    assert [row["id"] for row in plain] == sorted(row_id("ticket", "tenant-a", n) for n in expected)


async def test_one_bind_used_twice_is_sent_twice(seeded: Seeded):
    table = Ticket.__table__
    at = bindparam("at", type_=table.c.created_at.type)
    statement = select(table.c.id).where((table.c.created_at == at) | (table.c.updated_at == at)).order_by(table.c.id)
    values = {"at": ticket_time(5)}
    plain = await plain_rows(seeded, statement, values)
    assert plain == await session_rows(seeded, statement, values)
    assert [row["id"] for row in plain] == ["ticket_tenant-a_5", "ticket_tenant-b_5"]


# --- in_ids ------------------------------------------------------------------------------------


def id_cases(table: str) -> dict[str, list[str]]:
    own = [row_id(table, "tenant-a", n) for n in (SPARSE, FULL)]
    other = [row_id(table, "tenant-b", n) for n in (SPARSE, FULL)]
    return {"none": [], "one": own[1:], "other tenant's": other[:1], "many": [*other, "unknown_id", *own]}


@pytest.mark.parametrize(
    "case, single",
    [
        ("none", False),
        ("one", False),
        ("one", True),
        ("other tenant's", False),
        ("other tenant's", True),
        ("many", False),
    ],
)
@pytest.mark.parametrize("model", ENTITIES.values(), ids=list(ENTITIES))
async def test_in_ids_selects_what_in_selects_within_the_tenant(seeded: Seeded, model: type, case: str, single: bool):
    table = model.__table__
    ids = id_cases(table.name)[case]
    if model is Ticket and case == "many":
        ids += [row_id("ticket", tenant, n) for tenant in TENANTS for n in EXTRA_TICKETS]
    plain = await plain_rows(
        seeded,
        select(table)
        .where(table.c.tenant == bindparam("tenant"), in_ids(table.c.id, seeded.dialect, single))
        .order_by(table.c.id),
        {"tenant": "tenant-a", "ids": ids_value(ids, seeded.dialect, single)},
    )
    through_session = await session_rows(
        seeded, select(table).where(table.c.tenant == "tenant-a", table.c.id.in_(ids)).order_by(table.c.id)
    )

    assert [typed(row) for row in plain] == [typed(row) for row in through_session]
    assert [row["id"] for row in plain] == sorted(i for i in ids if i in seeded.ids(table.name, "tenant-a"))
    assert {row["tenant"] for row in plain} <= {"tenant-a"}


async def test_a_single_id_is_compared_with_equality_and_bound_as_itself(seeded: Seeded):
    table = Contact.__table__
    statement = select(table.c.id).where(in_ids(table.c.id, seeded.dialect, single=True))
    assert "ANY" not in str(statement) and "json_each" not in str(statement)
    assert ids_value({"contact_tenant-a_0"}, seeded.dialect, single=True) == "contact_tenant-a_0"
    with pytest.raises(ValueError):  # two ids are never bound as one
        ids_value(["contact_tenant-a_0", "contact_tenant-b_1"], seeded.dialect, single=True)


async def test_in_ids_accepts_any_iterable_of_ids(seeded: Seeded):
    table = Contact.__table__
    statement = select(table.c.id).where(in_ids(table.c.id, seeded.dialect)).order_by(table.c.id)
    ids = (i for i in ["contact_tenant-b_1", "contact_tenant-a_0"])  # a generator, used once
    rows = await plain_rows(seeded, statement, {"ids": ids_value(ids, seeded.dialect)})
    assert rows == [{"id": "contact_tenant-a_0"}, {"id": "contact_tenant-b_1"}]


# --- reads of several statements ---------------------------------------------------------------


async def test_a_read_feeds_each_statement_the_rows_of_the_last(seeded: Seeded):
    plain, dialect = seeded.db.plain, seeded.dialect
    tickets = plain.compile(
        select(Ticket.id, Ticket.requester_id, Ticket.created_at)
        .where(Ticket.tenant == bindparam("tenant"))
        .order_by(Ticket.id)
    )
    contacts = plain.compile(
        select(Contact.id, Contact.organization_id, Contact.updated_at)
        .where(Contact.tenant == bindparam("tenant"), in_ids(Contact.id, dialect))
        .order_by(Contact.id)
    )
    organizations = plain.compile(
        select(Organization.__table__).where(
            Organization.tenant == bindparam("tenant"), in_ids(Organization.id, dialect)
        )
    )

    def read(tenant: str):
        found = yield tickets, {"tenant": tenant}
        requesters = {t["requester_id"] for t in found if t["requester_id"] is not None}
        people = yield contacts, {"tenant": tenant, "ids": ids_value(sorted(requesters), dialect)}
        employers = {c["organization_id"] for c in people if c["organization_id"] is not None}
        companies = yield organizations, {"tenant": tenant, "ids": ids_value(employers, dialect)}
        return found, people, companies

    seen: list[str] = []
    plain.listeners.append(seen.append)
    try:
        found, people, companies = await plain.run(read("tenant-b"))
    finally:
        plain.listeners.remove(seen.append)

    assert seen == [tickets.sql, contacts.sql, organizations.sql]
    assert [t["id"] for t in found] == seeded.ids("ticket", "tenant-b")
    assert [c["id"] for c in people] == ["contact_tenant-b_0", "contact_tenant-b_1"]
    assert [o["id"] for o in companies] == ["organization_tenant-b_0"]

    expected_tickets = await session_rows(
        seeded,
        select(Ticket.id, Ticket.requester_id, Ticket.created_at)
        .where(Ticket.tenant == "tenant-b")
        .order_by(Ticket.id),
    )
    expected_people = await session_rows(
        seeded,
        select(Contact.id, Contact.organization_id, Contact.updated_at)
        .where(Contact.tenant == "tenant-b", Contact.id.in_(["contact_tenant-b_0", "contact_tenant-b_1"]))
        .order_by(Contact.id),
    )
    expected_companies = await session_rows(
        seeded, select(Organization.__table__).where(Organization.id == "organization_tenant-b_0")
    )
    assert [typed(t) for t in found] == [typed(t) for t in expected_tickets]
    assert [typed(c) for c in people] == [typed(c) for c in expected_people]
    assert [typed(o) for o in companies] == [typed(o) for o in expected_companies]


async def test_listeners_hear_each_statement_once(seeded: Seeded):
    plain = seeded.db.plain
    one = plain.compile(select(Ticket.id).where(Ticket.id == bindparam("id")))

    def read():
        first = yield one, {"id": "ticket_tenant-a_2"}
        second = yield one, {"id": "ticket_tenant-a_3"}
        return first + second

    seen: list[str] = []
    plain.listeners.append(seen.append)
    try:
        assert await plain.run(read()) == [{"id": "ticket_tenant-a_2"}, {"id": "ticket_tenant-a_3"}]
        assert seen == [one.sql, one.sql]
        assert await plain_rows(seeded, select(Ticket.id).where(Ticket.id == "nope")) == []
        assert len(seen) == 3
    finally:
        plain.listeners.remove(seen.append)
    await plain_rows(seeded, select(Ticket.id).limit(1))
    assert len(seen) == 3, "a removed listener was still called"


# --- an in-memory database ----------------------------------------------------------------------


@pytest.mark.parametrize("url", ["sqlite+aiosqlite://", "sqlite+aiosqlite:///:memory:", "sqlite://"])
async def test_an_in_memory_database_is_read_through_the_engines_own_connection(url: str):
    """No other connection sees an in-memory database: its plain reads go through the engine's,
    and come back as the session's do."""
    db = Database(url)
    try:
        await migrate.upgrade(db)
        values = sample_row(Organization, TENANTS[0], FULL, full=True) | {"parent_id": None}
        async with db.writing() as session:
            session.add(Organization(**values))
            await session.commit()
        statement = select(*Organization.__table__.columns).where(Organization.tenant == bindparam("tenant"))
        compiled = db.plain.compile(statement)

        def read():
            return (yield compiled, {"tenant": TENANTS[0]})

        rows = await db.plain.run(read())
        async with db.reading() as session:
            expected = [dict(r._mapping) for r in await session.execute(statement, {"tenant": TENANTS[0]})]
        assert [typed(r) for r in rows] == [typed(r) for r in expected]
        assert rows and rows[0]["id"] == values["id"] and rows[0]["created_at"].utcoffset().total_seconds() == 0
    finally:
        await db.dispose()


# --- keys, numerics, empty reads -----------------------------------------------------------------


async def test_columns_of_the_same_name_keep_apart_as_the_session_keeps_them(seeded: Seeded):
    statement = select(Ticket.id, Contact.id).join(Contact, Contact.id == Ticket.requester_id).order_by(Ticket.id)
    rows = await plain_rows(seeded, statement)
    assert rows and list(rows[0]) == ["id", "id_1"]
    assert rows == await session_rows(seeded, statement)
    counted = select(func.count()).select_from(Ticket)
    assert await plain_rows(seeded, counted) == await session_rows(seeded, counted)


async def test_a_decimal_cast_reads_as_the_session_reads_it(seeded: Seeded):
    statement = select(cast(Deal.value, Numeric(10, 2)).label("value")).order_by(Deal.id)
    rows = await plain_rows(seeded, statement)
    assert rows and rows == await session_rows(seeded, statement)


async def test_a_read_that_needs_no_statement_returns_its_value(seeded: Seeded):
    def read():
        return "nothing to ask"
        yield  # a generator all the same

    assert await seeded.db.plain.run(read()) == "nothing to ask"


async def test_unconverted_columns_come_back_as_the_driver_gives_them_and_the_rest_converted(seeded: Seeded):
    table = Ticket.__table__
    statement = select(table.c.id, table.c.created_at, table.c.created_at.label("_k0")).order_by(table.c.id)
    plain = seeded.db.plain
    converted = await plain.rows(plain.compile(statement), {})
    kept = await plain.rows(plain.compile(statement).unconverted("_k"), {})
    assert [(r["id"], r["created_at"]) for r in kept] == [(r["id"], r["created_at"]) for r in converted]
    assert all(isinstance(r["created_at"], datetime) for r in kept)
    raw_type = datetime if seeded.dialect == "postgresql" else str  # SQLite stores the text
    assert all(isinstance(r["_k0"], raw_type) for r in kept) and all(isinstance(r["_k0"], datetime) for r in converted)
