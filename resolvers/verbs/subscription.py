"""Billing subscription verbs beyond create, update and delete."""

from __future__ import annotations

from datetime import timedelta

from models.entities import Subscription
from models.types import utcnow
from resolvers.work import Work

DEFAULT_PERIOD = timedelta(days=30)


async def activate(uow: Work, id_: str, *, expected_version: int | None = None) -> Subscription:
    now = utcnow()
    return await uow.transition(
        Subscription, id_, "activate",
        values={"current_period_start": now, "current_period_end": now + DEFAULT_PERIOD},
        expected_version=expected_version,
    )  # fmt: skip


async def pause(uow: Work, id_: str, *, expected_version: int | None = None) -> Subscription:
    return await uow.transition(
        Subscription, id_, "pause", values={"paused_at": utcnow()}, expected_version=expected_version
    )


async def cancel(
    uow: Work, id_: str, *, reason: str | None = None, expected_version: int | None = None
) -> Subscription:
    return await uow.transition(
        Subscription, id_, "cancel", values={"canceled_at": utcnow()},
        args={"reason": reason}, expected_version=expected_version,
    )  # fmt: skip


async def reactivate(uow: Work, id_: str, *, expected_version: int | None = None) -> Subscription:
    return await uow.transition(
        Subscription, id_, "reactivate",
        values={"paused_at": None, "canceled_at": None, "cancel_at_period_end": False},
        expected_version=expected_version,
    )  # fmt: skip


async def change_plan(
    uow: Work,
    id_: str,
    verb: str,
    *,
    plan: str | None = None,
    quantity: int | None = None,
    expected_version: int | None = None,
) -> Subscription:
    """``upgrade`` or ``downgrade``: a new plan, a new quantity, or both."""
    values = {k: v for k, v in (("plan", plan), ("quantity", quantity)) if v is not None}
    return await uow.transition(Subscription, id_, verb, values=values, expected_version=expected_version)


async def renew(uow: Work, id_: str, *, expected_version: int | None = None) -> Subscription:
    """Start the next billing period, as long as the last one (30 days if none was set)."""
    current = await uow.load(Subscription, id_, lock=False)
    start = current.current_period_end or utcnow()
    length = (
        current.current_period_end - current.current_period_start
        if current.current_period_start and current.current_period_end
        else DEFAULT_PERIOD
    )
    return await uow.transition(
        Subscription, id_, "renew",
        values={"current_period_start": start, "current_period_end": start + length},
        expected_version=expected_version,
    )  # fmt: skip
