"""Per-request DataLoaders: every relation is one batched query per kind, never one per row.

To-many connections (``organization.tickets(first: 5, where: …)``) batch too: the pages of all
the parents a request asks about are one statement (a window ranks each parent's rows in the
list's order, and only the first ``size + 1`` of each are kept), their ``totalCount`` one
``GROUP BY`` more, with the filters, order, cursors and page info of ``resolvers.query.find``.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Sequence
from functools import cache, partial
from typing import Any, TypeVar

import orjson
from aiodataloader import DataLoader
from sqlalchemy import ColumnElement, Select, and_, bindparam, func, select

from models.base import Entity, TableClass
from models.db.engine import Database
from models.db.plain import PlainReads, as_entity, ids_value, in_ids
from models.entities import Subscription
from resolvers import query

K = TypeVar("K")
V = TypeVar("V")

#: Which subscription is an organization's current one: the first state wins.
CURRENT_SUBSCRIPTION_ORDER = ("ACTIVE", "TRIALING", "PAST_DUE", "CANCELLED")


def pick_current_subscription(subscriptions: Sequence[Subscription]) -> Subscription | None:
    """An organization's current subscription among its live ones: by status, then the newest."""
    rank = {status: i for i, status in enumerate(CURRENT_SUBSCRIPTION_ORDER)}
    candidates = [s for s in subscriptions if s.status in rank]
    if not candidates:
        return None
    return min(candidates, key=lambda s: (rank[s.status], -s.started_at.timestamp()))


class _Load(asyncio.Future[V]):
    """The future of one key's load, which every field asking for that key awaits: no one of
    them can cancel it (``cancel()`` refuses, and a task cancelled while it waits stops when the
    load settles)."""

    def cancel(self, msg: Any = None) -> bool:
        return False


class SharedLoader(DataLoader[K, V]):
    """A ``DataLoader`` whose loads no waiting resolver can cancel for the others.

    A task cancelled while it awaits a future cancels that future, and graphql-core cancels the
    sibling fields (and list items) of a field that failed: with plain futures, one failing
    field cancelled the load another subtree, or a later field through the cache, was waiting
    for, and its ``CancelledError`` escaped the execution. (``asyncio.shield`` per load would
    do too, at a future and two callbacks per waiter; this costs nothing per waiter.)"""

    def load(self, key: K) -> asyncio.Future[V]:
        if key is None:
            raise TypeError("A loader loads a key, not None")
        cache_key = self.get_cache_key(key)
        found = self._cache.get(cache_key) if self.cache else None
        if found is not None:
            return found
        future: _Load[V] = _Load(loop=self.loop)
        if self.cache:
            self._cache[cache_key] = future
        self.do_resolve_reject(key, future)
        return future


