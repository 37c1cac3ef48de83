"""Hooks: plain functions registered per event name, run inside the verb's transaction.

A ``Hooks`` registry is built once, at wiring time, and handed to every unit of work:
``resolvers.reactions.register`` adds the hooks that ship, and installed packages add their own
through the ``support_graph.reactions`` entry-point group (``load_plugins``). Nothing registers
itself on import.

A before-hook runs after the transition is checked and before the change is applied; it may
adjust ``change.values`` or raise to abort. An after-hook runs once the entity and its event
are written; whatever it creates through ``change.uow`` commits with the verb, or not at all.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from resolvers.errors import DomainError, HookFailed

if TYPE_CHECKING:
    from models.base import Entity
    from models.event import Event
    from resolvers.work import Work

log = logging.getLogger("support_graph.hooks")

#: the entry-point group through which installed packages register hooks
PLUGIN_GROUP = "support_graph.reactions"


@dataclass
class Change:
    """What a hook sees: the verb being applied and, for after-hooks, its event."""

    uow: Work
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


Hook = Callable[[Change], Awaitable[None]]


class Hooks:
    """The hooks of one deployment, per event type, in the order they were registered."""

    def __init__(self) -> None:
        self._before: dict[str, list[Hook]] = defaultdict(list)
        self._after: dict[str, list[Hook]] = defaultdict(list)

    def before(self, *event_types: str) -> Callable[[Hook], Hook]:
        """Decorator: run the hook before the change of these events is applied."""
        return _registrar(self._before, event_types)

    def after(self, *event_types: str) -> Callable[[Hook], Hook]:
        """Decorator: run the hook after these events are appended, in the same transaction."""
        return _registrar(self._after, event_types)

    def remove(self, hook: Hook) -> None:
        """Unregister ``hook`` from every event type it was registered for."""
        for table in (self._before, self._after):
            for hooks in table.values():
                while hook in hooks:
                    hooks.remove(hook)

    async def run_before(self, change: Change) -> None:
        for hook in self._before.get(change.event_type, ()):
            await _run(hook, change, "before")

    async def run_after(self, change: Change) -> None:
        for hook in self._after.get(change.event_type, ()):
            await _run(hook, change, "after")


def _registrar(table: dict[str, list[Hook]], event_types: tuple[str, ...]) -> Callable[[Hook], Hook]:
    def register(hook: Hook) -> Hook:
        for event_type in event_types:
            table[event_type].append(hook)
        return hook

    return register


Registration = Callable[[Hooks], None]


class PluginFailed(RuntimeError):
    """An installed reactions plugin could not register its hooks; the message names it."""


def load_plugins(hooks: Hooks, group: str = PLUGIN_GROUP) -> list[str]:
    """Let every installed plugin register its hooks; the names of those loaded.

    A plugin is an entry point in ``group`` naming a callable ``register(hooks)``. One that
    cannot be loaded stops the start with an error naming it: a deployment that counts on a
    reaction must not run without it."""
    loaded = []
    for point in sorted(entry_points(group=group), key=lambda p: p.name):
        try:
            register: Registration = point.load()
            register(hooks)
        except Exception as error:
            raise PluginFailed(
                f"The reactions plugin {point.name!r} ({point.value}) failed to load: {error}"
            ) from error
        loaded.append(point.name)
        log.info("reactions plugin %s (%s) registered", point.name, point.value)
    return loaded


async def _run(hook: Hook, change: Change, when: str) -> None:
    """Run one hook; a failure aborts the verb with an error naming the hook."""
    try:
        await hook(change)
    except DomainError:
        raise
    except Exception as error:
        log.exception("%s-hook %s of %s failed", when, getattr(hook, "__qualname__", hook), change.event_type)
        raise HookFailed(
            f"{change.event_type} was not applied: one of its hooks failed. Nothing was written."
        ) from error
