"""Persisted queries on real servers, on SQLite and PostgreSQL (API.md, "Frontends and the wider
graph"): automatic persisted queries over POST, GET, batches, the compiled path, idempotency
keys and WebSocket; kept for every worker and across restarts; ``register-documents`` and
``--persisted-only``; and Apollo Client's own persisted-query link (tests/apq_client).

Documents carry a fresh alias each, so that no test finds a hash another one stored.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy

from graph import fastpath
from graph.cli.commands import main
from graph.server.persisted import PersistedQueries, Registration, register
from graph.server.settings import Settings
from models.base import DEFAULT_TENANT
from models.persisted import EVERY_TENANT
from resolvers.keys import create_key
from tests.conftest import UNTHROTTLED
from tests.databases import REDIS_URL, redis_unreachable, require
from tests.live import LiveServer
from tests.procs import SETTINGS_ENV, START_WAIT, free_port
from tests.ws_client import LEGACY_WS, PROTOCOLS, TRANSPORT_WS, Connection, Operation, connect

ROOT = Path(__file__).resolve().parent.parent
CLIENT = Path(__file__).resolve().parent / "apq_client"
GRAPHQL_RESPONSE = "application/graphql-response+json"
START = {TRANSPORT_WS: "subscribe", LEGACY_WS: "start"}


def fresh(template: str = "tickets(first: 2) { totalCount }") -> str:
    """A document no other test sends: ``query { a<random>: <template> }``."""
    return f"query {{ a{uuid.uuid4().hex[:12]}: {template} }}"


def alias(text: str) -> str:
    """The alias ``fresh`` gave a document."""
    return text.split()[2].rstrip(":")


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def by_hash(text: str, **extra: Any) -> dict[str, Any]:
    """An operation naming ``text`` by its hash alone."""
    return {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha(text)}}, **extra}


def with_text(text: str, **extra: Any) -> dict[str, Any]:
    """An operation sending ``text`` with its hash (what registers it)."""
    return {**by_hash(text, **extra), "query": text}


def post(server: LiveServer, body: Any, **headers: str) -> httpx.Response:
    return server.http.post("/graphql", json=body, headers=headers)


def get(server: LiveServer, operation: dict[str, Any], **headers: str) -> httpx.Response:
    params = {k: v if isinstance(v, str) else json.dumps(v) for k, v in operation.items()}
    return server.http.get("/graphql", params=params, headers=headers)


def codes(response: httpx.Response) -> list[str]:
    body = response.json()
    answers = body if isinstance(body, list) else [body]
    return [e["extensions"]["code"] for a in answers for e in a.get("errors") or ()]


def stored(server: LiveServer, text: str) -> list[tuple]:
    """The rows (document, tenant) of ``text``'s hash: registered first (tenant "")."""
    return server.sql("SELECT document, tenant FROM persisted_query WHERE hash = :h ORDER BY tenant", h=sha(text))


# --- automatic persisted queries --------------------------------------------------------------


@pytest.mark.parametrize("accept, status", [(None, 200), (GRAPHQL_RESPONSE, 400)])
def test_an_unknown_hash_is_persisted_query_not_found(server: LiveServer, accept: str | None, status: int):
    response = post(server, by_hash(fresh()), **({"Accept": accept} if accept else {}))
    assert (response.status_code, codes(response)) == (status, ["PERSISTED_QUERY_NOT_FOUND"])
    assert response.json()["errors"][0]["message"] == "PersistedQueryNotFound"  # what Apollo's link looks for
    assert "no-cache" in response.headers["cache-control"]


def test_a_hash_with_its_query_is_kept_and_then_runs_by_hash(server: LiveServer):
    text = fresh()
    first = post(server, with_text(text))
    assert first.status_code == 200 and "errors" not in first.json(), first.text
    assert stored(server, text) == [(text, DEFAULT_TENANT)]
    again = post(server, by_hash(text))
    assert again.json()["data"] == first.json()["data"]
    over_get = get(server, by_hash(text))
    assert over_get.status_code == 200 and over_get.json()["data"] == first.json()["data"]


