"""Deal verbs beyond create, update and delete (graph/mutations/crud.py): advance, win, lose, close, reopen."""

from typing import Optional

import strawberry
from strawberry import UNSET
from strawberry.types import Info

from graph.mutations import verb
from graph.types.deal import Deal
from models.entities import Deal as DealRow
from resolvers.verbs import deal

Version = Optional[int]


@strawberry.type
class DealMutations:
    @strawberry.mutation(graphql_type=Deal, description="Move to the next pipeline stage.")
    async def advance_deal(self, info: Info, id: strawberry.ID, expected_version: Version = UNSET) -> DealRow:
        return await verb(info, deal.advance, id, expected_version)

    @strawberry.mutation(graphql_type=Deal)
    async def win_deal(
        self, info: Info, id: strawberry.ID, reason: Optional[str] = UNSET, expected_version: Version = UNSET
    ) -> DealRow:
        return await verb(info, deal.win, id, expected_version, reason=reason)

    @strawberry.mutation(graphql_type=Deal)
    async def lose_deal(
        self, info: Info, id: strawberry.ID, reason: Optional[str] = UNSET, expected_version: Version = UNSET
    ) -> DealRow:
        return await verb(info, deal.lose, id, expected_version, reason=reason)

    @strawberry.mutation(graphql_type=Deal)
    async def close_deal(self, info: Info, id: strawberry.ID, expected_version: Version = UNSET) -> DealRow:
        return await verb(info, deal.close, id, expected_version)

    @strawberry.mutation(graphql_type=Deal)
    async def reopen_deal(
        self, info: Info, id: strawberry.ID, reason: Optional[str] = UNSET, expected_version: Version = UNSET
    ) -> DealRow:
        return await verb(info, deal.reopen, id, expected_version, reason=reason)
