"""A live queue's window: the head of a ticket list, kept current event by event in memory.

A queue is a list query — ``where``, ``orderBy``, ``first`` in one tenant — that stays open.
Its ``Window`` holds the first tickets of that list as they stood right after the last event
the queue has read, up to twice the page: the page itself, then a tail to refill it from.
The one rule that keeps it exact: **every ticket that matches and sorts at or before
``bound`` is in the window** (``bound`` None: every ticket that matches is). A ticket that
leaves the window, or sorts past ``bound``, is dropped; when the tail is cut back ``bound``
moves down to its new last row. Only when the page itself runs short (more removals than the
tail held) must the list be read again (``resolvers.queue_reads.window_at``).

An event changes one ticket, so comparing the page before and after it gives at most a
removal and an addition, or one move: ``page_changes`` turns that into the messages a client
applies in order. Everything here is pure — no SQL; sorting mirrors ``resolvers.query``'s
(enums in declared order, a missing value as ``""`` or 0, the id breaking ties).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum
from functools import cache
from types import SimpleNamespace
from typing import Any

import orjson
from sqlalchemy import String

from models.entities import Ticket
from models.event import Event
from models.history import api_names, replay
from resolvers.errors import BadInput
from resolvers.query import MAX_PAGE, field_column, matches
from resolvers.where_parts import where_parts

#: the window holds up to this many pages: the page, then a tail to refill it from
WINDOW_PAGES = 2
_COLUMNS = Ticket.__table__.columns
#: API field name in event data → column (``firstResponseAt`` → ``first_response_at``)
_COLUMN_OF = {api: column for column, api in api_names(Ticket).items()}


class QueueUpdateKind(Enum):
    """What one queue message does to the page a client holds."""

    SNAPSHOT = "SNAPSHOT"
    ADDED = "ADDED"
    REMOVED = "REMOVED"
    CHANGED = "CHANGED"


@dataclass(frozen=True)
class QueueUpdate:
    """One message: the whole page (``SNAPSHOT``) or one ticket added, removed or changed."""

    kind: QueueUpdateKind
    tickets: list[Ticket]
    #: where the ticket now is (ADDED, CHANGED) or was (REMOVED), 0-based
    position: int | None = None
    #: the event that caused it (none for a snapshot)
    event: Event | None = None
    #: the id of the event it belongs to (a snapshot: the last event the page reflects)
    cursor: str | None = None
    #: how many more messages of the same event follow this one
    remaining: int = 0


class SortKey:
    """A ticket's place in a queue's order: compares like the list's ORDER BY."""

    __slots__ = ("descending", "values")

    def __init__(self, values: tuple[Any, ...], descending: tuple[bool, ...]) -> None:
        self.values, self.descending = values, descending

    def __lt__(self, other: SortKey) -> bool:
        for mine, theirs, descending in zip(self.values, other.values, self.descending):
            if mine != theirs:
                return bool(mine > theirs) if descending else bool(mine < theirs)
        return False

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SortKey) and self.values == other.values

    def __hash__(self) -> int:
        return hash(self.values)

    def __repr__(self) -> str:
        return f"SortKey({self.values!r})"


@cache
def _sort_value(name: str) -> Callable[[Any], Any]:
    """The value a column sorts by, as ``resolvers.query.sort_expression`` computes it in SQL."""
    column = _COLUMNS[name]
    enum = column.info.get("enum")
    if enum is not None:
        ranks = {member: rank for rank, member in enumerate(enum.__members__, start=1)}
        return lambda value: ranks.get(value, 0)
    if column.nullable:
        fallback = "" if isinstance(column.type, String) else 0
        return lambda value: fallback if value is None else value
    return lambda value: value


