"""Fan-out: each distinct live subscription runs once per tenant, whoever many watch it.

Subscribers of the same document with the same variables in the same tenant share one
execution: every event is resolved and JSON-encoded once (as an ``orjson.Fragment``) and the
same bytes go to each of them. A stream whose messages mean something only after a first one
(a live queue: a snapshot, then changes to it) says so through ``resolvers.queue.QUEUE_POSITION``,
with where each message stands: a subscriber that joins it late gets a snapshot resolved for it
alone, then the shared messages past that snapshot. Subscriptions that resume from a cursor
(``after``) replay a history of their own, so they run alone (each with a context of its own,
in a task of its own that also ends between two results: graph/server/alone.py).
A subscriber that falls far behind is ended with an error telling it to resume from its last
event, instead of holding memory for it. When the last subscriber leaves, the execution ends
between two results, never in the middle of resolving one. Queries and mutations run over
graphql-ws as over graphql-transport-ws.

Delivery: a subscriber whose task is parked (everything before was sent) and whose socket can
take more gets each plain result written by the broadcast itself, framed once
(graph/server/ws_direct.py): no task woken, no per-subscriber send chain. Otherwise the result
goes to its backlog and its task sends it, in order; a backlog that piled up (a burst, a paused
transport) goes out in one write when it can. A subscriber's first result, errors and the end
always take the ordinary path.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import orjson
from graphql import GraphQLError
from starlette.websockets import WebSocketDisconnected as SocketClosed
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.types.execution import ExecutionResult, PreExecutionError

from graph.server import ws_direct
from graph.server.alone import run_alone
from graph.server.fanout_turn import Turn
from graph.server.metrics import open_subscription
from graph.server.operation_kinds import ALONE, kind, scope_events, shareable
from graph.server.ws_direct import SINK, Sink
from graph.validation import Limits, TooComplex, parsed, prescan, too_complex, variables_too_deep
from resolvers.live import CONSUMER, Consumer
from resolvers.queue import QUEUE_POSITION, Position

#: Results a subscriber may have waiting before it is ended as too slow.
BACKLOG_LIMIT = 5_000
#: Backlogged results a subscriber's task writes at once, at most.
COALESCE = 256
_END = object()

#: a late subscriber's own start: its first result and where the stream stood then
Start = Callable[[], Awaitable[tuple[Any, int]]]


class _Subscriber:
    __slots__ = ("backlog", "corked_at", "idle", "ready", "since", "sink")

    def __init__(self, sink: Sink | None) -> None:
        #: results, each with where the stream stood when it was made and its message body
        #: for a direct write (``ws_direct.body``; None: the ordinary path)
        self.backlog: deque[tuple[int, Any, bytes | None]] = deque()
        self.ready = asyncio.Event()
        self.sink = sink
        #: its task is parked with nothing left to send: results may be written directly
        self.idle = False
        #: shared results at or before this position are not its (a late start covered them)
        self.since = -1
        #: where its share of the current turn's bodies starts (graph/server/fanout_turn.py); -1: none
        self.corked_at = -1

    def push(self, item: Any, position: int = 0, body: bytes | None = None) -> None:
        self.idle = False  # from now on, results queue behind this one
        self.backlog.append((position, item, body))
        self.ready.set()


class _SharedExecution:
    def __init__(self, fanout: Fanout, key: tuple, run: Callable[[], Any]) -> None:
        self.fanout, self.key = fanout, key
        self.subscribers: set[_Subscriber] = set()
        #: whether an event is being resolved into a result (the stream says so)
        self.consumer = Consumer()
        #: where a stateful stream (a live queue) stands, as it says
        self.position = Position()
        self.broadcasts = 0
        self.stopping = False
        #: bodies held for parked subscribers until the end of this turn of the event loop
        self.turn = Turn()
        self.task = asyncio.create_task(self._run(run), name=f"fanout:{key[0]}")

    async def _run(self, run: Callable[[], Any]) -> None:
        CONSUMER.set(self.consumer)  # in this task's context: the stream marks the events it hands out
        QUEUE_POSITION.set(self.position)  # and a live queue where its messages stand
        try:
            source = await run()
            async with contextlib.aclosing(source):
                async for result in source:
                    if isinstance(result, PreExecutionError):
                        self._broadcast(result, self.position.seq)
                    else:
                        item = _encoded(result)
                        self._broadcast(item, self.position.seq, ws_direct.body(item))
                    self.broadcasts += 1
                    if self.stopping:
                        return  # closed here, between results: nothing is left half-resolved
        except Exception as error:
            self._broadcast(ExecutionResult(data=None, errors=[GraphQLError(str(error), original_error=error)]))
        finally:
            self._broadcast(_END)

    def _broadcast(self, item: Any, position: int = 0, body: bytes | None = None) -> None:
        turn = self.turn
        index = -1 if body is None else turn.add(body)
        written = 0
        for subscriber in list(self.subscribers):
            if subscriber.corked_at >= 0:
                if index >= 0:
                    written += 1  # it takes the rest of the turn (see fanout_turn)
                    continue
                turn.release(subscriber)  # what is held for it goes before this
            sink = subscriber.sink
            # whether its operation still runs is checked once, when the turn is written
            if index >= 0 and subscriber.idle and sink is not None and position > subscriber.since and sink.flowing():
                turn.cork(subscriber, index)
                written += 1
            elif len(subscriber.backlog) >= BACKLOG_LIMIT:
                subscriber.backlog.clear()
                subscriber.push(_too_slow())
                subscriber.push(_END)
                self.subscribers.discard(subscriber)
            else:
                subscriber.push(item, position, body)
        self.fanout.written += written
        turn.settle()

    def stop(self) -> None:
        """End the execution without cutting a result short: at once if it is waiting for the
        next event, else right after the result it is resolving (cancelling graphql-core in the
        middle of a result would leave its resolver coroutines never awaited)."""
        self.stopping = True
        if not self.consumer.busy:
            self.task.cancel()

    async def follow(self, start: Start | None = None, sink: Sink | None = None) -> AsyncGenerator[Any, None]:
        """The shared results from now on; for a late subscriber of a stateful stream, its own
        ``start`` first, then only the results made after it. With a ``sink``, plain results
        may be written to it directly instead of yielded."""
        subscriber = _Subscriber(sink)
        self.subscribers.add(subscriber)
        try:
            delivered = False  # the first result takes the ordinary path (it answers the request)
            if start is not None and self.position.stateful and self.broadcasts:
                first, subscriber.since = await start()
                yield first
                delivered = True
            backlog = subscriber.backlog
            while True:
                while backlog:
                    if delivered and sink is not None and ws_direct.drain(backlog, subscriber.since, sink, COALESCE):
                        continue
                    position, item, _ = backlog.popleft()
                    if item is _END:
                        return
                    if position > subscriber.since or (isinstance(item, ExecutionResult) and item.errors):
                        yield item
                        delivered = True
                subscriber.idle = delivered and sink is not None
                subscriber.ready.clear()
                await subscriber.ready.wait()
                subscriber.idle = False
        finally:
            self.subscribers.discard(subscriber)
            if not self.subscribers:
                self.fanout._forget(self)


def _encoded(result: ExecutionResult) -> ExecutionResult:
    """The result with its data encoded once, to be embedded as-is in every message."""
    if result.data is None:
        return result
    # copied to its size: orjson's own buffer is kilobytes, held as long as a backlog holds the result
    data = orjson.Fragment(bytes(memoryview(orjson.dumps(result.data))))
    # Strawberry types ``data`` as a dict; the Fragment (already JSON) is embedded as-is by orjson
    return ExecutionResult(data=data, errors=result.errors, extensions=result.extensions)  # type: ignore[arg-type]


def _too_slow() -> ExecutionResult:
    error = GraphQLError(
        "This subscriber fell too far behind and was ended; resubscribe with `after` set to the "
        "last event id it received to continue without loss.",
        extensions={"code": "RATE_LIMITED"},
    )
    return ExecutionResult(data=None, errors=[error])


async def _refused(error: GraphQLError) -> AsyncGenerator[Any, None]:
    yield PreExecutionError(data=None, errors=[error])


class Fanout:
    """The shared executions of this worker, by (tenant, document, operation, variables)."""

    def __init__(self) -> None:
        self.executions: dict[tuple, _SharedExecution] = {}
        #: results written straight to a subscriber's socket by a broadcast (ws_direct), ever
        self.written = 0

    def key(self, context: Any, query: str, variables: Any, operation_name: str | None) -> tuple | None:
        if not shareable(query, operation_name):
            return None
        try:
            encoded = orjson.dumps(variables or {}, option=orjson.OPT_SORT_KEYS)
        except TypeError:
            return None
        return (context.tenant, query, operation_name, encoded)

    async def subscribe(
        self, key: tuple, run: Callable[[], Any], start: Start | None = None, sink: Sink | None = None
    ) -> AsyncGenerator[Any, None]:
        """Follow the shared execution of ``key`` (started with ``run`` if there is none); a late
        subscriber of a stateful stream starts from ``start``; ``sink``: where results may be
        written directly."""
        execution = self.executions.get(key)
        if execution is None:
            execution = self.executions[key] = _SharedExecution(self, key, run)
        return execution.follow(start, sink)

    def _forget(self, execution: _SharedExecution) -> None:
        if self.executions.get(execution.key) is execution:
            del self.executions[execution.key]
        execution.stop()

    @property
    def subscribers(self) -> int:
        return sum(len(e.subscribers) for e in self.executions.values())


class _SharingSchema:
    """The schema as a WebSocket handler sees it: shareable subscriptions join a shared execution."""

    def __init__(self, schema: Any, fanout: Fanout, make_context: Callable[[Any], Any], limits: Limits) -> None:
        self._schema, self._fanout, self._make_context, self._limits = schema, fanout, make_context, limits
        scope_events(schema)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._schema, name)

    async def _shared_or(
        self, query: str, variable_values: dict[str, Any] | None = None, context_value: Any = None,
        root_value: Any = None, operation_name: str | None = None,
    ) -> Any:  # fmt: skip
        refusal = self._refusal(query, variable_values, operation_name)
        if refusal is not None:
            return _refused(refusal)
        key = self._fanout.key(context_value, query, variable_values, operation_name)
        if key is None:
            if kind(query, operation_name) == ALONE:
                # a stream of its own gets a context of its own: its per-event loaders are not
                # the connection's, which other operations on the socket use at the same time
                context_value = self._make_context(context_value)
            # ``stream`` runs any operation: a query or mutation over graphql-ws too (Strawberry's
            # graphql-ws handler asks for ``subscribe``, which refuses them)
            stream = await self._schema.stream(
                query, variable_values=variable_values, context_value=context_value,
                root_value=root_value, operation_name=operation_name,
            )  # fmt: skip
            return open_subscription(run_alone(stream)) if kind(query, operation_name) == ALONE else stream

        def run() -> Any:
            return self._schema.subscribe(
                query, variable_values=variable_values, context_value=self._make_context(context_value),
                root_value=root_value, operation_name=operation_name,
            )  # fmt: skip

        async def start() -> tuple[Any, int]:
            """The first result of the operation run alone, asking a live queue for its page
            only; and where the queue stood then."""
            position = Position(snapshot_only=True)
            token = QUEUE_POSITION.set(position)
            try:
                source = await run()
                async with contextlib.aclosing(source):
                    first = await anext(source)
            finally:
                QUEUE_POSITION.reset(token)
            return (first if isinstance(first, PreExecutionError) else _encoded(first)), position.seq

        return open_subscription(await self._fanout.subscribe(key, run, start, SINK.get()))

    def _refusal(self, query: str, variables: Any, operation_name: str | None) -> GraphQLError | None:
        """The limits of ``graph.validation``, for operations arriving over WebSocket."""
        limits = self._limits
        problem = prescan(query, limits.max_tokens, 2 * limits.max_depth + 4)
        if problem is not None:
            return TooComplex(problem)
        if variables and variables_too_deep(variables, limits.max_variables_depth):
            return GraphQLError("variables nest too deep", extensions={"code": "BAD_USER_INPUT"})
        document = parsed(query)
        if isinstance(document, GraphQLError):
            return None  # Strawberry reports the syntax error itself
        return too_complex(limits, document, self._schema._schema, variables or {}, operation_name)

    async def stream(self, query: str, **kwargs: Any) -> Any:
        return await self._shared_or(query, **kwargs)

    async def subscribe(self, query: str, **kwargs: Any) -> Any:
        """What Strawberry's graphql-ws handler calls, for any operation: answered as ``stream``."""
        return await self._shared_or(query, **kwargs)


