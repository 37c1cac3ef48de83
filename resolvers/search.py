"""``searchTickets``: full-text search over subject, description and comment bodies, in SQL.

The index (migrations 0005 and 0009) is kept in step by triggers in the writing transaction.
SQLite searches it with FTS5 and ranks by bm25: a row per ticket (subject, description) and a row
per live comment, so a comment costs only its own tokens; a ticket matches when each term matches
one of its rows. PostgreSQL keeps one tsvector per ticket under a GIN index, ranked by ts_rank. Either way the page is a keyset walk of (rank, newest
first, id), so search composes with ``where``, cursors and ``totalCount`` as every list does.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import (
    CTE,
    Float,
    Join,
    Select,
    and_,
    case,
    func,
    literal,
    literal_column,
    select,
    table,
    true,
    union_all,
)
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.expression import column

from models.db.engine import Database
from models.entities import Ticket
from models.search_terms import Phrase, SearchSyntaxError, SearchTerms, parse
from resolvers import query
from resolvers.errors import BadInput

#: how much a word counts in each part of a ticket (subject, description, comments); SQLite's
#: bm25 takes them as weights, PostgreSQL's setweight classes A/B/C in ts_rank mean the same
FTS5_WEIGHTS = (10.0, 4.0, 1.0)
#: the group number of the excluded phrases among a search's hits (groups count from 0)
_EXCLUDED = -1
#: SQLite ranks the ticket's own text and its comments in two FTS5 tables, whose bm25 scores are
#: on different scales (each table has its own word rarity); this head start puts a hit in the
#: subject or description ahead of any hit in the comments, as the 10/4/1 weights intend
_OWN_TEXT_FIRST = 1000.0
_OWN_TEXT, _THREAD = 0, 1
CONFIGURATION = "support_english"

_ticket = Ticket.__table__
_text = table("ticket_text", column("n"), column("ticket_id"))
_fts = table("ticket_fts", column("rowid"))
_comment_key = table("comment_search", column("n"), column("ticket_id"))
_comment_fts = table("comment_fts", column("rowid"))
_configuration: ColumnElement[Any] = literal_column(f"'{CONFIGURATION}'::regconfig")
_search = table("ticket_search", column("ticket_id"), column("document", TSVECTOR))


async def search_tickets(
    db: Database, *, tenant: str, text: str, where: dict[str, Any] | None = None,
    first: int | None = None, after: str | None = None,
) -> query.Page:  # fmt: skip
    """A page of the tenant's live tickets matching ``text``, best match first (ties: newest)."""
    try:
        terms = parse(text)
    except SearchSyntaxError as error:
        raise BadInput(str(error), argument="query") from None
    if "\x00" in text:
        raise BadInput("The search query must not contain NUL characters", argument="query")
    size, _ = query.page_size(first, None)
    matched, rank, source = (_postgres if db.dialect == "postgresql" else _sqlite)(terms)
    condition = and_(matched, query.list_condition(Ticket, tenant=tenant, dialect=db.dialect, where=where))
    keys = [(rank, False), (_ticket.c.created_at, True), (_ticket.c.id, True)]
    columns = list(_ticket.columns)
    statement = query.page_statement(
        condition, keys, columns, size=size, from_end=False,
        after=None if after is None else query.decode_cursor(after, keys),
    ).select_from(source)  # fmt: skip
    async with db.reading() as session:
        result = list((await session.execute(statement)).all())

    async def count() -> int:
        async with db.reading() as session:
            total = select(func.count()).select_from(source).where(condition)
            return (await session.execute(total)).scalar_one()

    return query.page_of(Ticket, result, size, count, after=after)


