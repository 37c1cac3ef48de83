"""Engineering issue verbs beyond create, update and delete."""

from __future__ import annotations

from models.entities import Issue
from resolvers.work import Work


async def assign(uow: Work, id_: str, *, assignee: str, expected_version: int | None = None) -> Issue:
    return await uow.transition(
        Issue, id_, "assign", values={"assignee_id": assignee}, expected_version=expected_version
    )


async def close(uow: Work, id_: str, *, reason: str | None = None, expected_version: int | None = None) -> Issue:
    return await uow.transition(Issue, id_, "close", args={"reason": reason}, expected_version=expected_version)


async def reopen(uow: Work, id_: str, *, reason: str | None = None, expected_version: int | None = None) -> Issue:
    return await uow.transition(Issue, id_, "reopen", args={"reason": reason}, expected_version=expected_version)
