"""The ASGI application: ``/graphql`` (HTTP, GraphiQL, WebSocket), ``/healthz``, ``/readyz``."""

from __future__ import annotations

import asyncio
import gc
import logging
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import orjson
from cross_web import HTTPException
from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from strawberry import UNSET
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL

from graph import fastpath
from graph.context import Context
from graph.errors import unavailable
from graph.schema import build_schema
from graph.server.auth import KeyRing
from graph.server.breach_timer import BreachTimer
from graph.server.brokers.factory import broker_from_url
from graph.server.console import console_routes
from graph.server.cost import with_costs
from graph.server.fanout import Fanout, sharing_handlers
from graph.server.http import ANONYMOUS, GRAPHQL_RESPONSE, Door, Refusal
from graph.server.idempotency import Idempotency
from graph.server.observability import install_observability
from graph.server.persisted import PersistedQueries, persisted_handlers
from graph.server.settings import Settings
from graph.server.webhook_sender import WebhookSender
from models.db import migrate
from models.db.engine import Database
from resolvers import reactions
from resolvers.errors import RETRY_AFTER_SECONDS, is_unavailable
from resolvers.hooks import Hooks, load_plugins
from resolvers.keys import Principal
from resolvers.live import Live
from resolvers.loaders import Loaders
from resolvers.outages import WriteHealth
from resolvers.queue import queues_for
from resolvers.wakeups import Broker

log = logging.getLogger("support_graph")


@dataclass
class Services:
    """What lives as long as the process: settings, database, broker, keys, live streams."""

    settings: Settings
    db: Database
    broker: Broker
    hooks: Hooks
    keys: KeyRing
    live: Live
    fanout: Fanout
    #: whether the database takes writes (``/readyz``; see resolvers/outages.py)
    writes: WriteHealth = field(default_factory=WriteHealth)


def new_request_id() -> str:
    """Twelve hex digits naming one request in answers and logs. Not a secret, so not from the
    OS's entropy: a ``uuid4`` per request cost a system call on the hot path."""
    return f"{random.getrandbits(48):012x}"


