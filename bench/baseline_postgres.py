"""Baseline (R) of ``bench.postgres_peers``: raw Starlette + asyncpg + orjson on support-graph's tables.

    python -m bench.baseline_postgres --port 8002 --dsn postgresql://127.0.0.1:5432/bench_peers_x

``POST /graphql`` looks at the GraphQL text only to pick the scenario, and answers with the JSON
shape support-graph gives for the same document (tenant ``default``, actor ``anonymous``):

* ``tickets(`` (s1): ONE SQL JOIN — the first 50 live tickets oldest first, requester and organization;
* ``ticket(`` (s2): the ticket joined with requester, assignee, organization and deal, then the
  organization's live subscriptions, issues, activities and the first 20 events (five statements);
* ``organizations(`` (s3): organizations, their first 5 tickets, those tickets' first 5 comments
  (three statements, one per level, ``row_number()`` per parent);
* ``createTicket`` (s4): one transaction — check the references and read the organization's tier,
  its live subscriptions (support-graph's routing raises an enterprise customer's ticket to HIGH)
  and the tenant's SLA policies (its SLA clocks choose one), INSERT the ticket and the support
  Activity the ``createTicket`` hook adds, bump ``tenant_sequence`` by two, INSERT both events;
* ``updateTicket`` (s5): one transaction — UPDATE the ticket's subject and version, bump
  ``tenant_sequence``, INSERT the event.

A pool of ``--pool`` connections opened at start and kept (no per-checkout ping).
"""

from __future__ import annotations

import argparse
import secrets
import string
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

TENANT = "default"
ACTOR = "anonymous"
CURRENT_ORDER = {"ACTIVE": 0, "TRIALING": 1, "PAST_DUE": 2, "CANCELLED": 3}
_ALPHABET = string.ascii_letters + string.digits

LIST = """
SELECT t.id, t.subject, t.status, t.priority, c.id AS c_id, c.name AS c_name, o.id AS o_id, o.name AS o_name
FROM ticket t
LEFT JOIN contact c ON c.id = t.requester_id
LEFT JOIN organization o ON o.id = t.organization_id
WHERE t.tenant = $1 AND t.deleted_at IS NULL
ORDER BY t.created_at, t.id
LIMIT $2
"""
TICKET = """
SELECT t.id, t.subject, t.status, t.priority, t.organization_id,
       r.id AS r_id, r.name AS r_name, r.email AS r_email, a.id AS a_id, a.name AS a_name,
       o.id AS o_id, o.name AS o_name, d.id AS d_id, d.name AS d_name, d.stage AS d_stage, d.value AS d_value
FROM ticket t
LEFT JOIN contact r ON r.id = t.requester_id
LEFT JOIN contact a ON a.id = t.assignee_id
LEFT JOIN organization o ON o.id = t.organization_id
LEFT JOIN deal d ON d.id = t.deal_id
WHERE t.id = $1 AND t.tenant = $2
"""
SUBSCRIPTIONS = """
SELECT id, plan, status, started_at FROM subscription
WHERE organization_id = $1 AND tenant = $2 AND deleted_at IS NULL ORDER BY created_at, id
"""
ISSUES = """
SELECT id, title, status FROM issue
WHERE ticket_id = $1 AND tenant = $2 AND deleted_at IS NULL ORDER BY created_at, id
"""
ACTIVITIES = """
SELECT id, subject, status FROM activity
WHERE ticket_id = $1 AND tenant = $2 AND deleted_at IS NULL ORDER BY created_at, id
"""
EVENTS = 'SELECT type, "timestamp" FROM event WHERE tenant = $1 AND target = $2 ORDER BY seq LIMIT $3'

