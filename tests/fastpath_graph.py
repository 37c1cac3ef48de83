"""The random graph tests/test_fastpath_differential.py asks its documents about: every kind of
entity, with null and deleted relations, parents with more children than a page holds (tickets
per organization, comments per ticket, events per ticket), deleted children, and rows of another
tenant pointing at this tenant's parents (which a statement missing its tenant would show)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import text

from bench.postgres_setup import OURS
from graph import fastpath
from models.base import ENTITIES
from models.event import Event
from tests.live import LiveServer, create_many

ROOT = Path(__file__).resolve().parent.parent
#: bench/postgres_setup.py's s2 (bench/read_write.py's scenario 2) and s3 documents
DEEP, NESTED = OURS["s2"], OURS["s3"]
#: the tables copied into another tenant, rows pointing at the same parents
COPIED = ("Ticket", "Comment", "Issue", "Activity", "Subscription", "Contact", "Deal")


class Api(Protocol):
    tenant: str
    seed: int
    full: LiveServer
    cursors: dict[str, list[str]]
    ids: dict[str, list[str]]

    def data(self, query: str, variables: dict | None = None) -> dict: ...


def create_key(database_url: str, tenant: str) -> str:
    """An API key of a fresh tenant, through the CLI."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    done = subprocess.run(
        [sys.executable, "-m", "graph", "create-key", "--tenant", tenant, "--database-url", database_url],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[-1]


def build_graph(api: Api) -> None:
    """A random graph in the tenant of ``api``, through the API; then its cursors and ids."""
    rng = random.Random(api.seed)
    text_ = ["Printer", "Ünïcødé ✓", "billing", "", "x" * 40, 'O\'Brien "quoted"']

    def maybe(values: list) -> Any:
        return rng.choice([None, *values]) if values else None

    def words() -> str:
        return " ".join(rng.choice(text_) for _ in range(rng.randint(1, 3))).strip() or "blank"

    def run(verb: str, id_: str) -> None:
        api.data(f"mutation($id: ID!) {{ {verb}(id: $id) {{ id }} }}", {"id": id_})

    orgs: list[str] = []
    for n in range(4):
        orgs += [o["id"] for o in create_many(api, "Organization", [{
            "name": f"{words()} {n}", "tier": rng.choice([None, "SMB", "ENTERPRISE"]),
            "employeeCount": maybe([0, 12, 5000]), "annualRevenue": maybe([0.5, 1e6, 123.25]),
            "parent": maybe(orgs), "country": maybe(["DE", "US"]),
        }])]  # fmt: skip
    busy = orgs[1]  # more tickets, subsidiaries and subscriptions than a page
    contacts = [c["id"] for c in create_many(api, "Contact", [
        {"name": f"{words()} {n}", "email": rng.choice([None, f"c{n}-{api.tenant}@example.com"]),
         "organization": rng.choice([busy, *orgs]), "leadScore": maybe([0, 50, 100])}
        for n in range(6)
    ])]  # fmt: skip
    contacts += [c["id"] for c in create_many(api, "Contact", [
        {"name": f"Owner {n}", "owner": maybe(contacts), "organization": maybe(orgs)} for n in range(2)
    ])]  # fmt: skip
    deals = [d["id"] for d in create_many(api, "Deal", [
        {"name": words(), "value": rng.choice([0, 99.5, 1e5]), "organization": maybe(orgs),
         "contact": maybe(contacts), "owner": maybe(contacts), "expectedCloseDate": maybe(["2026-03-01"])}
        for _ in range(3)
    ])]  # fmt: skip
    subscriptions = [s["id"] for s in create_many(api, "Subscription", [
        {"startedAt": rng.choice(["2026-01-01T00:00:00Z", "2026-03-01T00:00:00Z"]),
         "organization": rng.choice([busy, busy, *orgs, None]), "plan": maybe(["growth", "enterprise"]),
         "trialEnd": maybe(["2026-02-01T00:00:00Z"]), "quantity": maybe([1, 30])}
        for _ in range(11)
    ])]  # fmt: skip
    tickets = [t["id"] for t in create_many(api, "Ticket", [
        {"subject": words(), "tags": rng.sample(["a", "b", "vip"], rng.randint(0, 2)),
         "priority": maybe(["LOW", "HIGH", "URGENT"]), "channel": maybe(["EMAIL", "CHAT"]),
         "requester": maybe(contacts), "assignee": maybe(contacts), "organization": rng.choice([busy, busy, *orgs]),
         "deal": maybe(deals), "satisfaction": maybe([1, 5])}
        for _ in range(16)
    ])]  # fmt: skip
    create_many(api, "Organization", [{"name": f"Subsidiary {n}", "parent": busy} for n in range(10)])
    talkative = tickets[0]  # more comments and events than a page
    for n in range(14):
        ticket = talkative if n < 10 else rng.choice(tickets)
        api.data(
            "mutation($id: ID!, $b: String!, $p: Boolean!, $a: ID) { commentTicket(id: $id, "
            "input: {body: $b, public: $p, author: $a}) { id } }",
            {"id": ticket, "b": f"{words()} {n}", "p": rng.random() < 0.7, "a": maybe(contacts)},
        )  # fmt: skip
    issues = [i["id"] for i in create_many(api, "Issue", [
        {"title": words(), "ticket": rng.choice([talkative, *tickets[:4], None]), "reporter": maybe(contacts)}
        for _ in range(6)
    ])]  # fmt: skip
    activities = [a["id"] for a in create_many(api, "Activity", [
        {"subject": words(), "ticket": rng.choice([talkative, *tickets[:4], None]), "deal": maybe(deals),
         "contact": maybe(contacts), "organization": maybe(orgs), "dueAt": "2026-05-01T10:00:00Z"}
        for _ in range(8)
    ])]  # fmt: skip
    create_many(api, "Metric", [
        {"name": "m", "value": rng.choice([0.0, 1.5, -3]), "dimensions": maybe([{"k": [1, "two"]}]),
         "organization": maybe(orgs), "timestamp": maybe(["2026-04-01T00:00:00Z"])}
    ])  # fmt: skip
    for ticket in rng.sample(tickets[1:-2], 5):
        run(rng.choice(["escalateTicket", "resolveTicket"]), ticket)
    for n in range(3):
        api.data("mutation($id: ID!, $s: String) { updateTicket(id: $id, input: {subject: $s}) { id } }",
                 {"id": talkative, "s": f"{words()} {n}"})  # fmt: skip
    api.data("mutation($id: ID!, $into: ID!) { mergeTicket(id: $id, into: $into) { id } }",
             {"id": tickets[-2], "into": talkative})  # fmt: skip
    run("cancelSubscription", subscriptions[0])
    thread = api.data(
        "query($id: ID!) { ticket(id: $id) { comments(first: 100) { nodes { id } } } }", {"id": talkative}
    )["ticket"]["comments"]["nodes"]
    # deleted rows, some of them targets of relations, some of them children of a parent
    for mutation, id_ in (("deleteOrganization", orgs[0]), ("deleteContact", contacts[0]),
                          ("deleteTicket", tickets[-1]), ("deleteDeal", deals[0]),
                          ("deleteComment", thread[2]["id"]), ("deleteIssue", issues[0]),
                          ("deleteActivity", activities[0]), ("deleteSubscription", subscriptions[1])):  # fmt: skip
        run(mutation, id_)
    collect(api)
    copy_to_other_tenant(api)


