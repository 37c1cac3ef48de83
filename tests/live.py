"""A real support-graph server for tests: uvicorn on a free port, in a thread of this process.

Running in-process lets tests count the SQL statements the server runs and look at its
database directly, while every request still goes over real HTTP or WebSocket.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine
from contextvars import ContextVar
from typing import Any

import httpx
import uvicorn
from sqlalchemy import event as sa_event
from sqlalchemy import text

from graph.server.app import create_app
from graph.server.settings import Settings

#: set while the server handles an HTTP request or a WebSocket; tasks started at start-up (the
#: lifespan) never see it
_IN_REQUEST: ContextVar[bool] = ContextVar("in_request", default=False)


class _RequestsMarked:
    """The app, with requests and WebSockets marked, so statements count only theirs."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            _IN_REQUEST.set(True)  # this request's task and the tasks it starts
        await self.app(scope, receive, send)


class GraphQLError(AssertionError):
    """A response had errors where the test expected none."""


class LiveServer:
    """A running server; ``url`` is its base address."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = create_app(settings)
        self.services = self.app.state.services
        config = uvicorn.Config(
            _RequestsMarked(self.app),
            host="127.0.0.1",
            port=0,
            log_level="warning",
            ws_ping_interval=None,
            lifespan="on",
            # as `support-graph serve` runs it: shared results go straight to the socket (graph/server/ws_direct.py)
            ws="websockets-sansio",
            ws_per_message_deflate=False,
        )
        self.server = uvicorn.Server(config)
        self.loop: asyncio.AbstractEventLoop | None = None
        #: statements run for requests; ``all_statements`` counts the background tasks' too
        self.statements = self.all_statements = 0
        self._counting = threading.Lock()
        sa_event.listen(self.services.db.engine.sync_engine, "before_cursor_execute", self._count)
        self.services.db.plain.listeners.append(self._count)

    def _count(self, *args: Any) -> None:
        with self._counting:
            self.all_statements += 1
            if _IN_REQUEST.get():  # not a worker's own background task (breach timer, webhook sender)
                self.statements += 1

    def start(self) -> LiveServer:
        def run() -> None:
            self.loop = loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.server.serve())
            finally:  # a loop left open is a ResourceWarning (its self-pipe) in whichever test runs next
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self.thread = threading.Thread(target=run, name="live-server", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}"
        self.http = httpx.Client(base_url=self.url, timeout=30)
        return self

    def stop(self) -> None:
        self.http.close()
        self.server.should_exit = True
        self.thread.join(timeout=30)

    # --- talking to it ----------------------------------------------------------------------------

    def post(self, query: str, variables: dict | None = None, headers: dict | None = None) -> dict:
        """POST a GraphQL operation; the whole response body."""
        response = self.http.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)
        return response.json()

    def data(self, query: str, variables: dict | None = None, headers: dict | None = None) -> dict:
        """POST an operation that must succeed; its ``data``."""
        body = self.post(query, variables, headers)
        if body.get("errors"):
            raise GraphQLError(body["errors"])
        return body["data"]

    def error(self, query: str, variables: dict | None = None, headers: dict | None = None) -> dict:
        """POST an operation that must fail; its first error."""
        body = self.post(query, variables, headers)
        assert body.get("errors"), f"expected an error, got {body}"
        return body["errors"][0]

    def run(self, coroutine: Coroutine) -> Any:
        """Run a coroutine on the server's loop (to read its database directly)."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    def sql(self, statement: str, **params: Any) -> list[tuple]:
        async def go() -> list[tuple]:
            async with self.services.db.engine.connect() as conn:
                return [tuple(r) for r in (await conn.execute(text(statement), params)).all()]

        return self.run(go())

    def counts(self) -> dict[str, int]:
        """Rows per table: compare before and after to prove nothing was written."""
        tables = ["organization", "contact", "deal", "subscription", "ticket", "issue", "activity", "metric", "event"]
        return {t: self.sql(f"SELECT COUNT(*) FROM {t}")[0][0] for t in tables}

    def count_statements(self, query: str, variables: dict | None = None) -> tuple[dict, int]:
        """Run a query and count the SQL statements the server executed for it."""
        before = self.statements
        data = self.data(query, variables)
        return data, self.statements - before


def create_many(server: LiveServer, kind: str, inputs: list[dict], fields: str = "id") -> list[dict]:
    """Create entities in order, twenty aliased mutations per request (they run one by one)."""
    made: list[dict] = []
    for start in range(0, len(inputs), 20):
        chunk = inputs[start : start + 20]
        params = ", ".join(f"$i{n}: Create{kind}Input!" for n in range(len(chunk)))
        body = " ".join(f"m{n}: create{kind}(input: $i{n}) {{ {fields} }}" for n in range(len(chunk)))
        data = server.data(f"mutation({params}) {{ {body} }}", {f"i{n}": v for n, v in enumerate(chunk)})
        made.extend(data[f"m{n}"] for n in range(len(chunk)))
    return made