def test_a_get_by_an_unknown_hash_registers_by_post_then_runs_by_get(server: LiveServer):
    text = fresh()
    assert codes(get(server, by_hash(text))) == ["PERSISTED_QUERY_NOT_FOUND"]
    assert post(server, with_text(text)).status_code == 200
    assert get(server, by_hash(text)).json()["data"] == post(server, {"query": text}).json()["data"]


@pytest.mark.parametrize(
    "extensions, message",
    [
        ({"persistedQuery": {"version": 2, "sha256Hash": "0" * 64}}, "version"),
        ({"persistedQuery": {"version": 1, "sha256Hash": "not-a-hash"}}, "SHA-256"),
        ({"persistedQuery": "x"}, "version"),
        ("not an object", "JSON object"),
    ],
)
def test_a_malformed_extension_is_bad_user_input(server: LiveServer, extensions: Any, message: str):
    response = post(server, {"query": "{ __typename }", "extensions": extensions})
    assert (response.status_code, codes(response)) == (400, ["BAD_USER_INPUT"])
    assert message in response.json()["errors"][0]["message"]


def test_a_hash_that_is_not_the_querys_is_refused_and_keeps_nothing(server: LiveServer):
    text, other = fresh(), fresh()
    response = post(server, {**by_hash(other), "query": text})
    assert codes(response) == ["BAD_USER_INPUT"] and "SHA-256" in response.json()["errors"][0]["message"]
    assert stored(server, text) == stored(server, other) == []


def test_a_document_that_does_not_validate_is_answered_but_not_kept(server: LiveServer):
    text = fresh("tickets(first: 2) { noSuchField }")
    assert codes(post(server, with_text(text))) == ["BAD_USER_INPUT"]
    assert stored(server, text) == []
    assert codes(post(server, by_hash(text))) == ["PERSISTED_QUERY_NOT_FOUND"]


def test_a_batch_mixes_hashes_and_documents(server: LiveServer):
    known, unknown = fresh(), fresh()
    post(server, with_text(known))
    answers = post(server, [by_hash(known), {"query": "{ __typename }"}, with_text(unknown)]).json()
    assert [list(a["data"]) for a in answers] == [[alias(known)], ["__typename"], [alias(unknown)]]
    assert stored(server, unknown) == [(unknown, DEFAULT_TENANT)]
    refused = post(server, [by_hash(known), by_hash(fresh())])
    assert codes(refused) == ["PERSISTED_QUERY_NOT_FOUND"]  # the batch is refused as a whole, before running


def test_a_document_sent_by_hash_takes_the_compiled_path(server: LiveServer, monkeypatch: pytest.MonkeyPatch):
    text = "query Compiled { tickets(first: 3) { nodes { id subject } } }"
    assert fastpath.compile_plan(text, "Compiled") is not None
    view, answered = server.app.state.graphql, []
    compiled = view._compiled

    async def watched(request: Any) -> Any:
        response = await compiled(request)
        answered.append(response is not None)
        return response

    monkeypatch.setattr(view, "_compiled", watched)
    post(server, with_text(text, operationName="Compiled"))
    by_hash_only = post(server, by_hash(text, operationName="Compiled"))
    assert by_hash_only.json()["data"] == post(server, {"query": text}).json()["data"]
    assert answered == [True, True, True]


def test_an_idempotent_mutation_replays_whether_its_retry_sends_the_hash_or_the_text(server: LiveServer):
    subject = f"apq {uuid.uuid4().hex[:8]}"
    text = f'mutation {{ a{uuid.uuid4().hex[:8]}: createTicket(input: {{subject: "{subject}"}}) {{ id }} }}'
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = post(server, with_text(text), **key)
    retry = post(server, by_hash(text), **key)
    assert retry.headers.get("idempotent-replayed") == "true", retry.text
    assert retry.content == first.content
    assert server.sql("SELECT COUNT(*) FROM ticket WHERE subject = :s", s=subject) == [(1,)]


