"""Full-text search (``searchTickets``, issue #14) against a ``LIKE '%word%'`` scan, and what the
index costs a comment.

Run from the repository root (about 50 minutes with the defaults on 2 CPUs, loading included,
most of it SQLite's searches while their ``count()`` is slow; needs PostgreSQL on
127.0.0.1:5432 for the PostgreSQL half; ``--tickets 5000 --comments 15000`` takes a minute)::

    .venv/bin/python -m bench.search [--tickets 100000] [--comments 300000] [--repeat 20]
                                     [--writes 1000] [--databases sqlite,postgresql] [--keep]

For each database (SQLite in a temporary directory; PostgreSQL in a fresh database of its own,
``tests.databases``, dropped at the end unless ``--keep``):

1. Migrate to head, then load one tenant's tickets and comments with plain SQL (executemany on
   SQLite, COPY on PostgreSQL) straight into ``ticket`` and ``comment``: the index triggers of
   migration 0005 index every row as it arrives. The text is made up but support-like: a
   vocabulary of ~3,000 words drawn from a Zipf distribution (stop words and support words
   first, then made-up words), so that the query words below have known selectivity; the rare
   word and the phrase are sprinkled in on purpose. Threads are skewed (most tickets have a few
   comments, some a few dozen); 1% of tickets and comments are soft-deleted. PostgreSQL then
   gets ``VACUUM ANALYZE`` (what autovacuum does after a load); SQLite gets nothing (the
   application never runs ANALYZE).
2. Search: each query of ``QUERIES``, ``--repeat`` times after two warm-up runs, interleaved, as
   ``search_tickets(db, tenant, text, first=20)`` plus ``await page.count()`` (a client asking
   ``totalCount``). Reported: matches, p50/p95 of page + count, and p50 of the page alone.
3. Baseline, same data, same run, interleaved with (2): for the single-word queries, the scan
   ``lower(subject) LIKE '%w%' OR lower(description) LIKE … OR EXISTS (a live comment whose
   lower(body) LIKE …) ORDER BY created_at DESC LIMIT 20`` plus its ``count(*)``. Ratio: LIKE
   p50 / search p50 per word; the goal (≥ 20×) is on the median of those ratios.
4. Writes: ``--writes`` ``commentTicket`` verbs (``resolvers.verbs.ticket.comment`` through a
   ``UnitOfWork`` with the shipped hooks, one transaction each, on random live tickets) against
   as many ``update`` verbs that do not touch the index (priority flipped), interleaved in rounds
   of 10. Ratio: update mean / comment mean (a comment's throughput relative to an update's;
   goal ≥ 0.7). Then, for reference only, the same with the comment index trigger switched off
   (dropped and re-created on SQLite, DISABLE/ENABLE TRIGGER on PostgreSQL): the share of a
   comment's cost that is the index rather than the extra row and event.

Prints one table per database (Markdown, for bench/RESULTS.md) and the goals with ✓/✗.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import random
import shutil
import sqlite3
import statistics
import string
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from sqlalchemy import text as sql

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from models.db import migrate  # noqa: E402
from models.db.engine import Database  # noqa: E402
from models.entities import Ticket  # noqa: E402
from resolvers.reactions import shipped  # noqa: E402
from resolvers.search import search_tickets  # noqa: E402
from resolvers.unit import UnitOfWork  # noqa: E402
from resolvers.verbs.ticket import comment  # noqa: E402
from tests.databases import create_postgres_database, drop_postgres_database, postgres_unreachable  # noqa: E402

TENANT, ACTOR = "bench", "bench@support-graph"
NOW = datetime(2026, 12, 1, tzinfo=UTC)
SEARCH_GOAL, WRITE_GOAL = 20.0, 0.7
#: (label, query, single word: compared with LIKE)
QUERIES = [
    ("rare word", "chargeback", True),
    ("medium word", "webhook", True),
    ("common word", "account", True),
    ("phrase", '"password reset"', False),
    ("word -exclusion", "refund -paypal", False),
    ("a OR b", "invoice OR receipt", False),
]
#: query words at fixed Zipf ranks (0-based), so their selectivity is known: ~common to ~2%
PLACED = {"account": 25, "refund": 60, "password": 80, "reset": 90, "invoice": 100, "paypal": 300,
          "receipt": 400, "webhook": 700}  # fmt: skip
#: sprinkled into a text with this probability, beside the Zipf draw
SPRINKLED = {"chargeback": 0.0003, "password reset": 0.004}
WORDS = """the to i and a is we you it of for on in my not this with have can please but be are that
our when from after get error issue help thanks again customer still now able working team page user
users update login email problem new order data time support app any could payment see would just
like been was your there all one will do what if also access because set up site here more back
screen same need know some them same last today sure version change plan card billing subscription
export report dashboard settings link file upload download mobile browser chrome safari android
iphone api integration sync missing wrong failed broken slow loading crash message notification
invite admin role permission workspace project task ticket status delete remove add create send
received charge charged price upgrade downgrade cancel trial renewal contract address phone name
number code token key certificate domain server timeout request response field form button menu
search filter sort column row table chart import template workflow automation rule trigger label
tag comment attachment image pdf csv excel calendar meeting schedule reminder language timezone
currency tax discount coupon credit balance transfer bank stripe shipping delivery tracking
package warehouse inventory product catalog price list quote sale lead contact company
organization department manager agent escalation priority urgent asap weekend morning evening
week month year yesterday tomorrow soon hours minutes seconds morning office remote laptop desktop
windows mac linux network wifi vpn proxy firewall dns ssl https url redirect cache cookie session
logout signup register verify verification twofactor authenticator sms otp locked blocked spam
duplicate merge split history log audit compliance gdpr privacy security breach backup restore
database storage quota limit usage overage""".split()  # noqa: SIM905


class Corpus:
    """Support-like text: Zipf-distributed words, a few sprinkled terms, a fixed seed."""

    def __init__(self, seed: int = 14) -> None:
        self.rng = rng = random.Random(seed)
        real = [w for w in dict.fromkeys(WORDS) if not any(q in w for q in (*PLACED, *SPRINKLED))]
        made: set[str] = set()
        syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"] + ["ar", "en", "ol", "ix", "um"]
        while len(real) + len(made) < 3000:
            w = "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))
            if w not in real and not any(q in w for q in (*PLACED, *SPRINKLED)):
                made.add(w)
        made_up = sorted(made)
        rng.shuffle(made_up)
        self.vocabulary = real + made_up
        for word, rank in sorted(PLACED.items(), key=lambda item: item[1]):
            self.vocabulary.insert(rank, word)
        weights = [1 / (rank + 1) ** 1.05 for rank in range(len(self.vocabulary))]
        total = 0.0
        self.cumulative = [total := total + w for w in weights]

    def text(self, low: int, high: int) -> str:
        rng = self.rng
        words = rng.choices(self.vocabulary, cum_weights=self.cumulative, k=rng.randint(low, high))
        for term, probability in SPRINKLED.items():
            if rng.random() < probability:
                words.insert(rng.randrange(len(words) + 1), term)
        return " ".join(words).capitalize() + "."

    def ident(self, prefix: str) -> str:
        return prefix + "_" + "".join(self.rng.choices(string.ascii_letters + string.digits, k=10))


def make_data(corpus: Corpus, tickets: int, comments: int) -> tuple[list[tuple], list[tuple], dict[str, str]]:
    """Rows for ``ticket`` and ``comment`` (columns ``TICKET_COLUMNS`` and ``COMMENT_COLUMNS``,
    datetimes aware), and the live, commentable tickets with their priority."""
    rng = corpus.rng
    ticket_rows, comment_rows, open_ = [], [], {}
    statuses = ["OPEN"] * 25 + ["PENDING"] * 15 + ["IN_PROGRESS"] * 10 + ["RESOLVED"] * 25 + ["CLOSED"] * 25
    for _ in range(tickets):
        id_, at = corpus.ident("ticket"), NOW - timedelta(seconds=rng.uniform(600, 365 * 86400))
        status, priority = rng.choice(statuses), rng.choice(["LOW", "MEDIUM", "HIGH", "URGENT"])
        done = at + timedelta(hours=rng.uniform(1, 72)) if status in ("RESOLVED", "CLOSED") else None
        deleted = at + timedelta(days=1) if rng.random() < 0.01 else None
        ticket_rows.append((
            id_, TENANT, 1, at, at, ACTOR, deleted, corpus.text(4, 10), corpus.text(15, 90), status, priority,
            None, rng.choice(["EMAIL", "CHAT", "PHONE", "WEB", "API"]), "[]", None, None, None, None,
            None if status == "OPEN" else at + timedelta(minutes=rng.uniform(5, 600)), done,
            done if status == "CLOSED" else None, None, None,
        ))  # fmt: skip
        if deleted is None and status != "CLOSED":
            open_[id_] = priority
    weights = [min(rng.paretovariate(1.5), 30.0) for _ in ticket_rows]  # skewed threads, none huge
    for row in rng.choices(ticket_rows, weights=weights, k=comments):
        at = min(row[3] + timedelta(hours=rng.expovariate(1 / 48)), NOW - timedelta(seconds=rng.uniform(1, 600)))
        comment_rows.append((
            corpus.ident("comment"), TENANT, 1, at, at, ACTOR, at if rng.random() < 0.01 else None,
            row[0], corpus.text(8, 60), rng.random() < 0.8, None, rng.choice(["AGENT", "REQUESTER"]),
        ))  # fmt: skip
    comment_rows.sort(key=lambda r: r[3])  # in the order they would have arrived
    return ticket_rows, comment_rows, open_


TICKET_COLUMNS = (  # noqa: SIM905
    "id tenant version created_at updated_at created_by deleted_at subject description status priority category "
    "channel tags requester_id assignee_id organization_id deal_id first_response_at resolved_at closed_at "
    "satisfaction merged_into_id"
).split()
COMMENT_COLUMNS = (  # noqa: SIM905
    "id tenant version created_at updated_at created_by deleted_at ticket_id body public author_id author_role"
).split()


def load_sqlite(path: Path, ticket_rows: list[tuple], comment_rows: list[tuple]) -> str:
    def naive(row: tuple) -> tuple:  # SQLAlchemy's SQLite DateTime format, UTC
        return tuple(v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(v, datetime) else v for v in row)

    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA synchronous=NORMAL")
        for table, columns, rows in (("ticket", TICKET_COLUMNS, ticket_rows), ('"comment"', COMMENT_COLUMNS, comment_rows)):  # fmt: skip
            statement = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
            for start in range(0, len(rows), 10_000):
                connection.executemany(statement, [naive(r) for r in rows[start : start + 10_000]])
                connection.commit()
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()
    return "executemany, 10,000 rows a transaction, indexed by the triggers"


async def load_postgres(url: str, ticket_rows: list[tuple], comment_rows: list[tuple]) -> str:
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await connection.copy_records_to_table("ticket", records=ticket_rows, columns=TICKET_COLUMNS)
        await connection.copy_records_to_table("comment", records=comment_rows, columns=COMMENT_COLUMNS)
        await connection.execute("VACUUM ANALYZE")
    finally:
        await connection.close()
    return "COPY, indexed by the row triggers; then VACUUM ANALYZE"


LIKE_WHERE = (
    "t.tenant = :tenant AND t.deleted_at IS NULL AND (lower(t.subject) LIKE :p OR lower(t.description) LIKE :p"
    ' OR EXISTS (SELECT 1 FROM "comment" c WHERE c.ticket_id = t.id AND c.deleted_at IS NULL AND lower(c.body) LIKE :p))'
)
LIKE_PAGE = sql(f"SELECT t.id, t.subject, t.status, t.created_at FROM ticket t WHERE {LIKE_WHERE} "
                "ORDER BY t.created_at DESC LIMIT 20")  # fmt: skip
LIKE_COUNT = sql(f"SELECT count(*) FROM ticket t WHERE {LIKE_WHERE}")


async def like_scan(db: Database, word: str) -> tuple[int, int]:
    parameters = {"tenant": TENANT, "p": f"%{word.lower()}%"}
    async with db.reading() as session:
        rows = (await session.execute(LIKE_PAGE, parameters)).all()
    async with db.reading() as session:
        return len(rows), (await session.execute(LIKE_COUNT, parameters)).scalar_one()


async def measure_search(db: Database, repeat: int) -> list[dict]:
    results = [{"label": label, "query": q, "single": single, "search": [], "page": [], "like": []}
               for label, q, single in QUERIES]  # fmt: skip
    for turn in range(repeat + 2):  # two warm-up turns
        for result in results:
            started = time.perf_counter()
            page = await search_tickets(db, tenant=TENANT, text=result["query"], first=20)
            paged = time.perf_counter()
            result["matches"] = await page.count()
            if turn >= 2:
                result["search"].append(time.perf_counter() - started)
                result["page"].append(paged - started)
            if result["single"]:
                started = time.perf_counter()
                _, result["like_matches"] = await like_scan(db, result["query"])
                if turn >= 2:
                    result["like"].append(time.perf_counter() - started)
    return results


async def measure_writes(db: Database, open_: dict[str, str], corpus: Corpus, n: int) -> dict[str, list[float]]:
    """``n`` comments and ``n`` updates, interleaved in rounds of 10 (order alternating)."""
    hooks, rng, ids = shipped(), corpus.rng, list(open_)
    times: dict[str, list[float]] = {"comment": [], "update": []}

    async def one_comment() -> None:
        async with UnitOfWork(db, tenant=TENANT, actor=ACTOR, hooks=hooks) as uow:
            await comment(uow, rng.choice(ids), body=corpus.text(8, 60), public=rng.random() < 0.8)

    async def one_update() -> None:
        id_ = rng.choice(ids)
        open_[id_] = "LOW" if open_[id_] != "LOW" else "HIGH"  # always a change, never the subject
        async with UnitOfWork(db, tenant=TENANT, actor=ACTOR, hooks=hooks) as uow:
            await uow.transition(Ticket, id_, "update", values={"priority": open_[id_]})

    for _ in range(3):  # warm-up
        await one_comment()
        await one_update()
    for round_ in range(math.ceil(n / 10)):
        order = ("comment", "update") if round_ % 2 == 0 else ("update", "comment")
        for kind in order:
            for _ in range(10):
                started = time.perf_counter()
                await (one_comment() if kind == "comment" else one_update())
                times[kind].append(time.perf_counter() - started)
    return times


async def without_comment_index(db: Database, run: Callable[[], Awaitable[dict]]) -> dict:
    """``run()`` with the comment table's index trigger off, then back on."""
    async with db.engine.begin() as connection:
        if db.dialect == "postgresql":
            await connection.execute(sql('ALTER TABLE "comment" DISABLE TRIGGER ticket_search_follow'))
            restore = 'ALTER TABLE "comment" ENABLE TRIGGER ticket_search_follow'
        else:
            name = "comment_search_inserted"
            restore = (await connection.execute(sql(f"SELECT sql FROM sqlite_master WHERE name = '{name}'"))).one()[0]  # fmt: skip
            await connection.execute(sql(f"DROP TRIGGER {name}"))
    try:
        return await run()
    finally:
        async with db.engine.begin() as connection:
            await connection.execute(sql(restore))


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}" if seconds < 10 else f"{seconds * 1000:.0f}"


