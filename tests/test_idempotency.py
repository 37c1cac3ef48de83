"""Idempotency keys on real servers, on SQLite and PostgreSQL (API.md, "Idempotency keys").

Replays answer the kept status and bytes with ``Idempotent-Replayed: true`` and write nothing;
another body is 422; a request still running holds its key (409) — shown both by a request held
mid-execution and by twelve racing at once, of which exactly one writes; keys are per tenant;
business errors are kept, refusals and failures are not; dead rows are taken over and pruned.
Rows are aged by writing their ``expires_at``, never by sleeping.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import insert, select, update
from starlette.responses import Response

import resolvers.keys
from graph.server.idempotency import PRUNE_BATCH, TABLE, keeps
from graph.server.settings import Settings
from graph.validation import Limits
from models.base import DEFAULT_TENANT
from models.db.engine import Database
from models.idempotency import DONE, IN_FLIGHT
from models.types import utcnow
from tests.conftest import UNTHROTTLED
from tests.live import LiveServer

CREATE = "mutation($s: String!) { createTicket(input: {subject: $s}) { id subject version } }"
UPDATE = (
    "mutation($id: ID!, $s: String!, $v: Int) "
    "{ updateTicket(id: $id, input: {subject: $s}, expectedVersion: $v) { id subject version } }"
)
RESOLVE = "mutation($id: ID!) { resolveTicket(id: $id) { id status } }"
REPLAYED = "idempotent-replayed"


def body(query: str, **variables: Any) -> bytes:
    return orjson.dumps({"query": query, "variables": variables})


def post(live: LiveServer, content: bytes, key: str | bytes | None = None, *, token: str | None = None,
         client: httpx.Client | None = None) -> httpx.Response:  # fmt: skip
    headers = [(b"content-type", b"application/json")]
    if key is not None:
        headers.append((b"idempotency-key", key.encode() if isinstance(key, str) else key))
    if token is not None:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    return (client or live.http).post("/graphql", content=content, headers=headers)


def new_key() -> str:
    return f"idem-{uuid.uuid4().hex}"


def subject() -> str:
    return f"idempotent {uuid.uuid4().hex[:12]}"


def codes(response: httpx.Response) -> list[str]:
    return [e["extensions"]["code"] for e in response.json().get("errors") or ()]


def tickets_titled(live: LiveServer, title: str) -> dict[str, int]:
    """Tickets with ``title`` as subject, per tenant."""
    rows = live.sql("SELECT tenant, COUNT(*) FROM ticket WHERE subject = :s GROUP BY tenant", s=title)
    return {tenant: count for tenant, count in rows}


def kept(live: LiveServer, key: str, tenant: str | None = None) -> list[dict]:
    """The rows of ``key`` (of every tenant, or of ``tenant``)."""

    async def go() -> list[dict]:
        query = select(TABLE).where(TABLE.c.key == key)
        if tenant is not None:
            query = query.where(TABLE.c.tenant == tenant)
        async with live.services.db.engine.connect() as connection:
            return [dict(row._mapping) for row in await connection.execute(query)]

    return live.run(go())


def write(live: LiveServer, statement: Any) -> None:
    """A write behind the server's back (ageing or planting rows)."""

    async def go() -> None:
        async with live.services.db.engine.begin() as connection:
            await connection.execute(statement)

    live.run(go())


def age(live: LiveServer, key: str, *, seconds_ago: float = 1) -> None:
    write(live, update(TABLE).where(TABLE.c.key == key).values(expires_at=utcnow() - timedelta(seconds=seconds_ago)))


def plant(live: LiveServer, key: str, *, tenant: str = DEFAULT_TENANT, state: str = IN_FLIGHT,
          expires_at: datetime, fingerprint: str = "0" * 64) -> None:  # fmt: skip
    row = {"tenant": tenant, "key": key, "fingerprint": fingerprint, "claim": uuid.uuid4().hex,
           "state": state, "created_at": utcnow(), "expires_at": expires_at}  # fmt: skip
    write(live, insert(TABLE).values(**row))


def counts(live: LiveServer) -> dict[str, int]:
    return {**live.counts(), "idempotency_key": live.sql("SELECT COUNT(*) FROM idempotency_key")[0][0]}


@contextmanager
def executing(live: LiveServer, key: str, around: Any) -> Iterator[None]:
    """Run ``around(run)`` (a coroutine function) in place of executing requests with ``key``."""
    graphql = live.app.state.graphql
    original = graphql._execute

    async def patched(request: Any) -> Response:
        if request.headers.get("idempotency-key") != key:
            return await original(request)
        return await around(lambda: original(request))

    graphql._execute = patched
    try:
        yield
    finally:
        del graphql._execute


