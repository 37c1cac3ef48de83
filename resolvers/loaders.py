"""Per-request DataLoaders: every relation is one batched query per kind, never one per row."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from aiodataloader import DataLoader
from sqlalchemy import select

from models.db import Database
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
                rows = await self._select(kind, kind.id.in_(ids))
                found = {row.id: row for row in rows}
                return [found.get(id_) for id_ in ids]

            self._loaders[key] = DataLoader(load)
        return self._loaders[key]

    def many_by(self, kind: type, column: str) -> DataLoader:
        """Live ``kind`` rows grouped by a relation column, oldest first (``issues by ticket``)."""
        key = ("many", kind, column)
        if key not in self._loaders:
            col = kind.__table__.columns[column]

            async def load(keys: Sequence[str]) -> list[list[Any]]:
                rows = await self._select(
                    kind, col.in_(keys), kind.deleted_at.is_(None), order=(kind.created_at, kind.id)
                )
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

    async def _select(self, kind: type, *conditions, order=()) -> list[Any]:
        statement = select(kind).where(kind.tenant == self.tenant, *conditions)
        if order:
            statement = statement.order_by(*order)
        async with self.db.reading() as session:
            return list((await session.execute(statement)).scalars())
