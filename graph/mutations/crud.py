"""``createX``, ``updateX`` and ``deleteX``: the same three fields for every entity, made once.

No ``from __future__ import annotations`` here: the resolvers' annotations must be real objects
for Strawberry to read.
"""

from typing import Optional

import strawberry
from strawberry import UNSET
from strawberry.types import Info

from graph.mutations import create, delete, update


def crud(entity: str, node: type, create_input: type, update_input: type, *, created: str = "") -> type:
    """A type with the create, update and delete mutations of ``entity`` (to merge into Mutation)."""

    async def create_entity(info: Info, input: create_input) -> node:
        return await create(info, entity, input)

    async def update_entity(
        info: Info, id: strawberry.ID, input: update_input, expected_version: Optional[int] = UNSET
    ) -> node:
        return await update(info, entity, id, input, expected_version)

    async def delete_entity(info: Info, id: strawberry.ID, expected_version: Optional[int] = UNSET) -> node:
        return await delete(info, entity, id, expected_version)

    name = "".join("_" + c.lower() if c.isupper() else c for c in entity).lstrip("_")
    article = "an" if name[0] in "aeiou" else "a"
    fields = {
        f"create_{name}": strawberry.mutation(
            resolver=create_entity, description=created or f"Create {article} {name.replace('_', ' ')}."
        ),
        f"update_{name}": strawberry.mutation(
            resolver=update_entity,
            description="Change the fields given (null clears one); VERSION_CONFLICT unless "
            "expectedVersion, when given, is the current version.",
        ),
        f"delete_{name}": strawberry.mutation(
            resolver=delete_entity, description="Soft-delete: hidden from lists unless includeDeleted."
        ),
    }
    return strawberry.type(type(f"{entity}Crud", (), fields))