def _sqlite(terms: SearchTerms) -> tuple[ColumnElement[bool], ColumnElement[float], Join]:
    """The matches first, materialised, then their tickets by primary key: left to itself,
    SQLite may walk the tenant's tickets and probe the full-text index once per ticket (seconds
    for a count over 100,000 tickets, however rare the word).

    Every group of terms is looked up in the ticket rows and the comment rows; a ticket matches
    when each group hit one of its rows and no excluded phrase hit any. Its rank is the sum over
    the groups of the group's score (negative: the lower, the better): the bm25 of its own text,
    with a head start, or else the bm25 of its comments summed (a word all through the thread
    counts more than a word once)."""
    groups = terms.fts5_groups()
    wanted = [hit for number, text in enumerate(groups) for hit in _hits(text, number)]
    excluded = terms.fts5_excluded()
    hits = union_all(*wanted, *(_hits(excluded, _EXCLUDED) if excluded else ())).cte("hits").prefix_with("MATERIALIZED")
    own = func.min(case((hits.c.part == _OWN_TEXT, hits.c.rank - _OWN_TEXT_FIRST), else_=None))
    thread = func.sum(case((hits.c.part == _THREAD, hits.c.rank), else_=0.0))
    best = (
        select(hits.c.ticket_id, func.min(func.coalesce(own, 0.0), thread, type_=Float).label("best"))
        .where(hits.c.grp != _EXCLUDED)
        .group_by(hits.c.ticket_id, hits.c.grp)
        .subquery("best")
    )
    found = select(best.c.ticket_id.label("ticket_id"), func.sum(best.c.best, type_=Float).label("rank"))
    if excluded:
        found = found.where(best.c.ticket_id.not_in(select(hits.c.ticket_id).where(hits.c.grp == _EXCLUDED)))
    matched: CTE = (
        found.group_by(best.c.ticket_id).having(func.count() == len(groups)).cte("matched").prefix_with("MATERIALIZED")
    )
    rank: ColumnElement[float] = matched.c.rank
    return true(), rank, _ticket.join(matched, matched.c.ticket_id == _ticket.c.id)


def _hits(text: str, group: int) -> tuple[Select[Any], Select[Any]]:
    """The ticket rows and the comment rows that FTS5 query ``text`` matches: (ticket id,
    group, part, bm25)."""
    ticket_fts: ColumnElement[Any] = literal_column("ticket_fts")
    comment_fts: ColumnElement[Any] = literal_column("comment_fts")
    subject, description, comments = FTS5_WEIGHTS
    in_tickets = (
        select(_text.c.ticket_id, literal(group).label("grp"), literal(_OWN_TEXT).label("part"),
               func.bm25(ticket_fts, subject, description, type_=Float).label("rank"))
        .select_from(_fts.join(_text, _text.c.n == _fts.c.rowid))
        .where(ticket_fts.op("MATCH", is_comparison=True)(literal(text)))
    )  # fmt: skip
    in_comments = (
        select(
            _comment_key.c.ticket_id, literal(group), literal(_THREAD), func.bm25(comment_fts, comments, type_=Float)
        )
        .select_from(_comment_fts.join(_comment_key, _comment_key.c.n == _comment_fts.c.rowid))
        .where(comment_fts.op("MATCH", is_comparison=True)(literal(text)))
    )
    return in_tickets, in_comments


def _postgres(terms: SearchTerms) -> tuple[ColumnElement[bool], ColumnElement[float], Join]:
    def phrase(words: Phrase) -> ColumnElement[Any]:
        return func.phraseto_tsquery(_configuration, literal(" ".join(words)))

    wanted = None
    for group in terms.all_of:
        either = phrase(group[0])
        for other in group[1:]:
            either = func.tsquery_or(either, phrase(other))
        wanted = either if wanted is None else func.tsquery_and(wanted, either)
    for words in terms.none_of:
        wanted = func.tsquery_and(wanted, func.tsquery_not(phrase(words)))
    document = _search.c.document
    matched = document.op("@@", is_comparison=True)(wanted)
    rank = -func.ts_rank(document, wanted, type_=Float)  # negated: the lower, the better
    return matched, rank, _postgres_source()


@cache
def _postgres_source() -> Join:
    return _ticket.join(_search, _search.c.ticket_id == _ticket.c.id)
