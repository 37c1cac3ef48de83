"""Activity verbs beyond create, update and delete."""

from __future__ import annotations

from models.entities import Activity
from models.types import utcnow
from resolvers.work import Work


async def complete(uow: Work, id_: str, *, outcome: str | None = None, expected_version: int | None = None) -> Activity:
    values = {"completed_at": utcnow()} | ({"outcome": outcome} if outcome is not None else {})
    return await uow.transition(Activity, id_, "complete", values=values, expected_version=expected_version)


async def cancel(uow: Work, id_: str, *, reason: str | None = None, expected_version: int | None = None) -> Activity:
    return await uow.transition(Activity, id_, "cancel", args={"reason": reason}, expected_version=expected_version)
