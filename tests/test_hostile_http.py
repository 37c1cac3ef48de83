"""Hostile HTTP: every malformed, oversized or unexpected request gets a clean 4xx.

A table of probes goes to the shared server twice, once asking for ``application/json`` (the
legacy answer: a GraphQL error after parsing is a 200) and once for
``application/graphql-response+json`` (GraphQL over HTTP: a request that fails before execution
is a 4xx). For each: the expected status, never a 5xx; a body with no stack trace, no SQL, no
driver names and no "maximum recursion"; nothing written; and ``/healthz`` still answers. A
second test reads the errors of the same probes: each has an ``extensions.code`` of the API's
list, the one the probe expects.
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import pytest

from tests import ws_client as ws
from tests.live import LiveServer
from tests.ws_client import PROTOCOLS

GRAPHQL_RESPONSE = "application/graphql-response+json"
MODES = {"json": "application/json", "graphql": GRAPHQL_RESPONSE}
API_CODES = {
    "BAD_USER_INPUT", "NOT_FOUND", "INVALID_TRANSITION", "VERSION_CONFLICT", "UNAUTHENTICATED",
    "FORBIDDEN", "RATE_LIMITED", "QUERY_TOO_COMPLEX", "UNAVAILABLE", "INTERNAL",
}  # fmt: skip
#: what a client must never read: stack traces, the driver, SQL, Python's recursion limit
LEAKS = ("Traceback", "sqlalchemy", "asyncpg", "aiosqlite", "maximum recursion", "RecursionError", 'File "')
SQL = ("SELECT ", "INSERT INTO", "DELETE FROM", "UPDATE ticket", " WHERE ")


# --- the probes --------------------------------------------------------------------------------

Send = Callable[[LiveServer, dict[str, str]], httpx.Response]


def raw(body: bytes, content_type: str | None = "application/json") -> Send:
    def send(server: LiveServer, headers: dict[str, str]) -> httpx.Response:
        extra = {"Content-Type": content_type} if content_type is not None else {"Content-Type": ""}
        return server.http.post("/graphql", content=body, headers={**headers, **extra})

    return send


def payload(value: object) -> Send:
    return raw(json.dumps(value).encode())


def document(query: str, **extra: object) -> Send:
    return payload({"query": query, **extra})


def get(**params: str) -> Send:
    def send(server: LiveServer, headers: dict[str, str]) -> httpx.Response:
        return server.http.get("/graphql", params=params, headers=headers)

    return send


def get_raw(query_string: str) -> Send:
    def send(server: LiveServer, headers: dict[str, str]) -> httpx.Response:
        return server.http.get(f"/graphql?{query_string}", headers=headers)

    return send


def method(name: str) -> Send:
    def send(server: LiveServer, headers: dict[str, str]) -> httpx.Response:
        return server.http.request(
            name, "/graphql", content=b'{"query": "{ __typename }"}',
            headers={**headers, "Content-Type": "application/json"},
        )  # fmt: skip

    return send


def multipart() -> Send:
    def send(server: LiveServer, headers: dict[str, str]) -> httpx.Response:
        files = {
            "operations": (None, json.dumps({"query": "{ __typename }", "variables": {}})),
            "map": (None, "{}"),
        }
        return server.http.post("/graphql", files=files, headers=headers)

    return send


_tickets: dict[str, str] = {}


def a_ticket(server: LiveServer) -> str:
    """A ticket of this server for probes to name (made once, before any probe counts rows)."""
    if server.url not in _tickets:
        created = server.data('mutation { createTicket(input: {subject: "probed"}) { id } }')
        _tickets[server.url] = created["createTicket"]["id"]
    return _tickets[server.url]


def random_cursor() -> Send:
    """A cursor of random bytes, on a nullable ticket's events: the error nulls only the ticket."""

    def send(server: LiveServer, headers: dict[str, str]) -> httpx.Response:
        cursor = base64.urlsafe_b64encode(random.Random(7).randbytes(48)).decode()
        query = "query($id: ID!, $c: String) { ticket(id: $id) { events(after: $c) { totalCount } } }"
        return document(query, variables={"id": a_ticket(server), "c": cursor})(server, headers)

    return send