@dataclass(frozen=True)
class QueueSpec:
    """What a queue lists: tenant, ``where`` (plain dicts), ``orderBy`` pairs and page size.

    Two specs are equal when they list the same thing, so they share one evaluation."""

    tenant: str
    where_key: bytes
    order: tuple[tuple[str, bool], ...]
    first: int
    where: dict[str, Any] | None = field(default=None, compare=False, hash=False)
    #: the sort columns, the id last, with their directions
    sort: tuple[tuple[str, bool], ...] = field(default=(), compare=False, hash=False)
    #: every column whose value decides whether a ticket is listed and where
    reads: frozenset[str] = field(default=frozenset(), compare=False, hash=False)
    directions: tuple[bool, ...] = field(default=(), compare=False, hash=False)

    @classmethod
    def of(cls, tenant: str, where: dict[str, Any] | None, order: Sequence[tuple[str, bool]], first: int) -> QueueSpec:
        """A spec, its page size checked (``where`` is checked by compiling it, elsewhere)."""
        if not 1 <= first <= MAX_PAGE:
            raise BadInput(f"first must be between 1 and {MAX_PAGE} (got {first})", argument="first")
        pairs = tuple(order) or (("created_at", False),)
        sort = (*pairs, ("id", pairs[-1][1] if order else False))
        reads = frozenset({name for name, _ in sort} | _where_columns(where) | {"deleted_at"})
        where_key = orjson.dumps(where or {}, option=orjson.OPT_SORT_KEYS)
        directions = tuple(descending for _, descending in sort)
        return cls(tenant, where_key, tuple(order), first, where or None, sort, reads, directions)

    def key(self, ticket: Any) -> SortKey:
        values = tuple(_sort_value(name)(getattr(ticket, name)) for name, _ in self.sort)
        return SortKey(values, self.directions)

    def admits(self, ticket: Any) -> bool:
        """Whether ``ticket`` (as it stands) belongs to the list at all."""
        return ticket.deleted_at is None and matches(Ticket, self.where, ticket)

    def rules_out(self, known: dict[str, Any]) -> bool:
        """Whether the columns an event set (``known``) alone show the ticket cannot be listed:
        a deletion, or a failed condition the ``where`` requires of every listed ticket."""
        if known.get("deleted_at") is not None:
            return True
        return _fails(self.where, known)


def _where_columns(where: dict[str, Any] | None) -> set[str]:
    """The columns a ``where`` reads (``organization`` reads ``organization_id``)."""
    return {
        field_column(Ticket, name).name
        for part in where_parts(where)
        for name, _ in part
        if name not in ("and_", "or_", "not_")
    }


def _fails(where: dict[str, Any] | None, known: dict[str, Any]) -> bool:
    """A condition every listed ticket must meet, on a known column, that ``known`` fails."""
    for name, spec in (where or {}).items():
        if spec is None or name in ("or_", "not_"):
            continue
        if name == "and_":
            if any(_fails(part, known) for part in spec):
                return True
            continue
        column = field_column(Ticket, name).name
        if column in known and not matches(Ticket, {name: spec}, SimpleNamespace(**{column: known[column]})):
            return True
    return False


# --- a ticket after an event, from the event alone -----------------------------------------------


def known_values(event: Event) -> dict[str, Any]:
    """The columns an update event set, with the values it set them to."""
    values = {
        _COLUMN_OF[name]: _typed(_COLUMN_OF[name], change["after"])
        for name, change in event.data.items()
        if name in _COLUMN_OF and isinstance(change, dict) and "after" in change
    }
    values["version"] = event.version
    values["updated_at"] = event.timestamp
    if event.type.endswith(".Deleted"):
        values["deleted_at"] = event.timestamp
    return values


def _typed(column: str, value: Any) -> Any:
    if isinstance(value, str) and _COLUMNS[column].type.python_type is datetime:
        return datetime.fromisoformat(value)
    return value


def after_event(ticket: Ticket, event: Event) -> Ticket:
    """``ticket`` as it stands after ``event`` (its next event), as ``models.history.replay``
    would rebuild it: the event records every column it changed."""
    state = {column: getattr(ticket, column) for column in _COLUMNS.keys()}  # noqa: SIM118 - a ColumnCollection
    state |= known_values(event)
    return Ticket.model_validate(state)


def created(event: Event) -> Ticket | None:
    """The ticket a ``Ticket.Created`` event made, from its data (a whole snapshot)."""
    ticket = replay(Ticket, event.tenant, [event])
    return ticket if isinstance(ticket, Ticket) else None


