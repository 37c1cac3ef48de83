"""``rateLimit``: the caller's request budget, as GitHub's ``rateLimit`` tells it (read by
graph/server/cost.py from the caller's limiter). What an operation may return is in each
answer's ``extensions.cost``.

The root ``Query`` takes ``rate_limit = rate_limit_field``.
"""

from datetime import datetime
from typing import Optional, Protocol

import strawberry
from strawberry.types import Info

#: the largest GraphQL Int: a larger budget is told as this
MAX_INT = 2**31 - 1


class _Standing(Protocol):
    cost: int
    limit: int
    remaining: int
    reset_at: datetime


@strawberry.type(description="The caller's request budget (its rate limit).")
class RateLimit:
    cost: int = strawberry.field(
        description="What this request drew from the budget: 1, whatever it asks for (the limit counts "
        "requests; the nodes an operation may return are its extensions.cost)."
    )
    limit: int = strawberry.field(
        description="The budget when whole: requests the caller may make at once (LIMIT_RATE_BURST); "
        "it refills at LIMIT_RATE_PER_MINUTE."
    )
    remaining: int = strawberry.field(description="Requests the caller may still make now, this one counted.")
    reset_at: datetime = strawberry.field(description="When the budget is whole again, if no more requests come.")


async def resolve_rate_limit(info: Info) -> Optional[RateLimit]:
    request = info.context.request
    budget = getattr(getattr(request, "state", None), "rate_budget", None)
    if budget is None:  # over WebSocket: operations are not counted one by one
        return None
    standing: _Standing = await budget.standing()
    return RateLimit(
        cost=standing.cost, limit=min(standing.limit, MAX_INT), remaining=min(standing.remaining, MAX_INT),
        reset_at=standing.reset_at,
    )  # fmt: skip


rate_limit_field = strawberry.field(
    resolver=resolve_rate_limit,
    description="The caller's request budget, as GitHub's rateLimit; null over WebSocket, where "
    "operations are not counted one by one.",
)