class Loaders:
    """The loaders of one request, for one tenant. Made per request so nothing leaks across.

    No load function refers back to its ``Loaders`` (each binds the database, the tenant and its
    statement, never ``self``): a ``Loaders`` nobody holds is freed at once, by reference
    counting, not at the next full garbage collection."""

    def __init__(self, db: Database, tenant: str) -> None:
        self.db = db
        self.tenant = tenant
        self._loaders: dict[Any, SharedLoader[str, Any]] = {}

    def by_id(self, kind: type[TableClass]) -> SharedLoader[str, Any]:
        """``kind`` rows by id (soft-deleted ones too: a relation still shows what it points to)."""
        key = ("id", kind)
        if key not in self._loaders:
            self._loaders[key] = SharedLoader(partial(_by_id, self.db.plain, self.tenant, kind))
        return self._loaders[key]

    def many_by(self, kind: type[Entity], column: str) -> SharedLoader[str, list[Any]]:
        """Live ``kind`` rows grouped by a relation column, oldest first (``issues by ticket``)."""
        key = ("many", kind, column)
        if key not in self._loaders:
            self._loaders[key] = SharedLoader(partial(_many_by, self.db.plain, self.tenant, kind, column))
        return self._loaders[key]

    def pages(
        self, kind: type[Entity], column: str, *, where: dict[str, Any] | None = None,
        order: Sequence[tuple[str, bool]] = (), first: int | None = None, after: str | None = None,
        last: int | None = None, before: str | None = None, include_deleted: bool = False,
    ) -> SharedLoader[str, query.Page]:  # fmt: skip
        """Pages of ``kind`` by the parent id in ``column`` (``Ticket`` by ``organization_id``):
        what ``query.find(..., scope={column: parent})`` returns for each parent, all parents of
        one field in one statement. Bad arguments raise here, for every parent, as ``find`` does."""
        filters = orjson.dumps(where, option=orjson.OPT_SORT_KEYS, default=str)
        key = ("pages", kind, column, filters, tuple(order), first, after, last, before, include_deleted)
        if key not in self._loaders:  # else these arguments were checked already
            size, from_end = query.page_size(first, last)
            keys = query.order_keys(kind, order)
            cursor_after = None if after is None else query.decode_cursor(after, keys)
            cursor_before = None if before is None else query.decode_cursor(before, keys)
            # built when first needed: a single parent's page and most totals never need them
            condition = cache(partial(
                query.list_condition, kind, tenant=self.tenant, dialect=self.db.dialect, where=where,
                include_deleted=include_deleted,
            ))  # fmt: skip
            counts = self._counts(kind, column, condition, (filters, include_deleted))
            at = [c.key for c in kind.__table__.columns].index(column)
            db, tenant = self.db, self.tenant  # not self: see the class

            async def load(parents: Sequence[str]) -> list[query.Page]:
                if len(parents) == 1:  # one parent: the plain page costs less than ranking
                    page = await query.find(
                        db, kind, tenant=tenant, where=where, order=order, first=first, after=after,
                        last=last, before=before, include_deleted=include_deleted, scope={column: parents[0]},
                    )  # fmt: skip
                    return [page]
                parent = kind.__table__.c[column]
                statement = ranked_pages(
                    and_(condition(), in_ids(parent, db.dialect)), keys, list(kind.__table__.columns), parent,
                    size=size, from_end=from_end, after=cursor_after, before=cursor_before,
                )  # fmt: skip
                async with db.reading() as session:
                    result = await session.execute(statement, {"ids": ids_value(parents, db.dialect)})
                grouped: dict[str, list[Any]] = defaultdict(list)
                for row in result.all():
                    grouped[row[at]].append(row)
                pages = [
                    query.page_of(
                        kind, grouped.get(parent, []), size, partial(counts.load, parent),
                        from_end=from_end, after=after, before=before,
                    )
                    for parent in parents
                ]  # fmt: skip
                return pages

            self._loaders[key] = SharedLoader(load)
        return self._loaders[key]

    def counts(
        self, kind: type[Entity], column: str, *, where: dict[str, Any] | None = None, include_deleted: bool = False
    ) -> SharedLoader[str, int]:
        """How many rows of ``kind`` match ``where`` per parent id in ``column`` (``commentCount``),
        all parents of one field in one ``GROUP BY``."""
        filters = orjson.dumps(where, option=orjson.OPT_SORT_KEYS, default=str)
        condition = partial(
            query.list_condition, kind, tenant=self.tenant, dialect=self.db.dialect, where=where,
            include_deleted=include_deleted,
        )  # fmt: skip
        return self._counts(kind, column, condition, (filters, include_deleted))

    def _counts(
        self, kind: type[Entity], column: str, condition: Callable[[], ColumnElement[bool]],
        filters: tuple[bytes, bool],
    ) -> SharedLoader[str, int]:  # fmt: skip
        """How many rows of ``kind`` match ``condition()`` per parent id in ``column``, all parents
        in one ``GROUP BY`` (built and run only when a ``totalCount`` is asked for)."""
        key = ("counts", kind, column, *filters)
        if key not in self._loaders:
            parent = kind.__table__.c[column]
            db = self.db  # not self: see the class

            @cache
            def count_statement(single: bool) -> Select[tuple[Any, int]]:
                return counts_by_parent(condition(), parent, db.dialect, single)

            async def load(parents: Sequence[str]) -> list[int]:
                single = len(parents) == 1
                statement = count_statement(single)
                async with db.reading() as session:
                    result = await session.execute(statement, {"ids": ids_value(parents, db.dialect, single)})
                counted: dict[str, int] = {parent: count for parent, count in result.all()}
                return [counted.get(p, 0) for p in parents]

            self._loaders[key] = SharedLoader(load)
        return self._loaders[key]

    async def current_subscription(self, organization_id: str | None) -> Subscription | None:
        """The organization's current billing subscription: ACTIVE, TRIALING, PAST_DUE, CANCELLED."""
        if organization_id is None:
            return None
        subscriptions = await self.many_by(Subscription, "organization_id").load(organization_id)
        return pick_current_subscription(subscriptions)


