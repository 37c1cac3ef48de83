"""Metric verbs beyond create, update and delete (graph/mutations/crud.py): record."""

from datetime import datetime
from typing import Optional

import strawberry
from strawberry import UNSET
from strawberry.types import Info

from graph.mutations import verb
from graph.types.metric import Metric
from models.entities import Metric as MetricRow
from resolvers.verbs import metric

Version = Optional[int]


@strawberry.type
class MetricMutations:
    @strawberry.mutation(graphql_type=Metric, description="Record a new reading (now, unless a timestamp is given).")
    async def record_metric(
        self, info: Info, id: strawberry.ID, value: float, timestamp: Optional[datetime] = UNSET,
        expected_version: Version = UNSET,
    ) -> MetricRow:  # fmt: skip
        return await verb(info, metric.record, id, expected_version, value=value, timestamp=timestamp)