def _over_limit(handler: Any, open_operations: dict, operation_id: str) -> bool:
    limit = handler.max_subscriptions_per_connection
    return limit is not None and operation_id not in open_operations and len(open_operations) >= limit


def _limit_error(limit: int | None) -> GraphQLError:
    return GraphQLError(
        f"Subscription limit reached: at most {limit} operations at once on one connection",
        extensions={"code": "RATE_LIMITED"},
    )


def sharing_handlers(fanout: Fanout, make_context: Callable[[Any], Any], limits: Limits) -> tuple[type, type]:
    """WebSocket handler classes for both protocols that share executions through ``fanout``."""

    class TransportWS(BaseGraphQLTransportWSHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            # Strawberry types ``schema`` as BaseSchema; the wrapper stands in for it (it forwards the rest)
            self.schema = _SharingSchema(self.schema, fanout, make_context, limits)  # type: ignore[assignment]

        async def handle_subscribe(self, message: Any) -> None:
            if self.connection_acknowledged and _over_limit(self, self.operations, message["id"]):
                error = _limit_error(self.max_subscriptions_per_connection)
                await self.send_message({"id": message["id"], "type": "error", "payload": [error.formatted]})
                return
            await super().handle_subscribe(message)

        async def run_operation(self, operation: Any) -> None:
            # in the operation's own task: its shared results may go straight to the socket
            SINK.set(ws_direct.sink_for(self.websocket, operation.id, False, self.operations, operation))
            await super().run_operation(operation)

    class LegacyWS(BaseGraphQLWSHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            # Strawberry types ``schema`` as BaseSchema; the wrapper stands in for it (it forwards the rest)
            self.schema = _SharingSchema(self.schema, fanout, make_context, limits)  # type: ignore[assignment]

        async def handle_start(self, message: Any) -> None:
            if self.connection_acknowledged and _over_limit(self, self.tasks, message["id"]):
                error = _limit_error(self.max_subscriptions_per_connection)
                await self.send_message({"id": message["id"], "type": "error", "payload": error.formatted})
                return
            await super().handle_start(message)

        async def handle_async_results(self, operation_id: str, *args: Any) -> None:
            # in the operation's own task (``tasks[operation_id]`` while it runs)
            task = asyncio.current_task()
            SINK.set(ws_direct.sink_for(self.websocket, operation_id, True, self.tasks, task))
            await super().handle_async_results(operation_id, *args)

        async def send_message(self, message: Any) -> None:
            # A result can be on its way when the client closes. Strawberry's graphql-ws handler
            # lets the failed send end the operation's task without closing its result stream,
            # which would keep the stream's tap until garbage collection; swallowing the error
            # leaves the task to the connection's own cleanup, which closes the stream.
            with contextlib.suppress(WebSocketDisconnected, SocketClosed):
                await super().send_message(message)

    return TransportWS, LegacyWS
