"""What a request costs, told to the client as GitHub and Shopify do.

- ``extensions.cost {requested, limit, remaining}`` on every GraphQL answer over HTTP (each
  answer of a batch its own): ``requested`` is the number of nodes the operation may return,
  counted as the node budget counts them (graph/validation.py: each connection's page size
  times the connections around it), ``limit`` the budget itself (``LIMIT_MAX_NODES``), and
  ``remaining`` what is left of it (``limit - requested``, never below 0). An operation over
  the budget is refused with ``QUERY_TOO_COMPLEX``; its answer carries the cost too.
- ``Query.rateLimit`` (graph/types/ratelimit.py): the caller's request budget, read from its
  limiter (graph/server/ratelimit.py) — ``limit`` requests at once, ``remaining`` of them left
  after this one, whole again at ``resetAt``; a request costs 1, whatever it asks for.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from graph.server.ratelimit import Limiter
from graph.validation import Limits

#: what one HTTP request draws from its caller's budget (the limiters count requests)
REQUEST_COST = 1


def cost_of(nodes: int, limits: Limits) -> dict[str, int]:
    """``extensions.cost`` of an operation that may return ``nodes`` nodes."""
    return {"requested": nodes, "limit": limits.max_nodes, "remaining": max(0, limits.max_nodes - nodes)}


def with_costs(response_data: Any, costs: list[dict[str, int]] | None) -> Any:
    """The answer (or each answer of a batch, in order) with its ``extensions.cost``."""
    if not costs:
        return response_data
    answers = response_data if isinstance(response_data, list) else [response_data]
    for answer, cost in zip(answers, costs):
        if isinstance(answer, dict):
            extensions = answer.get("extensions")
            answer["extensions"] = {**(extensions if isinstance(extensions, dict) else {}), "cost": cost}
    return response_data


@dataclass(frozen=True)
class Standing:
    """A caller's request budget now: its size, what is left, and when it is whole again."""

    cost: int
    limit: int
    remaining: int
    reset_at: datetime


@dataclass(frozen=True)
class CallerBudget:
    """The budget an HTTP request was counted against: its limiter and its caller."""

    limiter: Limiter
    caller: str

    async def standing(self) -> Standing:
        """Read without counting anything."""
        budget = await self.limiter.budget(self.caller)
        return Standing(REQUEST_COST, budget.limit, budget.remaining, _after(budget.whole_in))


def _after(seconds: float) -> datetime:
    """The whole second at or after ``seconds`` from now."""
    return datetime.fromtimestamp(math.ceil(time.time() + seconds), UTC)