ORGANIZATIONS = """
SELECT id, name FROM organization WHERE tenant = $1 AND deleted_at IS NULL ORDER BY created_at, id LIMIT $2
"""
ORG_TICKETS = """
SELECT organization_id, id, subject, status FROM (
  SELECT organization_id, id, subject, status, created_at,
         row_number() OVER (PARTITION BY organization_id ORDER BY created_at, id) AS n
  FROM ticket WHERE tenant = $1 AND deleted_at IS NULL AND organization_id = ANY($2::varchar[])
) t WHERE n <= $3 ORDER BY created_at, id
"""
TICKET_COMMENTS = """
SELECT ticket_id, id, body, public FROM (
  SELECT ticket_id, id, body, public, created_at,
         row_number() OVER (PARTITION BY ticket_id ORDER BY created_at, id) AS n
  FROM comment WHERE tenant = $1 AND deleted_at IS NULL AND ticket_id = ANY($2::varchar[])
) c WHERE n <= $3 ORDER BY created_at, id
"""

REFERENCES = """
SELECT (SELECT count(*) FROM contact WHERE id = $1 AND tenant = $3 AND deleted_at IS NULL),
       (SELECT count(*) FROM organization WHERE id = $2 AND tenant = $3 AND deleted_at IS NULL),
       (SELECT tier FROM organization WHERE id = $2 AND tenant = $3 AND deleted_at IS NULL)
"""
ORG_PLANS = """
SELECT plan, status, started_at FROM subscription
WHERE organization_id = $1 AND tenant = $2 AND deleted_at IS NULL ORDER BY created_at, id
"""
SLA_POLICIES = """
SELECT * FROM sla_policy WHERE tenant = $1 AND deleted_at IS NULL ORDER BY created_at, id
"""
NEXT_SEQ = """
INSERT INTO tenant_sequence (tenant, last_seq) VALUES ($1, $2)
ON CONFLICT (tenant) DO UPDATE SET last_seq = tenant_sequence.last_seq + $2 RETURNING last_seq
"""
INSERT_TICKET = """
INSERT INTO ticket (id, tenant, version, created_at, updated_at, created_by, subject, status, priority,
                    tags, requester_id, organization_id)
VALUES ($1, $2, 1, $3, $3, $4, $5, 'OPEN', $6, '[]', $7, $8)
"""
INSERT_ACTIVITY = """
INSERT INTO activity (id, tenant, version, created_at, updated_at, created_by, subject, type, contact_id,
                      organization_id, ticket_id, status, priority)
VALUES ($1, $2, 1, $3, $3, $4, $5, 'TASK', $6, $7, $8, 'PENDING', $9)
"""
INSERT_EVENTS = """
INSERT INTO event (id, tenant, seq, type, entity_type, target, actor, "timestamp", version, data, cause_id)
SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::bigint[], $4::varchar[], $5::varchar[], $6::varchar[],
                     $7::varchar[], $8::timestamptz[], $9::int[], $10::jsonb[], $11::varchar[])
"""
UPDATE_SUBJECT = """
UPDATE ticket SET subject = $1, version = version + 1, updated_at = $2
WHERE id = $3 AND tenant = $4 AND deleted_at IS NULL RETURNING id, version, subject
"""


def new_id(prefix: str) -> str:
    return prefix + "_" + "".join(secrets.choice(_ALPHABET) for _ in range(10))


def pair(id_: str | None, name: str | None) -> dict[str, Any] | None:
    return None if id_ is None else {"id": id_, "name": name}