def collect(api: Api) -> None:
    """Cursors of every kind (to page nested connections with), and ids to ask for by id."""
    for root, type_name in fastpath.LISTS.items():
        cursors, ids = set(), set()
        for include in ("false", "true"):
            page = api.data(
                f"{{ {root}(first: 100, includeDeleted: {include}) {{ edges {{ cursor node {{ id }} }} }} }}"
            )
            cursors.update(edge["cursor"] for edge in page[root]["edges"])
            ids.update(edge["node"]["id"] for edge in page[root]["edges"])
        api.cursors[type_name], api.ids[type_name] = sorted(cursors), sorted(ids)
    comments = api.data(
        "{ tickets(first: 100) { nodes { comments(first: 100, includeDeleted: true) { edges { cursor } } } } }"
    )
    api.cursors["Comment"] = [e["cursor"] for t in comments["tickets"]["nodes"] for e in t["comments"]["edges"]]
    events = api.data("{ events(first: 100) { edges { cursor } } }")
    api.cursors["Event"] = [e["cursor"] for e in events["events"]["edges"]]
    assert len(api.cursors["Ticket"]) >= 10 and len(api.cursors["Comment"]) >= 10


def copy_to_other_tenant(api: Api) -> None:
    """Copies of the tenant's rows (and events) in another tenant, pointing at the same parents."""
    other = f"{api.tenant}-other"

    async def go() -> None:
        async with api.full.services.db.engine.begin() as connection:
            for kind in [ENTITIES[name] for name in COPIED] + [Event]:
                names = [c.name for c in kind.__table__.columns]
                chosen = ", ".join(
                    ":other" if n == "tenant" else "id || 'x'" if n == "id" else
                    "email || 'x'" if n == "email" else n
                    for n in names
                )  # fmt: skip
                table = kind.__table__.name
                statement = f"INSERT INTO {table} ({', '.join(names)}) SELECT {chosen} FROM {table} WHERE tenant = :t"
                copied = await connection.execute(text(statement), {"other": other, "t": api.tenant})
                assert copied.rowcount > 0, table

    api.full.run(go())
