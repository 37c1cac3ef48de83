"""The event log read back: an entity as it stood at a time, or right after an event."""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar, cast

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.base import Entity
from models.db.engine import Database
from models.event import Event
from models.history import mark_as_of, replay

EntityT = TypeVar("EntityT", bound=Entity)


async def as_of(db: Database, kind: type[Entity], *, tenant: str, id_: str, when: datetime) -> Entity | None:
    """The entity as it stood at ``when``, replayed from its events (None if not yet created)."""
    async with db.reading() as session:
        events = await _history(session, tenant, id_, col(Event.timestamp) <= when)
    entity = replay(kind, tenant, events)
    if entity is not None:
        mark_as_of(entity, when)
    return entity


async def state_after(db: Database, kind: type[EntityT], *, tenant: str, event: Event) -> EntityT | None:
    """The entity as it stood right after ``event``: the current row when nothing has happened
    to it since, otherwise replayed from its events up to that one."""
    async with db.reading() as session:
        statement = select(kind).where(col(kind.id) == event.target, col(kind.tenant) == tenant)
        current = (await session.execute(statement)).scalar()
        if current is not None and current.version == event.version:
            return current
        events = await _history(session, tenant, event.target, col(Event.seq) <= event.seq)
    # ``replay`` builds the entity with ``kind.model_validate``: an instance of ``kind``
    return cast("EntityT | None", replay(kind, tenant, events))


async def _history(session: AsyncSession, tenant: str, target: str, until: ColumnElement[bool]) -> list[Event]:
    """An entity's events up to a bound, in commit order."""
    statement = (
        select(Event).where(col(Event.tenant) == tenant, col(Event.target) == target, until).order_by(col(Event.seq))
    )
    return list((await session.execute(statement)).scalars())
