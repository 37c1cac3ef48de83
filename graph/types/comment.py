"""Comment: a reply on a ticket that its requester sees, or an internal note."""

from datetime import datetime
from typing import Annotated, Any, Optional

import strawberry
from strawberry import UNSET
from strawberry.types import Info

from graph.types.common import Connection, MetaFields, Node, given, is_row_of, related
from graph.types.event import history
from models.conversation import Comment as CommentRow
from models.entities import Ticket as TicketRow
from models.enums import CommentAuthorRole
from models.history import stood_at


@strawberry.type(description="A reply on a ticket (public: the requester sees it) or an internal note.")
class Comment(Node, MetaFields):
    ticket = related("Ticket", "ticket_id", "The ticket it belongs to.", required=True)
    body: str
    public: bool = strawberry.field(description="A reply the requester sees; false for an internal note.")
    author = related("Contact", "author_id", "Who wrote it; null for the actor that called commentTicket.")
    author_role: CommentAuthorRole = strawberry.field(
        description="REQUESTER when the author is the ticket's requester, else AGENT."
    )

    events = history()
    is_type_of = is_row_of("Comment")


@strawberry.input(description="A reply or an internal note.")
class CommentInput:
    body: str = strawberry.field(description="1–65,536 characters, not blank.")
    public: bool = strawberry.field(default=True, description="false: an internal note the requester never sees.")
    author: Optional[strawberry.ID] = strawberry.field(
        default=UNSET,
        description="A contact; the ticket's requester makes it a REQUESTER comment. Default: the caller.",
    )


def _thread_filter(ticket: TicketRow, public: Optional[bool], include_deleted: bool) -> tuple[dict, bool]:
    """The ``where`` and ``includeDeleted`` of a ticket's thread; a replayed ticket
    (``ticket(asOf:)``) shows the comments that existed then."""
    where: dict[str, Any] = {} if public is None else {"public": {"eq": public}}
    when: Optional[datetime] = stood_at(ticket)
    if when is None:
        return where, include_deleted
    where["created_at"] = {"lte": when}
    if not include_deleted:  # those deleted since were live then
        where["or_"] = [{"deleted_at": {"is_null": True}}, {"deleted_at": {"gt": when}}]
    return where, True


async def comments(
    root: strawberry.Parent[TicketRow],
    info: Info,
    first: Optional[int] = UNSET,
    after: Optional[str] = UNSET,
    last: Optional[int] = UNSET,
    before: Optional[str] = UNSET,
    public: Annotated[
        Optional[bool], strawberry.argument(description="true: replies only; false: notes only.")
    ] = UNSET,
    include_deleted: bool = False,
) -> Connection[Comment]:
    where, deleted = _thread_filter(root, given(public), include_deleted)
    pages = info.context.loaders.pages(
        CommentRow, "ticket_id", where=where or None, first=given(first),
        after=given(after), last=given(last),
        before=given(before), include_deleted=deleted,
    )  # fmt: skip
    return Connection.of(await pages.load(root.id))


async def comment_count(root: strawberry.Parent[TicketRow], info: Info) -> int:
    where, deleted = _thread_filter(root, None, False)
    return await info.context.loaders.counts(
        CommentRow, "ticket_id", where=where or None, include_deleted=deleted
    ).load(root.id)


thread = strawberry.field(resolver=comments, description="The conversation, oldest first.")
thread_length = strawberry.field(resolver=comment_count, description="How many comments the thread holds.")
