"""The event log read back: time travel (``asOf``) now, live streams with the Live issue."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from models.base import Entity
from models.db import Database
from models.event import Event
from models.history import replay


async def as_of(db: Database, kind: type[Entity], *, tenant: str, id_: str, when: datetime) -> Entity | None:
    """The entity as it stood at ``when``, replayed from its events (None if not yet created)."""
    statement = (
        select(Event)
        .where(Event.tenant == tenant, Event.target == id_, Event.timestamp <= when)
        .order_by(Event.seq)
    )
    async with db.reading() as session:
        events = list((await session.execute(statement)).scalars())
    return replay(kind, tenant, events)
