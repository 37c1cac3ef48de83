"""One mutation per verb. Each field is a few lines: open a unit of work, call the resolver."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from strawberry.types import Info

from graph.types.common import given, input_values
from models.base import ENTITIES, Entity

E = TypeVar("E", bound=Entity)


async def create(info: Info, entity: str, data: Any) -> Entity:
    kind = ENTITIES[entity]
    async with info.context.unit() as uow:
        return await uow.create(kind, input_values(kind, data))


async def update(info: Info, entity: str, id_: str, data: Any, expected_version: Any) -> Entity:
    kind = ENTITIES[entity]
    async with info.context.unit() as uow:
        return await uow.transition(
            kind, id_, "update", values=input_values(kind, data),
            expected_version=given(expected_version),
        )  # fmt: skip


async def delete(info: Info, entity: str, id_: str, expected_version: Any) -> Entity:
    async with info.context.unit() as uow:
        return await uow.transition(ENTITIES[entity], id_, "delete", expected_version=given(expected_version))


async def verb(info: Info, action: Callable[..., Awaitable[E]], id_: str, expected_version: Any, **arguments: Any) -> E:
    """Run a lifecycle verb (``resolvers.verbs.ticket.escalate``) on behalf of the caller."""
    async with info.context.unit() as uow:
        return await action(
            uow, id_, expected_version=given(expected_version),
            **{k: given(v) for k, v in arguments.items()},
        )  # fmt: skip
