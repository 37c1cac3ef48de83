"""Activity mutations: create, update, delete, complete, cancel."""

from typing import Optional

import strawberry
from strawberry import UNSET
from strawberry.types import Info

from resolvers import activity
from graph.mutations import create, delete, update, verb
from graph.types.activity import Activity, CreateActivityInput, UpdateActivityInput

Version = Optional[int]


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
