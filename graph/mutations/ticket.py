"""Ticket verbs beyond create, update and delete (graph/mutations/crud.py): assign, resolve, escalate, close, reopen."""

from typing import Optional

import strawberry
from strawberry import UNSET
from strawberry.types import Info

from graph.mutations import verb
from graph.types.ticket import Ticket
from models.entities import Ticket as TicketRow
from resolvers.verbs import ticket

Version = Optional[int]


@strawberry.type
class TicketMutations:
    @strawberry.mutation(graphql_type=Ticket)
    async def assign_ticket(
        self, info: Info, id: strawberry.ID, assignee: strawberry.ID, expected_version: Version = UNSET
    ) -> TicketRow:
        return await verb(info, ticket.assign, id, expected_version, assignee=assignee)

    @strawberry.mutation(graphql_type=Ticket)
    async def resolve_ticket(
        self, info: Info, id: strawberry.ID, resolution: Optional[str] = UNSET,
        expected_version: Version = UNSET,
    ) -> TicketRow:  # fmt: skip
        return await verb(info, ticket.resolve, id, expected_version, resolution=resolution)

    @strawberry.mutation(graphql_type=Ticket, description="Hand the ticket to engineering: raises an Issue.")
    async def escalate_ticket(
        self, info: Info, id: strawberry.ID, reason: Optional[str] = UNSET,
        expected_version: Version = UNSET,
    ) -> TicketRow:  # fmt: skip
        return await verb(info, ticket.escalate, id, expected_version, reason=reason)

    @strawberry.mutation(graphql_type=Ticket)
    async def close_ticket(self, info: Info, id: strawberry.ID, expected_version: Version = UNSET) -> TicketRow:
        return await verb(info, ticket.close, id, expected_version)

    @strawberry.mutation(graphql_type=Ticket)
    async def reopen_ticket(
        self, info: Info, id: strawberry.ID, reason: Optional[str] = UNSET,
        expected_version: Version = UNSET,
    ) -> TicketRow:  # fmt: skip
        return await verb(info, ticket.reopen, id, expected_version, reason=reason)
