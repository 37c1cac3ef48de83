"""``Work``: what verbs and hooks may do inside a write transaction.

``resolvers.unit.UnitOfWork`` is the implementation; verbs and hooks depend on this protocol
only, so the registry of hooks and the unit that runs them do not import each other.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol, TypeVar

from models.base import Entity

E = TypeVar("E", bound=Entity)


class Work(Protocol):
    """A write transaction on behalf of one actor of one tenant."""

    tenant: str
    actor: str

    async def load(self, kind: type[E], id_: str, *, lock: bool = True) -> E:
        """The live entity ``id_`` of this tenant, row-locked until commit; else ``NotFound``."""
        ...

    async def find(self, kind: type[E], id_: str) -> E | None:
        """The live entity ``id_`` of this tenant, unlocked, or None."""
        ...

    async def find_all(self, kind: type[E], **equal: Any) -> list[E]:
        """The live entities of this tenant whose columns equal ``equal``, oldest first."""
        ...

    async def claim(self, kind: type[E], statement: Any) -> list[Any]:
        """Run a conditional ``UPDATE … RETURNING``: the rows this unit won."""
        ...

    def wake(self, channel: str, value: int = 0) -> None:
        """Once the unit commits, wake the listeners of ``channel`` on every worker with ``value``."""
        ...

    async def create(self, kind: type[E], values: dict[str, Any], *, args: dict[str, Any] | None = None) -> E:
        """Create an entity with its ``Created`` event."""
        ...

    async def add(self, kind: type[E], values: dict[str, Any], *, id_: str, at: datetime) -> E:
        """Write a new entity that another entity's verb records in its own event."""
        ...

    async def transition(
        self,
        kind: type[E],
        id_: str,
        verb: str,
        *,
        values: dict[str, Any] | None = None,
        args: dict[str, Any] | None = None,
        expected_version: int | None = None,
    ) -> E:
        """Apply ``verb`` (update, delete or a lifecycle verb) to an entity, with its event."""
        ...
