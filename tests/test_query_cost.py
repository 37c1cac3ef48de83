"""Cost told to clients on real servers (graph/server/cost.py): every GraphQL answer over HTTP
carries ``extensions.cost {requested, limit, remaining}`` — the node budget's own count, the
budget, what is left — and ``rateLimit`` reads the caller's request budget from its limiter,
in this process or shared through Redis.

Rate budgets here refill at one request a minute, so the numbers read back are exact however
slow the machine.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from graph import fastpath
from graph.server.settings import Settings
from graph.validation import LIST_SIZE, Limits
from tests.databases import REDIS_URL, redis_unreachable, require
from tests.live import LiveServer
from tests.ws_client import connect

GRAPHQL_RESPONSE = "application/graphql-response+json"
RATE = "{ rateLimit { cost limit remaining resetAt } }"
#: a budget of five requests at once, then one a minute
SLOW = Limits(rate_per_minute=1, rate_burst=5)


def post(server: LiveServer, body: Any, **headers: str) -> httpx.Response:
    return server.http.post("/graphql", json=body, headers=headers)


def cost(response: httpx.Response) -> dict[str, int]:
    return response.json()["extensions"]["cost"]


def told(requested: int, limits: Limits) -> dict[str, int]:
    """What the cost of ``requested`` nodes must say under ``limits``."""
    return {"requested": requested, "limit": limits.max_nodes, "remaining": max(0, limits.max_nodes - requested)}


#: documents and the nodes the budget's rule gives them: a connection's page, times the pages
#: around it; a plain list of objects counts LIST_SIZE
MEASURED = [
    ("{ __typename }", 0),
    ('{ ticket(id: "ticket_abcdefgh") { id } }', 0),
    ("{ tickets(first: 7) { nodes { id } } }", 7),
    ("{ tickets(first: 4) { nodes { events(first: 5) { nodes { id } } } } }", 4 + 4 * 5),
    ("{ tickets(first: 2) { nodes { issues { id } } } }", 2 + 2 * LIST_SIZE),
    ("{ a: tickets(first: 3) { totalCount } b: contacts(first: 6) { totalCount } }", 3 + 6),
]


@pytest.mark.parametrize("document, nodes", MEASURED)
def test_every_answer_carries_its_cost(server: LiveServer, document: str, nodes: int):
    limits = server.settings.limits
    assert cost(post(server, {"query": document})) == told(nodes, limits)
    over_get = server.http.get("/graphql", params={"query": document})
    assert cost(over_get) == told(nodes, limits)
    modern = post(server, {"query": document}, Accept=GRAPHQL_RESPONSE)
    assert modern.headers["content-type"].startswith(GRAPHQL_RESPONSE) and cost(modern) == told(nodes, limits)


def test_the_page_size_may_come_from_a_variable(server: LiveServer):
    document = "query($n: Int) { tickets(first: $n) { nodes { id } } }"
    assert cost(post(server, {"query": document, "variables": {"n": 9}}))["requested"] == 9


def test_each_answer_of_a_batch_has_its_own_cost(server: LiveServer):
    documents = [d for d, _ in MEASURED[:4]]
    answers = post(server, [{"query": d} for d in documents]).json()
    assert [a["extensions"]["cost"] for a in answers] == [cost(post(server, {"query": d})) for d in documents]


def test_an_answer_with_errors_carries_its_cost(server: LiveServer):
    response = post(server, {"query": "{ tickets(first: 3) { nodes { id } } nope }"})
    assert response.json()["errors"] and cost(response) == told(3, server.settings.limits)


def test_the_compiled_path_tells_the_same_cost(server: LiveServer, monkeypatch: pytest.MonkeyPatch):
    document = "{ tickets(first: 8) { nodes { id subject } } }"
    assert fastpath.compile_plan(document, None) is not None
    view, answered = server.app.state.graphql, []
    compiled = view._compiled

    async def watched(request: Any) -> Any:
        response = await compiled(request)
        answered.append(response is not None)
        return response

    monkeypatch.setattr(view, "_compiled", watched)
    assert cost(post(server, {"query": document})) == told(8, server.settings.limits)
    assert answered == [True]


# --- the node budget itself ---------------------------------------------------------------------


@contextmanager
def running(tmp_path: Path, **settings: Any) -> Iterator[LiveServer]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    live = LiveServer(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'cost.db'}", **settings)).start()
    try:
        yield live
    finally:
        live.stop()


def test_the_cost_is_what_the_node_budget_counts(tmp_path: Path):
    """A query of exactly the budget runs with nothing remaining; one node more is refused
    QUERY_TOO_COMPLEX, with the same count in its error and in its cost."""
    limits = Limits(max_nodes=4 + 4 * 5, rate_per_minute=10**6, rate_burst=10**6)
    with running(tmp_path, limits=limits) as tight:
        fits = post(tight, {"query": "{ tickets(first: 4) { nodes { events(first: 5) { nodes { id } } } } }"})
        assert "errors" not in fits.json() and cost(fits) == told(limits.max_nodes, limits) == {
            "requested": limits.max_nodes, "limit": limits.max_nodes, "remaining": 0,
        }  # fmt: skip
        over = post(tight, {"query": "{ tickets(first: 4) { nodes { events(first: 6) { nodes { id } } } } }"})
        error = over.json()["errors"][0]
        assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
        assert cost(over) == told(error["extensions"]["nodes"], limits) and error["extensions"]["nodes"] == 4 + 4 * 6


# --- rateLimit ----------------------------------------------------------------------------------


def rate_limit(server: LiveServer) -> tuple[dict[str, Any], float, float]:
    """``rateLimit`` and the wall-clock times just before the request and just after its answer."""
    before = time.time()
    data = server.data(RATE)["rateLimit"]
    return data, before, time.time()


def at(data: dict[str, Any]) -> float:
    return datetime.fromisoformat(data["resetAt"]).timestamp()


def test_rate_limit_reads_the_callers_budget(tmp_path: Path):
    with running(tmp_path, limits=SLOW) as live:
        first, sent, answered = rate_limit(live)
        seen = [first] + [rate_limit(live)[0] for _ in range(SLOW.rate_burst - 1)]
        assert [r["remaining"] for r in seen] == list(range(SLOW.rate_burst - 1, -1, -1))
        assert {(r["cost"], r["limit"]) for r in seen} == {(1, SLOW.rate_burst)}
        # a bucket refilling continuously: whole again ``spent / rate`` after the first request
        per_request = 60 / SLOW.rate_per_minute
        for spent, reading in enumerate(seen, start=1):
            assert sent + spent * per_request - 1 <= at(reading) <= answered + spent * per_request + 1, (spent, reading)
        refused = post(live, {"query": RATE})
        assert refused.status_code == 429 and refused.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"


def test_rate_limit_reads_a_budget_shared_through_redis(tmp_path: Path):
    require(redis_unreachable(), "Redis")
    broker = f"{REDIS_URL}?channel=cost-{uuid.uuid4().hex}"  # the channel names the budgets too
    with (
        running(tmp_path / "a", broker_url=broker, limits=SLOW) as one,
        running(tmp_path / "b", broker_url=broker, limits=SLOW) as two,
    ):
        first, _, _ = rate_limit(one)
        second, sent, answered = rate_limit(two)
        assert (first["remaining"], second["remaining"]) == (SLOW.rate_burst - 1, SLOW.rate_burst - 2)
        # a moving window: whole again once the newest request has left it
        window = two.app.state.graphql.door.callers.item.get_expiry()
        assert sent + window - 1 <= at(second) <= answered + window + 1, second


def test_rate_limit_is_null_over_websocket(server: LiveServer):
    async def go() -> dict:
        async with connect(server.url) as connection:
            return await (await connection.subscribe(RATE)).next()

    assert asyncio.run(go()) == {"rateLimit": None}