class SupportGraphQL(GraphQL[Context, None]):
    """Strawberry's ASGI app behind our door, with our context, orjson, keep-alives and
    shared subscriptions, answering GraphQL-over-HTTP clients in their media type."""

    def __init__(self, services: Services) -> None:
        settings = services.settings
        schema = build_schema(settings.limits)
        super().__init__(
            schema,
            graphql_ide="graphiql" if settings.graphiql else None,
            allow_queries_via_get=True,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
            keep_alive=True,  # graphql-ws "ka" messages; graphql-transport-ws relies on WebSocket pings
            keep_alive_interval=settings.keep_alive_seconds,
            max_subscriptions_per_connection=settings.max_subscriptions_per_connection,
        )
        self.services = services
        self.persisted = PersistedQueries(services.db, schema._schema, registered_only=settings.persisted_only)
        self.door = Door(services.keys, settings, schema._schema, self.persisted)
        self.idempotency = Idempotency(
            services.db, ttl_seconds=settings.idempotency_ttl_seconds, lease_seconds=settings.idempotency_lease_seconds
        )
        sharing = sharing_handlers(services.fanout, self.fresh_context, settings.limits)
        handlers = persisted_handlers(*sharing, self.persisted)  # documents by hash, --persisted-only
        self.graphql_transport_ws_handler_class, self.graphql_ws_handler_class = handlers

    # --- HTTP -------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        _lowercase_content_type(scope)
        request = Request(scope, receive)
        request.state.request_id = new_request_id()
        accept = request.headers.get("accept", "")
        try:
            if not self._wants_graphiql(request):
                request.state.principal = await self.door.admit(request)
            response = await self.idempotency.answer(request, partial(self._execute, request))
        except Refusal as refusal:
            request.state.refused = refusal.code  # the request's outcome, for metrics and logs
            response = refusal.response(request.state.request_id, accept)
        except HTTPException as error:
            response = Refusal(error.status_code, "BAD_USER_INPUT", error.reason).response(
                request.state.request_id, accept
            )
        except Exception as error:  # the door, the compiled path or Strawberry itself failed
            response = self._failure(error, request.state.request_id, accept)
        except asyncio.CancelledError as error:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the request itself is being cancelled (a shutdown): no answer to give
            # a cancellation that escaped execution (a cancelled future some resolver awaited):
            # an answer, never uvicorn's plain-text 500
            response = self._failure(error, request.state.request_id, accept)
        await response(scope, receive, send)

    async def _execute(self, request: Request) -> Response:
        return await self._compiled(request) or await self.run(request)

    def _failure(self, error: BaseException, request_id: str, accept: str) -> Response:
        """A GraphQL-shaped answer to a request that failed outside execution: 503
        ``UNAVAILABLE`` with ``Retry-After`` for an outage, else 500 ``INTERNAL``; never a trace."""
        media = GRAPHQL_RESPONSE if GRAPHQL_RESPONSE in accept else "application/json"
        if is_unavailable(error):
            self.services.writes.failed(error)
            outage = unavailable(request_id, error)
            status, headers = 503, {"Retry-After": str(RETRY_AFTER_SECONDS)}
            problem = {"message": outage.message, "extensions": {"code": outage.code, **outage.extensions}}
        else:
            log.error("internal error in request %s", request_id, exc_info=error)
            status, headers = 500, {}
            problem = {
                "message": f"Internal error (request id {request_id})",
                "extensions": {"code": "INTERNAL", "requestId": request_id},
            }
        body = orjson.dumps({"errors": [problem], "data": None})
        return Response(body, status_code=status, media_type=media, headers=headers)

    async def _compiled(self, request: Request) -> Response | None:
        """The answer of ``graph.fastpath`` where it can give one; None sends the request on."""
        if request.method != "POST" or not self.services.settings.fast_path:
            return None
        payload = request.state.payload  # parsed and checked by the door
        if not isinstance(payload, dict):
            return None
        plan = fastpath.compile_plan(payload["query"], payload.get("operationName"), self.services.settings.limits)
        if plan is None:
            return None
        principal = request.state.principal
        data = await fastpath.run(plan, payload.get("variables") or {}, self.services.db, principal.tenant)
        if data is None:
            return None
        accept = request.headers.get("accept", "")
        media = GRAPHQL_RESPONSE if GRAPHQL_RESPONSE in accept else "application/json"
        return Response(orjson.dumps(with_costs({"data": data}, request.state.costs)), media_type=media)

    def _wants_graphiql(self, request: Request) -> bool:
        operation = "query" in request.query_params or "extensions" in request.query_params  # extensions: by hash
        return request.method == "GET" and "text/html" in request.headers.get("accept", "") and not operation

    async def get_sub_response(self, request: Any) -> Response:
        response = await super().get_sub_response(request)
        # marks create_response reads back: the caller speaks GraphQL over HTTP; the operations' costs
        response.graphql_response = GRAPHQL_RESPONSE in request.headers.get("accept", "")  # type: ignore[attr-defined]
        response.costs = getattr(request.state, "costs", None)  # type: ignore[attr-defined]
        return response

    def create_response(self, response_data: Any, sub_response: Response) -> Response:
        response_data = with_costs(response_data, getattr(sub_response, "costs", None))
        response = super().create_response(response_data, sub_response)
        if getattr(sub_response, "graphql_response", False):
            # GraphQL over HTTP: a request that failed before execution (no data) is a 4xx.
            response.headers["content-type"] = GRAPHQL_RESPONSE
            single = response_data if isinstance(response_data, dict) else {}
            errors = single.get("errors") or []
            before_execution = errors and single.get("data") is None and not any("path" in e for e in errors)
            if before_execution and not sub_response.status_code:
                response.status_code = 400
        if _has_unavailable(response_data):  # any error of the answer is an outage: retry it later
            response.status_code = 503
            response.headers["retry-after"] = str(RETRY_AFTER_SECONDS)
        return response

    # --- context ----------------------------------------------------------------------------------

    async def get_context(self, request: Any, response: Any = None) -> Context:
        principal = getattr(request.state, "principal", ANONYMOUS)
        request_id = getattr(request.state, "request_id", None) or new_request_id()
        return self.new_context(principal, request=request, response=response, request_id=request_id)

    def new_context(self, principal: Principal, **extra: Any) -> Context:
        services = self.services
        extra.setdefault("request_id", new_request_id())
        return Context(
            db=services.db,
            tenant=principal.tenant,
            actor=principal.actor,
            hooks=services.hooks,
            publish=services.broker.publish,
            services=services,
            **extra,
        )

    def fresh_context(self, context: Context) -> Context:
        """A context of the same caller for a shared subscription: its own loaders."""
        return self.new_context(Principal(context.tenant, context.actor))

    async def on_ws_connect(self, context: Context) -> Any:
        """WebSocket callers authenticate in ``connection_init``: ``{"authorization": "Bearer …"}``
        (or on the upgrade request's header); refused ones are closed with 4403."""
        params = context.connection_params or {}
        header = params.get("authorization") or params.get("Authorization")
        if header is None and context.request is not None:
            header = context.request.headers.get("authorization")
        try:
            connection = context.request if isinstance(context.request, HTTPConnection) else None
            principal = await self.door.authenticate(header if isinstance(header, str | None) else "", connection)
        except Refusal as refusal:
            raise ConnectionRejectionError({"message": refusal.message, "code": refusal.code}) from None
        except Exception as error:
            if not is_unavailable(error):
                raise
            outage = unavailable(getattr(context, "request_id", "-"), error)
            raise ConnectionRejectionError({"message": outage.message, "code": outage.code}) from None
        context.tenant, context.actor = principal.tenant, principal.actor
        context.loaders = Loaders(context.db, context.tenant)
        return UNSET  # a plain connection_ack

    def encode_json(self, data: object) -> str:
        return orjson.dumps(data).decode()