# --- replays --------------------------------------------------------------------------------------


def test_a_repeat_replays_the_kept_response_and_writes_nothing(server: LiveServer):
    key, title = new_key(), subject()
    request = body(CREATE, s=title)
    first = post(server, request, key)
    assert first.status_code == 200 and REPLAYED not in first.headers
    assert first.json()["data"]["createTicket"]["subject"] == title
    [row] = kept(server, key)
    assert row["state"] == DONE and row["status_code"] == 200

    before, statements = counts(server), server.statements
    for _ in range(3):
        again = post(server, request, key)
        assert again.status_code == 200 and again.headers[REPLAYED] == "true"
        assert again.content == first.content
        assert again.headers["content-type"] == first.headers["content-type"]
    assert counts(server) == before
    assert kept(server, key) == [row]  # not even re-kept
    assert tickets_titled(server, title) == {DEFAULT_TENANT: 1}
    assert server.statements > statements  # the replays did read the database


def test_the_response_is_kept_for_the_configured_time(server: LiveServer):
    key = new_key()
    before = datetime.now(UTC)
    assert post(server, body(CREATE, s=subject()), key).status_code == 200
    after = datetime.now(UTC)
    ttl = timedelta(seconds=server.settings.idempotency_ttl_seconds)
    assert ttl == timedelta(hours=24)
    [row] = kept(server, key)
    assert before + ttl <= row["expires_at"] <= after + ttl


def test_the_same_key_with_another_body_is_refused(server: LiveServer):
    key, title = new_key(), subject()
    assert post(server, body(CREATE, s=title), key).status_code == 200
    [row] = kept(server, key)
    other = subject()
    for different in (body(CREATE, s=other), body(CREATE, s=title) + b" "):  # the exact bytes count
        refused = post(server, different, key)
        assert refused.status_code == 422, refused.text
        assert codes(refused) == ["IDEMPOTENCY_KEY_REUSED"]
        assert REPLAYED not in refused.headers
    assert tickets_titled(server, other) == {}
    assert tickets_titled(server, title) == {DEFAULT_TENANT: 1}
    assert kept(server, key) == [row]


def test_business_errors_are_kept_and_replayed(server: LiveServer):
    ticket = server.data(CREATE, {"s": subject()})["createTicket"]
    key, request = new_key(), body(UPDATE, id=ticket["id"], s="renamed", v=2)  # it is at version 1
    refused = post(server, request, key)
    assert codes(refused) == ["VERSION_CONFLICT"]
    # the ticket reaches version 2: the same request run again would now succeed
    server.data(UPDATE, {"id": ticket["id"], "s": "moved on", "v": 1})
    again = post(server, request, key)
    assert again.headers[REPLAYED] == "true"
    assert (again.status_code, again.content) == (refused.status_code, refused.content)
    current = server.sql("SELECT subject, version FROM ticket WHERE id = :id", id=ticket["id"])
    assert current == [("moved on", 2)]

    key, request = new_key(), body(RESOLVE, id="ticket_nosuch0000")
    missing = post(server, request, key)
    assert codes(missing) == ["NOT_FOUND"]
    replay = post(server, request, key)
    assert replay.headers[REPLAYED] == "true" and replay.content == missing.content


# --- one key, many requests -------------------------------------------------------------------------


def test_twelve_concurrent_requests_with_one_key_write_once(server: LiveServer):
    key, title = new_key(), subject()
    request = body(CREATE, s=title)
    start = threading.Barrier(12)
    clients = [httpx.Client(base_url=server.url, timeout=30) for _ in range(12)]

    def send(client: httpx.Client) -> httpx.Response:
        start.wait(timeout=30)
        return post(server, request, key, client=client)

    try:
        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(send, clients))
    finally:
        for client in clients:
            client.close()
    ran = [a for a in answers if a.status_code == 200 and REPLAYED not in a.headers]
    assert len(ran) == 1, [(a.status_code, a.text) for a in answers]
    for answer in answers:
        if answer is ran[0]:
            continue
        if answer.status_code == 409:
            assert codes(answer) == ["IDEMPOTENCY_KEY_IN_USE"] and answer.headers["retry-after"] == "1"
        else:
            assert answer.headers[REPLAYED] == "true" and answer.content == ran[0].content, answer.text
    assert tickets_titled(server, title) == {DEFAULT_TENANT: 1}
    final = post(server, request, key)
    assert final.headers[REPLAYED] == "true" and final.content == ran[0].content


