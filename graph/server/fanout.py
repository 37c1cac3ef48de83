"""Fan-out: each distinct live subscription runs once per tenant, whoever many watch it.

Subscribers of the same document with the same variables in the same tenant share one
execution: every event is resolved and JSON-encoded once (as an ``orjson.Fragment``) and the
same bytes go to each of them. A stream whose messages mean something only after a first one
(a live queue: a snapshot, then changes to it) says so through ``resolvers.queue.QUEUE_POSITION``,
with where each message stands: a subscriber that joins it late gets a snapshot resolved for it
alone, then the shared messages past that snapshot. Subscriptions that resume from a cursor
(``after``) replay a history of their own, so they run alone (each with a context of its own).
A subscriber that falls far behind is ended with an error telling it to resume from its last
event, instead of holding memory for it. When the last subscriber leaves, the execution ends
between two results, never in the middle of resolving one. Operations are told apart once per
document (a bounded ``DocumentCache``), and queries and mutations run over graphql-ws as over
graphql-transport-ws.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import orjson
from graphql import GraphQLError, OperationDefinitionNode, OperationType
from graphql.pyutils import RefMap
from starlette.websockets import WebSocketDisconnected as SocketClosed
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.types.execution import ExecutionResult, PreExecutionError

from graph.documents import DocumentCache
from graph.server.metrics import open_subscription
from graph.validation import Limits, TooComplex, parsed, prescan, too_complex, variables_too_deep
from resolvers.live import CONSUMER, Consumer
from resolvers.queue import QUEUE_POSITION, Position

#: Results a subscriber may have waiting before it is ended as too slow.
BACKLOG_LIMIT = 5_000
_END = object()

#: What an operation is: a subscription that may share an execution, one that runs alone (it
#: resumes from a cursor), or not a subscription (a query or mutation over WebSocket).
SHARED, ALONE, OTHER = "shared", "alone", "other"
_KINDS: DocumentCache[str] = DocumentCache(max_entries=512)


def _kind(query: str, operation_name: str | None) -> str:
    return _KINDS.get(query, lambda: _classify(query, operation_name), operation_name)


def _classify(query: str, operation_name: str | None) -> str:
    document = parsed(query)
    if isinstance(document, GraphQLError):
        return OTHER
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if len(operations) != 1 or operations[0].operation != OperationType.SUBSCRIPTION:
        return OTHER
    resumes = any(
        argument.name.value == "after"
        for selection in operations[0].selection_set.selections
        for argument in getattr(selection, "arguments", ()) or ()
    )
    return ALONE if resumes else SHARED


def _shareable(query: str, operation_name: str | None) -> bool:
    """A subscription without an ``after`` cursor on any root field."""
    return _kind(query, operation_name) == SHARED


class _EventScoped:
    """Mixed into the schema's executor class: each event of a subscription gets its own memo of
    collected subfields. graphql-core's per-event executors are shallow copies sharing the
    subscription's memo, keyed by the identity of field lists made anew for every event and
    keeping them alive — about 1.5 KB per delivered event, held as long as the subscription
    runs and then, the executor being in a reference cycle, until a full garbage collection."""

    _scoped_per_event = True

    def build_per_event_executor(self, payload: Any) -> Any:
        executor = super().build_per_event_executor(payload)  # type: ignore[misc]
        if hasattr(executor, "_relevant_sub_fields"):
            executor._relevant_sub_fields = {}
        if hasattr(executor, "_stream_usages"):
            executor._stream_usages = RefMap()
        return executor


def _scope_events(schema: Any) -> None:
    """Give ``schema`` (a Strawberry schema) an executor class that scopes memos to one event."""
    current = getattr(schema, "execution_context_class", None)
    if current is not None and not getattr(current, "_scoped_per_event", False):
        schema.execution_context_class = type(f"EventScoped{current.__name__}", (_EventScoped, current), {})


#: a late subscriber's own start: its first result and where the stream stood then
Start = Callable[[], Awaitable[tuple[Any, int]]]


class _Subscriber:
    def __init__(self) -> None:
        #: results, each with where the stream stood when it was made
        self.backlog: deque[tuple[int, Any]] = deque()
        self.ready = asyncio.Event()

    def push(self, item: Any, position: int = 0) -> None:
        self.backlog.append((position, item))
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
        self.task = asyncio.create_task(self._run(run), name=f"fanout:{key[0]}")

    async def _run(self, run: Callable[[], Any]) -> None:
        CONSUMER.set(self.consumer)  # in this task's context: the stream marks the events it hands out
        QUEUE_POSITION.set(self.position)  # and a live queue where its messages stand
        try:
            source = await run()
            async with contextlib.aclosing(source):
                async for result in source:
                    item = result if isinstance(result, PreExecutionError) else _encoded(result)
                    self._broadcast(item, self.position.seq)
                    self.broadcasts += 1
                    if self.stopping:
                        return  # closed here, between results: nothing is left half-resolved
        except Exception as error:
            self._broadcast(ExecutionResult(data=None, errors=[GraphQLError(str(error), original_error=error)]))
        finally:
            self._broadcast(_END)

    def _broadcast(self, item: Any, position: int = 0) -> None:
        for subscriber in list(self.subscribers):
            if len(subscriber.backlog) >= BACKLOG_LIMIT:
                subscriber.backlog.clear()
                subscriber.push(_too_slow())
                subscriber.push(_END)
                self.subscribers.discard(subscriber)
            else:
                subscriber.push(item, position)

    def stop(self) -> None:
        """End the execution without cutting a result short: at once if it is waiting for the
        next event, else right after the result it is resolving (cancelling graphql-core in the
        middle of a result would leave its resolver coroutines never awaited)."""
        self.stopping = True
        if not self.consumer.busy:
            self.task.cancel()

    async def follow(self, start: Start | None = None) -> AsyncGenerator[Any, None]:
        """The shared results from now on; for a late subscriber of a stateful stream, its own
        ``start`` first, then only the results made after it."""
        subscriber = _Subscriber()
        self.subscribers.add(subscriber)
        try:
            since = -1
            if start is not None and self.position.stateful and self.broadcasts:
                first, since = await start()
                yield first
            while True:
                while subscriber.backlog:
                    position, item = subscriber.backlog.popleft()
                    if item is _END:
                        return
                    if position > since or (isinstance(item, ExecutionResult) and item.errors):
                        yield item
                subscriber.ready.clear()
                await subscriber.ready.wait()
        finally:
            self.subscribers.discard(subscriber)
            if not self.subscribers:
                self.fanout._forget(self)


def _encoded(result: ExecutionResult) -> ExecutionResult:
    """The result with its data encoded once, to be embedded as-is in every message."""
    if result.data is None:
        return result
    data = orjson.Fragment(orjson.dumps(result.data))
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

    def key(self, context: Any, query: str, variables: Any, operation_name: str | None) -> tuple | None:
        if not _shareable(query, operation_name):
            return None
        try:
            encoded = orjson.dumps(variables or {}, option=orjson.OPT_SORT_KEYS)
        except TypeError:
            return None
        return (context.tenant, query, operation_name, encoded)

    async def subscribe(
        self, key: tuple, run: Callable[[], Any], start: Start | None = None
    ) -> AsyncGenerator[Any, None]:
        """Follow the shared execution of ``key`` (started with ``run`` if there is none); a late
        subscriber of a stateful stream starts from ``start``."""
        execution = self.executions.get(key)
        if execution is None:
            execution = self.executions[key] = _SharedExecution(self, key, run)
        return execution.follow(start)

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
        _scope_events(schema)

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
            if _kind(query, operation_name) == ALONE:
                # a stream of its own gets a context of its own: its per-event loaders are not
                # the connection's, which other operations on the socket use at the same time
                context_value = self._make_context(context_value)
            # ``stream`` runs any operation: a query or mutation over graphql-ws too (Strawberry's
            # graphql-ws handler asks for ``subscribe``, which refuses them)
            stream = await self._schema.stream(
                query, variable_values=variable_values, context_value=context_value,
                root_value=root_value, operation_name=operation_name,
            )  # fmt: skip
            return open_subscription(stream) if _kind(query, operation_name) == ALONE else stream

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

        return open_subscription(await self._fanout.subscribe(key, run, start))

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

        async def send_message(self, message: Any) -> None:
            # A result can be on its way when the client closes. Strawberry's graphql-ws handler
            # lets the failed send end the operation's task without closing its result stream,
            # which would keep the stream's tap until garbage collection; swallowing the error
            # leaves the task to the connection's own cleanup, which closes the stream.
            with contextlib.suppress(WebSocketDisconnected, SocketClosed):
                await super().send_message(message)

    return TransportWS, LegacyWS
