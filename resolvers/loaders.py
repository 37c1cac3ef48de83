"""Per-request DataLoaders: every relation is one batched query per kind, never one per row."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from aiodataloader import DataLoader
from sqlalchemy import bindparam, select

from models.db.engine import Database
from models.db.plain import as_entity, ids_value, in_ids
from models.entities import Subscription

#: Which subscription is an organization's current one: the first state wins.
CURRENT_SUBSCRIPTION_ORDER = ("ACTIVE", "TRIALING", "PAST_DUE", "CANCELLED")


def pick_current_subscription(subscriptions: Sequence[Subscription]) -> Subscription | None:
    """An organization's current subscription among its live ones: by status, then the newest."""
    rank = {status: i for i, status in enumerate(CURRENT_SUBSCRIPTION_ORDER)}
    candidates = [s for s in subscriptions if s.status in rank]
    if not candidates:
        return None
    return min(candidates, key=lambda s: (rank[s.status], -s.started_at.timestamp()))


class Loaders:
    """The loaders of one request, for one tenant. Made per request so nothing leaks across."""

    def __init__(self, db: Database, tenant: str) -> None:
        self.db = db
        self.tenant = tenant
        self._loaders: dict[Any, DataLoader] = {}

    def by_id(self, kind: type) -> DataLoader:
        """``kind`` rows by id (soft-deleted ones too: a relation still shows what it points to)."""
        key = ("id", kind)
        if key not in self._loaders:

            async def load(ids: Sequence[str]) -> list[Any]:
                rows = await self._select(kind, "id", ids, live_only=False)
                found = {row.id: row for row in rows}
                return [found.get(id_) for id_ in ids]

            self._loaders[key] = DataLoader(load)
        return self._loaders[key]

    def many_by(self, kind: type, column: str) -> DataLoader:
        """Live ``kind`` rows grouped by a relation column, oldest first (``issues by ticket``)."""
        key = ("many", kind, column)
        if key not in self._loaders:

            async def load(keys: Sequence[str]) -> list[list[Any]]:
                rows = await self._select(kind, column, keys, live_only=True)
                grouped: dict[str, list[Any]] = defaultdict(list)
                for row in rows:
                    grouped[getattr(row, column)].append(row)
                return [grouped.get(k, []) for k in keys]

            self._loaders[key] = DataLoader(load)
        return self._loaders[key]

    async def current_subscription(self, organization_id: str | None) -> Subscription | None:
        """The organization's current billing subscription: ACTIVE, TRIALING, PAST_DUE, CANCELLED."""
        if organization_id is None:
            return None
        subscriptions = await self.many_by(Subscription, "organization_id").load(organization_id)
        return pick_current_subscription(subscriptions)

    async def _select(self, kind: type, column: str, keys: Sequence[str], *, live_only: bool) -> list[Any]:
        """The ``kind`` rows of this tenant whose ``column`` is one of ``keys``; live ones oldest
        first, else (by id) in any order."""
        plain = self.db.plain
        statement = plain.compiled(("loader", kind, column, live_only), lambda: _keyed(kind, column, live_only, plain))
        rows = await plain.rows(statement, {"tenant": self.tenant, "ids": ids_value(keys, plain.dialect.name)})
        return [as_entity(kind, row) for row in rows]


def _keyed(kind: type, column: str, live_only: bool, plain: Any) -> Any:
    table = kind.__table__
    statement = select(*table.columns).where(
        table.c.tenant == bindparam("tenant"), in_ids(table.c[column], plain.dialect.name)
    )
    if live_only:
        statement = statement.where(table.c.deleted_at.is_(None)).order_by(table.c.created_at, table.c.id)
    return statement
