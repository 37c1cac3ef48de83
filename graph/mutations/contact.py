"""Contact verbs beyond create, update and delete (graph/mutations/crud.py): qualify, assign."""

from typing import Optional

import strawberry
from strawberry import UNSET
from strawberry.types import Info

from graph.mutations import verb
from graph.types.contact import Contact
from models.entities import Contact as ContactRow
from resolvers.verbs import contact

Version = Optional[int]


@strawberry.type
class ContactMutations:
    @strawberry.mutation(graphql_type=Contact, description="LEAD → QUALIFIED.")
    async def qualify_contact(self, info: Info, id: strawberry.ID, expected_version: Version = UNSET) -> ContactRow:
        return await verb(info, contact.qualify, id, expected_version)

    @strawberry.mutation(graphql_type=Contact, description="Give the contact an owner (a teammate's contact id).")
    async def assign_contact(
        self, info: Info, id: strawberry.ID, owner: strawberry.ID, expected_version: Version = UNSET
    ) -> ContactRow:
        return await verb(info, contact.assign, id, expected_version, owner=owner)
