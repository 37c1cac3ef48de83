"""Ticket verbs beyond create, update and delete: assign, resolve, escalate, close, reopen, and the
conversation's comment and merge."""

from __future__ import annotations

from typing import Any

from models.conversation import BODY, Comment
from models.entities import Ticket
from models.ids import new_id
from models.lifecycle import LIFECYCLES
from models.types import utcnow
from resolvers.errors import BadInput, InvalidTransition
from resolvers.work import Work

#: the longest note a merge adds to the target, leaving room for the line naming the source
MERGE_COMMENT = BODY - 1000


async def assign(uow: Work, id_: str, *, assignee: str, expected_version: int | None = None) -> Ticket:
    return await uow.transition(
        Ticket, id_, "assign", values={"assignee_id": assignee}, expected_version=expected_version
    )


async def resolve(uow: Work, id_: str, *, resolution: str | None = None, expected_version: int | None = None) -> Ticket:
    return await uow.transition(
        Ticket, id_, "resolve", values={"resolved_at": utcnow()},
        args={"resolution": resolution}, expected_version=expected_version,
    )  # fmt: skip


async def escalate(uow: Work, id_: str, *, reason: str | None = None, expected_version: int | None = None) -> Ticket:
    return await uow.transition(Ticket, id_, "escalate", args={"reason": reason}, expected_version=expected_version)


async def close(uow: Work, id_: str, *, expected_version: int | None = None) -> Ticket:
    return await uow.transition(Ticket, id_, "close", values={"closed_at": utcnow()}, expected_version=expected_version)


async def reopen(uow: Work, id_: str, *, reason: str | None = None, expected_version: int | None = None) -> Ticket:
    """Reopen a resolved or closed ticket; it is neither resolved nor closed any more."""
    return await uow.transition(
        Ticket, id_, "reopen", values={"resolved_at": None, "closed_at": None},
        args={"reason": reason}, expected_version=expected_version,
    )  # fmt: skip


async def comment(
    uow: Work, id_: str, *, body: str, public: bool = True, author: str | None = None,
    expected_version: int | None = None,
) -> Ticket:  # fmt: skip
    """Add a public reply or an internal note to the ticket's thread (``Ticket.Commented``).

    The author's role is REQUESTER when the author is the ticket's requester, else AGENT (no
    author: the calling actor, an agent). A public reply from the requester brings a waiting or
    resolved ticket back to the team (PENDING → OPEN, RESOLVED → REOPENED); the first public
    reply from the support side is the ticket's first response. An internal note changes
    nothing but the thread.
    """
    ticket = await uow.load(Ticket, id_)
    role = "REQUESTER" if author is not None and author == ticket.requester_id else "AGENT"
    values: dict[str, Any] = {}
    if public and role == "AGENT" and ticket.first_response_at is None:
        values["first_response_at"] = utcnow()
    if public and role == "REQUESTER":
        if ticket.status == "PENDING":
            values["status"] = "OPEN"
        elif ticket.status == "RESOLVED":
            values |= {"status": "REOPENED", "resolved_at": None}
    note = await uow.add(
        Comment, {"ticket_id": id_, "body": body, "public": public, "author_id": author, "author_role": role},
        id_=new_id(Comment.prefix), at=utcnow(),
    )  # fmt: skip
    recorded = {"id": note.id, "body": note.body, "public": note.public, "author": author, "authorRole": role}
    return await uow.transition(
        Ticket, id_, "comment", values=values, args={"comment": recorded}, expected_version=expected_version
    )


async def merge(
    uow: Work, id_: str, *, into: str, comment: str | None = None, expected_version: int | None = None
) -> Ticket:
    """Close the ticket into another one (``Ticket.Merged``): the target keeps the conversation
    going and gets an internal note saying so (``Ticket.Commented``). A merged ticket takes no
    more verbs."""
    if into == id_:
        raise BadInput("A ticket cannot be merged into itself", argument="into")
    if comment is not None and len(comment) > MERGE_COMMENT:
        raise BadInput(f"comment is longer than {MERGE_COMMENT} characters", argument="comment")
    for each in sorted((id_, into)):  # one lock order for every merge: opposite merges cannot deadlock
        await uow.load(Ticket, each)
    target = await uow.load(Ticket, into)
    lifecycle = LIFECYCLES["Ticket"]
    if lifecycle.sealed(target) or not lifecycle.permits("merge", target.status):
        allowed = [] if lifecycle.sealed(target) else lifecycle.allowed(target.status)
        state = str(target.status).lower()
        raise InvalidTransition(
            "Ticket", target.status, "merge", allowed, ticket=into,
            message=f"Cannot merge into {into}: it is {state}" + (" (merged)" if target.merged_into_id else ""),
        )  # fmt: skip
    source = await uow.transition(
        Ticket, id_, "merge", values={"merged_into_id": into, "closed_at": utcnow()},
        args={"into": into, "comment": comment}, expected_version=expected_version,
    )  # fmt: skip
    text = f"Merged {source.id} ({source.subject}) into this ticket."
    await add_comment(uow, into, body=f"{text}\n\n{comment}" if comment else text, public=False)
    return source


add_comment = comment  # ``merge`` takes an argument of that name
