"""Deal verbs beyond create, update and delete."""

from __future__ import annotations

from datetime import date

from models.entities import Deal
from resolvers.work import Work


async def advance(uow: Work, id_: str, *, expected_version: int | None = None) -> Deal:
    """Move the deal to the next pipeline stage."""
    return await uow.transition(Deal, id_, "advance", expected_version=expected_version)


async def win(uow: Work, id_: str, *, reason: str | None = None, expected_version: int | None = None) -> Deal:
    return await uow.transition(
        Deal, id_, "win",
        values={"won_reason": reason, "probability": 100, "actual_close_date": date.today()},
        args={"reason": reason}, expected_version=expected_version,
    )  # fmt: skip


async def lose(uow: Work, id_: str, *, reason: str | None = None, expected_version: int | None = None) -> Deal:
    return await uow.transition(
        Deal, id_, "lose",
        values={"lost_reason": reason, "probability": 0, "actual_close_date": date.today()},
        args={"reason": reason}, expected_version=expected_version,
    )  # fmt: skip


async def close(uow: Work, id_: str, *, expected_version: int | None = None) -> Deal:
    deal = await uow.load(Deal, id_, lock=False)
    values = {} if deal.actual_close_date else {"actual_close_date": date.today()}
    return await uow.transition(Deal, id_, "close", values=values, expected_version=expected_version)


async def reopen(uow: Work, id_: str, *, reason: str | None = None, expected_version: int | None = None) -> Deal:
    return await uow.transition(
        Deal, id_, "reopen", values={"actual_close_date": None},
        args={"reason": reason}, expected_version=expected_version,
    )  # fmt: skip
