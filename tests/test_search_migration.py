"""The full-text index on a database that already holds tickets: migration 0005 back-fills it,
and its triggers keep it in step with rows written straight into the tables by SQL.

A fresh database (SQLite, and PostgreSQL) is migrated to 0004 — the schema before search —
tickets are inserted into ``ticket`` by SQL, as the rows of an older deployment, and the
database is upgraded to head. The search resolver then finds those tickets, in their tenant
only, and not the deleted one.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic import command

from models.db import migrate
from models.db.engine import Database
from models.types import JSONDocument, UTCDateTime
from resolvers.errors import BadInput
from resolvers.search import search_tickets
from tests.databases import fresh_database

LETTERS = str.maketrans("0123456789", "ghijklmnop")
#: the ticket table as revision 0001 made it (no column of a later revision)
TICKET = sa.table(
    "ticket",
    sa.column("id", sa.String()),
    sa.column("tenant", sa.String()),
    sa.column("version", sa.Integer()),
    sa.column("created_at", UTCDateTime()),
    sa.column("updated_at", UTCDateTime()),
    sa.column("created_by", sa.String()),
    sa.column("deleted_at", UTCDateTime()),
    sa.column("subject", sa.String()),
    sa.column("description", sa.String()),
    sa.column("status", sa.String()),
    sa.column("tags", JSONDocument),
)
COMMENT = sa.table(
    "comment",
    sa.column("id", sa.String()),
    sa.column("tenant", sa.String()),
    sa.column("version", sa.Integer()),
    sa.column("created_at", UTCDateTime()),
    sa.column("updated_at", UTCDateTime()),
    sa.column("created_by", sa.String()),
    sa.column("deleted_at", UTCDateTime()),
    sa.column("ticket_id", sa.String()),
    sa.column("body", sa.String()),
    sa.column("public", sa.Boolean()),
    sa.column("author_role", sa.String()),
)
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def word() -> str:
    return "zq" + uuid.uuid4().hex[:10].translate(LETTERS)


def ticket_row(tenant: str, subject: str, description: str | None = None, minutes: int = 0, **values) -> dict:
    at = START + timedelta(minutes=minutes)
    return {
        "id": f"ticket_{uuid.uuid4().hex[:10]}", "tenant": tenant, "version": 1, "created_at": at,
        "updated_at": at, "created_by": "legacy", "deleted_at": None, "subject": subject,
        "description": description, "status": "OPEN", "tags": [], **values,
    }  # fmt: skip


def comment_row(tenant: str, ticket_id: str, body: str) -> dict:
    at = datetime.now(UTC)
    return {
        "id": f"comment_{uuid.uuid4().hex[:10]}", "tenant": tenant, "version": 1, "created_at": at,
        "updated_at": at, "created_by": "legacy", "deleted_at": None, "ticket_id": ticket_id,
        "body": body, "public": True, "author_role": "AGENT",
    }  # fmt: skip


async def upgrade_to(db: Database, revision: str) -> None:
    """Alembic to ``revision``, on a sync connection, as ``migrate.upgrade`` runs it."""
    async with db.engine.connect() as connection, connection.begin():
        await connection.run_sync(lambda sync: command.upgrade(migrate.alembic_config(sync), revision))


async def write(db: Database, statement, rows: list[dict] | dict | None = None) -> None:
    async with db.engine.begin() as connection:
        await connection.execute(statement, rows)


async def found(db: Database, tenant: str, text: str) -> list[str]:
    """The ids the resolver finds (every match), checking its count agrees."""
    page = await search_tickets(db, tenant=tenant, text=text, first=100)
    ids = [row.id for row in page.rows]
    assert await page.count() == len(ids), (text, ids)
    return ids


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path) -> str:
    with fresh_database(request.param, tmp_path) as fresh:
        yield fresh


def test_tickets_written_before_the_index_existed_are_found_after_the_upgrade(url):
    mine, theirs = f"legacy-{uuid.uuid4().hex[:6]}", f"other-{uuid.uuid4().hex[:6]}"
    w = word()
    in_subject = ticket_row(mine, f"Refund for {w} please", minutes=1)
    in_description = ticket_row(mine, "Billing", f"{w}: the Café charged me twice", minutes=2)
    deleted = ticket_row(mine, f"{w} gone", minutes=3, deleted_at=START + timedelta(days=1))
    other_tenant = ticket_row(theirs, f"{w} elsewhere", minutes=4)
    unrelated = ticket_row(mine, "Nothing to find", "no words of interest", minutes=5)

    async def go() -> None:
        db = Database(url)
        try:
            await upgrade_to(db, "0004")
            assert await migrate.current(db) == "0004"
            await write(db, sa.insert(TICKET), [in_subject, in_description, deleted, other_tenant, unrelated])
            await migrate.upgrade(db)
            assert await migrate.current(db) == migrate.head()

            # newest first among equals is not asserted here: the two match differently
            assert set(await found(db, mine, w)) == {in_subject["id"], in_description["id"]}
            assert await found(db, mine, f"refunds {w}") == [in_subject["id"]]
            assert await found(db, mine, f"cafe charges {w}") == [in_description["id"]]
            assert await found(db, mine, f'"cafe charged" {w}') == [in_description["id"]]
            assert await found(db, mine, f"{w} -twice") == [in_subject["id"]]
            assert await found(db, theirs, w) == [other_tenant["id"]]
            assert await found(db, mine, "interest") == [unrelated["id"]]
        finally:
            await db.dispose()

    asyncio.run(go())


def test_rows_written_by_sql_after_the_upgrade_are_indexed_by_the_triggers(url):
    tenant = f"sql-{uuid.uuid4().hex[:6]}"
    w, renamed, commented, dropped = word(), word(), word(), word()

    async def go() -> None:
        db = Database(url)
        try:
            await migrate.upgrade(db)
            first, second = ticket_row(tenant, f"{w} one", minutes=1), ticket_row(tenant, f"{w} two", minutes=2)
            await write(db, sa.insert(TICKET), [first, second])
            assert await found(db, tenant, w) == [second["id"], first["id"]]  # equal matches: newest first

            update = sa.update(TICKET).where(TICKET.c.id == first["id"]).values(subject=f"{renamed} one")
            await write(db, update)
            assert await found(db, tenant, renamed) == [first["id"]]
            assert await found(db, tenant, w) == [second["id"]]

            kept, doomed = (
                comment_row(tenant, second["id"], f"{commented} a"),
                comment_row(tenant, second["id"], f"{dropped} b"),
            )
            await write(db, sa.insert(COMMENT), [kept, doomed])
            assert await found(db, tenant, commented) == [second["id"]]
            assert await found(db, tenant, dropped) == [second["id"]]

            gone = sa.update(COMMENT).where(COMMENT.c.id == doomed["id"]).values(deleted_at=datetime.now(UTC))
            await write(db, gone)
            assert await found(db, tenant, dropped) == []
            assert await found(db, tenant, commented) == [second["id"]]
        finally:
            await db.dispose()

    asyncio.run(go())


def test_a_query_without_a_word_is_bad_input_in_the_resolver(url):
    async def go() -> None:
        db = Database(url)
        try:
            await migrate.upgrade(db)
            for text in ("", "   ", "-refund", '"', "((", "- -"):
                with pytest.raises(BadInput):
                    await search_tickets(db, tenant="anyone", text=text)
        finally:
            await db.dispose()

    asyncio.run(go())


def test_comment_rows_follow_edits_restores_moves_and_deletes(url):
    """SQLite keeps a row per comment (0010): every kind of change to a comment reaches it."""
    tenant = f"edit-{uuid.uuid4().hex[:6]}"
    before, after, kept = word(), word(), word()

    async def go() -> None:
        db = Database(url)
        try:
            await migrate.upgrade(db)
            home, away = ticket_row(tenant, "Home", minutes=1), ticket_row(tenant, "Away", minutes=2)
            await write(db, sa.insert(TICKET), [home, away])
            edited, other = comment_row(tenant, home["id"], f"{before} x"), comment_row(tenant, home["id"], kept)
            await write(db, sa.insert(COMMENT), [edited, other])
            one = COMMENT.c.id == edited["id"]

            await write(db, sa.update(COMMENT).where(one).values(body=f"{after} x"))
            assert await found(db, tenant, before) == []
            assert await found(db, tenant, after) == [home["id"]]

            await write(db, sa.update(COMMENT).where(one).values(deleted_at=datetime.now(UTC)))
            await write(db, sa.update(COMMENT).where(one).values(body=f"{before} while deleted"))
            assert await found(db, tenant, after) == [] and await found(db, tenant, before) == []
            await write(db, sa.update(COMMENT).where(one).values(deleted_at=None))
            assert await found(db, tenant, f'"{before} while deleted"') == [home["id"]]

            await write(db, sa.update(COMMENT).where(one).values(ticket_id=away["id"]))
            assert await found(db, tenant, before) == [away["id"]]
            assert await found(db, tenant, f"{before} {kept}") == []  # the two parts are on two tickets now

            await write(db, sa.delete(COMMENT).where(one))
            assert await found(db, tenant, before) == []
            assert await found(db, tenant, kept) == [home["id"]]
        finally:
            await db.dispose()

    asyncio.run(go())


def test_terms_match_across_parts_but_a_phrase_stays_inside_one(url):
    tenant = f"parts-{uuid.uuid4().hex[:6]}"
    a, b, c = word(), word(), word()

    async def go() -> None:
        db = Database(url)
        try:
            await migrate.upgrade(db)
            ticket = ticket_row(tenant, f"{a} subject", f"{b} description", minutes=1)
            await write(db, sa.insert(TICKET), [ticket])
            await write(db, sa.insert(COMMENT), [comment_row(tenant, ticket["id"], f"first {c}")])
            await write(db, sa.insert(COMMENT), [comment_row(tenant, ticket["id"], "last words")])
            mine = [ticket["id"]]
            assert await found(db, tenant, f"{a} {b} {c}") == mine  # each term in another part
            assert await found(db, tenant, f"{c} OR nothingsuch") == mine
            assert await found(db, tenant, f"{a} -{c}") == []  # an excluded comment word excludes the ticket
            assert await found(db, tenant, f'"{c} last"') == []  # the end of one comment, the start of the next
            assert await found(db, tenant, f'"{b} first"') == []  # the description, then a comment
            assert await found(db, tenant, f'"subject {b}"') == []  # the subject, then the description
        finally:
            await db.dispose()

    asyncio.run(go())


def test_sqlite_downgrade_restores_one_document_per_ticket(tmp_path):
    """Down to 0009, SQLite's index is 0005's again: the threads back in each ticket's
    document; up again, the comment rows are rebuilt from the comments."""
    tenant, w, gone = f"down-{uuid.uuid4().hex[:6]}", word(), word()

    async def go(url: str) -> None:
        db = Database(url)
        try:
            await migrate.upgrade(db)
            ticket = ticket_row(tenant, "Thread", minutes=1)
            await write(db, sa.insert(TICKET), [ticket])
            live, deleted = comment_row(tenant, ticket["id"], f"{w} one"), comment_row(tenant, ticket["id"], gone)
            await write(db, sa.insert(COMMENT), [live, {**deleted, "deleted_at": datetime.now(UTC)}])

            async with db.engine.connect() as connection, connection.begin():
                await connection.run_sync(lambda sync: command.downgrade(migrate.alembic_config(sync), "0009"))
            async with db.engine.connect() as connection:
                threads = (await connection.execute(sa.text("SELECT ticket_id, comments FROM ticket_text"))).all()
                matched = await connection.execute(
                    sa.text("SELECT count(*) FROM ticket_fts WHERE ticket_fts MATCH :w"), {"w": f'"{w}"'}
                )
                assert matched.scalar_one() == 1
            assert threads == [(ticket["id"], f"{w} one")]

            await migrate.upgrade(db)
            assert await found(db, tenant, w) == [ticket["id"]]
            assert await found(db, tenant, gone) == []
        finally:
            await db.dispose()

    with fresh_database("sqlite", tmp_path) as url:
        asyncio.run(go(url))


def test_the_tickets_own_text_ranks_before_its_comments_and_a_thread_before_a_mention(url):
    """On both databases: a word in a subject ranks before the same word in one comment of a
    long thread, and a thread saying it three times before a thread saying it once."""
    tenant, w = f"rank-{uuid.uuid4().hex[:6]}", word()

    async def go() -> None:
        db = Database(url)
        try:
            await migrate.upgrade(db)
            subject = ticket_row(tenant, f"{w} on fire", minutes=1)
            # the newest last among equals: only the rank can put `thrice` before `once`
            thrice = ticket_row(tenant, "Another question", minutes=2)
            once = ticket_row(tenant, "Question about invoices", minutes=3)
            await write(db, sa.insert(TICKET), [subject, once, thrice])
            chatter = [comment_row(tenant, once["id"], f"unrelated reply number {n}") for n in range(30)]
            mentions = [comment_row(tenant, thrice["id"], f"the {w} again, time {n}") for n in range(3)]
            await write(
                db, sa.insert(COMMENT), [comment_row(tenant, once["id"], f"the {w} again"), *chatter, *mentions]
            )
            assert await found(db, tenant, w) == [subject["id"], thrice["id"], once["id"]]
        finally:
            await db.dispose()

    asyncio.run(go())
