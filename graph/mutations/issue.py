"""Issue verbs beyond create, update and delete (graph/mutations/crud.py): assign, close, reopen."""

from typing import Optional

import strawberry
from strawberry import UNSET
from strawberry.types import Info

from graph.mutations import verb
from graph.types.issue import Issue
from models.entities import Issue as IssueRow
from resolvers.verbs import issue

Version = Optional[int]


@strawberry.type
class IssueMutations:
    @strawberry.mutation(graphql_type=Issue)
    async def assign_issue(
        self, info: Info, id: strawberry.ID, assignee: strawberry.ID, expected_version: Version = UNSET
    ) -> IssueRow:
        return await verb(info, issue.assign, id, expected_version, assignee=assignee)

    @strawberry.mutation(
        graphql_type=Issue, description="Closing an issue resolves the escalated tickets it came from."
    )
    async def close_issue(
        self, info: Info, id: strawberry.ID, reason: Optional[str] = UNSET, expected_version: Version = UNSET
    ) -> IssueRow:
        return await verb(info, issue.close, id, expected_version, reason=reason)

    @strawberry.mutation(graphql_type=Issue)
    async def reopen_issue(
        self, info: Info, id: strawberry.ID, reason: Optional[str] = UNSET, expected_version: Version = UNSET
    ) -> IssueRow:
        return await verb(info, issue.reopen, id, expected_version, reason=reason)