async def bench_database(kind: str, url: str, args: argparse.Namespace, workdir: Path) -> str:
    corpus = Corpus()
    started = time.monotonic()
    ticket_rows, comment_rows, open_ = make_data(corpus, args.tickets, args.comments)
    generated = time.monotonic() - started
    db = Database(url)
    try:
        await migrate.upgrade(db)
        print(f"{kind}: loading {len(ticket_rows):,} tickets and {len(comment_rows):,} comments…", flush=True)
        started = time.monotonic()
        if kind == "sqlite":
            how = await asyncio.to_thread(load_sqlite, workdir / "search.db", ticket_rows, comment_rows)
        else:
            how = await load_postgres(url, ticket_rows, comment_rows)
        loaded = time.monotonic() - started
        del ticket_rows, comment_rows
        print(f"{kind}: loaded in {loaded:.1f} s; searching ×{args.repeat}…", flush=True)
        results = await measure_search(db, args.repeat)
        print(f"{kind}: {args.writes} comments against {args.writes} updates…", flush=True)
        writes = await measure_writes(db, open_, corpus, args.writes)
        bare = await without_comment_index(db, lambda: measure_writes(db, open_, corpus, args.writes // 2))
        return report(kind, args, how, generated, loaded, results, writes, bare)
    finally:
        await db.dispose()


def report(kind: str, args: argparse.Namespace, how: str, generated: float, loaded: float,
           results: list[dict], writes: dict, bare: dict) -> str:  # fmt: skip
    title = "SQLite (FTS5)" if kind == "sqlite" else "PostgreSQL (tsvector + GIN)"
    lines = [
        f"### {title}: {args.tickets:,} tickets, {args.comments:,} comments",
        "",
        f"Load: {loaded:.1f} s ({how}); text generated in {generated:.1f} s. "
        f"Search ×{args.repeat} per query; times in ms.",
        "",
        "| query | matches | search p50 | search p95 | page only p50 | LIKE matches | LIKE p50 | LIKE p95 | LIKE/search |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    ratios = []
    for r in results:
        like = ["–"] * 4
        if r["single"]:
            ratio = percentile(r["like"], 50) / percentile(r["search"], 50)
            ratios.append(ratio)
            like = [f"{r['like_matches']:,}", ms(percentile(r["like"], 50)), ms(percentile(r["like"], 95)), f"{ratio:.1f}×"]  # fmt: skip
        lines.append(
            f"| {r['label']}: `{r['query']}` | {r['matches']:,} | {ms(percentile(r['search'], 50))} "
            f"| {ms(percentile(r['search'], 95))} | {ms(percentile(r['page'], 50))} | " + " | ".join(like) + " |"
        )
    every = [t for r in results for t in r["search"]]
    likes = [t for r in results for t in r["like"]]
    lines.append(f"| **all queries** | | {ms(percentile(every, 50))} | {ms(percentile(every, 95))} | "
                 f"{ms(percentile([t for r in results for t in r['page']], 50))} | | {ms(percentile(likes, 50))} "
                 f"| {ms(percentile(likes, 95))} | median {statistics.median(ratios):.1f}× |")  # fmt: skip
    lines += ["", "| write (one transaction each) | n | mean | p50 | p95 |", "|---|---:|---:|---:|---:|"]
    rows = [("commentTicket (indexed)", writes["comment"]), ("update priority (not indexed)", writes["update"]),
            ("commentTicket, index trigger off (reference)", bare["comment"]),
            ("update priority, same phase (reference)", bare["update"])]  # fmt: skip
    for label, values in rows:
        lines.append(f"| {label} | {len(values)} | {ms(statistics.fmean(values))} | {ms(percentile(values, 50))} "
                     f"| {ms(percentile(values, 95))} |")  # fmt: skip
    write_ratio = statistics.fmean(writes["update"]) / statistics.fmean(writes["comment"])
    p50_ratio = percentile(writes["update"], 50) / percentile(writes["comment"], 50)
    bare_ratio = statistics.fmean(bare["update"]) / statistics.fmean(bare["comment"])
    search_ratio = statistics.median(ratios)
    lines += [
        "",
        f"- search vs LIKE (median of the single words): **{search_ratio:.1f}×** "
        f"{'✓' if search_ratio >= SEARCH_GOAL else '✗'} (goal ≥ {SEARCH_GOAL:.0f}×; "
        f"per word {', '.join(f'{x:.1f}×' for x in ratios)})",
        f"- comment vs update (update mean / comment mean): **{write_ratio:.2f}** "
        f"{'✓' if write_ratio >= WRITE_GOAL else '✗'} (goal ≥ {WRITE_GOAL}; p50 ratio {p50_ratio:.2f}; "
        f"with the comment index trigger off: {bare_ratio:.2f})",
    ]
    return "\n".join(lines)


def machine() -> str:
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"SQLite {sqlite3.sqlite_version}, load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--comments", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=20, help="measured runs of each query (default 20)")
    parser.add_argument("--writes", type=int, default=1000, help="comments and updates each (default 1000)")
    parser.add_argument("--databases", default="sqlite,postgresql", help="comma-separated, in order")
    parser.add_argument("--keep", action="store_true", help="keep the SQLite directory and PostgreSQL database")
    args = parser.parse_args(argv)
    kinds = [k.strip() for k in args.databases.split(",") if k.strip()]
    if unknown := [k for k in kinds if k not in ("sqlite", "postgresql")]:
        parser.error(f"unknown database(s) {unknown}; choose from sqlite, postgresql")
    if "postgresql" in kinds and (reason := postgres_unreachable()):
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="bench-search-"))
    tables = []
    try:
        for kind in kinds:
            url = f"sqlite+aiosqlite:///{workdir / 'search.db'}" if kind == "sqlite" else create_postgres_database()
            try:
                tables.append(asyncio.run(bench_database(kind, url, args, workdir)))
            finally:
                if kind == "postgresql" and args.keep:
                    print(f"kept {url}")
                elif kind == "postgresql":
                    drop_postgres_database(url)
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    command = " ".join(["python -m bench.search", *(argv if argv is not None else sys.argv[1:])])
    print(f"\n`{command}` ({time.strftime('%Y-%m-%d %H:%M')}; {machine()})\n")
    print("\n\n".join(tables))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
