"""A real composition: Apollo Gateway over this server and a second subgraph, queried both ways.

tests/federation/ holds the Node side: ``subgraph.js`` ("billing", in memory) extends our
``Ticket`` with ``billingNotes`` and its ``BillingNote`` refers to our ``Ticket`` and
``Organization``; ``gateway.js`` composes both from their ``_service { sdl }``
(IntrospectAndCompose) and forwards the caller's Authorization header. Each process binds port 0
and prints ``{"ready": url}`` when it serves. ``npm ci`` runs first where node_modules is missing
or older than package-lock.json. Without node and npm the module is skipped with the reason,
except in CI (``CI=true``), where that fails.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

import resolvers.keys
from tests.databases import require
from tests.live import LiveServer
from tests.procs import stop_group

FEDERATION = Path(__file__).parent / "federation"
START_WAIT = 60.0
STOP_WAIT = 10.0
NPM_WAIT = 600.0
_READY = re.compile(r'^\{"ready":"(http://[^"]+)"\}$', re.MULTILINE)

TICKETS_WITH_NOTES = """query($tag: String!) {
  tickets(first: 20, where: {tags: {hasAny: [$tag]}}) { nodes { id subject billingNotes { text } } }
}"""
NOTES_WITH_TICKETS = """query($batch: String!) {
  billingNotes(batch: $batch) { text ticket { id subject status organization { name } } organization { id name } }
}"""
ADD_NOTE = """mutation($batch: String!, $ticket: ID!, $organization: ID, $text: String!) {
  addBillingNote(batch: $batch, ticket: $ticket, organization: $organization, text: $text) { id ticket { subject } }
}"""


def node_missing() -> str | None:
    """Why the Node side cannot run here, or None."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    return f"{' and '.join(missing)} not found on PATH (needed for Apollo Gateway)" if missing else None


def install() -> None:
    """``npm ci`` where node_modules is missing or older than the lock file."""
    installed = FEDERATION / "node_modules" / ".package-lock.json"
    lock = FEDERATION / "package-lock.json"
    if installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime:
        return
    done = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund"], cwd=FEDERATION, capture_output=True, text=True, timeout=NPM_WAIT
    )
    assert done.returncode == 0, f"npm ci failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


