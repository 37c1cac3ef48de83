"""The baseline for ``bench.live_fanout``: plain Strawberry broadcasting an in-process event.

Run by the benchmark as a subprocess (one uvicorn worker, the same uvicorn options as
``support-graph serve``)::

    python -m bench.plain_strawberry_broadcast --port 8001

It is the textbook way: every subscriber owns an ``asyncio.Queue``; ``POST /publish`` puts one
event object into every queue; each subscription resolves and serialises that event for its own
subscriber. No database, no sharing. ``/graphql`` serves ``subscription { events { id type
sequence target } }`` over graphql-transport-ws and graphql-ws; ``/readyz`` answers when it is up.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncGenerator

import strawberry
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from strawberry.asgi import GraphQL
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL


@strawberry.type
class Event:
    id: strawberry.ID
    type: str
    sequence: int
    target: strawberry.ID


class Broadcast:
    """One queue per subscriber; a publish puts the event into each of them."""

    def __init__(self) -> None:
        self.queues: set[asyncio.Queue[Event]] = set()
        self.sequence = 0

    def publish(self, type_: str, target: str) -> Event:
        self.sequence += 1
        event = Event(id=f"evt_{self.sequence}", type=type_, sequence=self.sequence, target=target)
        for queue in self.queues:
            queue.put_nowait(event)
        return event

    async def listen(self) -> AsyncGenerator[Event, None]:
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self.queues.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self.queues.discard(queue)


broadcast = Broadcast()


@strawberry.type
class Query:
    @strawberry.field
    def subscribers(self) -> int:
        return len(broadcast.queues)


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def events(self) -> AsyncGenerator[Event, None]:
        async for event in broadcast.listen():
            yield event


schema = strawberry.Schema(query=Query, subscription=Subscription)


async def publish(request: Request) -> JSONResponse:
    body = await request.json()
    event = broadcast.publish(body.get("type", "Ticket.Updated"), body["target"])
    return JSONResponse({"sequence": event.sequence, "subscribers": len(broadcast.queues)})


async def readyz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def create_app() -> Starlette:
    graphql = GraphQL(schema, subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL))
    return Starlette(
        routes=[
            Route("/readyz", readyz),
            Route("/publish", publish, methods=["POST"]),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args()
    # The same uvicorn options as `support-graph serve` (graph/cli/commands.py), so only the app differs.
    uvicorn.run(
        create_app(), host="127.0.0.1", port=args.port, log_level=args.log_level,
        ws_ping_interval=20.0, ws_ping_timeout=20.0,
    )  # fmt: skip


if __name__ == "__main__":
    main()
