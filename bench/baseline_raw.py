"""Baseline (A) of ``bench.read_write``: raw Starlette + aiosqlite + orjson, the same SQL tables.

    /tmp/venv/bin/python -m bench.baseline_raw --port 8001 --database /tmp/x/bench.db

``POST /graphql`` ignores the GraphQL text except for picking the scenario, and answers with the
JSON shape support-graph gives for the same query:

* ``tickets(`` (scenario 1): ONE SQL JOIN — the first 50 live tickets oldest first, with
  requester {id name} and organization {id name};
* ``ticket(`` (scenario 2): the ticket joined with requester, assignee, organization and deal,
  then the organization's live subscriptions (first five as the connection, and the current
  one picked ACTIVE > TRIALING > PAST_DUE > CANCELLED, newest first), issues, activities and the
  first 20 events — five statements on one connection;
* ``createTicket`` / ``resolveTicket`` (scenario 3): one ``BEGIN IMMEDIATE`` transaction each —
  INSERT (or UPDATE status/version) the ticket, bump ``tenant_sequence``, INSERT the event row.
  No hooks run (support-graph also writes an Activity on create and a Metric on resolve).

Reads use a small pool of connections; writes one connection behind an asyncio lock (SQLite has
one writer). Tenant is always ``default``, the actor ``anonymous``.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import string
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import aiosqlite
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

TENANT = "default"
ACTOR = "anonymous"
READERS = 4
RESOLVABLE = ("OPEN", "PENDING", "IN_PROGRESS", "ESCALATED", "REOPENED")
CURRENT_ORDER = {"ACTIVE": 0, "TRIALING": 1, "PAST_DUE": 2, "CANCELLED": 3}
_ALPHABET = string.ascii_letters + string.digits

SCENARIO_1 = """
SELECT t.id, t.subject, t.status, t.priority, c.id, c.name, o.id, o.name
FROM ticket t
LEFT JOIN contact c ON c.id = t.requester_id
LEFT JOIN organization o ON o.id = t.organization_id
WHERE t.tenant = ? AND t.deleted_at IS NULL
ORDER BY t.created_at, t.id
LIMIT ?
"""

TICKET = """
SELECT t.id, t.subject, t.status, t.priority, t.organization_id,
       r.id, r.name, r.email, a.id, a.name, o.id, o.name, d.id, d.name, d.stage, d.value
FROM ticket t
LEFT JOIN contact r ON r.id = t.requester_id
LEFT JOIN contact a ON a.id = t.assignee_id
LEFT JOIN organization o ON o.id = t.organization_id
LEFT JOIN deal d ON d.id = t.deal_id
WHERE t.id = ? AND t.tenant = ?
"""
SUBSCRIPTIONS = """
SELECT id, plan, status, started_at FROM subscription
WHERE organization_id = ? AND tenant = ? AND deleted_at IS NULL ORDER BY created_at, id
"""
ISSUES = """
SELECT id, title, status FROM issue
WHERE ticket_id = ? AND tenant = ? AND deleted_at IS NULL ORDER BY created_at, id
"""
ACTIVITIES = """
SELECT id, subject, status FROM activity
WHERE ticket_id = ? AND tenant = ? AND deleted_at IS NULL ORDER BY created_at, id
"""
EVENTS = "SELECT type, timestamp FROM event WHERE tenant = ? AND target = ? ORDER BY seq LIMIT ?"

NEXT_SEQ = """
INSERT INTO tenant_sequence (tenant, last_seq) VALUES (?, 1)
ON CONFLICT (tenant) DO UPDATE SET last_seq = last_seq + 1 RETURNING last_seq
"""
INSERT_EVENT = """
INSERT INTO event (id, tenant, seq, type, entity_type, target, actor, timestamp, version, data, cause_id)
VALUES (?, ?, ?, ?, 'Ticket', ?, ?, ?, ?, ?, NULL)
"""
INSERT_TICKET = """
INSERT INTO ticket (id, tenant, version, created_at, updated_at, created_by, subject, status, priority,
                    tags, requester_id, organization_id)
