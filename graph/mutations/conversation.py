"""The conversation's mutations: a reply or note on a ticket, merging tickets, removing a comment."""

from typing import Optional

import strawberry
from strawberry import UNSET
from strawberry.types import Info

from graph.mutations import delete, verb
from graph.types.comment import Comment, CommentInput
from graph.types.common import given
from graph.types.ticket import Ticket
from models.conversation import Comment as CommentRow
from models.entities import Ticket as TicketRow
from resolvers.verbs import ticket

Version = Optional[int]


@strawberry.type
class ConversationMutations:
    @strawberry.mutation(
        graphql_type=Ticket,
        description="Reply on a ticket or add an internal note (Ticket.Commented). A public reply from the "
        "requester reopens a PENDING or RESOLVED ticket; the first public reply from an agent is its first response.",
    )
    async def comment_ticket(
        self, info: Info, id: strawberry.ID, input: CommentInput, expected_version: Version = UNSET
    ) -> TicketRow:
        return await verb(
            info, ticket.comment, id, expected_version, body=input.body, public=input.public, author=given(input.author)
        )

    @strawberry.mutation(
        graphql_type=Ticket,
        description="Close a ticket into another (Ticket.Merged); the target gets an internal note saying so. "
        "Returns the merged ticket. A merged ticket takes no more changes.",
    )
    async def merge_ticket(
        self, info: Info, id: strawberry.ID, into: strawberry.ID, comment: Optional[str] = UNSET,
        expected_version: Version = UNSET,
    ) -> TicketRow:  # fmt: skip
        return await verb(info, ticket.merge, id, expected_version, into=into, comment=comment)

    @strawberry.mutation(graphql_type=Comment, description="Soft-delete a comment: it leaves the thread and search.")
    async def delete_comment(self, info: Info, id: strawberry.ID, expected_version: Version = UNSET) -> CommentRow:
        deleted = await delete(info, "Comment", id, expected_version)
        assert isinstance(deleted, CommentRow)
        return deleted
