"""The conversation on a ticket: replies the requester sees and internal notes.

A comment is written by the ticket's ``comment`` verb and recorded in that verb's
``Ticket.Commented`` event; it has no lifecycle of its own beyond soft delete.
"""

from __future__ import annotations

from typing import ClassVar

from sqlalchemy import Index, String
from sqlmodel import Field

from models.base import Entity, enum_column, reference, register
from models.enums import CommentAuthorRole

BODY = 65536  # the longest comment body, as a description


@register
class Comment(Entity, table=True):
    type_name: ClassVar[str] = "Comment"
    prefix: ClassVar[str] = "comment"
    # a ticket's thread, oldest first, is one walk of this index
    __table_args__ = (Index("ix_comment_ticket_created", "ticket_id", "created_at", "id"),)

    ticket_id: str = Field(foreign_key="ticket.id", sa_type=String(40))
    body: str = Field(sa_type=String(BODY))
    public: bool = True
    author_id: str | None = reference("contact")
    author_role: str = enum_column(CommentAuthorRole, "AGENT")
