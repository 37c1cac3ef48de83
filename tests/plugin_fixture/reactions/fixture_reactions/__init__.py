"""A deployment's own reactions, as a plugin: every new ticket is tagged and gets a NOTE.

Both hooks run inside the verb's transaction: the tag is written with the ticket, the note
commits with it or not at all. A subject holding ``[plugin:bug]`` or ``[plugin:outage]`` makes
the after-hook fail (a bug of the plugin; an outage of whatever it talks to, not of the
database), which must undo the whole verb.
"""

from __future__ import annotations

from models.entities import Activity
from resolvers.hooks import Change, Hooks

TAG = "via-plugin"
FAILURES = {"[plugin:bug]": KeyError, "[plugin:outage]": ConnectionError}


async def tag_new_ticket(change: Change) -> None:
    """Before the ticket is written: add the plugin's tag."""
    tags = list(change.values.get("tags") or [])
    change.values["tags"] = [*tags, TAG] if TAG not in tags else tags


async def note_new_ticket(change: Change) -> None:
    """After the ticket and its event are written: a NOTE on the ticket, in the same unit."""
    ticket = change.entity
    for marker, failure in FAILURES.items():
        if marker in ticket.subject:
            raise failure(f"the fixture plugin failed on {marker}")
    await change.uow.create(
        Activity,
        {"subject": f"Plugin note: {ticket.subject}"[:500], "type": "NOTE", "ticket_id": ticket.id},
    )


def register(hooks: Hooks) -> None:
    hooks.before("Ticket.Created")(tag_new_ticket)
    hooks.after("Ticket.Created")(note_new_ticket)
