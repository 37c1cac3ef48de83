"""Ticket verbs beyond create, update and delete."""

from __future__ import annotations

from models.entities import Ticket
from models.types import utcnow
from resolvers.work import Work


async def assign(uow: Work, id_: str, *, assignee: str, expected_version: int | None = None) -> Ticket:
    return await uow.transition(
        Ticket, id_, "assign", values={"assignee_id": assignee}, expected_version=expected_version
    )


async def resolve(uow: Work, id_: str, *, resolution: str | None = None, expected_version: int | None = None) -> Ticket:
    return await uow.transition(
        Ticket, id_, "resolve", values={"resolved_at": utcnow()},
        args={"resolution": resolution}, expected_version=expected_version,
    )  # fmt: skip


async def escalate(uow: Work, id_: str, *, reason: str | None = None, expected_version: int | None = None) -> Ticket:
    return await uow.transition(Ticket, id_, "escalate", args={"reason": reason}, expected_version=expected_version)


async def close(uow: Work, id_: str, *, expected_version: int | None = None) -> Ticket:
    return await uow.transition(Ticket, id_, "close", values={"closed_at": utcnow()}, expected_version=expected_version)


async def reopen(uow: Work, id_: str, *, reason: str | None = None, expected_version: int | None = None) -> Ticket:
    """Reopen a resolved or closed ticket; it is neither resolved nor closed any more."""
    return await uow.transition(
        Ticket, id_, "reopen", values={"resolved_at": None, "closed_at": None},
        args={"reason": reason}, expected_version=expected_version,
    )  # fmt: skip
