"""Statements PostgreSQL can keep one plan for: no bound page size, no array of one id.

asyncpg prepares every statement once per connection; PostgreSQL plans each execution for its
values ("custom" plans) until the plan it could keep for all ("generic") looks no dearer. A
bound page size (``LIMIT $2``: it guesses a tenth of the table) and an array of one id
(``= ANY($1)``: it guesses ten ids) made the generic plan look dearer on the benchmark's 2,000
tickets, so the 50-ticket page and the deep document's level were planned anew at every
execution — planning cost more than running (bench/RESULTS.md, #19 stop 26). Page sizes are
written into the statement (resolvers/query.py ``page_limit``) and one id is compared with ``=``
(models/db/plain.py ``in_ids``). Which plan PostgreSQL then picks depends on the table sizes, so
this checks the statements themselves.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy.dialects import postgresql

from graph import fastpath
from graph.cli.seed import seed
from graph.server.app import deployment_hooks
from models.db import migrate
from models.db.engine import Database
from models.entities import Ticket
from resolvers import query
from tests.databases import fresh_database

DEEP = (
    "query Deep($id: ID!) { ticket(id: $id) { id subject requester { id name } "
    "organization { id name subscriptions(first: 5) { nodes { plan status } } } "
    "subscription { id plan } issues { id title } activities { id subject } events(first: 20) { nodes { type } } } }"
)


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with fresh_database("postgresql", tmp_path_factory.mktemp("plans")) as found:
        yield found


@pytest.fixture(scope="module")
async def seeded(url: str) -> AsyncIterator[None]:
    db = Database(url)
    await migrate.upgrade(db)
    await seed(db, hooks=deployment_hooks(), organizations=4, contacts=20, tickets=40)
    await db.dispose()
    yield


async def test_the_deep_document_of_one_ticket_binds_no_array(url: str, seeded: None):
    plan, first = (
        fastpath.compile_plan(DEEP, None),
        fastpath.compile_plan("{ tickets(first: 1) { nodes { id } } }", None),
    )
    assert plan is not None and first is not None, "the compiled path answers these documents"
    db = Database(url)
    try:
        ticket = (await fastpath.run(first, {}, db, "default") or {})["tickets"]["nodes"][0]["id"]
        assert (await fastpath.run(plan, {"id": ticket}, db, "default") or {})["ticket"]["id"] == ticket
    finally:
        await db.dispose()
    sent = [plan.by_id["postgresql"].sql, *(batch.sql for batch in plan.batches.values() if batch is not None)]
    assert len(sent) == 2, sent  # the ticket with its to-one relations, then its level of five reads as one
    for sql in sent:
        assert "ANY (" not in sql and "LIMIT $" not in sql, sql


def test_the_page_size_is_written_into_the_statement():
    table = Ticket.__table__
    page = query.page_statement(table.c.tenant == "t", query.order_keys(Ticket), [table.c.id], size=50, from_end=False)
    sql = str(page.compile(dialect=postgresql.dialect()))
    assert "LIMIT 51" in sql and "%(param" not in sql.split("LIMIT")[1]