def answer(data: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def error(message: str, code: str = "BAD_USER_INPUT") -> Response:
    return answer({"data": None, "errors": [{"message": message, "extensions": {"code": code}}]})


class Store:
    """The pool and one method per scenario."""

    def __init__(self, dsn: str, size: int) -> None:
        self.dsn, self.size = dsn, size
        self.pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        self.pool = await asyncpg.create_pool(self.dsn, min_size=self.size, max_size=self.size)

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()

    @property
    def _pool(self) -> asyncpg.Pool:
        assert self.pool is not None
        return self.pool

    async def tickets(self, first: int) -> dict[str, Any]:
        rows = await self._pool.fetch(LIST, TENANT, first)
        nodes = [
            {"id": r["id"], "subject": r["subject"], "status": r["status"], "priority": r["priority"],
             "requester": pair(r["c_id"], r["c_name"]), "organization": pair(r["o_id"], r["o_name"])}
            for r in rows
        ]  # fmt: skip
        return {"data": {"tickets": {"nodes": nodes}}}

    async def ticket(self, id_: str) -> dict[str, Any]:
        async with self._pool.acquire() as conn:
            t = await conn.fetchrow(TICKET, id_, TENANT)
            if t is None:
                return {"data": {"ticket": None}}
            subs = await conn.fetch(SUBSCRIPTIONS, t["organization_id"], TENANT) if t["organization_id"] else []
            issues = await conn.fetch(ISSUES, id_, TENANT)
            activities = await conn.fetch(ACTIVITIES, id_, TENANT)
            events = await conn.fetch(EVENTS, TENANT, id_, 20)
        candidates = [s for s in subs if s["status"] in CURRENT_ORDER]
        current = min(
            candidates, key=lambda s: (CURRENT_ORDER[s["status"]], -s["started_at"].timestamp()), default=None
        )
        organization = None
        if t["o_id"] is not None:
            organization = {
                "id": t["o_id"], "name": t["o_name"],
                "subscriptions": {"nodes": [{"plan": s["plan"], "status": s["status"]} for s in subs[:5]]},
            }  # fmt: skip
        node = {
            "id": t["id"], "subject": t["subject"], "status": t["status"], "priority": t["priority"],
            "requester": None if t["r_id"] is None else {"id": t["r_id"], "name": t["r_name"], "email": t["r_email"]},
            "assignee": pair(t["a_id"], t["a_name"]),
            "organization": organization,
            "deal": None if t["d_id"] is None
            else {"id": t["d_id"], "name": t["d_name"], "stage": t["d_stage"], "value": t["d_value"]},
            "subscription": None if current is None
            else {"id": current["id"], "plan": current["plan"], "status": current["status"]},
            "issues": [dict(i) for i in issues],
            "activities": [dict(a) for a in activities],
            "events": {"nodes": [{"type": e["type"], "timestamp": e["timestamp"].isoformat()} for e in events]},
        }  # fmt: skip
        return {"data": {"ticket": node}}

    async def organizations(self, first: int, tickets: int, comments: int) -> dict[str, Any]:
        async with self._pool.acquire() as conn:
            orgs = await conn.fetch(ORGANIZATIONS, TENANT, first)
            rows = await conn.fetch(ORG_TICKETS, TENANT, [o["id"] for o in orgs], tickets)
            notes = await conn.fetch(TICKET_COMMENTS, TENANT, [r["id"] for r in rows], comments)
        by_ticket: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for c in notes:
            by_ticket[c["ticket_id"]].append({"id": c["id"], "body": c["body"], "public": c["public"]})
        by_org: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            by_org[r["organization_id"]].append({
                "id": r["id"], "subject": r["subject"], "status": r["status"],
                "comments": {"nodes": by_ticket.get(r["id"], [])},
            })  # fmt: skip
        nodes = [{"id": o["id"], "name": o["name"], "tickets": {"nodes": by_org.get(o["id"], [])}} for o in orgs]
        return {"data": {"organizations": {"nodes": nodes}}}

    async def create_ticket(self, values: dict[str, Any]) -> dict[str, Any] | str:
        subject = values.get("subject")
        if not isinstance(subject, str) or not subject.strip():
            return "subject is required"
        requester, organization, priority = values.get("requester"), values.get("organization"), values.get("priority")
        ticket_id, activity_id, now = new_id("ticket"), new_id("activity"), datetime.now(UTC)
        stamp = now.isoformat()
        ticket: dict[str, Any] = {
            "id": ticket_id, "version": 1, "createdAt": stamp, "updatedAt": stamp, "createdBy": ACTOR,
            "subject": subject, "status": "OPEN", "priority": priority, "tags": [],
            "requester": requester, "organization": organization,
        }  # fmt: skip
        activity = {
            "id": activity_id, "version": 1, "createdAt": stamp, "subject": f"Support: {subject}", "type": "TASK",
            "status": "PENDING", "ticket": ticket_id, "contact": requester, "priority": priority,
        }  # fmt: skip
        async with self._pool.acquire() as conn, conn.transaction():
            found = await conn.fetchrow(REFERENCES, requester, organization, TENANT)
            if (requester and not found[0]) or (organization and not found[1]):
                return "requester or organization not found"
            plans = await conn.fetch(ORG_PLANS, organization, TENANT) if organization else []
            await conn.fetch(SLA_POLICIES, TENANT)  # support-graph's clocks choose among them
            current = min(
                (p for p in plans if p["status"] in CURRENT_ORDER),
                key=lambda p: (CURRENT_ORDER[p["status"]], -p["started_at"].timestamp()), default=None,
            )  # fmt: skip
            enterprise = found[2] == "ENTERPRISE" or (
                current is not None and "enterprise" in (current["plan"] or "").lower()
            )
            if enterprise and priority not in ("HIGH", "URGENT"):
                priority = ticket["priority"] = activity["priority"] = "HIGH"
            await conn.execute(INSERT_TICKET, ticket_id, TENANT, now, ACTOR, subject, priority, requester, organization)
            await conn.execute(
                INSERT_ACTIVITY, activity_id, TENANT, now, ACTOR, activity["subject"], requester, organization,
                ticket_id, priority,
            )  # fmt: skip
            last = await conn.fetchval(NEXT_SEQ, TENANT, 2)
            created, follow = new_id("evt"), new_id("evt")
            await conn.execute(
                INSERT_EVENTS, [created, follow], [TENANT, TENANT], [last - 1, last],
                ["Ticket.Created", "Activity.Created"], ["Ticket", "Activity"], [ticket_id, activity_id],
                [ACTOR, ACTOR], [now, now], [1, 1], [orjson.dumps(ticket).decode(), orjson.dumps(activity).decode()],
                [None, created],
            )  # fmt: skip
        return {"data": {"createTicket": {"id": ticket_id, "version": 1, "status": "OPEN"}}}

    async def update_subject(self, id_: str, subject: Any) -> dict[str, Any] | str:
        if not isinstance(subject, str) or not subject.strip():
            return "subject is required"
        now = datetime.now(UTC)
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(UPDATE_SUBJECT, subject, now, id_, TENANT)
            if row is None:
                return f"Ticket {id_!r} not found"
            seq = await conn.fetchval(NEXT_SEQ, TENANT, 1)
            data = orjson.dumps({"subject": {"after": subject}}).decode()
            await conn.execute(
                INSERT_EVENTS, [new_id("evt")], [TENANT], [seq], ["Ticket.Updated"], ["Ticket"], [id_], [ACTOR],
                [now], [row["version"]], [data], [None],
            )  # fmt: skip
        return {"data": {"updateTicket": {"id": row["id"], "version": row["version"], "subject": row["subject"]}}}


def create_app(dsn: str, pool_size: int = 16) -> Starlette:
    """The baseline's ASGI app on ``dsn`` (a plain ``postgresql://`` URL)."""
    store = Store(dsn, pool_size)

    async def graphql(request: Request) -> Response:
        try:
            payload = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return answer({"errors": [{"message": "Body is not JSON"}]}, 400)
        query = payload.get("query") or ""
        variables = payload.get("variables") or {}
        result: dict[str, Any] | str
        if "createTicket" in query:
            result = await store.create_ticket(variables.get("input") or {})
        elif "updateTicket" in query:
            result = await store.update_subject(variables.get("id", ""), (variables.get("input") or {}).get("subject"))
        elif "organizations(" in query:
            result = await store.organizations(variables.get("first", 20), 5, 5)
        elif "tickets(" in query:
            result = await store.tickets(50)
        elif "ticket(" in query:
            result = await store.ticket(variables.get("id", ""))
        else:
            result = {"data": {"__typename": "Query"}}
        return error(result) if isinstance(result, str) else answer(result)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await store.open()
        try:
            yield
        finally:
            await store.close()

    return Starlette(routes=[Route("/graphql", graphql, methods=["POST"])], lifespan=lifespan)


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="bench.baseline_postgres", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8002)
    parser.add_argument("--dsn", required=True, help="postgresql://host:port/database")
    parser.add_argument("--pool", type=int, default=16, help="connections, opened at start and kept")
    args = parser.parse_args(argv)
    uvicorn.run(
        create_app(args.dsn, args.pool), host="127.0.0.1", port=args.port, log_level="warning", access_log=False
    )


if __name__ == "__main__":
    main()