def nested(depth: int) -> str:
    return "{ tickets { nodes { " + "requester { tickets { nodes { " * depth + "id" + " } } }" * depth + " } } }"


@dataclass(frozen=True)
class Probe:
    """``status``: the statuses allowed with ``application/graphql-response+json``; ``legacy``:
    with ``application/json`` (default: the same). ``code``: the first error's code (None: no
    GraphQL error expected). ``bugs``: known product bugs, by check ("status:json",
    "codes:graphql", …) → reason; those checks are marked xfail(strict)."""

    name: str
    send: Send
    status: tuple[int, ...]
    code: str | None = "BAD_USER_INPUT"
    legacy: tuple[int, ...] | None = None
    bugs: dict[str, str] = field(default_factory=dict)

    def statuses(self, mode: str) -> tuple[int, ...]:
        return self.status if mode == "graphql" or self.legacy is None else self.legacy


DOOR = (400,)  # refused by the door, whatever the client accepts
PARSED = {"status": (400,), "legacy": (200,)}  # a GraphQL error before execution

PROBES = [
    Probe("body is a JSON string", raw(b'"{ __typename }"'), DOOR),
    Probe("body is null", raw(b"null"), DOOR),
    Probe("body is a number", raw(b"42"), DOOR),
    Probe("body is true", raw(b"true"), DOOR),
    Probe("body is an array of non-objects", raw(b'[1, "x", null]'), DOOR),
    Probe("body is an empty array", raw(b"[]"), DOOR),
    Probe("batch with a non-object", payload([{"query": "{ __typename }"}, 5]), DOOR),
    Probe("object without a query", raw(b"{}"), DOOR),
    Probe("query is a number", payload({"query": 5}), DOOR),
    Probe("query is a list", payload({"query": ["{ __typename }"]}), DOOR),
    Probe("query is blank", payload({"query": "   "}), DOOR),
    Probe("variables is a string", document("{ __typename }", variables="x"), DOOR),
    Probe("variables is a list", document("{ __typename }", variables=[1]), DOOR),
    Probe("operationName is a number", document("{ __typename }", operationName=3), DOOR),
    Probe("invalid JSON", raw(b'{"query": '), DOOR),
    Probe("empty body", raw(b""), DOOR),
    Probe(
        "JSON nested 100,000 deep",
        raw(b'{"query": "{ __typename }", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
        DOOR,
    ),
    Probe("invalid UTF-8 bytes", raw(b'{"query": "{ __typename \xff\xfe }"}'), DOOR),
    Probe("a lone surrogate", raw(b'{"query": "{ __typename }", "variables": {"s": "\\ud800"}}'), DOOR),
    Probe("text/plain body", raw(b'{"query": "{ __typename }"}', "text/plain"), (415,)),
    Probe("form-urlencoded body", raw(b"query=%7B+__typename+%7D", "application/x-www-form-urlencoded"), (415,)),
    Probe("multipart body", multipart(), (415,)),
    Probe("query as application/graphql", raw(b"{ __typename }", "application/graphql"), (415,)),
    Probe("no content type", raw(b'{"query": "{ __typename }"}', None), (415,)),
    Probe("mutation over GET", get(query='mutation { createTicket(input: {subject: "via GET"}) { id } }'), (405,)),
    Probe("PUT", method("PUT"), (405,), code=None),
    Probe("DELETE", method("DELETE"), (405,), code=None),
    Probe("PATCH", method("PATCH"), (405,), code=None),
    Probe("2 MB body", document("{ __typename }", extensions={"pad": "x" * 2_000_000}), (413,)),
    Probe("query nested 150 deep", document(nested(150)), DOOR, "QUERY_TOO_COMPLEX"),
    Probe("query nested 180 deep", document(nested(180)), DOOR, "QUERY_TOO_COMPLEX"),
    Probe(
        "10,000 aliases",
        document("{ " + " ".join(f"a{i}: __typename" for i in range(10_000)) + " }"),
        DOOR,
        "QUERY_TOO_COMPLEX",
    ),
    Probe("GET nested 150 deep", get(query=nested(150)), DOOR, "QUERY_TOO_COMPLEX"),
    Probe(
        "100 KB string literal",
        document('{ tickets(where: {subject: {eq: "' + "x" * 100_000 + '"}}) { totalCount } }'),
        (200,),
        code=None,
    ),
    Probe(
        "null byte in the document",
        document("{ __type\u0000name }"),
        **PARSED,
    ),
    Probe(
        "invalid UTF-8 in a GET query",
        get_raw("query=%FF%FE%7B"),
        **PARSED,
    ),
    Probe(
        "syntax error",
        document("{ tickets { "),
        **PARSED,
    ),
    Probe("unknown operationName", document("query A { __typename }", operationName="B"), DOOR),
    Probe("two anonymous operations", document("{ __typename } { __typename }"), **PARSED),
    Probe(
        "fragment cycle",
        document(
            "{ tickets { nodes { ...A } } } fragment A on Ticket { requester { tickets { nodes { ...B } } } }"
            " fragment B on Ticket { ...A }"
        ),
        **PARSED,
    ),
    Probe("unknown field", document("{ tickets { nodes { password } } }"), **PARSED),
    Probe(
        "huge integer literal for first",
        document("{ tickets(first: 99999999999999999999999999) { totalCount } }"),
        **PARSED,
    ),
    Probe(
        "huge integer variable for first",
        document("query($n: Int) { tickets(first: $n) { totalCount } }", variables={"n": 10**30}),
        **PARSED,
    ),
    Probe(
        "a string for an Int",
        document("query($n: Int) { tickets(first: $n) { totalCount } }", variables={"n": "ten"}),
        **PARSED,
    ),
    Probe("GET with variables that are not JSON", get(query="{ __typename }", variables="{nope"), DOOR),
    Probe("cursor of random bytes", random_cursor(), (200,)),
    Probe(
        "subscription over POST",
        document("subscription { events { id } }"),
        (400,),
        legacy=(400,),
    ),
    Probe(
        "subscription over GET",
        get(query="subscription { events { id } }"),
        (400,),
        legacy=(400,),
    ),
]


def probe_params(check: str) -> list:
    params = []
    for probe in PROBES:
        for mode in MODES:
            reason = probe.bugs.get(f"{check}:{mode}")
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            params.append(pytest.param(probe, mode, id=f"{probe.name}-{mode}", marks=marks))
    return params


def send(server: LiveServer, probe: Probe, mode: str) -> httpx.Response:
    return probe.send(server, {"Accept": MODES[mode]})


def assert_no_leak(text: str) -> None:
    assert not [leak for leak in LEAKS if leak in text], text[:2000]
    assert not [word for word in SQL if word in text], text[:2000]


# --- the table ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("probe", "mode"), probe_params("status"))
def test_a_hostile_request_is_refused_cleanly(server: LiveServer, probe: Probe, mode: str):
    a_ticket(server)
    before = server.counts()
    response = send(server, probe, mode)
    assert response.status_code in probe.statuses(mode), (response.status_code, response.text[:1000])
    assert response.status_code < 500
    assert_no_leak(response.text)
    if response.headers.get("content-type", "").startswith(("application/json", GRAPHQL_RESPONSE)):
        body = response.json()
        assert isinstance(body, dict) and ("errors" in body or "data" in body), body
        assert response.headers["content-type"].startswith(MODES[mode]), response.headers
    assert server.counts() == before
    health = server.http.get("/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok"}


@pytest.mark.parametrize(("probe", "mode"), probe_params("codes"))
def test_a_hostile_requests_errors_carry_the_expected_code(server: LiveServer, probe: Probe, mode: str):
    response = send(server, probe, mode)
    if probe.code is None:
        if response.headers.get("content-type", "").startswith(("application/json", GRAPHQL_RESPONSE)):
            assert not response.json().get("errors"), response.text[:1000]
        return
    body = response.json()
    codes = [(e.get("extensions") or {}).get("code") for e in body["errors"]]
    assert set(codes) <= API_CODES, body
    assert codes[0] == probe.code, body


# --- NUL bytes in string values ----------------------------------------------------------------

NUL = "a\u0000b"
NUL_CASES = {
    "subject": ("mutation($s: String!) { createTicket(input: {subject: $s}) { id } }", {"s": NUL}, True),
    "where eq": ("query($s: String) { tickets(where: {subject: {eq: $s}}) { totalCount } }", {"s": NUL}, True),
    "where contains": (
        "query($s: String) { tickets(where: {subject: {contains: $s}}) { totalCount } }",
        {"s": NUL},
        True,
    ),
    "where relation id": (
        "query($s: ID) { tickets(where: {requester: {eq: $s}}) { totalCount } }",
        {"s": f"contact_{NUL}"},
        True,
    ),
    "where tags": ("query($s: String!) { tickets(where: {tags: {hasAny: [$s]}}) { totalCount } }", {"s": NUL}, True),
    "id": ("query($s: ID!) { ticket(id: $s) { id } node(id: $s) { id } }", {"s": f"ticket_{NUL}"}, False),
}


@pytest.mark.parametrize("case", NUL_CASES)
def test_a_nul_character_in_a_string_is_never_an_internal_error(request, server: LiveServer, case: str):
    query, variables, _ = NUL_CASES[case]
    before = server.counts()
    body = server.post(query, variables)
    codes = [e["extensions"]["code"] for e in body.get("errors") or []]
    assert set(codes) <= {"BAD_USER_INPUT"}, body
    if codes:
        assert server.counts() == before


# --- WebSocket: the same limits on the other door ------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(
    "query",
    ["subscription { " + "{" * 200 + "}" * 200 + " }", "subscription { events { " + nested(150)[2:-2] + " } }",
     "query { " + " ".join(f"a{i}: __typename" for i in range(10_000)) + " }"],
    ids=["200 braces", "nested 150", "10,000 aliases"],
)  # fmt: skip
async def test_a_hostile_document_over_websocket_is_refused(server: LiveServer, protocol: str, query: str):
    async with ws.connect(server.url, protocol) as socket:
        operation = await socket.subscribe(query)
        error = await operation.error()
        assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX", error
        assert_no_leak(json.dumps(error))
        # the connection survives and still serves
        if protocol == ws.TRANSPORT_WS:
            fine = await socket.subscribe("{ __typename }")
            assert await fine.next() == {"__typename": "Query"}


