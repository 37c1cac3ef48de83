"""Contact mutations: create, update, delete, qualify, assign."""

from typing import Optional

import strawberry
from strawberry import UNSET
from strawberry.types import Info

from resolvers import contact
from graph.mutations import create, delete, update, verb
from graph.types.contact import Contact, CreateContactInput, UpdateContactInput

Version = Optional[int]


@strawberry.type
class ContactMutations:
    @strawberry.mutation
    async def create_contact(self, info: Info, input: CreateContactInput) -> Contact:
        return await create(info, "Contact", input)

    @strawberry.mutation
    async def update_contact(
        self, info: Info, id: strawberry.ID, input: UpdateContactInput, expected_version: Version = UNSET
    ) -> Contact:
        return await update(info, "Contact", id, input, expected_version)

    @strawberry.mutation
    async def delete_contact(self, info: Info, id: strawberry.ID, expected_version: Version = UNSET) -> Contact:
        return await delete(info, "Contact", id, expected_version)

    @strawberry.mutation(description="LEAD → QUALIFIED.")
    async def qualify_contact(self, info: Info, id: strawberry.ID, expected_version: Version = UNSET) -> Contact:
        return await verb(info, contact.qualify, id, expected_version)

    @strawberry.mutation(description="Give the contact an owner (a teammate's contact id).")
    async def assign_contact(
        self, info: Info, id: strawberry.ID, owner: strawberry.ID, expected_version: Version = UNSET
    ) -> Contact:
        return await verb(info, contact.assign, id, expected_version, owner=owner)