class NodeProcess:
    """``node <script>`` in tests/federation, on a port the kernel picks."""

    def __init__(self, script: str, env: dict[str, str]) -> None:
        self.script = script
        self.env = {**os.environ, "PORT": "0", "APOLLO_TELEMETRY_DISABLED": "true", **env}
        self.log_path = Path(tempfile.mkstemp(prefix=f"federation-{Path(script).stem}-", suffix=".log")[1])
        self.process: subprocess.Popen | None = None
        self.url = ""

    def start(self) -> NodeProcess:
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                ["node", self.script], cwd=FEDERATION, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + START_WAIT
        while not (found := _READY.search(self.log())):
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.script} exited with {self.process.returncode}:\n{self.log()[-4000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.script} was not ready in {START_WAIT} s:\n{self.log()[-4000:]}")
            time.sleep(0.05)
        self.url = found.group(1)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process is not None:
            stop_group(self.process, STOP_WAIT)
        with contextlib.suppress(FileNotFoundError):
            self.log_path.unlink()


@dataclass
class Supergraph:
    server: LiveServer
    url: str
    client: httpx.Client
    #: another tenant's Authorization header
    stranger: dict[str, str]

    def post(self, query: str, variables: dict | None = None, headers: dict | None = None) -> dict:
        response = self.client.post(self.url, json={"query": query, "variables": variables or {}}, headers=headers)
        return response.json()

    def data(self, query: str, variables: dict | None = None, headers: dict | None = None) -> dict:
        body = self.post(query, variables, headers)
        assert not body.get("errors"), body["errors"]
        return body["data"]


@pytest.fixture(scope="module")
def supergraph(server: LiveServer) -> Iterator[Supergraph]:
    require(node_missing(), "Apollo Federation gateway")
    install()
    billing = NodeProcess("subgraph.js", {}).start()
    try:
        gateway = NodeProcess("gateway.js", {"SUPPORT_URL": f"{server.url}/graphql", "BILLING_URL": billing.url})
        gateway.start()
        try:
            tenant = f"federation-{uuid.uuid4().hex[:8]}"
            _, key = server.run(resolvers.keys.create_key(server.services.db, tenant=tenant, actor="eve"))
            with httpx.Client(timeout=30) as client:
                yield Supergraph(server, gateway.url, client, {"Authorization": f"Bearer {key}"})
        finally:
            gateway.stop()
    finally:
        billing.stop()


@dataclass
class Notes:
    """Tickets of one tag and organization, and billing notes on some of them (one batch)."""

    tag: str
    batch: str
    organization: dict
    tickets: list[dict]
    #: ticket id → the texts of its notes, in order
    texts: dict[str, list[str]]


def make_notes(supergraph: Supergraph, per_ticket: list[int]) -> Notes:
    """Through the gateway: an organization, a ticket per entry of ``per_ticket`` with that many
    notes (billing's mutation, answering with our ticket's subject)."""
    tag, batch = f"fed-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:8]
    organization = supergraph.data(
        "mutation($name: String!) { createOrganization(input: {name: $name}) { id name } }", {"name": f"Org {tag}"}
    )["createOrganization"]
    tickets, texts = [], {}
    for i, count in enumerate(per_ticket):
        ticket = supergraph.data(
            "mutation($input: CreateTicketInput!) { createTicket(input: $input) { id subject status } }",
            {"input": {"subject": f"{tag} ticket {i}", "organization": organization["id"], "tags": [tag]}},
        )["createTicket"]
        tickets.append(ticket)
        texts[ticket["id"]] = []
        for n in range(count):
            text = f"credit {i}.{n}"
            added = supergraph.data(
                ADD_NOTE, {"batch": batch, "ticket": ticket["id"], "organization": organization["id"], "text": text}
            )["addBillingNote"]
            assert added["ticket"] == {"subject": ticket["subject"]}
            texts[ticket["id"]].append(text)
    return Notes(tag, batch, organization, tickets, texts)


def test_the_supergraph_has_both_subgraphs_fields(supergraph: Supergraph):
    fields = "query($name: String!) { __type(name: $name) { fields { name } } }"
    ticket = {f["name"] for f in supergraph.data(fields, {"name": "Ticket"})["__type"]["fields"]}
    assert {"subject", "status", "organization", "billingNotes"} <= ticket
    note = {f["name"] for f in supergraph.data(fields, {"name": "BillingNote"})["__type"]["fields"]}
    assert {"text", "ticket", "organization"} <= note


def test_from_our_tickets_into_their_notes(supergraph: Supergraph):
    notes = make_notes(supergraph, [2, 1, 0])
    found = supergraph.data(TICKETS_WITH_NOTES, {"tag": notes.tag})["tickets"]["nodes"]
    assert found == [
        {"id": t["id"], "subject": t["subject"], "billingNotes": [{"text": x} for x in notes.texts[t["id"]]]}
        for t in notes.tickets
    ]


def test_from_their_notes_into_our_tickets(supergraph: Supergraph):
    notes = make_notes(supergraph, [1, 2])
    found = supergraph.data(NOTES_WITH_TICKETS, {"batch": notes.batch})["billingNotes"]
    organization = {"name": notes.organization["name"]}
    assert found == [
        {
            "text": text,
            "ticket": {"id": t["id"], "subject": t["subject"], "status": t["status"], "organization": organization},
            "organization": notes.organization,
        }
        for t in notes.tickets
        for text in notes.texts[t["id"]]
    ]


def test_references_from_the_other_subgraph_cost_the_same_for_any_number(supergraph: Supergraph):
    """The gateway sends all of a level's references in one ``_entities``: our statements for the
    query do not grow with the number of notes (each on a ticket of its own)."""
    costs = {}
    for size in (2, 8):
        notes = make_notes(supergraph, [1] * size)
        before = supergraph.server.statements
        found = supergraph.data(NOTES_WITH_TICKETS, {"batch": notes.batch})["billingNotes"]
        costs[size] = supergraph.server.statements - before
        assert [n["ticket"]["id"] for n in found] == [t["id"] for t in notes.tickets]
    assert costs[2] == costs[8] > 0


def test_the_gateway_passes_the_callers_tenant_on(supergraph: Supergraph):
    notes = make_notes(supergraph, [1])
    theirs = supergraph.data(NOTES_WITH_TICKETS, {"batch": notes.batch}, supergraph.stranger)["billingNotes"]
    assert [(n["ticket"], n["organization"]) for n in theirs] == [(None, None)]
    listed = supergraph.data(TICKETS_WITH_NOTES, {"tag": notes.tag}, supergraph.stranger)["tickets"]["nodes"]
    assert listed == []
    mine = supergraph.data(NOTES_WITH_TICKETS, {"batch": notes.batch})["billingNotes"]
    assert [n["ticket"]["id"] for n in mine] == [notes.tickets[0]["id"]]


def test_the_billing_subscription_resolves_through_the_gateway(supergraph: Supergraph):
    """Composition takes a type named ``Subscription`` for the subscription root (the subgraph SDL
    leaves ``Live`` out); queries reaching the billing ``Subscription`` still resolve."""
    notes = make_notes(supergraph, [1])
    made = supergraph.data(
        "mutation($input: CreateSubscriptionInput!) { createSubscription(input: $input) { id plan status } }",
        {"input": {"organization": notes.organization["id"], "plan": "pro", "startedAt": "2026-01-01T00:00:00Z"}},
    )["createSubscription"]
    query = "query($batch: String!) { billingNotes(batch: $batch) { ticket { subscription { id plan status } } } }"
    found = supergraph.data(query, {"batch": notes.batch})["billingNotes"]
    assert found == [{"ticket": {"subscription": made}}]
