"""Ticket verbs beyond create, update and delete (graph/mutations/crud.py): assign, resolve, escalate, close, reopen."""

from typing import Optional

import strawberry
from strawberry import UNSET
from strawberry.types import Info

from graph.mutations import verb
from graph.types.ticket import Ticket
from resolvers.verbs import ticket

Version = Optional[int]


@strawberry.type
class TicketMutations:
    @strawberry.mutation
    async def assign_ticket(
        self, info: Info, id: strawberry.ID, assignee: strawberry.ID, expected_version: Version = UNSET
    ) -> Ticket:
        return await verb(info, ticket.assign, id, expected_version, assignee=assignee)

    @strawberry.mutation
    async def resolve_ticket(
        self, info: Info, id: strawberry.ID, resolution: Optional[str] = UNSET,
        expected_version: Version = UNSET,
    ) -> Ticket:  # fmt: skip
        return await verb(info, ticket.resolve, id, expected_version, resolution=resolution)

    @strawberry.mutation(description="Hand the ticket to engineering: raises an Issue.")
    async def escalate_ticket(
        self, info: Info, id: strawberry.ID, reason: Optional[str] = UNSET,
        expected_version: Version = UNSET,
    ) -> Ticket:  # fmt: skip
        return await verb(info, ticket.escalate, id, expected_version, reason=reason)

    @strawberry.mutation
    async def close_ticket(self, info: Info, id: strawberry.ID, expected_version: Version = UNSET) -> Ticket:
        return await verb(info, ticket.close, id, expected_version)

    @strawberry.mutation
    async def reopen_ticket(
        self, info: Info, id: strawberry.ID, reason: Optional[str] = UNSET,
        expected_version: Version = UNSET,
    ) -> Ticket:  # fmt: skip
        return await verb(info, ticket.reopen, id, expected_version, reason=reason)
