"""Keys, anonymous callers, request limits, rate limits and masked internal errors.

- ``guarded``: a server with ``require_auth`` on a fresh database (SQLite and PostgreSQL), its
  key cache shortened so revocations show quickly. Keys are made in-process with
  ``resolvers.keys.create_key`` and, once, through the real ``create-key``/``revoke-key`` CLI.
- the shared ``server`` (no ``require_auth``): anonymous callers act as ``default``/``anonymous``;
  a key that is presented must still be valid. Internal errors are forced on it.
- ``tight``: a server with small ``Limits``, so every limit is crossed with a small request.
- ``throttled``: ``require_auth`` with a burst of three requests per key.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

import resolvers.keys
import resolvers.metrics
from graph.server.settings import Settings
from graph.validation import Limits
from tests import ws_client as ws
from tests.conftest import UNTHROTTLED
from tests.databases import fresh_database
from tests.live import LiveServer
from tests.ws_client import PROTOCOLS, TRANSPORT_WS

ROOT = Path(__file__).resolve().parent.parent
GRAPHQL_RESPONSE = "application/graphql-response+json"
#: a key's cache lifetime on the guarded server, and how long a test waits for a revocation to
#: take effect (a bound for the wait, not a measurement)
KEY_TTL, REVOCATION_WAIT = 0.1, 10.0
#: signs of a stack trace or of the Python side in a body a client reads (in any case), and of SQL
LEAKS = ("traceback", "sqlalchemy", "aiosqlite", "asyncpg", "recursion", 'file "')
SQL = ("SELECT ", "INSERT INTO", "DELETE FROM", " WHERE ")
CREATE_TICKET = "mutation($s: String!) { createTicket(input: {subject: $s}) { id createdBy } }"
TICKETS = "{ tickets { totalCount } }"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def post(live: LiveServer, payload: object, headers: dict | None = None) -> httpx.Response:
    return live.http.post("/graphql", json=payload, headers=headers)


def assert_clean(body: str) -> None:
    lowered = body.lower()
    assert not [leak for leak in LEAKS if leak in lowered], body
    assert not [word for word in SQL if word in body], body


def assert_unauthenticated(response: httpx.Response) -> dict:
    """A 401 with a Bearer challenge and an UNAUTHENTICATED error that tells nothing more."""
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].lower().startswith("bearer"), response.headers
    body = response.json()
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"], body
    assert "data" not in body
    assert_clean(response.text)
    return body


def make_key(live: LiveServer, tenant: str, actor: str | None = None) -> str:
    return live.run(resolvers.keys.create_key(live.services.db, tenant=tenant, actor=actor))[1]


def revoke(live: LiveServer, key: str) -> bool:
    return live.run(resolvers.keys.revoke_key(live.services.db, key))


def until_refused(live: LiveServer, key: str) -> httpx.Response:
    """Poll with ``key`` until the server refuses it (bounded by ``REVOCATION_WAIT``)."""
    deadline = time.monotonic() + REVOCATION_WAIT
    while True:
        response = post(live, {"query": TICKETS}, bearer(key))
        if response.status_code != 200 or time.monotonic() > deadline:
            return response
        time.sleep(KEY_TTL / 2)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m graph ARGS``, told everything by flags (nothing from the environment)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REQUIRE_AUTH", "BROKER_URL")}
    return subprocess.run(
        [sys.executable, "-m", "graph", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def tenant() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


# --- servers -----------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def guarded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """``require_auth`` on a fresh database; keys are re-checked every ``KEY_TTL`` seconds."""
    with fresh_database(request.param, tmp_path_factory.mktemp("guarded")) as url:
        live = LiveServer(Settings(database_url=url, require_auth=True, limits=UNTHROTTLED))
        live.services.keys.ttl = KEY_TTL
        live.start()
        try:
            yield live
        finally:
            live.stop()


TIGHT = Limits(
    max_body_bytes=20_000, max_tokens=300, max_depth=5, max_aliases=3, max_nodes=500, max_batch=3,
    max_variables_depth=5, rate_per_minute=10**9, rate_burst=10**9,
)  # fmt: skip


@pytest.fixture(scope="module")
def tight(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('tight') / 'tight.db'}"
    live = LiveServer(Settings(database_url=url, limits=TIGHT)).start()
    yield live
    live.stop()


#: one token every ten seconds, three at once: the fourth quick request is refused however
#: slow the machine (a bucket refills one token in ten seconds)
THROTTLED = Limits(rate_per_minute=6, rate_burst=3)


@pytest.fixture(scope="module")
def throttled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('throttled') / 'throttled.db'}"
    live = LiveServer(Settings(database_url=url, require_auth=True, limits=THROTTLED)).start()
    yield live
    live.stop()


# --- 1. keys -----------------------------------------------------------------------------------


def test_a_request_without_a_key_is_401_with_a_challenge(guarded: LiveServer):
    assert_unauthenticated(post(guarded, {"query": TICKETS}))
    assert_unauthenticated(guarded.http.get("/graphql", params={"query": TICKETS}))
    before = guarded.counts()
    assert_unauthenticated(post(guarded, {"query": CREATE_TICKET, "variables": {"s": "anonymous"}}))
    assert_unauthenticated(post(guarded, [{"query": TICKETS}, {"query": TICKETS}]))
    assert guarded.counts() == before


def test_a_valid_key_is_served(guarded: LiveServer):
    response = post(guarded, {"query": TICKETS}, bearer(make_key(guarded, tenant())))
    assert response.status_code == 200, response.text
    assert response.json()["data"] == {"tickets": {"totalCount": 0}} and "errors" not in response.json()


def _wrong_secret(key: str) -> str:
    prefix, key_id, secret = key.split("_", 2)
    return f"{prefix}_{key_id}_{'A' if secret[0] != 'A' else 'B'}{secret[1:]}"


AUTHORIZATIONS = {
    "bearer without a key": lambda key: "Bearer",
    "bearer and spaces": lambda key: "Bearer    x",
    "unknown key": lambda key: "Bearer sgk_abcdefgh_" + "x" * 43,
    "not a key at all": lambda key: "Bearer hunter2",
    "wrong secret of a real key": lambda key: f"Bearer {_wrong_secret(key)}",
    "key with a character added": lambda key: f"Bearer {key}x",
    "key id only": lambda key: f"Bearer {key.rsplit('_', 1)[0]}",
    "no scheme": lambda key: key,
    "basic": lambda key: "Basic dXNlcjpwYXNzd29yZA==",
    "basic with the key": lambda key: f"Basic {key}",
    "token scheme": lambda key: f"Token {key}",
    "sql in the key": lambda key: "Bearer sgk_abcdefgh_' OR '1'='1' --aaaaaaaaaa",
    "very long": lambda key: "Bearer " + "sgk_" + "a" * 8 + "_" + "b" * 5000,
}


@pytest.mark.parametrize("make", AUTHORIZATIONS.values(), ids=AUTHORIZATIONS)
def test_a_bad_or_malformed_key_is_401(guarded: LiveServer, make):
    key = make_key(guarded, tenant())
    before = guarded.counts()
    response = post(guarded, {"query": CREATE_TICKET, "variables": {"s": "bad key"}}, {"Authorization": make(key)})
    assert_unauthenticated(response)
    assert key not in response.text
    assert guarded.counts() == before


def test_a_revoked_key_is_refused_within_the_cache_lifetime(guarded: LiveServer):
    key = make_key(guarded, tenant())
    assert post(guarded, {"query": TICKETS}, bearer(key)).status_code == 200  # now cached as valid
    assert revoke(guarded, key)
    assert_unauthenticated(until_refused(guarded, key))
    before = guarded.counts()
    assert_unauthenticated(post(guarded, {"query": CREATE_TICKET, "variables": {"s": "revoked"}}, bearer(key)))
    assert guarded.counts() == before
    assert not revoke(guarded, key), "a key is revoked once"


def test_revoking_one_key_leaves_the_others_of_its_tenant(guarded: LiveServer):
    name = tenant()
    kept, revoked = make_key(guarded, name, "kept"), make_key(guarded, name, "revoked")
    assert revoke(guarded, revoked.split("_")[1])  # by id
    assert_unauthenticated(until_refused(guarded, revoked))
    assert post(guarded, {"query": TICKETS}, bearer(kept)).status_code == 200


def test_the_cli_issues_and_revokes_keys(guarded: LiveServer):
    url, name = guarded.settings.database_url, tenant()
    issued = cli("create-key", "--tenant", name, "--actor", "cli-robot", "--database-url", url)
    assert issued.returncode == 0, issued.stderr
    key = issued.stdout.split()[-1]
    assert key.startswith("sgk_")
    stored = guarded.sql("SELECT tenant, actor, secret_hash FROM api_key WHERE id = :id", id=key.split("_")[1])
    assert stored and stored[0][:2] == (name, "cli-robot")
    assert key.rsplit("_", 1)[1] not in stored[0][2], "only a hash of the secret is stored"

    created = post(guarded, {"query": CREATE_TICKET, "variables": {"s": "from the cli key"}}, bearer(key)).json()
    assert created["data"]["createTicket"]["createdBy"] == "cli-robot", created
    ticket = created["data"]["createTicket"]["id"]
    assert guarded.sql("SELECT tenant FROM ticket WHERE id = :id", id=ticket) == [(name,)]

    revoked = cli("revoke-key", key, "--database-url", url)
    assert revoked.returncode == 0, revoked.stderr
    assert_unauthenticated(until_refused(guarded, key))
    again = cli("revoke-key", key, "--database-url", url)
    assert again.returncode == 1 and "no live key" in again.stderr


@pytest.mark.parametrize(
    "option", [["--tenant", "bad tenant!"], ["--tenant", "ok", "--actor", "x" * 65], ["--tenant", ""]]
)
def test_the_cli_refuses_a_bad_tenant_or_actor(guarded: LiveServer, option: list[str]):
    before = guarded.sql("SELECT COUNT(*) FROM api_key")
    done = cli("create-key", *option, "--database-url", guarded.settings.database_url)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "sgk_" not in done.stdout
    assert guarded.sql("SELECT COUNT(*) FROM api_key") == before


def test_the_keys_actor_is_recorded_on_entities_and_events(guarded: LiveServer):
    name = tenant()
    alice, bob = make_key(guarded, name, "alice"), make_key(guarded, name, "bob")
    created = post(guarded, {"query": CREATE_TICKET, "variables": {"s": "whose?"}}, bearer(alice)).json()
    ticket = created["data"]["createTicket"]
    assert ticket["createdBy"] == "alice"
    escalated = post(
        guarded, {"query": 'mutation($id: ID!) { escalateTicket(id: $id, reason: "x") { createdBy } }',
                  "variables": {"id": ticket["id"]}}, bearer(bob),
    ).json()  # fmt: skip
    assert escalated["data"]["escalateTicket"]["createdBy"] == "alice", "createdBy stays the creator"
    history = post(
        guarded, {"query": "query($id: ID!) { ticket(id: $id) { events { nodes { type actor } } } }",
                  "variables": {"id": ticket["id"]}}, bearer(alice),
    ).json()["data"]["ticket"]["events"]["nodes"]  # fmt: skip
    assert [(e["type"], e["actor"]) for e in history] == [("Ticket.Created", "alice"), ("Ticket.Escalated", "bob")]
    by_actor = post(
        guarded, {"query": 'query($a: ID) { events(where: {actor: {eq: $a}}) { nodes { actor target } } }',
                  "variables": {"a": "bob"}}, bearer(alice),
    ).json()["data"]["events"]["nodes"]  # fmt: skip
    assert by_actor and {e["actor"] for e in by_actor} == {"bob"}
    stored = guarded.sql("SELECT actor FROM event WHERE target = :t ORDER BY seq", t=ticket["id"])
    assert [r[0] for r in stored] == ["alice", "bob"]


# --- anonymous callers learn nothing ------------------------------------------------------------

ANONYMOUS_PROBES = {
    "introspection": "{ __schema { types { name } } }",
    "type introspection": '{ __type(name: "Ticket") { fields { name } } }',
    "typename": "{ __typename }",
    "misspelled field": "{ tickts { totalCount } }",
    "misspelled argument": "{ tickets(frist: 1) { totalCount } }",
    "syntax error": "{ tickets { ",
}


@pytest.mark.parametrize("query", ANONYMOUS_PROBES.values(), ids=ANONYMOUS_PROBES)
def test_an_anonymous_caller_learns_nothing_of_the_schema(guarded: LiveServer, query: str):
    for response in (
        post(guarded, {"query": query}),
        post(guarded, {"query": query}, {"Accept": GRAPHQL_RESPONSE}),
        guarded.http.get("/graphql", params={"query": query}),
    ):
        body = assert_unauthenticated(response)
        text = json.dumps(body)
        assert "Did you mean" not in text and "Ticket" not in text and "tickets" not in text, text


def test_an_authenticated_caller_may_introspect(guarded: LiveServer):
    response = post(guarded, {"query": "{ __schema { types { name } } }"}, bearer(make_key(guarded, tenant())))
    names = {t["name"] for t in response.json()["data"]["__schema"]["types"]}
    assert {"Ticket", "Event", "Query", "Mutation"} <= names


# --- without require_auth ----------------------------------------------------------------------


def test_without_require_auth_no_key_acts_as_default_and_anonymous(server: LiveServer):
    created = server.data(CREATE_TICKET, {"s": f"anonymous {uuid.uuid4().hex[:6]}"})["createTicket"]
    assert created["createdBy"] == "anonymous"
    assert server.sql("SELECT tenant, created_by FROM ticket WHERE id = :id", id=created["id"]) == [
        ("default", "anonymous")
    ]
    events = server.sql("SELECT tenant, actor, type FROM event WHERE target = :id", id=created["id"])
    assert events == [("default", "anonymous", "Ticket.Created")]


@pytest.mark.parametrize(
    "authorization",
    ["Bearer sgk_abcdefgh_" + "x" * 43, "Bearer nonsense", "Basic dXNlcjpwYXNz", "Bearer"],
    ids=["unknown key", "malformed key", "basic", "bearer without a key"],
)
def test_without_require_auth_an_invalid_key_is_still_401(server: LiveServer, authorization: str):
    before = server.counts()
    response = post(server, {"query": CREATE_TICKET, "variables": {"s": "x"}}, {"Authorization": authorization})
    assert_unauthenticated(response)
    assert server.counts() == before


def test_without_require_auth_a_key_still_names_its_tenant(server: LiveServer):
    name = tenant()
    key = make_key(server, name, "keyed")
    created = post(server, {"query": CREATE_TICKET, "variables": {"s": "keyed"}}, bearer(key)).json()
    ticket = created["data"]["createTicket"]
    assert ticket["createdBy"] == "keyed"
    assert server.sql("SELECT tenant FROM ticket WHERE id = :id", id=ticket["id"]) == [(name,)]
    lookup = "query($id: ID!) { ticket(id: $id) { id } }"
    assert server.data(lookup, {"id": ticket["id"]}) == {"ticket": None}, "the anonymous default tenant"
    assert post(server, {"query": lookup, "variables": {"id": ticket["id"]}}, bearer(key)).json()["data"] == {
        "ticket": {"id": ticket["id"]}
    }


# --- WebSocket ----------------------------------------------------------------------------------

EVENTS = 'subscription { events(types: ["Ticket.Created"]) { target actor } }'


async def _refusal(live: LiveServer, protocol: str, payload: dict) -> tuple[int | None, list[dict]]:
    """Open a socket, send ``connection_init`` with ``payload``: the close code and what came before."""
    socket = await asyncio.wait_for(
        websockets.connect(ws.ws_url(live.url), subprotocols=[protocol], ping_interval=None), ws.WAIT
    )
    received: list[dict] = []
    try:
        await socket.send(json.dumps({"type": "connection_init", "payload": payload}))
        if protocol == TRANSPORT_WS:
            # a client may not wait for the ack before subscribing: nothing may run
            await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": EVENTS}}))
        while True:
            received.append(json.loads(await asyncio.wait_for(socket.recv(), ws.WAIT)))
    except websockets.ConnectionClosed as closed:
        return (closed.rcvd.code if closed.rcvd else None), received
    finally:
        await socket.close()


WS_REFUSALS = {
    "no key": lambda key: {},
    "unknown key": lambda key: {"authorization": "Bearer sgk_abcdefgh_" + "x" * 43},
    "wrong secret": lambda key: {"authorization": f"Bearer {_wrong_secret(key)}"},
    "basic": lambda key: {"authorization": "Basic dXNlcjpwYXNz"},
    "no scheme": lambda key: {"authorization": key},
    "not a string": lambda key: {"authorization": ["Bearer", key]},
}


@pytest.mark.parametrize("make", WS_REFUSALS.values(), ids=WS_REFUSALS)
@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_socket_without_a_valid_key_is_refused(guarded: LiveServer, protocol: str, make):
    key = await asyncio.to_thread(make_key, guarded, tenant())
    code, received = await _refusal(guarded, protocol, make(key))
    assert not [m for m in received if m.get("type") in ("connection_ack", "next", "data")], received
    if protocol == TRANSPORT_WS:
        assert code == 4403, (code, received)
    else:
        # the legacy protocol answers connection_error, then closes (with 1011, as Apollo's did)
        assert [m["type"] for m in received] == ["connection_error"], received
        assert received[0]["payload"]["code"] == "UNAUTHENTICATED"
        assert code is not None


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_socket_with_a_revoked_key_is_refused(guarded: LiveServer, protocol: str):
    key = await asyncio.to_thread(make_key, guarded, tenant())
    async with ws.connect(guarded.url, protocol, {"authorization": f"Bearer {key}"}):
        pass
    await asyncio.to_thread(revoke, guarded, key)
    await asyncio.to_thread(until_refused, guarded, key)
    code, received = await _refusal(guarded, protocol, {"authorization": f"Bearer {key}"})
    assert not [m for m in received if m.get("type") == "connection_ack"], received
    assert code == 4403 if protocol == TRANSPORT_WS else received[0]["type"] == "connection_error"


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_key_in_connection_init_serves_its_tenant(guarded: LiveServer, protocol: str):
    name = tenant()
    key = await asyncio.to_thread(make_key, guarded, name, "socket-user")
    # a first write, so the subscription can start right after it (replay, then live: no race)
    await asyncio.to_thread(post, guarded, {"query": CREATE_TICKET, "variables": {"s": "first"}}, bearer(key))
    latest = "{ events(orderBy: [{field: SEQUENCE, direction: DESC}], first: 1) { nodes { id } } }"
    start = (await asyncio.to_thread(post, guarded, {"query": latest}, bearer(key))).json()
    async with ws.connect(guarded.url, protocol, {"authorization": f"Bearer {key}"}) as socket:
        if protocol == TRANSPORT_WS:  # queries run over the current protocol too
            query = await socket.subscribe("{ tickets { totalCount } }")
            assert await query.next() == {"tickets": {"totalCount": 1}}
        live = await socket.subscribe(
            'subscription($after: ID) { events(types: ["Ticket.Created"], after: $after) { target actor } }',
            {"after": start["data"]["events"]["nodes"][0]["id"]},
        )
        response = await asyncio.to_thread(
            post, guarded, {"query": CREATE_TICKET, "variables": {"s": "over http"}}, bearer(key)
        )
        ticket = response.json()["data"]["createTicket"]["id"]
        received = await live.next()
    assert received == {"events": {"target": ticket, "actor": "socket-user"}}


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_without_require_auth_a_socket_may_be_anonymous_but_not_badly_keyed(server: LiveServer, protocol: str):
    async with ws.connect(server.url, protocol) as socket:
        query = await socket.subscribe("{ __typename }") if protocol == TRANSPORT_WS else None
        if query is not None:
            assert await query.next() == {"__typename": "Query"}
    code, received = await _refusal(server, protocol, {"authorization": "Bearer sgk_abcdefgh_" + "x" * 43})
    assert not [m for m in received if m.get("type") == "connection_ack"], received
    assert code == 4403 if protocol == TRANSPORT_WS else received[0]["type"] == "connection_error"


# --- 3. limits ---------------------------------------------------------------------------------


def _nested(depth: int, *, plain: bool = False) -> str:
    """``organizations { nodes { ... on Organization { parent { parent … { id } } } } }``:
    ``depth`` levels of fields. ``plain`` leaves out the inline fragment: a plain list page,
    which the server may answer on its compiled path (graph/fastpath.py)."""
    inner = "id"
    for _ in range(depth - 3):
        inner = f"parent {{ {inner} }}"
    if not plain:
        inner = f"... on Organization {{ {inner} }}"
    return f"{{ organizations(first: 1) {{ nodes {{ {inner} }} }} }}"


def _too_complex(response: httpx.Response, *words: str) -> str:
    body = response.json()
    assert body.get("errors"), f"the request was answered: {str(body)[:500]}"
    assert [e["extensions"]["code"] for e in body["errors"]] == ["QUERY_TOO_COMPLEX"], body
    message = body["errors"][0]["message"]
    assert all(word in message for word in words), message
    assert_clean(response.text)
    return message


def test_a_body_over_the_limit_is_413(tight: LiveServer):
    limit = TIGHT.max_body_bytes
    padding = "x" * limit
    before = tight.counts()
    declared = post(tight, {"query": CREATE_TICKET, "variables": {"s": "big"}, "extensions": {"pad": padding}})
    assert declared.status_code == 413, declared.text
    assert declared.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert str(limit) in declared.json()["errors"][0]["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the server counts as it reads
        yield b'{"query": "{ __typename }", "pad": "'
        for _ in range(limit // 1000 + 1):
            yield b"y" * 1000
        yield b'"}'

    streamed = tight.http.post("/graphql", content=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413, streamed.text
    assert tight.counts() == before
    just_under = post(tight, {"query": "{ __typename }", "pad": "z" * (limit - 100)})
    assert just_under.status_code == 200, just_under.text


def test_a_document_with_too_many_tokens_is_refused(tight: LiveServer):
    query = "{ " + " ".join("__typename" for _ in range(TIGHT.max_tokens)) + " }"
    response = post(tight, {"query": query})
    assert response.status_code == 400
    _too_complex(response, "tokens", str(TIGHT.max_tokens))


def _refuses_nesting(target: LiveServer, nesting: int) -> None:
    response = post(target, {"query": "{" * nesting + "}" * nesting})
    assert response.status_code == 400, response.text
    _too_complex(response, "nested")
    assert target.http.get("/healthz").status_code == 200


@pytest.mark.parametrize("nesting", [200, 5000])
def test_deeply_nested_braces_are_refused_before_parsing(tight: LiveServer, nesting: int):
    _refuses_nesting(tight, nesting)


@pytest.mark.parametrize("nesting", [200, 5000])
def test_deeply_nested_braces_are_refused_with_the_default_limits(server: LiveServer, nesting: int):
    _refuses_nesting(server, nesting)


@pytest.mark.parametrize("accept", ["application/json", GRAPHQL_RESPONSE])
def test_depth_over_the_limit_is_refused(tight: LiveServer, accept: str):
    assert post(tight, {"query": _nested(TIGHT.max_depth)}).json()["data"] == {"organizations": {"nodes": []}}
    response = post(tight, {"query": _nested(TIGHT.max_depth + 1)}, {"Accept": accept})
    assert response.status_code == (400 if accept == GRAPHQL_RESPONSE else 200)
    message = _too_complex(response, str(TIGHT.max_depth))
    assert response.json().get("data") is None, message


def test_a_plain_list_page_is_held_to_the_depth_limit(tight: LiveServer):
    _too_complex(post(tight, {"query": _nested(TIGHT.max_depth + 1, plain=True)}), str(TIGHT.max_depth))


def test_a_plain_list_page_is_held_to_the_alias_limit(tight: LiveServer):
    query = "{ tickets { nodes { " + " ".join(f"a{i}: id" for i in range(TIGHT.max_aliases + 1)) + " } } }"
    _too_complex(post(tight, {"query": query}), "aliases")


def test_a_plain_list_page_is_held_to_the_default_alias_limit(server: LiveServer):
    aliases = Limits().max_aliases + 10
    server.data('mutation { createTicket(input: {subject: "aliased"}) { id } }')
    query = "{ tickets(first: 1) { nodes { " + " ".join(f"a{i}: subject" for i in range(aliases)) + " } } }"
    _too_complex(post(server, {"query": query}), "aliases")


def test_depth_through_fragments_is_counted(tight: LiveServer):
    query = (
        "query { organizations(first: 1) { nodes { ...Up } } }"
        " fragment Up on Organization { parent { parent { ...Top } } }"
        " fragment Top on Organization { parent { id } }"
    )
    _too_complex(post(tight, {"query": query}), str(TIGHT.max_depth))


def test_aliases_over_the_limit_are_refused(tight: LiveServer):
    def aliases(n: int) -> str:
        return "{ " + " ".join(f"a{i}: __typename" for i in range(n)) + " }"

    assert post(tight, {"query": aliases(TIGHT.max_aliases)}).json()["data"]["a0"] == "Query"
    _too_complex(post(tight, {"query": aliases(TIGHT.max_aliases + 1)}), "aliases", str(TIGHT.max_aliases))


def test_the_node_budget_multiplies_nested_pages(tight: LiveServer):
    query = (
        "query($outer: Int, $inner: Int) {"
        " organizations(first: $outer) { nodes { contacts(first: $inner) { totalCount } } } }"
    )
    # 20 + 20×20 = 420 nodes fit in 500; 20 + 20×25 = 520 do not
    fits = post(tight, {"query": query, "variables": {"outer": 20, "inner": 20}})
    assert fits.json()["data"] == {"organizations": {"nodes": []}} and "errors" not in fits.json(), fits.text
    over = post(tight, {"query": query, "variables": {"outer": 20, "inner": 25}})
    _too_complex(over, "nodes", str(TIGHT.max_nodes))
    literal = "{ organizations(first: 30) { nodes { contacts(first: 30) { totalCount } } } }"
    _too_complex(post(tight, {"query": literal}), "930")
    # no first: each connection counts as a page of 20, so 20 + 3 × 20 × 20 = 1220
    default_pages = (
        "{ organizations { nodes { contacts { totalCount } tickets { totalCount } deals { totalCount } } } }"
    )
    _too_complex(post(tight, {"query": default_pages}), "1220")


def test_a_variable_left_out_counts_at_its_default(tight: LiveServer):
    query = (
        "query($outer: Int = 20, $inner: Int = 25) {"
        " organizations(first: $outer) { nodes { contacts(first: $inner) { totalCount } } } }"
    )
    # left out: the defaults, 20 + 20×25 = 520 nodes, over 500; given, the values sent
    _too_complex(post(tight, {"query": query}), "nodes", "520")
    fits = post(tight, {"query": query, "variables": {"inner": 20}})
    assert fits.json()["data"] == {"organizations": {"nodes": []}} and "errors" not in fits.json(), fits.text
    assert fits.json()["extensions"]["cost"]["requested"] == 20 + 20 * 20


def test_a_batch_over_the_limit_is_400_and_a_small_one_works(tight: LiveServer):
    operation = {"query": "query($s: String) { tickets(where: {subject: {eq: $s}}) { totalCount } }"}
    too_many = post(tight, [operation] * (TIGHT.max_batch + 1))
    assert too_many.status_code == 400
    assert too_many.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert str(TIGHT.max_batch) in too_many.json()["errors"][0]["message"]
    two = post(tight, [{**operation, "variables": {"s": "a"}}, {"query": "{ __typename }"}])
    assert two.status_code == 200
    assert [answer["data"] for answer in two.json()] == [{"tickets": {"totalCount": 0}}, {"__typename": "Query"}]


def test_a_batch_is_checked_operation_by_operation(tight: LiveServer):
    deep = {"query": "{" * 200 + "}" * 200}
    response = post(tight, [{"query": "{ __typename }"}, deep])
    assert response.status_code == 400
    _too_complex(response, "nested")


@pytest.mark.parametrize("size", [101, 1000, -1])
@pytest.mark.parametrize("argument", ["first", "last"])
def test_a_page_size_out_of_range_is_bad_user_input(server: LiveServer, argument: str, size: int):
    error = server.error(f"query($n: Int) {{ tickets({argument}: $n) {{ totalCount }} }}", {"n": size})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert argument in error["message"]
    assert server.data(f"{{ tickets({argument}: 100) {{ totalCount }} }}")["tickets"]["totalCount"] >= 0


def test_a_subject_over_500_characters_is_bad_user_input(server: LiveServer):
    before = server.counts()
    error = server.error(CREATE_TICKET, {"s": "x" * 501})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "subject" in error["message"]
    assert server.counts() == before
    assert server.data(CREATE_TICKET, {"s": "y" * 500})["createTicket"]["id"]


def test_deeply_nested_variables_are_400(tight: LiveServer):
    def nested(depth: int) -> dict:
        where: dict = {"subject": {"eq": "x"}}
        for _ in range(depth):
            where = {"not": where}
        return where

    query = "query($w: TicketWhere) { tickets(where: $w) { totalCount } }"
    assert post(tight, {"query": query, "variables": {"w": nested(1)}}).json()["data"] == {"tickets": {"totalCount": 0}}
    response = post(tight, {"query": query, "variables": {"w": nested(TIGHT.max_variables_depth + 5)}})
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "variables" in response.json()["errors"][0]["message"]
    # 2000 levels (within the body limit), written by hand: the client's own JSON encoder would
    # exhaust its recursion
    deep = '{"not": ' * 2000 + "{}" + "}" * 2000
    raw = f'{{"query": {json.dumps(query)}, "variables": {{"w": {deep}}}}}'
    huge = tight.http.post("/graphql", content=raw.encode(), headers={"Content-Type": "application/json"})
    assert huge.status_code == 400, huge.text
    assert huge.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert_clean(huge.text)


# --- limits over WebSocket ---------------------------------------------------------------------

WS_COMPLEX = {
    # events 1 › entity 2 › requester 3 › organization 4 › parent 5 › id 6
    "depth": "subscription { events { entity { ... on Ticket { requester { organization { parent { id } } } } } } }",
    "aliases": "subscription { events { a: id b: id c: id d: id } }",
    # six connections of 100 under each event's organization: 600 nodes
    "nodes": "subscription { events { entity { ... on Organization {"
    " contacts(first: 100) { totalCount } tickets(first: 100) { totalCount } deals(first: 100) { totalCount }"
    " subscriptions(first: 100) { totalCount } activities(first: 100) { totalCount }"
    " subsidiaries(first: 100) { totalCount } } } } }",
}
WS_QUERY_COMPLEX = {
    "depth": "{ organizations(first: 1) { nodes { parent { parent { parent { id } } } } } }",
    "aliases": "{ a: __typename b: __typename c: __typename d: __typename }",
    "nodes": "{ organizations(first: 30) { nodes { contacts(first: 30) { totalCount } } } }",
}
#: how many writes a subscription that was (wrongly) accepted may need to show it, and the wait
#: for each: bounds, so that the test ends either way
WS_PROBES, WS_PROBE_WAIT = 20, 0.5


async def _first_message(live: LiveServer, operation: ws.Operation) -> ws.Message:
    """The operation's first message: a refusal comes at once; an accepted subscription shows
    itself with an event of one of the organizations written here."""
    for _ in range(WS_PROBES):
        try:
            return await operation.message(WS_PROBE_WAIT)
        except TimeoutError:
            await asyncio.to_thread(
                live.data, 'mutation { createOrganization(input: {name: "probe"}) { id } }'
            )  # fmt: skip
    return await operation.message()


@pytest.mark.parametrize("limit", WS_QUERY_COMPLEX)
async def test_a_query_over_websocket_is_held_to_the_limits(tight: LiveServer, limit: str):
    async with ws.connect(tight.url, TRANSPORT_WS) as socket:
        operation = await socket.subscribe(WS_QUERY_COMPLEX[limit])
        error = await operation.error()
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX", error
    assert limit in error["message"] or (limit == "depth" and "deep" in error["message"]), error


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("limit", WS_COMPLEX)
async def test_a_subscription_is_held_to_the_limits(tight: LiveServer, protocol: str, limit: str):
    async with ws.connect(tight.url, protocol) as socket:
        operation = await socket.subscribe(WS_COMPLEX[limit])
        message = await _first_message(tight, operation)
    assert message.errors, f"the subscription ran: {message}"
    assert message.errors[0]["extensions"]["code"] == "QUERY_TOO_COMPLEX", message


# --- rate limits -------------------------------------------------------------------------------


def test_the_request_after_the_burst_is_429_with_retry_after(throttled: LiveServer):
    first, second = make_key(throttled, tenant()), make_key(throttled, tenant())
    for _ in range(THROTTLED.rate_burst):
        assert post(throttled, {"query": TICKETS}, bearer(first)).status_code == 200
    before = throttled.counts()
    refused = post(throttled, {"query": CREATE_TICKET, "variables": {"s": "one too many"}}, bearer(first))
    assert refused.status_code == 429, refused.text
    assert [e["extensions"]["code"] for e in refused.json()["errors"]] == ["RATE_LIMITED"]
    retry = int(refused.headers["retry-after"])
    assert 1 <= retry <= 60 * 60 // THROTTLED.rate_per_minute
    assert throttled.counts() == before, "a throttled request runs nothing"
    # another key has a bucket of its own
    for _ in range(THROTTLED.rate_burst):
        assert post(throttled, {"query": TICKETS}, bearer(second)).status_code == 200
    assert post(throttled, {"query": TICKETS}, bearer(second)).status_code == 429


def test_a_rate_limited_response_speaks_graphql_response(throttled: LiveServer):
    key = make_key(throttled, tenant())
    statuses = [
        post(throttled, {"query": TICKETS}, {**bearer(key), "Accept": GRAPHQL_RESPONSE})
        for _ in range(THROTTLED.rate_burst + 1)
    ]
    assert [r.status_code for r in statuses] == [200] * THROTTLED.rate_burst + [429]
    assert statuses[-1].headers["content-type"].startswith(GRAPHQL_RESPONSE)


# --- 5. internal errors are masked -------------------------------------------------------------

SECRET = "s3cret-internal-detail SELECT password FROM users"


@pytest.fixture
def failing_hook(server: LiveServer) -> Iterator[None]:
    """A ``Ticket.Created`` after-hook that raises, registered only for the test."""

    async def explode(change) -> None:
        raise RuntimeError(SECRET)

    hooks = server.services.hooks
    hooks.after("Ticket.Created")(explode)
    try:
        yield
    finally:
        hooks.remove(explode)


def test_a_failing_hook_is_masked_and_writes_nothing(server: LiveServer, failing_hook):
    before = server.counts()
    response = post(server, {"query": CREATE_TICKET, "variables": {"s": f"doomed {uuid.uuid4().hex[:6]}"}})
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["INTERNAL"], body
    assert "s3cret" not in response.text and "RuntimeError" not in response.text
    assert_clean(response.text)
    assert server.counts() == before


def test_a_failing_hook_reports_a_request_id(server: LiveServer, failing_hook):
    body = post(server, {"query": CREATE_TICKET, "variables": {"s": "doomed"}}).json()
    error = body["errors"][0]
    assert error["extensions"]["code"] == "INTERNAL"
    assert error["extensions"].get("requestId"), error
    assert set(error["extensions"]) == {"code", "requestId"}, error


def test_an_unexpected_exception_is_masked_with_a_request_id(server: LiveServer, monkeypatch):
    async def broken(*args, **kwargs):
        raise RuntimeError(SECRET)

    monkeypatch.setattr(resolvers.metrics, "support_metrics", broken)
    response = post(server, {"query": "{ supportMetrics { ticketCount } }"})
    body = response.json()
    error = body["errors"][0]
    assert error["extensions"]["code"] == "INTERNAL", body
    request_id = error["extensions"]["requestId"]
    assert request_id and request_id in error["message"]
    assert "s3cret" not in response.text and "RuntimeError" not in response.text
    assert_clean(response.text)
    other = post(server, {"query": "{ supportMetrics { ticketCount } }"}).json()["errors"][0]
    assert other["extensions"]["requestId"] != request_id, "each request has its own id"
