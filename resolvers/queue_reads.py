"""A live queue's reads: the head of its list as it stood at an event, and one event applied.

``window_at`` reads the head of a list in **one statement**, together with the tenant's newest
event sequence number: one statement sees one snapshot (on PostgreSQL as on SQLite), and since
sequence numbers follow commit order, the rows it returns stand exactly as they did right after
that event. To have the list as it stood at an *earlier* event (the queue has not read the newer
ones yet, or a client resumes from a cursor), the tickets that newer events touched are taken
out and put back as their own history replays them at that event — every other ticket was the
same then as now.

``advance`` applies one committed event to a window and says what changed on the page. It reads
nothing for an event that cannot change the list: another entity's, or one that set no column
the list reads on a ticket the window does not hold. A ticket the window holds is brought up to
date from the event itself; one it does not hold, read once, right after the event. A read that
fails leaves the window as it was, so the event can be applied again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select, text, true
from sqlmodel import col

from models.db.engine import Database
from models.db.plain import as_entity
from models.entities import Ticket
from models.event import Event
from models.history import replay
from resolvers.events import state_after
from resolvers.query import list_condition, order_keys, page_statement
from resolvers.queue_window import (
    WINDOW_PAGES,
    QueueSpec,
    QueueUpdate,
    SortKey,
    Window,
    after_event,
    created,
    known_values,
    page_changes,
)  # fmt: skip

_TICKET_COLUMNS = [c.key for c in Ticket.__table__.columns]
#: PostgreSQL collations that order text by code point, as SQLite and Python do
_CODE_POINT_ORDER = {"C", "POSIX", "C.UTF-8", "C.utf8", "ucs_basic"}
_collation_checked: set[str] = set()
log = logging.getLogger("support_graph.queue")


async def check_collation(db: Database) -> None:
    """Warn once per database where PostgreSQL orders text otherwise than by code point: a
    queue places tickets in Python, so a subject order or an id tie-break could then differ
    from the list query's."""
    if db.dialect != "postgresql" or db.url in _collation_checked:
        return
    _collation_checked.add(db.url)
    async with db.reading() as session:
        statement = text("SELECT datcollate FROM pg_database WHERE datname = current_database()")
        collation = (await session.execute(statement)).scalar()
    if collation not in _CODE_POINT_ORDER:
        log.warning(
            "the database's collation is %r: live queues order text by code point (as with COLLATE \"C\"), "
            "so a queue's order of subjects and ties can differ from the list query's", collation,
        )  # fmt: skip


@dataclass(frozen=True)
class Head:
    """Tickets read past a window's ``bound``, as they stood at event ``seq``."""

    rows: list[Ticket]
    #: the last row's key when more tickets follow; None when these are all of them
    bound: SortKey | None
    seq: int
    #: the id of event ``seq`` (None: the tenant has no event yet), when read at the newest one
    cursor: str | None


async def window_at(db: Database, spec: QueueSpec, *, seq: int | None = None, after: SortKey | None = None) -> Head:
    """The tickets of ``spec``'s list past ``after`` (up to a window's worth) as they stood
    right after event ``seq`` (None: the newest event)."""
    size = spec.first * WINDOW_PAGES
    async with db.reading() as session:
        result = (await session.execute(_head_statement(spec, db.dialect, after, size))).all()
    newest, cursor = int(result[0].upto), result[0].upto_id
    rows = [as_entity(Ticket, {name: row._mapping[name] for name in _TICKET_COLUMNS}) for row in result if row.id]
    bound = spec.key(rows[size - 1]) if len(rows) > size else None
    rows = rows[:size]
    if seq is None or seq >= newest:
        return Head(rows, bound, newest, cursor)
    touched = await _touched(db, spec.tenant, seq, newest)
    if touched:
        rows = [row for row in rows if row.id not in touched]
        for ticket in await states_at(db, spec.tenant, touched, seq):
            key = spec.key(ticket)
            if spec.admits(ticket) and (after is None or after < key) and (bound is None or not bound < key):
                rows.append(ticket)
    return Head(rows, bound, seq, None)


