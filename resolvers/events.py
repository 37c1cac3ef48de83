"""The event log read back: an entity as it stood at a time, or right after an event."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.base import Entity
from models.db.engine import Database
from models.event import Event
from models.history import replay


async def as_of(db: Database, kind: type[Entity], *, tenant: str, id_: str, when: datetime) -> Entity | None:
    """The entity as it stood at ``when``, replayed from its events (None if not yet created)."""
    async with db.reading() as session:
        events = await _history(session, tenant, id_, Event.timestamp <= when)
    return replay(kind, tenant, events)


async def state_after(db: Database, kind: type[Entity], *, tenant: str, event: Event) -> Entity | None:
    """The entity as it stood right after ``event``: the current row when nothing has happened
    to it since, otherwise replayed from its events up to that one."""
    async with db.reading() as session:
        current = (await session.execute(select(kind).where(kind.id == event.target, kind.tenant == tenant))).scalar()
        if current is not None and current.version == event.version:
            return current
        events = await _history(session, tenant, event.target, Event.seq <= event.seq)
    return replay(kind, tenant, events)


async def _history(session: AsyncSession, tenant: str, target: str, until: Any) -> list[Event]:
    """An entity's events up to a bound, in commit order."""
    statement = select(Event).where(Event.tenant == tenant, Event.target == target, until).order_by(Event.seq)
    return list((await session.execute(statement)).scalars())
