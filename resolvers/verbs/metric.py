"""Metric verbs beyond create, update and delete."""

from __future__ import annotations

from datetime import datetime

from models.entities import Metric
from models.types import utcnow
from resolvers.work import Work


async def record(
    uow: Work,
    id_: str,
    *,
    value: float,
    timestamp: datetime | None = None,
    expected_version: int | None = None,
) -> Metric:
    """Record a new reading of the metric (now, unless a timestamp is given)."""
    return await uow.transition(
        Metric, id_, "record", values={"value": value, "timestamp": timestamp or utcnow()},
        expected_version=expected_version,
    )  # fmt: skip