def _head_statement(spec: QueueSpec, dialect: str, after: SortKey | None, size: int) -> Select[tuple[Any, ...]]:
    """``size + 1`` rows of the list past ``after``, beside the tenant's newest event (its
    sequence number, 0 if none, and id), in one statement: a row even when the list is empty."""
    condition = list_condition(Ticket, tenant=spec.tenant, dialect=dialect, where=spec.where)
    keys = order_keys(Ticket, spec.order)
    columns = list(Ticket.__table__.columns)
    values = None if after is None else list(after.values)
    head = page_statement(condition, keys, columns, size=size, from_end=False, after=values).subquery("head")
    events = Event.__table__
    newest = select(func.max(events.c.seq)).where(events.c.tenant == spec.tenant).scalar_subquery()
    newest_id = (
        select(events.c.id).where(events.c.tenant == spec.tenant).order_by(events.c.seq.desc()).limit(1)
    ).scalar_subquery()
    marks = select(func.coalesce(newest, 0).label("upto"), newest_id.label("upto_id")).subquery("marks")
    ordering = [head.c[f"_k{i}"].desc() if desc else head.c[f"_k{i}"].asc() for i, (_, desc) in enumerate(keys)]
    return (
        select(marks.c.upto, marks.c.upto_id, *(head.c[name] for name in _TICKET_COLUMNS))
        .select_from(marks.outerjoin(head, true()))
        .order_by(*ordering)
    )


async def _touched(db: Database, tenant: str, seq: int, upto: int) -> set[str]:
    """The tickets events after ``seq`` up to ``upto`` changed."""
    statement = (
        select(col(Event.target))
        .distinct()
        .where(
            col(Event.tenant) == tenant, col(Event.entity_type) == "Ticket",
            col(Event.seq) > seq, col(Event.seq) <= upto,
        )
    )  # fmt: skip
    async with db.reading() as session:
        return set((await session.execute(statement)).scalars())


async def states_at(db: Database, tenant: str, ids: Iterable[str], seq: int) -> list[Ticket]:
    """The tickets ``ids`` as their events up to ``seq`` leave them (those that existed then)."""
    statement = (
        select(Event)
        .where(col(Event.tenant) == tenant, col(Event.target).in_(sorted(ids)), col(Event.seq) <= seq)
        .order_by(col(Event.seq))
    )
    async with db.reading() as session:
        events = list((await session.execute(statement)).scalars())
    histories: dict[str, list[Event]] = {}
    for event in events:
        histories.setdefault(event.target, []).append(event)
    states = (replay(Ticket, tenant, history) for history in histories.values())
    return [state for state in states if isinstance(state, Ticket)]


async def advance(db: Database, window: Window, event: Event) -> list[QueueUpdate]:
    """Apply committed ``event`` (the one after those the window stands at) to ``window``; the
    messages that bring a client's page along (none when the page did not change)."""
    if event.entity_type != "Ticket":
        return []
    spec, target = window.spec, event.target
    held = window.get(target)
    state: Ticket | None
    if held is not None and held.version + 1 == event.version:
        state = after_event(held, event)
    elif held is None and not _may_enter(spec, event):
        return []
    elif event.type.endswith(".Created"):
        state = created(event)
    else:
        state = await state_after(db, Ticket, tenant=spec.tenant, event=event)
    if held is None and (state is None or not spec.admits(state) or not window.within(spec.key(state))):
        return []
    before, saved = window.page(), window.saved()
    try:
        window.place(target, state)
        while window.short():
            assert event.seq is not None
            head = await window_at(db, spec, seq=event.seq, after=window.bound)
            window.extend(head.rows, head.bound)
    except BaseException:  # a read failed (or was cancelled): the event can be applied again
        window.restore(saved)
        raise
    return page_changes(before, window.page(), target, event, state)


def _may_enter(spec: QueueSpec, event: Event) -> bool:
    """Whether an event on a ticket the window does not hold might bring it in: a creation, or a
    change to a column the list reads, to values that do not already rule the ticket out."""
    if event.type.endswith(".Created"):
        return True
    known = known_values(event)
    return not spec.reads.isdisjoint(known) and not spec.rules_out(known)