# --- GraphQL over HTTP -------------------------------------------------------------------------


def test_a_validation_error_is_400_in_graphql_response(server: LiveServer):
    response = server.http.post("/graphql", json={"query": "{ tickts { id } }"}, headers={"Accept": GRAPHQL_RESPONSE})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_a_success_is_200_in_graphql_response(server: LiveServer):
    response = server.http.post("/graphql", json={"query": "{ __typename }"}, headers={"Accept": GRAPHQL_RESPONSE})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert response.json()["data"] == {"__typename": "Query"} and "errors" not in response.json()


def test_an_accept_list_naming_graphql_response_gets_it(server: LiveServer):
    accept = f"{GRAPHQL_RESPONSE}, application/json;q=0.9"
    response = server.http.post("/graphql", json={"query": "{ tickts { id } }"}, headers={"Accept": accept})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)


@pytest.mark.parametrize("accept", ["application/json", None])
def test_a_validation_error_is_200_in_plain_json(server: LiveServer, accept: str | None):
    headers = {"Accept": accept} if accept else {}
    response = server.http.post("/graphql", json={"query": "{ tickts { id } }"}, headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_an_execution_error_is_200_in_graphql_response(server: LiveServer):
    response = server.http.post(
        "/graphql", json={"query": "{ tickets(first: 101) { totalCount } }"}, headers={"Accept": GRAPHQL_RESPONSE}
    )
    body = response.json()
    assert "data" in body and body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert response.status_code == 200


def test_a_mutation_over_get_is_405(server: LiveServer):
    before = server.counts()
    response = server.http.get(
        "/graphql", params={"query": 'mutation { createTicket(input: {subject: "GET"}) { id } }'},
        headers={"Accept": GRAPHQL_RESPONSE},
    )  # fmt: skip
    assert server.counts() == before
    assert response.status_code == 405