def test_two_workers_on_one_database_write_once(server: LiveServer, database_url: str):
    """Two servers (engines, pools, SQLite write locks of their own) on the shared database: the
    primary key decides between them, as between the workers of one deployment."""
    other = LiveServer(Settings(database_url=database_url, limits=UNTHROTTLED)).start()
    key, title = new_key(), subject()
    request = body(CREATE, s=title)
    start = threading.Barrier(12)

    def send(n: int) -> httpx.Response:
        with httpx.Client(base_url=(server, other)[n % 2].url, timeout=30) as client:
            start.wait(timeout=30)
            return post(server, request, key, client=client)

    try:
        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(send, range(12)))
    finally:
        other.stop()
    ran = [a for a in answers if a.status_code == 200 and REPLAYED not in a.headers]
    assert len(ran) == 1, [(a.status_code, a.text) for a in answers]
    assert all(a.status_code == 409 or a.content == ran[0].content for a in answers)
    assert tickets_titled(server, title) == {DEFAULT_TENANT: 1}


def test_a_request_still_running_holds_its_key(server: LiveServer):
    key, title = new_key(), subject()
    request = body(CREATE, s=title)
    entered, release = threading.Event(), threading.Event()

    async def held(run: Any) -> Response:
        entered.set()
        await asyncio.to_thread(release.wait, 30)
        return await run()

    with (
        executing(server, key, held),
        ThreadPoolExecutor(1) as pool,
        httpx.Client(base_url=server.url, timeout=60) as other,
    ):
        first = pool.submit(post, server, request, key, client=other)
        assert entered.wait(30)
        for _ in range(11):
            busy = post(server, request, key)
            assert busy.status_code == 409, busy.text
            assert codes(busy) == ["IDEMPOTENCY_KEY_IN_USE"] and busy.headers["retry-after"] == "1"
        assert post(server, body(CREATE, s=subject()), key).status_code == 422  # another body, even now
        assert tickets_titled(server, title) == {}
        release.set()
        answer = first.result(timeout=60)
    assert answer.status_code == 200 and REPLAYED not in answer.headers
    replay = post(server, request, key)
    assert replay.headers[REPLAYED] == "true" and replay.content == answer.content
    assert tickets_titled(server, title) == {DEFAULT_TENANT: 1}


def test_keys_are_per_tenant(server: LiveServer):
    tenant_a, tenant_b = f"a-{uuid.uuid4().hex[:8]}", f"b-{uuid.uuid4().hex[:8]}"
    db = server.services.db
    _, alice = server.run(resolvers.keys.create_key(db, tenant=tenant_a, actor="alice"))
    _, bob = server.run(resolvers.keys.create_key(db, tenant=tenant_b, actor="bob"))
    _, anna = server.run(resolvers.keys.create_key(db, tenant=tenant_a, actor="anna"))
    key, title = new_key(), subject()
    request = body(CREATE, s=title)
    for token in (alice, bob):
        answer = post(server, request, key, token=token)
        assert answer.status_code == 200 and REPLAYED not in answer.headers, answer.text
    assert tickets_titled(server, title) == {tenant_a: 1, tenant_b: 1}
    assert sorted(row["tenant"] for row in kept(server, key)) == [tenant_a, tenant_b]
    # another API key of the same tenant shares its idempotency keys
    again, of_alice = post(server, request, key, token=anna), post(server, request, key, token=alice)
    assert again.headers[REPLAYED] == "true" and again.content == of_alice.content
    assert tickets_titled(server, title) == {tenant_a: 1, tenant_b: 1}


# --- what is refused, and what keeps nothing ---------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [b"", b"k" * 256, b"tab\there", "caf\u00e9".encode(), b"\xff\xfe"],
    ids=["empty", "256 characters", "a tab", "not ascii", "not utf-8"],
)
def test_invalid_keys_are_refused_and_keep_nothing(server: LiveServer, key: bytes):
    title = subject()
    before = counts(server)
    refused = post(server, body(CREATE, s=title), key)
    assert refused.status_code == 400, refused.text
    assert codes(refused) == ["BAD_USER_INPUT"] and "Idempotency-Key" in refused.json()["errors"][0]["message"]
    assert counts(server) == before


def test_two_keys_in_one_request_are_refused(server: LiveServer):
    title, before = subject(), counts(server)
    headers = [("content-type", "application/json"), ("idempotency-key", new_key()), ("idempotency-key", new_key())]
    refused = server.http.post("/graphql", content=body(CREATE, s=title), headers=headers)
    assert refused.status_code == 400 and codes(refused) == ["BAD_USER_INPUT"]
    assert counts(server) == before


