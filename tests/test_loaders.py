"""The per-request loaders (resolvers/loaders.py) on every kind of database they meet: SQLite
and PostgreSQL files read through plain reads, and an in-memory SQLite database, which only the
engine's own connection can see and is read through the ORM instead. All three must answer alike.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime

import pytest

from models.db import migrate
from models.db.engine import Database
from models.entities import Contact, Organization
from resolvers.loaders import Loaders
from resolvers.reactions import shipped
from resolvers.unit import UnitOfWork
from tests.databases import fresh_database


@pytest.fixture(params=["sqlite", "postgresql", "memory"])
def url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    if request.param == "memory":
        yield "sqlite+aiosqlite://"
        return
    with fresh_database(request.param, tmp_path) as found:
        yield found


@pytest.fixture
async def db(url: str) -> AsyncIterator[Database]:
    database = Database(url)
    await migrate.upgrade(database)
    yield database
    await database.dispose()


async def _graph(db: Database, tenant: str) -> dict[str, str]:
    """An organization with three contacts (the middle one deleted afterwards), in ``tenant``."""
    async with UnitOfWork(db, tenant=tenant, actor="test", hooks=shipped()) as uow:
        org = await uow.create(Organization, {"name": f"Org {tenant}", "slug": f"org-{tenant}"})
        made = [
            await uow.create(Contact, {"name": f"{name} {tenant}", "email": f"{name}@{tenant}.example",
                                       "organization_id": org.id})
            for name in ("ada", "bo", "cy")
        ]  # fmt: skip
    async with UnitOfWork(db, tenant=tenant, actor="test", hooks=shipped()) as uow:
        await uow.transition(Contact, made[1].id, "delete")
    return {"org": org.id, "ada": made[0].id, "bo": made[1].id, "cy": made[2].id}


async def test_by_id_and_many_by_answer_alike_on_every_database(db: Database):
    mine, theirs = await _graph(db, "t-one"), await _graph(db, "t-two")
    loaders = Loaders(db, "t-one")

    contacts = await loaders.by_id(Contact).load_many([mine["cy"], mine["bo"], "contact_missing", theirs["ada"]])
    assert [c and c.id for c in contacts] == [mine["cy"], mine["bo"], None, None]  # another tenant's: None
    cy, bo = contacts[0], contacts[1]
    assert (cy.name, cy.email, cy.organization_id, cy.version) == ("cy t-one", "cy@t-one.example", mine["org"], 1)
    assert isinstance(cy.created_at, datetime) and cy.created_at.utcoffset().total_seconds() == 0
    assert bo.deleted_at is not None  # a relation still shows what it points to

    by_org = loaders.many_by(Contact, "organization_id")
    members, others, none = await by_org.load_many([mine["org"], theirs["org"], "organization_missing"])
    assert [c.id for c in members] == [mine["ada"], mine["cy"]]  # live ones, oldest first
    assert others == [] and none == []  # another tenant's organization is not seen

    (org,) = await loaders.by_id(Organization).load_many([mine["org"]])
    assert (org.name, org.slug) == ("Org t-one", "org-t-one")
    assert set(Organization.__table__.columns.keys()) <= set(vars(org))  # every column was read
