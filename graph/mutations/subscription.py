"""Billing subscription mutations."""

from typing import Optional

import strawberry
from strawberry import UNSET
from strawberry.types import Info

from graph.mutations import verb
from graph.types.subscription import Subscription
from models.entities import Subscription as SubscriptionRow
from resolvers.verbs import subscription

Version = Optional[int]


@strawberry.type
class SubscriptionMutations:
    @strawberry.mutation(
        graphql_type=Subscription, description="TRIALING, INCOMPLETE or PAST_DUE → ACTIVE; starts a period."
    )
    async def activate_subscription(
        self, info: Info, id: strawberry.ID, expected_version: Version = UNSET
    ) -> SubscriptionRow:
        return await verb(info, subscription.activate, id, expected_version)

    @strawberry.mutation(graphql_type=Subscription)
    async def pause_subscription(
        self, info: Info, id: strawberry.ID, expected_version: Version = UNSET
    ) -> SubscriptionRow:
        return await verb(info, subscription.pause, id, expected_version)

    @strawberry.mutation(graphql_type=Subscription)
    async def cancel_subscription(
        self, info: Info, id: strawberry.ID, reason: Optional[str] = UNSET,
        expected_version: Version = UNSET,
    ) -> SubscriptionRow:  # fmt: skip
        return await verb(info, subscription.cancel, id, expected_version, reason=reason)

    @strawberry.mutation(graphql_type=Subscription, description="PAUSED or CANCELLED → ACTIVE.")
    async def reactivate_subscription(
        self, info: Info, id: strawberry.ID, expected_version: Version = UNSET
    ) -> SubscriptionRow:
        return await verb(info, subscription.reactivate, id, expected_version)

    @strawberry.mutation(graphql_type=Subscription, description="A bigger plan or more seats; the status stays.")
    async def upgrade_subscription(
        self, info: Info, id: strawberry.ID, plan: Optional[str] = UNSET, quantity: Optional[int] = UNSET,
        expected_version: Version = UNSET,
    ) -> SubscriptionRow:  # fmt: skip
        return await verb(
            info, subscription.change_plan, id, expected_version, verb="upgrade", plan=plan, quantity=quantity
        )

    @strawberry.mutation(graphql_type=Subscription, description="A smaller plan or fewer seats; the status stays.")
    async def downgrade_subscription(
        self, info: Info, id: strawberry.ID, plan: Optional[str] = UNSET, quantity: Optional[int] = UNSET,
        expected_version: Version = UNSET,
    ) -> SubscriptionRow:  # fmt: skip
        return await verb(
            info, subscription.change_plan, id, expected_version, verb="downgrade", plan=plan, quantity=quantity
        )

    @strawberry.mutation(graphql_type=Subscription, description="Start the next billing period.")
    async def renew_subscription(
        self, info: Info, id: strawberry.ID, expected_version: Version = UNSET
    ) -> SubscriptionRow:
        return await verb(info, subscription.renew, id, expected_version)
