"""The database and the documents of ``bench.postgres_peers``: one seeded PostgreSQL database that
support-graph (C), PostGraphile (P) and the raw baseline (R) all read, and each scenario's
GraphQL document as each server spells it, with the normalisation that makes their answers
comparable value for value.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from bench.http import ROOT

SERVER = "postgresql://postgres@127.0.0.1:5432"
TENANT = "default"

#: What PostGraphile needs beside the tables to answer the deep document like support-graph: the
#: two computed columns a PostGraphile user would write (Ticket.subscription, Ticket.events; the
#: event log has no foreign key), and an id default so its generated createTicket can insert
#: without the client inventing ids. Column defaults change nothing for support-graph, which
#: always sends every column.
PEER_EXTRAS = """
CREATE FUNCTION ticket_subscription(t ticket) RETURNS subscription STABLE LANGUAGE sql AS $$
  SELECT s.* FROM subscription s
  WHERE s.organization_id = t.organization_id AND s.tenant = t.tenant AND s.deleted_at IS NULL
    AND s.status IN ('ACTIVE', 'TRIALING', 'PAST_DUE', 'CANCELLED')
  ORDER BY array_position(ARRAY['ACTIVE', 'TRIALING', 'PAST_DUE', 'CANCELLED']::varchar[], s.status),
           s.started_at DESC
  LIMIT 1 $$;
CREATE FUNCTION ticket_events(t ticket) RETURNS SETOF event STABLE LANGUAGE sql AS $$
  SELECT e.* FROM event e WHERE e.tenant = t.tenant AND e.target = t.id ORDER BY e.seq $$;