def test_a_tenant_finds_only_its_own_documents_and_the_registered_ones(server: LiveServer):
    """A hash says nothing about what another tenant sent: each tenant keeps its own."""
    keys = [server.run(create_key(server.services.db, tenant=f"apq-{uuid.uuid4().hex[:8]}"))[1] for _ in range(2)]
    mine, theirs = ({"Authorization": f"Bearer {key}"} for key in keys)
    text, trusted = fresh(), fresh()
    assert "errors" not in post(server, with_text(text), **mine).json()
    assert "errors" not in post(server, by_hash(text), **mine).json()
    assert codes(post(server, by_hash(text), **theirs)) == ["PERSISTED_QUERY_NOT_FOUND"]
    assert codes(post(server, by_hash(text))) == ["PERSISTED_QUERY_NOT_FOUND"]  # anonymous: tenant "default"
    server.run(register(server.services.db, [Registration(sha(trusted), trusted)]))
    assert all("errors" not in post(server, by_hash(trusted), **who).json() for who in (mine, theirs, {}))


# --- every worker, every restart --------------------------------------------------------------


def test_every_worker_and_every_restart_knows_a_kept_hash(database_url: str):
    """Two apps on one database (two workers, each with a cache of its own), then a third
    started after both stopped."""
    text = fresh()
    one = LiveServer(Settings(database_url=database_url, limits=UNTHROTTLED)).start()
    two = LiveServer(Settings(database_url=database_url, limits=UNTHROTTLED)).start()
    try:
        assert codes(post(two, by_hash(text))) == ["PERSISTED_QUERY_NOT_FOUND"]
        expected = post(one, with_text(text)).json()["data"]
        assert post(two, by_hash(text)).json()["data"] == expected
    finally:
        one.stop()
        two.stop()
    restarted = LiveServer(Settings(database_url=database_url, limits=UNTHROTTLED)).start()
    try:
        assert get(restarted, by_hash(text)).json()["data"] == expected
    finally:
        restarted.stop()


async def execute(server: LiveServer, statement: str) -> None:
    async with server.services.db.engine.begin() as connection:
        await connection.execute(sqlalchemy.text(statement))


def test_a_document_the_database_refuses_still_runs_and_stays_with_its_worker(tmp_path: Path):
    """The table refuses the write (a trigger raising, in the database itself): the request is
    answered all the same, and this worker, not another, knows the hash."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'refusing.db'}"
    one = LiveServer(Settings(database_url=url, limits=UNTHROTTLED)).start()
    two = LiveServer(Settings(database_url=url, limits=UNTHROTTLED)).start()
    try:
        one.run(
            execute(one, "CREATE TRIGGER refuse BEFORE INSERT ON persisted_query BEGIN SELECT RAISE(ABORT, 'no'); END")
        )
        text = fresh()
        answered = post(one, with_text(text))
        assert answered.status_code == 200 and "errors" not in answered.json(), answered.text
        assert stored(one, text) == []
        assert post(one, by_hash(text)).json()["data"] == answered.json()["data"]
        assert codes(post(two, by_hash(text))) == ["PERSISTED_QUERY_NOT_FOUND"]
    finally:
        one.stop()
        two.stop()


@contextmanager
def serving(*flags: str) -> Iterator[str]:
    """``python -m graph serve FLAGS`` on a free port until /readyz answers; its base URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS_ENV}
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "graph", "serve", "--port", str(port), "--log-level", "warning", *flags],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + START_WAIT
            while not ready(base):
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    pytest.fail(f"serve {' '.join(flags)} did not start:\n{log.read().decode(errors='replace')}")
                time.sleep(0.1)
            yield base
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)


def ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def test_every_worker_process_knows_a_kept_hash_and_persisted_only_is_a_flag(tmp_path: Path, capsys):
    """``serve --workers 2``: a document kept through one request runs by hash on every new
    connection, whichever worker takes it; ``serve --persisted-only`` runs only registered ones."""
    require(redis_unreachable(), "Redis")
    url = f"sqlite+aiosqlite:///{tmp_path / 'served.db'}"
    broker = f"{REDIS_URL}?channel=apq-{uuid.uuid4().hex}"
    text, registered = fresh(), fresh()
    with serving("--database-url", url, "--broker-url", broker, "--workers", "2") as base:
        expected = httpx.post(f"{base}/graphql", json=with_text(text)).json()["data"]
        for _ in range(16):  # a connection each: the kernel hands them to either worker
            with httpx.Client(base_url=base) as fresh_connection:
                assert fresh_connection.post("/graphql", json=by_hash(text)).json().get("data") == expected
    assert register_file(url, tmp_path / "m.json", manifest(registered), capsys)[0] == 0
    with serving("--database-url", url, "--persisted-only") as base:
        assert httpx.post(f"{base}/graphql", json=by_hash(registered)).status_code == 200
        refused = httpx.post(f"{base}/graphql", json={"query": text})
        assert codes(refused) == ["PERSISTED_QUERY_NOT_IN_LIST"]


def test_clients_keep_at_most_so_many_documents_and_registered_ones_stay(server: LiveServer):
    """The table keeps the newest ``keep`` documents of clients; registered ones are never pruned."""
    services = server.services
    trusted = fresh()
    server.run(register(services.db, [Registration(sha(trusted), trusted)]))
    store = PersistedQueries(services.db, server.app.state.graphql.schema._schema, keep=3)
    texts = [fresh() for _ in range(5)]
    for text in texts:
        server.run(store.remember(sha(text), text, DEFAULT_TENANT))
    clients = server.sql("SELECT COUNT(*) FROM persisted_query WHERE tenant <> :every", every=EVERY_TENANT)[0][0]
    assert clients == 3
    assert [bool(stored(server, t)) for t in texts] == [False, False, True, True, True]
    assert stored(server, trusted) == [(trusted, EVERY_TENANT)]


# --- WebSocket --------------------------------------------------------------------------------