def test_the_longest_key_is_taken(server: LiveServer):
    key = (("~ " + uuid.uuid4().hex) * 8)[:255]  # spaces and punctuation are printable too
    request = body(CREATE, s=subject())
    assert post(server, request, key).status_code == 200
    assert post(server, request, key).headers[REPLAYED] == "true"


def test_a_key_on_a_query_keeps_nothing(server: LiveServer):
    key, request = new_key(), body("{ tickets(first: 1) { totalCount } }")
    for _ in range(2):
        answer = post(server, request, key)
        assert answer.status_code == 200 and REPLAYED not in answer.headers
    assert kept(server, key) == []


def test_a_request_that_executed_nothing_keeps_nothing(server: LiveServer):
    key, title = new_key(), subject()
    invalid = post(server, body("mutation($s: String!) { createTicket(input: {subject: $s}) { nope } }", s=title), key)
    assert codes(invalid) == ["BAD_USER_INPUT"]
    assert kept(server, key) == []
    fixed = post(server, body(CREATE, s=title), key)  # the key is still free
    assert fixed.status_code == 200 and REPLAYED not in fixed.headers
    assert tickets_titled(server, title) == {DEFAULT_TENANT: 1}


def test_internal_failures_keep_nothing(server: LiveServer):
    key, title = new_key(), subject()
    request = body(CREATE, s=title)

    async def broken(run: Any) -> Response:
        raise RuntimeError("a bug")

    with executing(server, key, broken):
        failed = post(server, request, key)
    assert failed.status_code == 500 and codes(failed) == ["INTERNAL"]
    assert kept(server, key) == []

    async def masked(run: Any) -> Response:  # an INTERNAL error inside a GraphQL answer
        await run()
        problem = {"message": "Internal error", "path": ["createTicket"], "extensions": {"code": "INTERNAL"}}
        return Response(orjson.dumps({"data": None, "errors": [problem]}), media_type="application/json")

    with executing(server, key, masked):
        assert codes(post(server, request, key)) == ["INTERNAL"]
    assert kept(server, key) == []
    retried = post(server, request, key)
    assert retried.status_code == 200 and REPLAYED not in retried.headers
    assert tickets_titled(server, title) == {DEFAULT_TENANT: 2}  # the masked run had written one


@pytest.mark.parametrize(
    ("answer", "kept_"),
    [
        ({"data": {"createTicket": {"id": "ticket_x"}}}, True),
        ({"data": None, "errors": [{"message": "m", "path": ["t"], "extensions": {"code": "NOT_FOUND"}}]}, True),
        ({"data": None, "errors": [{"message": "m", "extensions": {"code": "BAD_USER_INPUT"}}]}, False),
        ({"errors": [{"message": "m", "extensions": {"code": "QUERY_TOO_COMPLEX"}}]}, False),
        (
            {"data": {"a": {}}, "errors": [{"message": "m", "path": ["b"], "extensions": {"code": "UNAVAILABLE"}}]},
            False,
        ),
        ([{"data": {"a": {}}}, {"errors": [{"message": "m", "extensions": {"code": "RATE_LIMITED"}}]}], False),
        ([{"data": {"a": {}}}, {"data": None, "errors": [{"message": "m", "path": ["b"]}]}], True),
    ],
)
def test_which_answers_are_kept(answer: Any, kept_: bool):
    assert keeps(Response(orjson.dumps(answer), media_type="application/json")) is kept_
    assert not keeps(Response(orjson.dumps(answer), status_code=503, media_type="application/json"))


# --- dead rows ---------------------------------------------------------------------------------------


def test_an_expired_key_runs_afresh(server: LiveServer):
    key, title = new_key(), subject()
    assert post(server, body(CREATE, s=title), key).status_code == 200
    age(server, key)
    other = subject()
    fresh = post(server, body(CREATE, s=other), key)  # another body: the old one is forgotten
    assert fresh.status_code == 200 and REPLAYED not in fresh.headers
    assert tickets_titled(server, other) == {DEFAULT_TENANT: 1}
    assert post(server, body(CREATE, s=other), key).headers[REPLAYED] == "true"


def test_an_abandoned_claim_is_taken_over_once_its_lease_ends(server: LiveServer):
    key, request = new_key(), body(CREATE, s=subject())
    fingerprint = hashlib.sha256(request).hexdigest()
    plant(server, key, expires_at=utcnow() + timedelta(minutes=1), fingerprint=fingerprint)  # a live worker's claim
    assert post(server, request, key).status_code == 409
    age(server, key)  # its worker died: the lease ended
    taken = post(server, request, key)
    assert taken.status_code == 200 and REPLAYED not in taken.headers
    [row] = kept(server, key)
    assert row["state"] == DONE