# --- the window ------------------------------------------------------------------------------------


class Window:
    """The head of a queue's list, in order, exact as of the last event applied (see the module)."""

    def __init__(self, spec: QueueSpec, rows: Sequence[Ticket], bound: SortKey | None) -> None:
        self.spec = spec
        self.rows: list[Ticket] = []
        self.keys: list[SortKey] = []
        self.bound = bound
        self.extend(rows, bound)

    @property
    def capacity(self) -> int:
        return self.spec.first * WINDOW_PAGES

    def page(self) -> list[Ticket]:
        return self.rows[: self.spec.first]

    def get(self, id_: str) -> Ticket | None:
        return next((row for row in self.rows if row.id == id_), None)

    def within(self, key: SortKey) -> bool:
        """Whether a ticket sorting at ``key`` belongs in the window (at or before ``bound``)."""
        return self.bound is None or not self.bound < key

    def place(self, id_: str, ticket: Ticket | None) -> None:
        """Ticket ``id_`` now stands as ``ticket`` (None: it is gone): in the window or not."""
        for index, row in enumerate(self.rows):
            if row.id == id_:
                del self.rows[index], self.keys[index]
                break
        if ticket is not None and self.spec.admits(ticket):
            key = self.spec.key(ticket)
            if self.within(key):
                index = bisect.bisect_left(self.keys, key)
                self.rows.insert(index, ticket)
                self.keys.insert(index, key)
        self._trim()

    def extend(self, rows: Sequence[Ticket], bound: SortKey | None) -> None:
        """Add the tickets a read found past the window, up to its new ``bound``."""
        present = {row.id for row in self.rows}
        for row in rows:
            if row.id not in present:
                key = self.spec.key(row)
                index = bisect.bisect_left(self.keys, key)
                self.rows.insert(index, row)
                self.keys.insert(index, key)
        self.bound = bound
        self._trim()

    def saved(self) -> tuple[list[Ticket], list[SortKey], SortKey | None]:
        """What ``restore`` puts back: a change that fails half-way leaves the window as it was."""
        return list(self.rows), list(self.keys), self.bound

    def restore(self, saved: tuple[list[Ticket], list[SortKey], SortKey | None]) -> None:
        self.rows, self.keys, self.bound = list(saved[0]), list(saved[1]), saved[2]

    def short(self) -> bool:
        """The page has fewer tickets than it should and more exist past ``bound``."""
        return self.bound is not None and len(self.rows) < self.spec.first

    def _trim(self) -> None:
        if len(self.rows) > self.capacity:
            del self.rows[self.capacity :], self.keys[self.capacity :]
            self.bound = self.keys[-1]


def page_changes(
    before: Sequence[Ticket], after: Sequence[Ticket], target: str, event: Event, state: Ticket | None
) -> list[QueueUpdate]:
    """The messages that turn page ``before`` into page ``after`` for a client applying them in
    order: removals first, then additions and moves, each at its index right after it is
    applied. ``target`` is the ticket the event changed and ``state`` how it stands now."""
    assert event.id is not None
    now = {row.id: index for index, row in enumerate(after)}
    had = {row.id for row in before}
    held = [row.id for row in before]
    updates: list[QueueUpdate] = []
    for row in before:
        if row.id not in now:
            position = held.index(row.id)
            del held[position]
            gone = state if row.id == target and state is not None else row
            updates.append(QueueUpdate(QueueUpdateKind.REMOVED, [gone], position, event, event.id))
    for row in after:
        if row.id in had and row.id != target:
            continue
        kind = QueueUpdateKind.CHANGED if row.id in had else QueueUpdateKind.ADDED
        if row.id in had:
            held.remove(row.id)
        position = next((i for i, other in enumerate(held) if now[other] > now[row.id]), len(held))
        held.insert(position, row.id)
        updates.append(QueueUpdate(kind, [row], position, event, event.id))
    last = len(updates) - 1
    return [replace(update, remaining=last - index) for index, update in enumerate(updates)]
