"""Hooks: plain functions registered per event name, run inside the verb's transaction.

``@before("Ticket.Created")`` runs after the transition is checked and before the change is
applied; it may adjust ``change.values`` or raise to abort. ``@after("Ticket.Escalated")`` runs
once the entity and its event are written; whatever it creates through ``change.uow`` commits
with the verb, or not at all. The hooks that ship live in ``resolvers.reactions``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from resolvers.errors import DomainError, HookFailed

if TYPE_CHECKING:
    from models.base import Entity
    from models.event import Event
    from resolvers.unit import UnitOfWork


@dataclass
class Change:
    """What a hook sees: the verb being applied and, for after-hooks, its event."""

    uow: UnitOfWork
    entity: Entity
    verb: str
    event_type: str
    #: field → new value; before-hooks may add to it or change it.
    values: dict[str, Any]
    #: verb arguments such as ``reason``; recorded in the event data.
    args: dict[str, Any] = field(default_factory=dict)
    #: the state before the verb (None on create).
    before: dict[str, Any] | None = None
    event: Event | None = None


log = logging.getLogger("support_graph.hooks")
Hook = Callable[[Change], Awaitable[None]]
_before: dict[str, list[Hook]] = defaultdict(list)
_after: dict[str, list[Hook]] = defaultdict(list)


def before(*event_types: str) -> Callable[[Hook], Hook]:
    """Register a hook that runs before the change of these events is applied."""

    def register(hook: Hook) -> Hook:
        for event_type in event_types:
            _before[event_type].append(hook)
        return hook

    return register


def after(*event_types: str) -> Callable[[Hook], Hook]:
    """Register a hook that runs after these events are appended, in the same transaction."""

    def register(hook: Hook) -> Hook:
        for event_type in event_types:
            _after[event_type].append(hook)
        return hook

    return register


async def run_before(change: Change) -> None:
    for hook in _before.get(change.event_type, ()):
        await _run(hook, change, "before")


async def run_after(change: Change) -> None:
    for hook in _after.get(change.event_type, ()):
        await _run(hook, change, "after")


async def _run(hook: Hook, change: Change, when: str) -> None:
    """Run one hook; a failure aborts the verb with an error naming the hook."""
    try:
        await hook(change)
    except DomainError:
        raise
    except Exception as error:
        log.exception("%s-hook %s of %s failed", when, hook.__name__, change.event_type)
        raise HookFailed(
            f"{change.event_type} was not applied: one of its hooks failed. Nothing was written."
        ) from error
