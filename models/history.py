"""Entities as JSON documents, the shape event data takes, and state replayed from events.

Documents use the API's field names (``firstResponseAt``, ``requester``), so event data reads
the same as the GraphQL types.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from functools import cache
from typing import Any

from models.base import Entity
from models.event import Event


@cache
def api_names(kind: type[Entity]) -> dict[str, str]:
    """Column name → API field name: ``requester_id`` → ``requester``."""
    names = {}
    for column in kind.__table__.columns:
        name = column.name.removesuffix("_id") if column.foreign_keys else column.name
        head, *rest = name.split("_")
        names[column.name] = head + "".join(part.title() for part in rest)
    return names


def api_name(kind: type[Entity], column: str) -> str:
    return api_names(kind)[column]


def jsonable(value: Any) -> Any:
    """A value as it is stored in event data."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value


def snapshot(entity: Entity) -> dict[str, Any]:
    """The whole entity as a document (the data of its ``Created`` event)."""
    kind = type(entity)
    return {api: jsonable(getattr(entity, col)) for col, api in api_names(kind).items() if col != "tenant"}


def replay(kind: type[Entity], tenant: str, events: Iterable[Event]) -> Entity | None:
    """The entity as it stood after ``events`` (its own, in order), or None before its creation."""
    columns = {api: col for col, api in api_names(kind).items()}
    state: dict[str, Any] | None = None
    for event in events:
        if event.type.endswith(".Created"):
            state = {columns[k]: v for k, v in event.data.items() if k in columns}
        elif state is not None:
            for key, change in event.data.items():
                if key in columns and isinstance(change, dict) and "after" in change:
                    state[columns[key]] = change["after"]
            state["version"] = event.version
            state["updated_at"] = event.timestamp.isoformat()
            if event.type.endswith(".Deleted"):
                state["deleted_at"] = event.timestamp.isoformat()
    if state is None:
        return None
    state["tenant"] = tenant
    return kind.model_validate(state)


def mark_as_of(entity: Entity, when: datetime) -> None:
    """Note that ``entity`` is a replay of how it stood at ``when`` (see ``stood_at``)."""
    entity._as_of = when  # a plain attribute beside the columns


def stood_at(entity: Entity) -> datetime | None:
    """When a replayed entity stood so, or None for a current row: relations read through a
    replay (``ticket(asOf:) { comments }``) show what existed then."""
    when: datetime | None = getattr(entity, "_as_of", None)
    return when