ALTER TABLE ticket ALTER COLUMN id SET DEFAULT 'ticket_' || replace(gen_random_uuid()::text, '-', '');
"""


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


async def _admin(statement: str) -> None:
    conn = await asyncpg.connect(f"{SERVER}/postgres")
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def create_database() -> str:
    """A fresh, empty database; its name."""
    name = f"bench_peers_{secrets.token_hex(4)}"
    run(_admin(f'CREATE DATABASE "{name}"'))
    return name


def drop_database(name: str) -> None:
    run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def seed(name: str, tickets: int, workdir: Path, log: Any) -> None:
    """``python -m graph seed`` (scaled like bench.read_write: a contact per 5 tickets, an
    organization per 25), the peers' extras, then ``ANALYZE``."""
    args = ["--tickets", str(tickets), "--contacts", str(max(tickets // 5, 2)),
            "--organizations", str(max(tickets // 25, 1))]  # fmt: skip
    log(f"seeding {' '.join(args)} into {name}")
    started = time.monotonic()
    with open(workdir / "seed.log", "wb") as out:
        subprocess.run(
            [sys.executable, "-m", "graph", "seed", *args, "--database-url", sqlalchemy_url(name)],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, check=True, timeout=900,
        )  # fmt: skip
    log(f"seeded in {time.monotonic() - started:.0f} s")

    async def finish() -> None:
        conn = await asyncpg.connect(dsn(name))
        try:
            await conn.execute(PEER_EXTRAS)
            await conn.execute("ANALYZE")
        finally:
            await conn.close()

    run(finish())


def dsn(name: str) -> str:
    return f"{SERVER}/{name}"


def sqlalchemy_url(name: str) -> str:
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


@dataclass
class Inputs:
    ticket: str  # s2: a ticket with every part of the deep document present
    requester: str  # s4
    organization: str
    updatable: list[str]  # s5: open tickets whose subject the verb rewrites, in turn


def pick_inputs(name: str, updatable: int = 200) -> Inputs:
    async def pick() -> Inputs:
        conn = await asyncpg.connect(dsn(name))
        try:
            ticket = await conn.fetchval(
                """
                SELECT t.id FROM ticket t
                WHERE t.tenant = $1 AND t.deleted_at IS NULL AND t.deal_id IS NOT NULL
                  AND t.assignee_id IS NOT NULL AND t.organization_id IS NOT NULL
                  AND EXISTS (SELECT 1 FROM issue i WHERE i.ticket_id = t.id)
                  AND EXISTS (SELECT 1 FROM activity a WHERE a.ticket_id = t.id)
                  AND EXISTS (SELECT 1 FROM subscription s WHERE s.organization_id = t.organization_id)
                ORDER BY (SELECT count(*) FROM event e WHERE e.target = t.id) DESC, t.id LIMIT 1
                """,
                TENANT,
            )
            person = await conn.fetchrow(
                "SELECT id, organization_id FROM contact WHERE tenant = $1 AND deleted_at IS NULL "
                "AND organization_id IS NOT NULL ORDER BY created_at, id LIMIT 1",
                TENANT,
            )
            rows = await conn.fetch(
                "SELECT id FROM ticket WHERE tenant = $1 AND deleted_at IS NULL AND merged_into_id IS NULL "
                "AND status IN ('OPEN', 'IN_PROGRESS', 'PENDING') AND id <> $2 ORDER BY created_at DESC, id LIMIT $3",
                TENANT, ticket, updatable,
            )  # fmt: skip
        finally:
            await conn.close()
        return Inputs(ticket, person["id"], person["organization_id"], [r["id"] for r in rows])

    inputs: Inputs = run(pick())
    return inputs


# --- documents ---------------------------------------------------------------------------------

LIVE = "orderBy: [CREATED_AT_ASC, ID_ASC], condition: {deletedAt: null}"
OURS = {
    "s1": "{ tickets(first: 50) { nodes { id subject status priority requester { id name } organization { id name } } } }",
    "s2": (
        "query Deep($id: ID!) { ticket(id: $id) { id subject status priority "
        "requester { id name email } assignee { id name } "
        "organization { id name subscriptions(first: 5) { nodes { plan status } } } "
        "deal { id name stage value } subscription { id plan status } "
        "issues { id title status } activities { id subject status } "
        "events(first: 20) { nodes { type timestamp } } } }"
    ),
    "s3": (
        "{ organizations(first: 20) { nodes { id name tickets(first: 5) { nodes { id subject status "
        "comments(first: 5) { nodes { id body public } } } } } } }"
    ),
    "s4": "mutation Create($input: CreateTicketInput!) { createTicket(input: $input) { id version status } }",
    "s5": "mutation Update($id: ID!, $input: UpdateTicketInput!) { updateTicket(id: $id, input: $input) { id version subject } }",
}
PEER = {
    "s1": (
        '{ tickets(first: 50, orderBy: [CREATED_AT_ASC, ID_ASC], condition: {tenant: "default", deletedAt: null}) '
        "{ nodes { id subject status priority requester { id name } organization { id name } } } }"
    ),
    "s2": (
        "query Deep($id: String!) { ticket(id: $id) { id subject status priority "
        "requester { id name email } assignee { id name } "
        f"organization {{ id name subscriptions(first: 5, {LIVE}) {{ nodes {{ plan status }} }} }} "
        "deal { id name stage value } subscription { id plan status } "
        f"issues({LIVE}) {{ nodes {{ id title status }} }} activities({LIVE}) {{ nodes {{ id subject status }} }} "
        "events(first: 20) { nodes { type timestamp } } } }"
    ),
    "s3": (
        '{ organizations(first: 20, orderBy: [CREATED_AT_ASC, ID_ASC], condition: {tenant: "default", '
        f"deletedAt: null}}) {{ nodes {{ id name tickets(first: 5, {LIVE}) {{ nodes {{ id subject status "
        f"comments(first: 5, {LIVE}) {{ nodes {{ id body public }} }} }} }} }} }} }}"
    ),
    "s4": (
        "mutation Create($input: CreateTicketInput!) { createTicket(input: $input) { ticket { id version status } } }"
    ),
    "s5": (
        "mutation Update($id: String!, $subject: String!) { updateTicket(input: {id: $id, patch: {subject: $subject}}) "
        "{ ticket { id version subject } } }"
    ),
}


def bodies(server: str, inputs: Inputs) -> dict[str, str]:
    """Each scenario's POST body for ``server`` (C and R take support-graph's documents). In s5,
    ``{id}`` and ``{n}`` are filled in per request by the load generator."""
    docs = PEER if server == "P" else OURS
    create: dict[str, Any]
    update: dict[str, Any]
    if server == "P":
        create = {"ticket": {
            "tenant": TENANT, "version": 1, "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z",
            "createdBy": "anonymous", "subject": "Bench ticket", "status": "OPEN", "priority": "MEDIUM", "tags": "[]",
            "requesterId": inputs.requester, "organizationId": inputs.organization,
        }}  # fmt: skip
        update = {"id": "{id}", "subject": "Bench update {n}"}
    else:
        create = {"subject": "Bench ticket", "priority": "MEDIUM", "requester": inputs.requester,
                  "organization": inputs.organization}  # fmt: skip
        update = {"id": "{id}", "input": {"subject": "Bench update {n}"}}
    return {
        "s1": json.dumps({"query": docs["s1"]}),
        "s2": json.dumps({"query": docs["s2"], "variables": {"id": inputs.ticket}}),
        "s3": json.dumps({"query": docs["s3"]}),
        "s4": json.dumps({"query": docs["s4"], "variables": {"input": create}}),
        "s5": json.dumps({"query": docs["s5"], "variables": update}),
    }


def normalise(value: Any) -> Any:
    """An answer with PostGraphile's spelling taken out: lists that support-graph gives bare
    (``issues``, ``activities``) unwrapped from ``{nodes}``, timestamps as instants."""
    if isinstance(value, dict):
        out = {k: normalise(v) for k, v in value.items()}
        for bare in ("issues", "activities"):
            if isinstance(out.get(bare), dict) and set(out[bare]) == {"nodes"}:
                out[bare] = out[bare]["nodes"]
        return out
    if isinstance(value, list):
        return [normalise(v) for v in value]
    if isinstance(value, str) and len(value) >= 20 and value[4:5] == "-" and value[10:11] == "T":
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return value
    return value
