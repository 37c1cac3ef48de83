"""Contact verbs beyond create, update and delete."""

from __future__ import annotations

from models.entities import Contact
from resolvers.work import Work


async def qualify(uow: Work, id_: str, *, expected_version: int | None = None) -> Contact:
    return await uow.transition(Contact, id_, "qualify", expected_version=expected_version)


async def assign(uow: Work, id_: str, *, owner: str, expected_version: int | None = None) -> Contact:
    """Give the contact an owner: the teammate responsible for the relationship."""
    return await uow.transition(Contact, id_, "assign", values={"owner_id": owner}, expected_version=expected_version)