def _has_unavailable(response_data: Any) -> bool:
    """Whether an answer (or any answer of a batch) carries an ``UNAVAILABLE`` error."""
    answers = response_data if isinstance(response_data, list) else [response_data]
    return any(
        (error.get("extensions") or {}).get("code") == "UNAVAILABLE"
        for answer in answers
        if isinstance(answer, dict)
        for error in answer.get("errors") or ()
        if isinstance(error, dict)
    )


def _lowercase_content_type(scope: Scope) -> None:
    """Media types are case-insensitive; Strawberry compares them as written."""
    scope["headers"] = [
        (name, value.lower()) if name == b"content-type" else (name, value) for name, value in scope["headers"]
    ]


def create_app(settings: Settings | None = None) -> Starlette:
    """Build the application; the schema is migrated (or checked) on start."""
    settings = settings or Settings()
    db = Database(
        settings.database_url, one_hop_sqlite=settings.one_hop_sqlite, pool_size=settings.database_pool_size,
        pool_open=settings.database_pool_open,
    )  # fmt: skip
    broker = broker_from_url(settings.broker_url)
    live = Live(db, broker, poll_interval=settings.live_poll_seconds, give_up_after=settings.live_give_up_seconds)
    services = Services(settings, db, broker, deployment_hooks(), KeyRing(db), live, Fanout())
    graphql_app = SupportGraphQL(services)

    timer = BreachTimer(db, services.hooks, broker)
    webhook_sender = WebhookSender(db, broker, require_auth=settings.require_auth)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await prepare_schema(services.db, upgrade=settings.migrate)
        await services.db.open_pool()
        await services.broker.start()
        await timer.start()
        await webhook_sender.start()
        try:
            yield
        finally:
            await webhook_sender.stop()
            await timer.stop()
            await queues_for(services.live).stop()
            await services.live.stop()
            await graphql_app.door.close()
            await services.broker.stop()
            await services.db.dispose()

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> JSONResponse:
        checks = {
            "database": "ok",
            "broker": "ok" if services.broker.healthy else "down",
            "live": "ok" if services.live.healthy else "down",  # every live feed reads the event log
        }
        try:
            await services.db.ping()
        except Exception:
            log.exception("readiness: database unreachable")
            checks["database"] = "down"
        else:  # it answers reads; does it take writes? (a full disk: see resolvers/outages.py)
            try:
                refused = await services.writes.refusal(services.db)
            except Exception:
                log.exception("readiness: write check failed")
                refused = "the write check failed"
            if refused is not None:
                log.warning("readiness: the database refuses writes: %s", refused)
                checks["database"] = "refusing writes"
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ok" if ready else "unavailable", **checks}, status_code=200 if ready else 503)

    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/graphql", graphql_app, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql_app),
            *console_routes(),
        ],
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.graphql = graphql_app
    app.state.breach_timer = timer
    app.state.webhook_sender = webhook_sender
    install_observability(
        app, schema=graphql_app.schema, db=db, metrics_route=settings.metrics, log_format=settings.log_format
    )
    return app


def deployment_hooks() -> Hooks:
    """The hooks every unit of work runs: those that ship, then each installed plugin's."""
    hooks = Hooks()
    reactions.register(hooks)
    load_plugins(hooks)
    return hooks


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
    app = create_app(Settings())
    tune_garbage_collector()
    return app


def tune_garbage_collector() -> None:
    """Fewer, cheaper collections for a server: a request allocates thousands of short-lived
    objects, and the long-lived ones made at start-up never need scanning again."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
