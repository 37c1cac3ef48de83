"""Metric mutations: create, update, delete, record."""

from datetime import datetime
from typing import Optional

import strawberry
from strawberry import UNSET
from strawberry.types import Info

from resolvers import metric
from graph.mutations import create, delete, update, verb
from graph.types.metric import CreateMetricInput, Metric, UpdateMetricInput

Version = Optional[int]


@strawberry.type
class MetricMutations:
    @strawberry.mutation
    async def create_metric(self, info: Info, input: CreateMetricInput) -> Metric:
        return await create(info, "Metric", input)

    @strawberry.mutation
    async def update_metric(
        self, info: Info, id: strawberry.ID, input: UpdateMetricInput, expected_version: Version = UNSET
    ) -> Metric:
        return await update(info, "Metric", id, input, expected_version)

    @strawberry.mutation
    async def delete_metric(self, info: Info, id: strawberry.ID, expected_version: Version = UNSET) -> Metric:
        return await delete(info, "Metric", id, expected_version)

    @strawberry.mutation(description="Record a new reading (now, unless a timestamp is given).")
    async def record_metric(
        self, info: Info, id: strawberry.ID, value: float, timestamp: Optional[datetime] = UNSET,
        expected_version: Version = UNSET,
    ) -> Metric:  # fmt: skip
        return await verb(info, metric.record, id, expected_version, value=value, timestamp=timestamp)
