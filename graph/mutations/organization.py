"""Organization mutations: create, update, delete."""

from typing import Optional

import strawberry
from strawberry import UNSET
from strawberry.types import Info

from graph.mutations import create, delete, update
from graph.types.organization import CreateOrganizationInput, Organization, UpdateOrganizationInput

Version = Optional[int]


@strawberry.type
class OrganizationMutations:
    @strawberry.mutation
    async def create_organization(self, info: Info, input: CreateOrganizationInput) -> Organization:
        return await create(info, "Organization", input)

    @strawberry.mutation
    async def update_organization(
        self, info: Info, id: strawberry.ID, input: UpdateOrganizationInput,
        expected_version: Version = UNSET,
    ) -> Organization:  # fmt: skip
        return await update(info, "Organization", id, input, expected_version)

    @strawberry.mutation
    async def delete_organization(
        self, info: Info, id: strawberry.ID, expected_version: Version = UNSET
    ) -> Organization:
        return await delete(info, "Organization", id, expected_version)
