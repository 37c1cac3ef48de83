"""Activity verbs beyond create, update and delete (graph/mutations/crud.py): complete, cancel."""

from typing import Optional

import strawberry
from strawberry import UNSET
from strawberry.types import Info

from graph.mutations import verb
from graph.types.activity import Activity
from models.entities import Activity as ActivityRow
from resolvers.verbs import activity

Version = Optional[int]


@strawberry.type
class ActivityMutations:
    @strawberry.mutation(graphql_type=Activity)
    async def complete_activity(
        self, info: Info, id: strawberry.ID, outcome: Optional[str] = UNSET, expected_version: Version = UNSET
    ) -> ActivityRow:
        return await verb(info, activity.complete, id, expected_version, outcome=outcome)

    @strawberry.mutation(graphql_type=Activity)
    async def cancel_activity(
        self, info: Info, id: strawberry.ID, reason: Optional[str] = UNSET, expected_version: Version = UNSET
    ) -> ActivityRow:
        return await verb(info, activity.cancel, id, expected_version, reason=reason)
