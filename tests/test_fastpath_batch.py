"""A step of several statements (graph/fastpath_batch.py) returns the rows each statement returns
alone, converted alike, and costs PostgreSQL one statement (SQLite: one each), counted as the
server counts its statements (``PlainReads.listeners``)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import bindparam, select

from graph.fastpath_batch import Batch, Steps, as_read, gather, one
from models.base import DEFAULT_TENANT, ENTITIES
from models.db.plain import Compiled, PlainReads, ids_value, in_ids

#: (kind, columns): every kind of value a row holds — text, JSON, timestamps, dates, numbers, booleans, nulls
READS = [
    ("Ticket", ("id", "subject", "tags", "created_at", "satisfaction", "deleted_at")),
    ("Metric", ("id", "value", "dimensions", "timestamp", "unit")),
    ("Deal", ("id", "value", "expected_close_date", "stage")),
    ("Organization", ("id", "annual_revenue", "employee_count", "parent_id")),
    ("Comment", ("id", "body", "public", "ticket_id")),
]


@pytest.fixture(scope="module")
def made(server) -> dict[str, list[str]]:
    tag = uuid.uuid4().hex[:8]
    org = server.data(
        'mutation($d: String) { createOrganization(input: {name: "Batch Org", domain: $d, annualRevenue: 12.5, '
        "employeeCount: 3}) { id } }",
        {"d": f"{tag}.example"},
    )["createOrganization"]["id"]
    tickets = [
        server.data(
            "mutation($o: ID, $t: [String!]) { createTicket(input: {subject: \"Bätch ✓\", tags: $t, organization: $o}) "
            "{ id } }",
            {"o": org, "t": tags},
        )["createTicket"]["id"]
        for tags in (["a", "vip"], [])
    ]  # fmt: skip
    for public in (True, False):
        server.data(
            'mutation($id: ID!, $p: Boolean!) { commentTicket(id: $id, input: {body: "hi", public: $p}) { id } }',
            {"id": tickets[0], "p": public},
        )
    metric = server.data(
        'mutation($o: ID) { createMetric(input: {name: "m", value: 1.25, dimensions: {k: [1, "two"]}, '
        'organization: $o, timestamp: "2026-04-01T00:00:00Z"}) { id } }',
        {"o": org},
    )["createMetric"]["id"]
    deal = server.data(
        'mutation($o: ID) { createDeal(input: {name: "d", value: 99.5, organization: $o, '
        'expectedCloseDate: "2026-03-01"}) { id } }',
        {"o": org},
    )["createDeal"]["id"]
    return {"Ticket": tickets, "Metric": [metric], "Deal": [deal], "Organization": [org], "Comment": tickets[:1]}


def _statement(plain: PlainReads, kind: Any, columns: tuple[str, ...]) -> Compiled:
    """``columns`` of the rows whose id (a comment: whose ticket) is one of ``ids``."""

    def build() -> Any:
        table = kind.__table__
        by = table.c.ticket_id if kind is ENTITIES["Comment"] else table.c.id
        return (
            select(*(table.c[c] for c in columns))
            .where(table.c.tenant == bindparam("tenant"), in_ids(by, plain.dialect.name))
            .order_by(table.c.id)
        )

    return plain.compiled(("test fastpath batch", kind, columns), build)


def _wanted(plain: PlainReads, made: dict[str, list[str]]) -> list[tuple[Compiled, dict[str, Any]]]:
    """A statement per kind, the first one twice (with other values), and one that finds nothing:
    seven statements, fourteen parameters (``$10`` and up must be numbered right)."""

    def ids(values: list[str]) -> dict[str, Any]:
        return {"tenant": DEFAULT_TENANT, "ids": ids_value(values, plain.dialect.name)}

    wanted = [(_statement(plain, ENTITIES[kind], columns), ids(made[kind])) for kind, columns in READS]
    wanted.append((wanted[0][0], ids(made["Ticket"][1:])))
    wanted.append((wanted[1][0], ids(["metric_none"])))
    return wanted


def _run(server, steps: Steps[Any], batches: dict) -> tuple[Any, list[str]]:
    plain = server.services.db.plain
    seen: list[str] = []
    plain.listeners.append(seen.append)
    try:
        return server.run(plain.run(as_read(steps, plain.dialect.name, batches))), seen
    finally:
        plain.listeners.remove(seen.append)


def test_a_step_returns_each_statements_rows_as_it_alone_would(server, made):
    plain = server.services.db.plain
    wanted = _wanted(plain, made)
    alone = [server.run(plain.rows(statement, values)) for statement, values in wanted]
    assert all(alone[:5]) and alone[5] and alone[6] == []
    batches: dict = {}
    for _ in range(2):  # the second time from the kept text
        together, seen = _run(server, gather([one(statement, values) for statement, values in wanted]), batches)
        assert together == alone
        assert [[type(v) for v in row.values()] for rows in together for row in rows] == [
            [type(v) for v in row.values()] for rows in alone for row in rows
        ]
        postgresql = plain.dialect.name == "postgresql"
        assert len(seen) == (1 if postgresql else len(wanted))
        assert len(batches) == (1 if postgresql else 0)
    if postgresql:
        (batch,) = batches.values()
        assert isinstance(batch, Batch) and "$14" in batch.sql and "$15" not in batch.sql


def test_reads_side_by_side_take_one_step_per_level(server, made):
    """A read of two steps beside reads of one: two steps, the second only the first read's."""
    plain = server.services.db.plain
    wanted = _wanted(plain, made)

    def two_steps() -> Steps[list[Any]]:
        first = yield from one(*wanted[0])
        second = yield from gather([one(*wanted[1]), one(*wanted[2])])
        return [first, *second]

    results, seen = _run(server, gather([two_steps(), one(*wanted[3]), gather([one(*wanted[4])])]), {})
    alone = [server.run(plain.rows(statement, values)) for statement, values in wanted[:5]]
    assert results == [alone[:3], alone[3], [alone[4]]]
    assert len(seen) == (2 if plain.dialect.name == "postgresql" else 5)


@pytest.mark.parametrize(
    "document, postgresql, sqlite",
    [
        ("{ tickets(first: 3) { totalCount nodes { id } } }", 1, 2),  # the page and its total
        ("{ tickets(first: 3) { nodes { id comments(first: 2) { totalCount nodes { id } } } } }", 2, 3),
        ("{ tickets(first: 3) { nodes { id issues { id } activities { id } } } }", 2, 3),
    ],
)
def test_the_compiled_path_sends_a_level_as_one_statement(server, made, document, postgresql, sqlite):
    data, statements = server.count_statements(document)
    assert data["tickets"]
    assert statements == (postgresql if server.services.db.plain.dialect.name == "postgresql" else sqlite)
