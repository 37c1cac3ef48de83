"""Baseline (B) of ``bench.read_write``: plain Strawberry + SQLModel + aiodataloader, the textbook way.

    /tmp/venv/bin/python -m bench.baseline_strawberry --port 8002 --database-url sqlite+aiosqlite:////tmp/x/bench.db

Its own SQLModel tables (only the columns it shows) over the same SQLite tables, its own minimal
Strawberry types, per-request DataLoaders for every to-one and to-many relation, one
``AsyncSession`` per loader batch / resolver, no caches, no mutations. Enough schema for the
two read scenarios of the benchmark:

* ``{ tickets(first: 50) { nodes { id subject status priority requester { id name }
  organization { id name } } } }`` — oldest first, like support-graph;
* ``ticket(id)`` with requester, assignee, organization { subscriptions(first) }, deal,
  subscription (the organization's current one), issues, activities, events(first).

Strings stand for enums (same JSON on the wire); timestamps are shown as UTC ISO-8601.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from datetime import UTC, datetime

import strawberry
from aiodataloader import DataLoader
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import Field, SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession
from strawberry.asgi import GraphQL
from strawberry.types import Info

TENANT = "default"


# --- tables (the columns this server shows) ------------------------------------------------------


class ContactRow(SQLModel, table=True):
    __tablename__ = "contact"
    id: str = Field(primary_key=True)
    tenant: str
    name: str
    email: str | None = None
    deleted_at: datetime | None = None


class OrganizationRow(SQLModel, table=True):
    __tablename__ = "organization"
    id: str = Field(primary_key=True)
    tenant: str
    name: str
    deleted_at: datetime | None = None


class DealRow(SQLModel, table=True):
    __tablename__ = "deal"
    id: str = Field(primary_key=True)
    tenant: str
    name: str
    stage: str
    value: float
    deleted_at: datetime | None = None


class SubscriptionRow(SQLModel, table=True):
    __tablename__ = "subscription"
    id: str = Field(primary_key=True)
    tenant: str
    organization_id: str | None = None
    plan: str | None = None
    status: str
    started_at: datetime
    created_at: datetime
    deleted_at: datetime | None = None


class TicketRow(SQLModel, table=True):
    __tablename__ = "ticket"
    id: str = Field(primary_key=True)
    tenant: str
    subject: str
    status: str
    priority: str | None = None
    requester_id: str | None = None
    assignee_id: str | None = None
    organization_id: str | None = None
    deal_id: str | None = None
    created_at: datetime
    deleted_at: datetime | None = None


class IssueRow(SQLModel, table=True):
    __tablename__ = "issue"
    id: str = Field(primary_key=True)
    tenant: str
    title: str
    status: str
    ticket_id: str | None = None
    created_at: datetime
    deleted_at: datetime | None = None


class ActivityRow(SQLModel, table=True):
    __tablename__ = "activity"
    id: str = Field(primary_key=True)
    tenant: str
    subject: str
    status: str
    ticket_id: str | None = None
    created_at: datetime
    deleted_at: datetime | None = None


class EventRow(SQLModel, table=True):
    __tablename__ = "event"
    id: str = Field(primary_key=True)
    tenant: str
    seq: int
    type: str
    target: str
    timestamp: datetime


# --- loaders ------------------------------------------------------------------------------------


class Loaders:
    """Made per request."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.contact = DataLoader(self._by_id(ContactRow))
        self.organization = DataLoader(self._by_id(OrganizationRow))
        self.deal = DataLoader(self._by_id(DealRow))
        self.subscriptions_by_org = DataLoader(self._many(SubscriptionRow, "organization_id"))
        self.issues_by_ticket = DataLoader(self._many(IssueRow, "ticket_id"))
        self.activities_by_ticket = DataLoader(self._many(ActivityRow, "ticket_id"))

    def _by_id(self, model):
        async def load(ids):
            async with AsyncSession(self.engine) as session:
                rows = (await session.exec(select(model).where(model.tenant == TENANT, model.id.in_(ids)))).all()
            found = {row.id: row for row in rows}
            return [found.get(i) for i in ids]

        return load

    def _many(self, model, column: str):
        col = getattr(model, column)

        async def load(keys):
            async with AsyncSession(self.engine) as session:
                statement = (
                    select(model)
                    .where(model.tenant == TENANT, col.in_(keys), model.deleted_at.is_(None))
                    .order_by(model.created_at, model.id)
                )
                rows = (await session.exec(statement)).all()
            grouped = defaultdict(list)
            for row in rows:
                grouped[getattr(row, column)].append(row)
            return [grouped.get(k, []) for k in keys]

        return load


def utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


# --- types --------------------------------------------------------------------------------------


@strawberry.type
class Contact:
    id: strawberry.ID
    name: str
    email: str | None

    @classmethod
    def from_row(cls, row: ContactRow | None) -> Contact | None:
        return None if row is None else cls(id=row.id, name=row.name, email=row.email)


@strawberry.type
class Subscription:
    id: strawberry.ID
    plan: str | None
    status: str

    @classmethod
    def from_row(cls, row: SubscriptionRow | None) -> Subscription | None:
        return None if row is None else cls(id=row.id, plan=row.plan, status=row.status)


@strawberry.type
class SubscriptionConnection:
    nodes: list[Subscription]