def test_new_claims_prune_dead_rows_a_batch_at_a_time(server: LiveServer):
    tenant = f"gone-{uuid.uuid4().hex[:8]}"
    long_ago = datetime(2000, 1, 1, tzinfo=UTC)
    for n in range(PRUNE_BATCH + 5):  # the oldest dead rows of the table: pruned first
        plant(server, f"old-{n}", tenant=tenant, state=DONE, expires_at=long_ago + timedelta(seconds=n))
    plant(server, "alive", tenant=tenant, state=DONE, expires_at=utcnow() + timedelta(hours=1))

    def left() -> list[str]:
        return sorted(k for (k,) in server.sql("SELECT key FROM idempotency_key WHERE tenant = :t", t=tenant))

    assert post(server, body(CREATE, s=subject()), new_key()).status_code == 200
    assert left() == sorted(["alive", *(f"old-{n}" for n in range(PRUNE_BATCH, PRUNE_BATCH + 5))])
    replay = body(CREATE, s=subject())
    key = new_key()
    assert post(server, replay, key).status_code == 200
    assert left() == ["alive"]


# --- servers of their own: refusals at the door, an outage -----------------------------------------------


@contextmanager
def running(tmp_path: Path, **settings: Any) -> Iterator[LiveServer]:
    live = LiveServer(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'idem.db'}", **settings)).start()
    try:
        yield live
    finally:
        live.stop()


def test_requests_refused_at_the_door_keep_nothing(tmp_path: Path):
    with running(tmp_path, limits=Limits(rate_per_minute=1, rate_burst=1)) as live:
        _, spent = live.run(resolvers.keys.create_key(live.services.db, tenant="acme"))
        _, fresh = live.run(resolvers.keys.create_key(live.services.db, tenant="acme"))
        key, title = new_key(), subject()
        request = body(CREATE, s=title)
        assert post(live, body("{ tickets { totalCount } }"), token=spent).status_code == 200  # its one request
        limited = post(live, request, key, token=spent)
        assert limited.status_code == 429 and codes(limited) == ["RATE_LIMITED"]
        unknown = post(live, request, key, token="sgk_nosuchkey0_" + "x" * 40)
        assert unknown.status_code == 401 and codes(unknown) == ["UNAUTHENTICATED"]
        assert kept(live, key) == []
        ran = post(live, request, key, token=fresh)  # the same key and body, from the tenant's other key
        assert ran.status_code == 200 and REPLAYED not in ran.headers
        assert tickets_titled(live, title) == {"acme": 1}


def test_an_outage_while_claiming_is_unavailable_and_runs_nothing(tmp_path: Path):
    with running(tmp_path, limits=UNTHROTTLED) as live:
        keeper = live.app.state.graphql.idempotency
        own, keeper.db = keeper.db, Database("postgresql+asyncpg://nobody@127.0.0.1:9/nothing")  # refuses connections
        key, title = new_key(), subject()
        try:
            refused = post(live, body(CREATE, s=title), key)
        finally:
            live.run(keeper.db.engine.dispose())
            keeper.db = own
        assert refused.status_code == 503 and codes(refused) == ["UNAVAILABLE"], refused.text
        assert refused.headers["retry-after"]
        assert tickets_titled(live, title) == {}
        assert post(live, body(CREATE, s=title), key).status_code == 200


def test_an_outage_while_keeping_still_tells_what_was_done(tmp_path: Path):
    """The request ran: the client is told so; the key stays claimed until its lease ends."""
    with running(tmp_path, limits=UNTHROTTLED) as live:
        keeper = live.app.state.graphql.idempotency
        own, dead = keeper.db, Database("postgresql+asyncpg://nobody@127.0.0.1:9/nothing")
        key, title = new_key(), subject()
        request = body(CREATE, s=title)

        async def then_outage(run: Any) -> Response:
            response = await run()
            keeper.db = dead
            return response

        try:
            with executing(live, key, then_outage):
                answer = post(live, request, key)
        finally:
            live.run(dead.engine.dispose())
            keeper.db = own
        assert answer.status_code == 200 and answer.json()["data"]["createTicket"]["subject"] == title
        assert [row["state"] for row in kept(live, key)] == [IN_FLIGHT]
        assert post(live, request, key).status_code == 409
        assert tickets_titled(live, title) == {DEFAULT_TENANT: 1}