async def start(connection: Connection, payload: dict[str, Any]) -> Operation:
    """Start an operation with ``payload`` as given (a hash without a document)."""
    operation = Operation(connection, uuid.uuid4().hex[:8])
    connection.operations[operation.id] = operation
    await connection.send({"id": operation.id, "type": START[connection.protocol], "payload": payload})
    return operation


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_websocket_operation_runs_by_hash(server: LiveServer, protocol: str):
    text, unknown = fresh(), fresh()
    expected = post(server, with_text(text)).json()["data"]

    async def go() -> None:
        async with connect(server.url, protocol) as connection:
            assert await (await start(connection, by_hash(text))).next() == expected
            error = await (await start(connection, by_hash(unknown))).error()
            assert error["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"

    asyncio.run(go())


# --- registered documents and --persisted-only ------------------------------------------------


@pytest.fixture(scope="module")
def registered_only(database_url: str) -> Iterator[LiveServer]:
    live = LiveServer(Settings(database_url=database_url, limits=UNTHROTTLED, persisted_only=True)).start()
    yield live
    live.stop()


def register_file(database_url: str, path: Path, content: Any, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """``support-graph register-documents`` on a file holding ``content``; (exit code, output)."""
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    code = main(["register-documents", str(path), "--database-url", database_url])
    out, err = capsys.readouterr()
    return code, out + err


def manifest(*texts: str) -> dict[str, Any]:
    operations = [{"id": sha(t), "body": t, "name": None, "type": t.split()[0]} for t in texts]
    return {"format": "apollo-persisted-query-manifest", "version": 1, "operations": operations}


def test_only_registered_documents_run(registered_only: LiveServer, server: LiveServer, tmp_path: Path, capsys):
    url = registered_only.settings.database_url
    plain, listed, unregistered = fresh(), fresh(), fresh()
    assert register_file(url, tmp_path / "plain.json", {sha(plain): plain}, capsys)[0] == 0
    assert register_file(url, tmp_path / "manifest.json", manifest(listed), capsys)[0] == 0
    expected = post(server, {"query": plain}).json()["data"]
    assert post(registered_only, by_hash(plain)).json()["data"] == expected  # by hash
    assert post(registered_only, {"query": plain}).json()["data"] == expected  # in full
    assert get(registered_only, by_hash(listed)).status_code == 200
    for refused in (post(registered_only, {"query": unregistered}), post(registered_only, by_hash(unregistered)),
                    post(registered_only, with_text(unregistered)), get(registered_only, {"query": unregistered}),
                    post(registered_only, [by_hash(plain), {"query": unregistered}])):  # fmt: skip
        assert codes(refused) == ["PERSISTED_QUERY_NOT_IN_LIST"], refused.text
    assert stored(registered_only, unregistered) == []  # clients register nothing


def test_a_document_a_client_kept_runs_only_once_registered(registered_only: LiveServer, server: LiveServer,
                                                             tmp_path: Path, capsys):  # fmt: skip
    text = fresh()
    post(server, with_text(text))  # kept by a server that takes automatic persisted queries
    assert codes(post(registered_only, by_hash(text))) == ["PERSISTED_QUERY_NOT_IN_LIST"]
    code, out = register_file(registered_only.settings.database_url, tmp_path / "m.json", manifest(text), capsys)
    assert code == 0 and "1 new" in out
    assert post(registered_only, by_hash(text)).status_code == 200
    assert stored(server, text) == [(text, EVERY_TENANT), (text, DEFAULT_TENANT)]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_websocket_subscription_must_be_registered(registered_only: LiveServer, server: LiveServer,
                                                     protocol: str, tmp_path: Path, capsys):  # fmt: skip
    """A registered subscription runs (by hash or in full); any other is refused."""
    ticket = server.data(
        'mutation { createTicket(input: {subject: "watched"}) { id events(first: 1) { nodes { id } } } }'
    )
    created = ticket["createTicket"]
    server.data(
        'mutation($id: ID!) { updateTicket(id: $id, input: {subject: "changed"}) { id } }', {"id": created["id"]}
    )
    watch = f"subscription Watch{uuid.uuid4().hex[:8]}($t: ID!, $a: ID!) {{ events(target: $t, after: $a) {{ type target }} }}"
    unregistered = f"subscription {{ a{uuid.uuid4().hex[:8]}: events {{ id }} }}"
    url = registered_only.settings.database_url
    assert register_file(url, tmp_path / "m.json", manifest(watch), capsys)[0] == 0
    variables = {"t": created["id"], "a": created["events"]["nodes"][0]["id"]}

    async def go() -> None:
        async with connect(registered_only.url, protocol) as connection:
            for payload in (by_hash(watch, variables=variables), {"query": watch, "variables": variables}):
                replayed = await (await start(connection, payload)).next()
                assert replayed["events"] == {"type": "Ticket.Updated", "target": created["id"]}
            for payload in ({"query": unregistered}, with_text(unregistered), by_hash(unregistered)):
                error = await (await start(connection, payload)).error()
                assert error["extensions"]["code"] == "PERSISTED_QUERY_NOT_IN_LIST", error

    asyncio.run(go())


# --- register-documents ------------------------------------------------------------------------


def test_register_documents_is_all_or_nothing(server: LiveServer, tmp_path: Path, capsys):
    url = server.settings.database_url
    good, invalid, broken, mismatched = fresh(), fresh("tickets { nope }"), "query {", fresh()
    content = {sha(good): good, sha(invalid): invalid, sha(broken): broken, sha(fresh()): mismatched}
    code, out = register_file(url, tmp_path / "bad.json", content, capsys)
    assert code == 1 and "3 of 4 documents refused, nothing registered" in out, out
    assert "does not validate" in out and "does not parse" in out and "not the SHA-256" in out
    assert stored(server, good) == []


@pytest.mark.parametrize(
    "content, problem",
    [
        ("[1, 2]", "expected a JSON object"),
        ("{not json", "not JSON"),
        ({"format": "something-else", "operations": []}, "apollo-persisted-query-manifest"),
        (
            {"format": "apollo-persisted-query-manifest", "version": 1, "operations": [{"id": "x", "body": "{ a }"}]},
            "SHA-256 in hexadecimal",
        ),
    ],
)
def test_register_documents_explains_a_bad_file(server: LiveServer, tmp_path: Path, capsys, content: Any, problem: str):
    code, out = register_file(server.settings.database_url, tmp_path / "f.json", content, capsys)
    assert code == 1 and problem in out, out


def test_a_manifest_operation_of_another_type_is_refused(server: LiveServer, tmp_path: Path, capsys):
    text = fresh()
    content = manifest(text)
    content["operations"][0]["type"] = "mutation"
    code, out = register_file(server.settings.database_url, tmp_path / "f.json", content, capsys)
    assert code == 1 and '"type": "mutation", the document holds query' in out, out


def test_register_documents_from_the_command_line(server: LiveServer, tmp_path: Path):
    text = fresh()
    (tmp_path / "m.json").write_text(json.dumps(manifest(text, text)))  # listed twice: registered once
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    for expected in ("1 document registered (1 new", "(0 new, 1 already registered)"):  # again: nothing changes
        done = subprocess.run(
            [sys.executable, "-m", "graph", "register-documents", str(tmp_path / "m.json"),
             "--database-url", server.settings.database_url],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0 and expected in done.stdout, done.stdout + done.stderr
    assert stored(server, text) == [(text, EVERY_TENANT)]


# --- Apollo Client ----------------------------------------------------------------------------


def apollo(url: str, scenario: str, tag: str) -> dict[str, Any]:
    """Run tests/apq_client/apq.mjs, its documents named after ``tag`` (``npm ci`` first where
    node_modules is absent)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        if os.environ.get("CI") == "true":
            pytest.fail("node and npm are needed for the Apollo Client test")
        pytest.skip("node or npm is not installed: the Apollo Client test needs them")
    if not (CLIENT / "node_modules").is_dir():
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=CLIENT, capture_output=True, text=True,
                              timeout=600)  # fmt: skip
        assert done.returncode == 0, done.stderr
    run = [node, "apq.mjs", url, scenario, tag]
    done = subprocess.run(run, cwd=CLIENT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_apollo_clients_persisted_query_link(server: LiveServer):
    """Automatic persisted queries as Apollo Client speaks them: a miss, its retry with the
    document, then the hash alone — over POST and over GET — and a mutation."""
    ran = apollo(f"{server.url}/graphql", "automatic", uuid.uuid4().hex[:8])
    results, exchanges = ran["results"], ran["exchanges"]
    assert all("data" in r for r in results), results
    assert results[0] == results[1] and results[2] == results[3]
    assert results[4]["data"]["createTicket"]["subject"] == "Sent by hash"
    shape = [(e["method"], e["withQuery"], e["codes"]) for e in exchanges]
    miss, retried, hit = ("POST", False, ["PERSISTED_QUERY_NOT_FOUND"]), ("POST", True, []), ("POST", False, [])
    get_miss, get_hit = ("GET", False, ["PERSISTED_QUERY_NOT_FOUND"]), ("GET", False, [])
    assert shape == [miss, retried, hit, get_miss, retried, get_hit, miss, retried], shape
    assert all(e["hash"] for e in exchanges)


def test_apollo_client_against_persisted_only(registered_only: LiveServer, tmp_path: Path, capsys):
    """The documents Apollo Client sends, registered from its manifest, run at the first
    request; another is refused, and the link does not retry it."""
    tag = uuid.uuid4().hex[:8]
    listed = apollo(f"{registered_only.url}/graphql", "manifest", tag)
    code, out = register_file(registered_only.settings.database_url, tmp_path / "apollo.json", listed, capsys)
    assert code == 0, out
    ran = apollo(f"{registered_only.url}/graphql", "registered", tag)
    results, exchanges = ran["results"], ran["exchanges"]
    assert "data" in results[0] and "data" in results[1], results
    assert results[2]["codes"] == ["PERSISTED_QUERY_NOT_IN_LIST"], results
    shape = [(e["method"], e["withQuery"], e["codes"]) for e in exchanges]
    assert shape == [("POST", False, []), ("GET", False, []), ("POST", False, ["PERSISTED_QUERY_NOT_IN_LIST"])]