@strawberry.type
class Organization:
    id: strawberry.ID
    name: str

    @strawberry.field
    async def subscriptions(self, info: Info, first: int = 20) -> SubscriptionConnection:
        rows = await info.context["loaders"].subscriptions_by_org.load(self.id)
        return SubscriptionConnection(nodes=[Subscription.from_row(r) for r in rows[:first]])

    @classmethod
    def from_row(cls, row: OrganizationRow | None) -> Organization | None:
        return None if row is None else cls(id=row.id, name=row.name)


@strawberry.type
class Deal:
    id: strawberry.ID
    name: str
    stage: str
    value: float


@strawberry.type
class Issue:
    id: strawberry.ID
    title: str
    status: str


@strawberry.type
class Activity:
    id: strawberry.ID
    subject: str
    status: str


@strawberry.type
class Event:
    type: str
    timestamp: datetime


@strawberry.type
class EventConnection:
    nodes: list[Event]


CURRENT = {"ACTIVE": 0, "TRIALING": 1, "PAST_DUE": 2, "CANCELLED": 3}


@strawberry.type
class Ticket:
    id: strawberry.ID
    subject: str
    status: str
    priority: str | None
    requester_id: strawberry.Private[str | None]
    assignee_id: strawberry.Private[str | None]
    organization_id: strawberry.Private[str | None]
    deal_id: strawberry.Private[str | None]

    @classmethod
    def from_row(cls, row: TicketRow) -> Ticket:
        return cls(
            id=row.id, subject=row.subject, status=row.status, priority=row.priority,
            requester_id=row.requester_id, assignee_id=row.assignee_id,
            organization_id=row.organization_id, deal_id=row.deal_id,
        )  # fmt: skip

    @strawberry.field
    async def requester(self, info: Info) -> Contact | None:
        if self.requester_id is None:
            return None
        return Contact.from_row(await info.context["loaders"].contact.load(self.requester_id))

    @strawberry.field
    async def assignee(self, info: Info) -> Contact | None:
        if self.assignee_id is None:
            return None
        return Contact.from_row(await info.context["loaders"].contact.load(self.assignee_id))

    @strawberry.field
    async def organization(self, info: Info) -> Organization | None:
        if self.organization_id is None:
            return None
        return Organization.from_row(await info.context["loaders"].organization.load(self.organization_id))

    @strawberry.field
    async def deal(self, info: Info) -> Deal | None:
        if self.deal_id is None:
            return None
        row = await info.context["loaders"].deal.load(self.deal_id)
        return None if row is None else Deal(id=row.id, name=row.name, stage=row.stage, value=row.value)

    @strawberry.field
    async def subscription(self, info: Info) -> Subscription | None:
        if self.organization_id is None:
            return None
        rows = await info.context["loaders"].subscriptions_by_org.load(self.organization_id)
        live = [r for r in rows if r.status in CURRENT]
        if not live:
            return None
        best = min(live, key=lambda r: (CURRENT[r.status], -utc(r.started_at).timestamp()))
        return Subscription.from_row(best)

    @strawberry.field
    async def issues(self, info: Info) -> list[Issue]:
        rows = await info.context["loaders"].issues_by_ticket.load(self.id)
        return [Issue(id=r.id, title=r.title, status=r.status) for r in rows]

    @strawberry.field
    async def activities(self, info: Info) -> list[Activity]:
        rows = await info.context["loaders"].activities_by_ticket.load(self.id)
        return [Activity(id=r.id, subject=r.subject, status=r.status) for r in rows]

    @strawberry.field
    async def events(self, info: Info, first: int = 20) -> EventConnection:
        async with AsyncSession(info.context["engine"]) as session:
            statement = (
                select(EventRow).where(EventRow.tenant == TENANT, EventRow.target == self.id)
                .order_by(EventRow.seq).limit(first)
            )  # fmt: skip
            rows = (await session.exec(statement)).all()
        return EventConnection(nodes=[Event(type=r.type, timestamp=utc(r.timestamp)) for r in rows])


@strawberry.type
class TicketConnection:
    nodes: list[Ticket]


@strawberry.type
class Query:
    @strawberry.field
    async def tickets(self, info: Info, first: int = 20) -> TicketConnection:
        async with AsyncSession(info.context["engine"]) as session:
            statement = (
                select(TicketRow).where(TicketRow.tenant == TENANT, TicketRow.deleted_at.is_(None))
                .order_by(TicketRow.created_at, TicketRow.id).limit(first)
            )  # fmt: skip
            rows = (await session.exec(statement)).all()
        return TicketConnection(nodes=[Ticket.from_row(r) for r in rows])

    @strawberry.field
    async def ticket(self, info: Info, id: strawberry.ID) -> Ticket | None:
        async with AsyncSession(info.context["engine"]) as session:
            row = (await session.exec(select(TicketRow).where(TicketRow.tenant == TENANT, TicketRow.id == id))).first()
        return None if row is None else Ticket.from_row(row)


class App(GraphQL):
    def __init__(self, engine) -> None:
        super().__init__(strawberry.Schema(query=Query))
        self.engine = engine

    async def get_context(self, request, response=None) -> dict:
        return {"request": request, "response": response, "engine": self.engine, "loaders": Loaders(self.engine)}


def create_app(database_url: str) -> App:
    return App(create_async_engine(database_url))


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="bench.baseline_strawberry", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8002)
    parser.add_argument("--database-url", required=True)
    args = parser.parse_args(argv)
    uvicorn.run(create_app(args.database_url), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