async def _by_id(plain: PlainReads, tenant: str, kind: type[TableClass], ids: Sequence[str]) -> list[Any]:
    """The batch function of ``Loaders.by_id``."""
    rows = await _select(plain, tenant, kind, "id", ids, live_only=False)
    found = {row.id: row for row in rows}
    return [found.get(id_) for id_ in ids]


async def _many_by(
    plain: PlainReads, tenant: str, kind: type[Entity], column: str, keys: Sequence[str]
) -> list[list[Any]]:
    """The batch function of ``Loaders.many_by``."""
    rows = await _select(plain, tenant, kind, column, keys, live_only=True)
    grouped: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        grouped[getattr(row, column)].append(row)
    return [grouped.get(k, []) for k in keys]


async def _select(
    plain: PlainReads, tenant: str, kind: type[TableClass], column: str, keys: Sequence[str], *, live_only: bool
) -> list[Any]:
    """The ``kind`` rows of ``tenant`` whose ``column`` is one of ``keys``; live ones oldest
    first, else (by id) in any order."""
    single = len(keys) == 1
    statement = plain.compiled(
        ("loader", kind, column, live_only, single), lambda: _keyed(kind, column, live_only, plain, single)
    )
    rows = await plain.rows(statement, {"tenant": tenant, "ids": ids_value(keys, plain.dialect.name, single)})
    return [as_entity(kind, row) for row in rows]


def _keyed(
    kind: type[TableClass], column: str, live_only: bool, plain: PlainReads, single: bool
) -> Select[*tuple[Any, ...]]:
    table = kind.__table__
    statement = select(*table.columns).where(
        table.c.tenant == bindparam("tenant"), in_ids(table.c[column], plain.dialect.name, single)
    )
    if live_only:
        statement = statement.where(table.c.deleted_at.is_(None)).order_by(table.c.created_at, table.c.id)
    return statement


def counts_by_parent(
    condition: ColumnElement[bool], parent: Any, dialect: str, single: bool
) -> Select[tuple[Any, int]]:
    """How many rows ``condition`` lets through per parent (its rows' ``parent`` column) among the
    bound ``ids`` (``single``: one id, see ``in_ids``); the Strawberry path's loaders and the compiled
    path (graph/fastpath_pages.py) both count with it."""
    return select(parent, func.count()).where(condition, in_ids(parent, dialect, single)).group_by(parent)


def ranked_pages(
    condition: ColumnElement[bool], keys: list[tuple[ColumnElement[Any], bool]], selected: list[Any],
    parent: Any, *, size: int, from_end: bool, after: list[Any] | None = None, before: list[Any] | None = None,
) -> Select[*tuple[Any, ...]]:  # fmt: skip
    """The page ``query.find`` reads, for every parent ``condition`` lets through (its rows' ``parent``
    column) at once: the same statement, its LIMIT turned into a rank within each parent; the
    ``selected`` columns, rows by parent, in page order (the Strawberry path's loaders and the
    compiled path, graph/fastpath_pages.py, both read nested pages with it)."""
    walk = [(k, not d) for k, d in keys] if from_end else keys
    rank = func.row_number().over(partition_by=parent, order_by=[k.desc() if d else k.asc() for k, d in walk])
    page = query.page_statement(condition, keys, selected, size=size, from_end=from_end, after=after, before=before)
    ranked = page.order_by(None).limit(None).add_columns(rank.label("_rank")).subquery()
    return (
        select(*(c for c in ranked.c if c.key != "_rank"))
        .where(ranked.c._rank <= query.page_limit(size))
        .order_by(ranked.c[parent.key], ranked.c._rank)
    )  # fmt: skip
