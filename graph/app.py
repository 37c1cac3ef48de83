"""The ASGI application: ``/graphql`` (HTTP, GraphiQL, WebSocket), ``/healthz``, ``/readyz``."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from strawberry.asgi import GraphQL
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL

from models.base import ANONYMOUS_ACTOR, DEFAULT_TENANT
from models import migrate
from models.db import Database
from resolvers.broker import Broker, broker_from_url
from resolvers.live import Live
from resolvers.loaders import Loaders
from graph.context import Context
from graph.fanout import Fanout, sharing_handlers
from graph.schema import schema
from graph.settings import Settings

log = logging.getLogger("support_graph")


@dataclass
class Services:
    """What lives as long as the process: settings, database, broker, live streams."""

    settings: Settings
    db: Database
    broker: Broker
    live: Live
    fanout: Fanout


class SupportGraphQL(GraphQL):
    """Strawberry's ASGI app with our context, orjson, keep-alives and shared subscriptions."""

    def __init__(self, services: Services) -> None:
        settings = services.settings
        super().__init__(
            schema,
            graphql_ide="graphiql" if settings.graphiql else None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
            keep_alive=True,  # graphql-ws "ka" messages; graphql-transport-ws relies on WebSocket pings
            keep_alive_interval=settings.keep_alive_seconds,
            max_subscriptions_per_connection=settings.max_subscriptions_per_connection,
        )
        self.services = services
        self.graphql_transport_ws_handler_class, self.graphql_ws_handler_class = sharing_handlers(
            services.fanout, self.fresh_context
        )

    async def get_context(self, request: Any, response: Any = None) -> Context:
        return self.new_context(request=request, response=response)

    def new_context(self, **extra: Any) -> Context:
        services = self.services
        return Context(
            db=services.db,
            tenant=DEFAULT_TENANT,
            actor=ANONYMOUS_ACTOR,
            publish=services.broker.publish,
            request_id=uuid.uuid4().hex[:12],
            services=services,
            **extra,
        )

    def fresh_context(self, context: Context) -> Context:
        """A context of the same caller for a shared subscription: its own loaders."""
        fresh = self.new_context()
        fresh.tenant, fresh.actor = context.tenant, context.actor
        fresh.loaders = Loaders(fresh.db, fresh.tenant)
        return fresh

    def encode_json(self, data: object) -> str:
        return orjson.dumps(data).decode()


def create_app(settings: Settings | None = None) -> Starlette:
    """Build the application; the schema is created on start."""
    settings = settings or Settings()
    db = Database(settings.database_url)
    broker = broker_from_url(settings.broker_url)
    services = Services(settings, db, broker, Live(db, broker), Fanout())
    graphql_app = SupportGraphQL(services)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await prepare_schema(services.db, upgrade=settings.migrate)
        await services.broker.start()
        try:
            yield
        finally:
            await services.live.stop()
            await services.broker.stop()
            await services.db.dispose()

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> JSONResponse:
        checks = {"database": "ok", "broker": "ok" if services.broker.healthy else "down"}
        try:
            await services.db.ping()
        except Exception:  # noqa: BLE001 - any failure means not ready
            log.exception("readiness: database unreachable")
            checks["database"] = "down"
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ok" if ready else "unavailable", **checks}, status_code=200 if ready else 503)

    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/graphql", graphql_app, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql_app),
        ],
        lifespan=lifespan,
    )
    app.state.services = services
    return app


class SchemaNotCurrent(RuntimeError):
    """The database is not at the newest migration and the server was told not to upgrade it."""


async def prepare_schema(db: Database, *, upgrade: bool) -> None:
    """Upgrade the schema to the newest migration, or (``upgrade=False``) refuse an old one."""
    if upgrade:
        await migrate.upgrade(db)
        return
    found, wanted = await migrate.current(db), migrate.head()
    if found != wanted:
        raise SchemaNotCurrent(
            f"The database schema is at revision {found or 'none'}, this version needs {wanted}: "
            "run `support-graph migrate` (or start without --no-migrate)."
        )


def app_from_environment() -> Starlette:
    """The factory uvicorn workers call: settings come from the environment."""
    return create_app(Settings())