VALUES (?, ?, 1, ?, ?, ?, ?, 'OPEN', ?, '[]', ?, ?)
"""
RESOLVE_TICKET = f"""
UPDATE ticket SET status = 'RESOLVED', version = version + 1, resolved_at = ?, updated_at = ?
WHERE id = ? AND tenant = ? AND deleted_at IS NULL AND status IN ({", ".join(f"'{s}'" for s in RESOLVABLE)})
RETURNING id, version, status
"""


def new_id(prefix: str) -> str:
    return prefix + "_" + "".join(secrets.choice(_ALPHABET) for _ in range(10))


def iso(stored: str | None) -> str | None:
    """``2026-01-02 03:04:05.000006`` (how the tables keep UTC) → ``2026-01-02T03:04:05.000006+00:00``."""
    return None if stored is None else stored.replace(" ", "T") + "+00:00"


def db_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def pair(id_, name) -> dict | None:
    return None if id_ is None else {"id": id_, "name": name}


def answer(data: dict, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def error(message: str, code: str = "BAD_USER_INPUT") -> Response:
    return answer({"data": None, "errors": [{"message": message, "extensions": {"code": code}}]})


class Store:
    def __init__(self, path: str) -> None:
        self.path = path
        self.readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self.writer: aiosqlite.Connection | None = None
        self.write_lock = asyncio.Lock()

    async def _connect(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)  # autocommit; explicit BEGIN
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=10000", "foreign_keys=ON"):
            await conn.execute(f"PRAGMA {pragma}")
        return conn

    async def open(self) -> None:
        for _ in range(READERS):
            self.readers.put_nowait(await self._connect())
        self.writer = await self._connect()

    async def close(self) -> None:
        while not self.readers.empty():
            await self.readers.get_nowait().close()
        if self.writer is not None:
            await self.writer.close()

    @asynccontextmanager
    async def reading(self):
        conn = await self.readers.get()
        try:
            yield conn
        finally:
            self.readers.put_nowait(conn)

    # --- scenario 1 ---------------------------------------------------------------------------

    async def tickets(self, first: int) -> dict:
        async with self.reading() as conn:
            rows = await conn.execute_fetchall(SCENARIO_1, (TENANT, first))
        nodes = [
            {"id": r[0], "subject": r[1], "status": r[2], "priority": r[3],
             "requester": pair(r[4], r[5]), "organization": pair(r[6], r[7])}
            for r in rows
        ]  # fmt: skip
        return {"data": {"tickets": {"nodes": nodes}}}

    # --- scenario 2 ---------------------------------------------------------------------------

    async def ticket(self, id_: str) -> dict:
        async with self.reading() as conn:
            rows = await conn.execute_fetchall(TICKET, (id_, TENANT))
            if not rows:
                return {"data": {"ticket": None}}
            t = rows[0]
            org_id = t[4]
            subs = await conn.execute_fetchall(SUBSCRIPTIONS, (org_id, TENANT)) if org_id else []
            issues = await conn.execute_fetchall(ISSUES, (id_, TENANT))
            activities = await conn.execute_fetchall(ACTIVITIES, (id_, TENANT))
            events = await conn.execute_fetchall(EVENTS, (TENANT, id_, 20))
        candidates = [s for s in subs if s[2] in CURRENT_ORDER]
        current = None
        if candidates:
            # rank by status, then newest started_at (the stored text sorts chronologically)
            best = min(CURRENT_ORDER[s[2]] for s in candidates)
            current = max((s for s in candidates if CURRENT_ORDER[s[2]] == best), key=lambda s: s[3])
        organization = None
        if t[10] is not None:
            organization = {
                "id": t[10], "name": t[11],
                "subscriptions": {"nodes": [{"plan": s[1], "status": s[2]} for s in subs[:5]]},
            }  # fmt: skip
        node = {
            "id": t[0], "subject": t[1], "status": t[2], "priority": t[3],
            "requester": None if t[5] is None else {"id": t[5], "name": t[6], "email": t[7]},
            "assignee": pair(t[8], t[9]),
            "organization": organization,
            "deal": None if t[12] is None else {"id": t[12], "name": t[13], "stage": t[14], "value": t[15]},
            "subscription": None if current is None else {"id": current[0], "plan": current[1], "status": current[2]},
            "issues": [{"id": i[0], "title": i[1], "status": i[2]} for i in issues],
            "activities": [{"id": a[0], "subject": a[1], "status": a[2]} for a in activities],
            "events": {"nodes": [{"type": e[0], "timestamp": iso(e[1])} for e in events]},
        }  # fmt: skip
        return {"data": {"ticket": node}}

    # --- scenario 3 ---------------------------------------------------------------------------

    async def _event(self, conn, target: str, type_: str, now: str, version: int, data: dict) -> None:
        async with conn.execute(NEXT_SEQ, (TENANT,)) as cursor:
            seq = (await cursor.fetchone())[0]
        await conn.execute(
            INSERT_EVENT, (new_id("evt"), TENANT, seq, type_, target, ACTOR, now, version, orjson.dumps(data).decode())
        )

    async def create_ticket(self, values: dict) -> dict | str:
        subject = values.get("subject")
        if not isinstance(subject, str) or not subject.strip():
            return "subject is required"
        id_ = new_id("ticket")
        moment = datetime.now(UTC)
        now = db_time(moment)
        snapshot = {
            "id": id_, "version": 1, "createdAt": moment.isoformat(), "updatedAt": moment.isoformat(),
            "createdBy": ACTOR, "subject": subject, "status": "OPEN", "priority": values.get("priority"),
            "tags": [], "requester": values.get("requester"), "organization": values.get("organization"),
        }  # fmt: skip
        assert self.writer is not None
        async with self.write_lock:
            conn = self.writer
            await conn.execute("BEGIN IMMEDIATE")
            try:
                await conn.execute(
                    INSERT_TICKET,
                    (id_, TENANT, now, now, ACTOR, subject, values.get("priority"),
                     values.get("requester"), values.get("organization")),
                )  # fmt: skip
                await self._event(conn, id_, "Ticket.Created", now, 1, snapshot)
                await conn.execute("COMMIT")
            except BaseException:
                await conn.execute("ROLLBACK")
                raise
        return {"data": {"createTicket": {"id": id_, "version": 1, "status": "OPEN"}}}

    async def resolve_ticket(self, id_: str, resolution: str | None) -> dict | str:
        moment = datetime.now(UTC)
        now = db_time(moment)
        assert self.writer is not None
        async with self.write_lock:
            conn = self.writer
            await conn.execute("BEGIN IMMEDIATE")
            try:
                async with conn.execute(RESOLVE_TICKET, (now, now, id_, TENANT)) as cursor:
                    row = await cursor.fetchone()
                if row is None:
                    await conn.execute("ROLLBACK")
                    return f"Ticket {id_!r} not found or not resolvable"
                data = {
                    "status": {"before": None, "after": "RESOLVED"},
                    "resolvedAt": {"before": None, "after": moment.isoformat()},
                }
                if resolution:
                    data["resolution"] = resolution
                await self._event(conn, id_, "Ticket.Resolved", now, row[1], data)
                await conn.execute("COMMIT")
            except BaseException:
                await conn.execute("ROLLBACK")
                raise
        return {"data": {"resolveTicket": {"id": row[0], "version": row[1], "status": row[2]}}}


def create_app(path: str) -> Starlette:
    store = Store(path)

    async def graphql(request: Request) -> Response:
        try:
            payload = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return answer({"errors": [{"message": "Body is not JSON"}]}, 400)
        query = payload.get("query") or ""
        variables = payload.get("variables") or {}
        if "createTicket" in query:
            result = await store.create_ticket(variables.get("input") or {})
        elif "resolveTicket" in query:
            result = await store.resolve_ticket(variables.get("id", ""), variables.get("resolution"))
        elif "tickets(" in query:
            result = await store.tickets(50)
        elif "ticket(" in query:
            result = await store.ticket(variables.get("id", ""))
        else:
            result = {"data": {"__typename": "Query"}}
        return error(result) if isinstance(result, str) else answer(result)

    @asynccontextmanager
    async def lifespan(_app):
        await store.open()
        try:
            yield
        finally:
            await store.close()

    return Starlette(routes=[Route("/graphql", graphql, methods=["POST"])], lifespan=lifespan)


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="bench.baseline_raw", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--database", required=True, help="path of the SQLite file")
    args = parser.parse_args(argv)
    uvicorn.run(create_app(args.database), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
