"""Outgoing webhooks end to end: a real server (in a thread), a real HTTP receiver, real events.

Signatures are checked with the ``standardwebhooks`` package; the retry schedule is test-sized
("1,1": two retries, a second apart) and the timeout two seconds. Two tenants, each with its own
API key, share the server; the server runs without ``require_auth``, so loopback receivers are
allowed (tests/test_webhook_ssrf.py runs the guard).
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from standardwebhooks import Webhook as Verifier

import resolvers.keys
from graph.server.settings import Settings
from graph.server.webhook_sender import WebhookSender
from tests.conftest import UNTHROTTLED
from tests.databases import fresh_database
from tests.live import GraphQLError, LiveServer
from tests.test_webhook_receiver import Receiver

#: first attempts one at a time even with a backlog, so that they also arrive in commit order
TEST_ENV = {
    "WEBHOOK_RETRY_SCHEDULE": "1,1", "WEBHOOK_TIMEOUT_SECONDS": "2", "WEBHOOK_POLL_SECONDS": "1",
    "WEBHOOK_IN_ORDER_WINDOW": "1",
}  # fmt: skip
CREATE = """
mutation($input: CreateWebhookInput!) {
  createWebhook(input: $input) { secret webhook { id url events description active version } }
}"""
DELIVERIES = """
query($id: ID!, $status: [WebhookDeliveryStatus!]) {
  webhook(id: $id) {
    deliveryCounts { pending delivered retrying failed total }
    deliveries(first: 100, status: $status) {
      totalCount
      nodes { id status nextAttemptAt event { id type sequence } webhook { id }
              attempts { at responseStatus durationMs error } }
    }
  }
}"""
TICKET = "mutation($s: String!) { createTicket(input: {subject: $s}) { id } }"
CONTACT = "mutation($n: String!) { createContact(input: {name: $n}) { id } }"


@dataclass
class Caller:
    server: LiveServer
    key: str

    def post(self, query: str, variables: dict | None = None) -> dict:
        response = self.server.http.post(
            "/graphql", json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {self.key}"},
        )  # fmt: skip
        return response.json()

    def data(self, query: str, variables: dict | None = None) -> dict:
        body = self.post(query, variables)
        if body.get("errors"):
            raise GraphQLError(body["errors"])
        return body["data"]

    def error(self, query: str, variables: dict | None = None) -> dict:
        body = self.post(query, variables)
        assert body.get("errors"), body
        return body["errors"][0]

    def webhook(self, url: str, events: list[str], description: str | None = None) -> tuple[str, str]:
        made = self.data(CREATE, {"input": {"url": url, "events": events, "description": description}})
        return made["createWebhook"]["webhook"]["id"], made["createWebhook"]["secret"]

    def ticket(self) -> str:
        return self.data(TICKET, {"s": f"t {uuid.uuid4().hex[:6]}"})["createTicket"]["id"]

    def deliveries(self, webhook_id: str, status: list[str] | None = None) -> dict:
        return self.data(DELIVERIES, {"id": webhook_id, "status": status})["webhook"]

    def events(self) -> list[dict]:
        query = "{ events(orderBy: [{field: SEQUENCE, direction: DESC}], first: 100) { nodes { id type sequence } } }"
        return list(reversed(self.data(query)["events"]["nodes"]))


@dataclass
class Setup:
    server: LiveServer
    a: Caller
    b: Caller
    receiver: Receiver


def sender_of(server: LiveServer) -> WebhookSender | None:
    return getattr(server.app.state, "webhook_sender", None)


@contextlib.contextmanager
def webhook_server(url: str, **settings) -> Iterator[LiveServer]:
    """A server with a webhook sender (the app's own once app.py starts one; else one started here)."""
    saved = {k: os.environ.get(k) for k in TEST_ENV}
    os.environ.update(TEST_ENV)
    try:
        server = LiveServer(Settings(database_url=url, limits=UNTHROTTLED, **settings)).start()
        own = None
        if sender_of(server) is None:
            own = WebhookSender(server.services.db, server.services.broker, require_auth=server.settings.require_auth)
            server.run(own.start())
            server.app.state.webhook_sender = own
        try:
            yield server
        finally:
            if own is not None:
                server.run(own.stop())
            server.stop()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def setup(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    receiver = Receiver().start()
    try:
        with fresh_database(request.param, tmp_path_factory.mktemp("webhooks")) as url, webhook_server(url) as server:
            callers = []
            for tenant in ("tenant-a", "tenant-b"):
                _, key = server.run(resolvers.keys.create_key(server.services.db, tenant=tenant, actor="ops"))
                callers.append(Caller(server, key))
            yield Setup(server, callers[0], callers[1], receiver)
    finally:
        receiver.stop()


def path() -> str:
    return f"/{uuid.uuid4().hex[:10]}"


def wait_until(check, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not so after {timeout} s: {check}")
        time.sleep(0.05)


# --- managing webhooks -------------------------------------------------------------------------


def test_the_secret_is_shown_by_create_and_rotate_only(setup: Setup):
    hook, secret = setup.a.webhook(setup.receiver.url(path()), ["Ticket.*"], "crm sync")
    assert secret.startswith("whsec_") and len(Verifier(secret)._whsecret) >= 24
    shown = setup.a.data("query($id: ID!) { webhook(id: $id) { id url events description active } }", {"id": hook})
    assert shown["webhook"] == {"id": hook, "url": setup.receiver.url(shown["webhook"]["url"][-11:]),
                                "events": ["Ticket.*"], "description": "crm sync", "active": True}  # fmt: skip
    assert secret not in json.dumps(setup.a.data("{ webhooks(first: 100) { nodes { id url events } } }"))
    rotated = setup.a.data(
        "mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret webhook { id } } }", {"id": hook}
    )
    assert rotated["rotateWebhookSecret"]["secret"].startswith("whsec_")
    assert rotated["rotateWebhookSecret"]["secret"] != secret
    setup.a.data("mutation($id: ID!) { deleteWebhook(id: $id) { id } }", {"id": hook})
    assert setup.a.data("query($id: ID!) { webhook(id: $id) { id } }", {"id": hook})["webhook"] is None


@pytest.mark.parametrize(
    "input",
    [
        {"url": "ftp://example.com/x", "events": ["*"]},
        {"url": "not a url", "events": ["*"]},
        {"url": "http://example.com/x", "events": []},
        {"url": "http://example.com/x", "events": ["ticket.created"]},
        {"url": "http://example.com/x", "events": ["Ticket.Created; DROP"]},
    ],
)
def test_bad_urls_and_event_types_are_refused(setup: Setup, input: dict):
    assert setup.a.error(CREATE, {"input": input})["extensions"]["code"] == "BAD_USER_INPUT"


def test_update_changes_the_fields_given(setup: Setup):
    hook, _ = setup.a.webhook(setup.receiver.url(path()), ["Ticket.*"], "old")
    update = "mutation($id: ID!, $input: UpdateWebhookInput!) { updateWebhook(id: $id, input: $input) { events description active version } }"
    changed = setup.a.data(update, {"id": hook, "input": {"events": ["*"], "description": None}})["updateWebhook"]
    assert changed == {"events": ["*"], "description": None, "active": True, "version": 2}
    error = setup.a.error(update, {"id": hook, "input": {"url": "gopher://x"}})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


# --- delivering --------------------------------------------------------------------------------


def test_each_matching_event_is_delivered_once_signed_in_commit_order(setup: Setup):
    tickets, everything, created = path(), path(), path()
    a, receiver = setup.a, setup.receiver
    hook, secret = a.webhook(receiver.url(tickets), ["Ticket.*"])
    _, secret_all = a.webhook(receiver.url(everything), ["*"])
    _, secret_created = a.webhook(receiver.url(created), ["Ticket.Created"])
    mark = max((e["sequence"] for e in a.events()), default=0)
    started = time.time()
    ids = [a.ticket() for _ in range(5)]
    a.data(CONTACT, {"n": "Pat"})
    a.data('mutation($id: ID!) { updateTicket(id: $id, input: {description: "x"}) { id } }', {"id": ids[0]})
    log = [e for e in a.events() if e["sequence"] > mark]
    want = [e for e in log if e["type"].startswith("Ticket.")]
    got = receiver.wait_for(tickets, len(want))
    time.sleep(0.5)  # nothing more comes
    assert len(receiver.received(tickets)) == len(want)
    assert [r.headers["webhook-id"] for r in got] == [e["id"] for e in want]
    for request, event in zip(got, want):
        message = Verifier(secret).verify(request.body, request.headers)
        assert message["type"] == event["type"]
        assert message["data"]["id"] == event["id"] and message["data"]["sequence"] == event["sequence"]
        assert set(message) == {"type", "timestamp", "data"}
        assert {"id", "type", "entityType", "target", "actor", "timestamp", "version", "data"} <= set(message["data"])
        assert request.headers["content-type"] == "application/json"
    assert max(r.at for r in got) - started < 10
    every = receiver.wait_for(everything, len(log))
    assert [r.headers["webhook-id"] for r in every] == [e["id"] for e in log]
    assert all(Verifier(secret_all).verify(r.body, r.headers) for r in every)
    only_created = receiver.wait_for(created, 5)
    assert [json.loads(r.body)["data"]["target"] for r in only_created] == ids
    assert all(Verifier(secret_created).verify(r.body, r.headers) for r in only_created)
    found = wait_until(lambda: (d := a.deliveries(hook))["deliveryCounts"]["delivered"] == len(want) and d)
    assert found["deliveryCounts"] == {
        "pending": 0,
        "delivered": len(want),
        "retrying": 0,
        "failed": 0,
        "total": len(want),
    }
    sequences = [d["event"]["sequence"] for d in found["deliveries"]["nodes"]]
    assert sequences == sorted(sequences, reverse=True)  # newest first
    assert all(d["attempts"][0]["responseStatus"] == 200 for d in found["deliveries"]["nodes"])


def test_first_attempts_go_out_within_two_seconds_of_the_commit(setup: Setup):
    where = path()
    setup.a.webhook(setup.receiver.url(where), ["Ticket.Created"])
    delays = []
    for n in range(5):
        committed = time.time()
        setup.a.ticket()
        delays.append(setup.receiver.wait_for(where, n + 1)[-1].at - committed)
    print(f"commit → receipt: median {statistics.median(delays) * 1000:.0f} ms, worst {max(delays) * 1000:.0f} ms")
    assert max(delays) < 2.0


def test_a_failed_attempt_is_retried_with_the_same_webhook_id(setup: Setup):
    where = path()
    setup.receiver.plan(where, [500, 503])
    hook, secret = setup.a.webhook(setup.receiver.url(where), ["Ticket.Created"])
    setup.a.ticket()
    got = setup.receiver.wait_for(where, 3)
    assert len({r.headers["webhook-id"] for r in got}) == 1
    assert len({r.headers["webhook-signature"] for r in got}) >= 1
    assert all(Verifier(secret).verify(r.body, r.headers) for r in got)
    assert got[1].at - got[0].at >= 0.9  # the schedule's first delay
    delivery = wait_until(
        lambda: (d := setup.a.deliveries(hook)["deliveries"]["nodes"])[0]["status"] == "DELIVERED" and d
    )[0]
    assert [a["responseStatus"] for a in delivery["attempts"]] == [500, 503, 200]
    assert delivery["nextAttemptAt"] is None


def test_a_delivery_fails_after_the_schedule_and_can_be_redelivered(setup: Setup):
    where = path()
    setup.receiver.plan(where, [500, 500, 500])
    hook, _ = setup.a.webhook(setup.receiver.url(where), ["Ticket.Created"])
    setup.a.ticket()
    setup.receiver.wait_for(where, 3)
    failed = wait_until(lambda: setup.a.deliveries(hook, ["FAILED"])["deliveries"]["nodes"])
    assert [a["responseStatus"] for a in failed[0]["attempts"]] == [500, 500, 500]
    assert setup.a.deliveries(hook, ["DELIVERED"])["deliveries"]["nodes"] == []
    time.sleep(1.5)
    assert len(setup.receiver.received(where)) == 3  # no attempt after FAILED
    redelivered = setup.a.data(
        "mutation($id: ID!) { redeliverWebhookDelivery(id: $id) { id status } }", {"id": failed[0]["id"]}
    )["redeliverWebhookDelivery"]
    assert redelivered["status"] == "PENDING"
    got = setup.receiver.wait_for(where, 4)
    assert got[3].headers["webhook-id"] == got[0].headers["webhook-id"]
    wait_until(lambda: setup.a.deliveries(hook)["deliveryCounts"]["delivered"] == 1)


def test_a_redirect_is_not_followed_and_retry_after_is_honoured(setup: Setup):
    where = path()
    setup.receiver.plan(where, [302, 429], headers={"location": setup.receiver.url("/elsewhere"), "retry-after": "0"})
    hook, _ = setup.a.webhook(setup.receiver.url(where), ["Ticket.Created"])
    setup.a.ticket()
    got = setup.receiver.wait_for(where, 3)
    assert setup.receiver.received("/elsewhere") == []
    assert got[2].at - got[1].at < 0.9  # Retry-After: 0 instead of the schedule's second
    delivery = wait_until(
        lambda: (d := setup.a.deliveries(hook)["deliveries"]["nodes"])[0]["status"] == "DELIVERED" and d
    )[0]
    assert "redirect" in delivery["attempts"][0]["error"]


def test_a_slow_receiver_slows_neither_mutations_nor_other_webhooks(setup: Setup):
    slow, fast = path(), path()

    def latency(n: int = 15) -> float:
        times = []
        for _ in range(n):
            began = time.perf_counter()
            setup.a.ticket()
            times.append(time.perf_counter() - began)
        return statistics.median(times)

    before = latency()
    setup.receiver.plan(slow, delay=1.5)
    setup.a.webhook(setup.receiver.url(slow), ["Ticket.Created"])
    setup.a.webhook(setup.receiver.url(fast), ["Ticket.Created"])
    committed = time.time()
    during = latency()
    got = setup.receiver.wait_for(fast, 15)
    print(
        f"median mutation latency: {before * 1000:.1f} ms without webhooks, {during * 1000:.1f} ms with a slow receiver"
    )
    assert during < before * 5 + 0.05  # generous: a mutation never waits on a delivery
    assert got[0].at - committed < 2.5


def test_tenants_never_see_each_others_webhooks_or_events(setup: Setup):
    a_path, b_path = path(), path()
    hook_a, _ = setup.a.webhook(setup.receiver.url(a_path), ["*"])
    hook_b, _ = setup.b.webhook(setup.receiver.url(b_path), ["*"])
    a_ticket, b_ticket = setup.a.ticket(), setup.b.ticket()
    got_a, got_b = setup.receiver.wait_for(a_path, 1), setup.receiver.wait_for(b_path, 1)
    time.sleep(0.5)
    a_log, b_log = {e["id"] for e in setup.a.events()}, {e["id"] for e in setup.b.events()}
    to_a = [json.loads(r.body)["data"] for r in setup.receiver.received(a_path)]
    to_b = [json.loads(r.body)["data"] for r in setup.receiver.received(b_path)]
    assert {e["id"] for e in to_a} <= a_log and not {e["id"] for e in to_a} & b_log
    assert {e["id"] for e in to_b} <= b_log and not {e["id"] for e in to_b} & a_log
    assert a_ticket in {e["target"] for e in to_a} and b_ticket in {e["target"] for e in to_b}
    assert got_a and got_b
    delivery_a = setup.a.deliveries(hook_a)["deliveries"]["nodes"][0]["id"]
    b_sees = setup.b.data("{ webhooks(first: 100) { nodes { id } } }")["webhooks"]["nodes"]
    assert hook_a not in {w["id"] for w in b_sees} and hook_b in {w["id"] for w in b_sees}
    for query in ("query($id: ID!) { webhook(id: $id) { id } }", "query($id: ID!) { node(id: $id) { id } }"):
        assert next(iter(setup.b.data(query, {"id": hook_a}).values())) is None
    assert setup.b.data("query($id: ID!) { node(id: $id) { id } }", {"id": delivery_a})["node"] is None
    for mutation in (
        "mutation($id: ID!) { updateWebhook(id: $id, input: {active: false}) { id } }",
        "mutation($id: ID!) { deleteWebhook(id: $id) { id } }",
        "mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret } }",
    ):
        assert setup.b.error(mutation, {"id": hook_a})["extensions"]["code"] == "NOT_FOUND"
    redeliver = "mutation($id: ID!) { redeliverWebhookDelivery(id: $id) { id } }"
    assert setup.b.error(redeliver, {"id": delivery_a})["extensions"]["code"] == "NOT_FOUND"


def test_an_inactive_webhook_sends_nothing(setup: Setup):
    where = path()
    hook, _ = setup.a.webhook(setup.receiver.url(where), ["Ticket.Created"])
    setup.a.data("mutation($id: ID!) { updateWebhook(id: $id, input: {active: false}) { id } }", {"id": hook})
    setup.a.ticket()
    time.sleep(1.5)
    assert setup.receiver.received(where) == []
    setup.a.data("mutation($id: ID!) { updateWebhook(id: $id, input: {active: true}) { id } }", {"id": hook})
    made = setup.a.ticket()
    setup.receiver.wait_for(where, 1)
    time.sleep(0.3)
    assert [json.loads(r.body)["data"]["target"] for r in setup.receiver.received(where)] == [made]
