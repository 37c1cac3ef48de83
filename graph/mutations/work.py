"""Issue, activity and metric mutations."""

from typing import Optional

import strawberry
from strawberry import UNSET
from strawberry.types import Info
from datetime import datetime

from resolvers import activity, issue, metric
from graph.mutations import create, delete, update, verb
from graph.types.activity import Activity, CreateActivityInput, UpdateActivityInput
from graph.types.issue import CreateIssueInput, Issue, UpdateIssueInput
from graph.types.metric import CreateMetricInput, Metric, UpdateMetricInput

Version = Optional[int]


@strawberry.type
class IssueMutations:
    @strawberry.mutation
    async def create_issue(self, info: Info, input: CreateIssueInput) -> Issue:
        return await create(info, "Issue", input)

    @strawberry.mutation
    async def update_issue(
        self, info: Info, id: strawberry.ID, input: UpdateIssueInput, expected_version: Version = UNSET
    ) -> Issue:
        return await update(info, "Issue", id, input, expected_version)

    @strawberry.mutation
    async def delete_issue(self, info: Info, id: strawberry.ID, expected_version: Version = UNSET) -> Issue:
        return await delete(info, "Issue", id, expected_version)

    @strawberry.mutation
    async def assign_issue(
        self, info: Info, id: strawberry.ID, assignee: strawberry.ID, expected_version: Version = UNSET
    ) -> Issue:
        return await verb(info, issue.assign, id, expected_version, assignee=assignee)

    @strawberry.mutation(description="Closing an issue resolves the escalated tickets it came from.")
    async def close_issue(
        self, info: Info, id: strawberry.ID, reason: Optional[str] = UNSET, expected_version: Version = UNSET
    ) -> Issue:
        return await verb(info, issue.close, id, expected_version, reason=reason)

    @strawberry.mutation
    async def reopen_issue(
        self, info: Info, id: strawberry.ID, reason: Optional[str] = UNSET, expected_version: Version = UNSET
    ) -> Issue:
        return await verb(info, issue.reopen, id, expected_version, reason=reason)


@strawberry.type
class ActivityMutations:
    @strawberry.mutation
    async def create_activity(self, info: Info, input: CreateActivityInput) -> Activity:
        return await create(info, "Activity", input)

    @strawberry.mutation
    async def update_activity(
        self, info: Info, id: strawberry.ID, input: UpdateActivityInput, expected_version: Version = UNSET
    ) -> Activity:
        return await update(info, "Activity", id, input, expected_version)

    @strawberry.mutation
    async def delete_activity(self, info: Info, id: strawberry.ID, expected_version: Version = UNSET) -> Activity:
        return await delete(info, "Activity", id, expected_version)

    @strawberry.mutation
    async def complete_activity(
        self, info: Info, id: strawberry.ID, outcome: Optional[str] = UNSET, expected_version: Version = UNSET
    ) -> Activity:
        return await verb(info, activity.complete, id, expected_version, outcome=outcome)

    @strawberry.mutation
    async def cancel_activity(
        self, info: Info, id: strawberry.ID, reason: Optional[str] = UNSET, expected_version: Version = UNSET
    ) -> Activity:
        return await verb(info, activity.cancel, id, expected_version, reason=reason)


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
