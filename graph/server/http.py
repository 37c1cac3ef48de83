"""The door of ``/graphql`` over HTTP: who is calling, how fast, and whether the request is
something GraphQL should even look at. Everything refused here is refused fast, with a 4xx
and a GraphQL-shaped error body, and nothing reaches the schema.
"""

from __future__ import annotations

import math
from typing import Any

import orjson
from graphql import GraphQLError, OperationType
from starlette.datastructures import QueryParams
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from graph.server.auth import KeyRing, Unauthenticated, bearer
from graph.server.cost import CallerBudget, cost_of
from graph.server.persisted import NOT_FOUND, NOT_IN_LIST, PersistedQueries, PersistedQueryError
from graph.server.ratelimit import Limiter, Proxies, limiter
from graph.server.settings import Settings
from graph.validation import measure, operation_of, parsed, prescan, too_complex, variables_too_deep
from models.base import ANONYMOUS_ACTOR, DEFAULT_TENANT
from resolvers.keys import Principal

#: the door's limit answers (TooComplex or None) per document, operation, variables and limits
GRAPHQL_RESPONSE = "application/graphql-response+json"
ANONYMOUS = Principal(tenant=DEFAULT_TENANT, actor=ANONYMOUS_ACTOR)


class Refusal(Exception):
    """A request refused before execution: HTTP status, error code, message, headers."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None,
        locations: list | None = None, legacy_status: int | None = None, **extensions: Any,
    ) -> None:  # fmt: skip
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}
        #: the status for clients of plain application/json, where a GraphQL error is a 200
        self.legacy_status = legacy_status
        self.locations, self.extensions = locations, {k: v for k, v in extensions.items() if k != "code"}
        #: the answer's own ``extensions`` (its cost, where the operation was measured)
        self.answer_extensions: dict[str, Any] | None = None

    def response(self, request_id: str, accept: str = "") -> Response:
        error: dict[str, Any] = {"message": self.message}
        if self.locations:
            error["locations"] = self.locations
        error["extensions"] = {"code": self.code, **self.extensions, "requestId": request_id}
        body: dict[str, Any] = {"errors": [error]}
        if self.answer_extensions:
            body["extensions"] = self.answer_extensions
        modern = GRAPHQL_RESPONSE in accept
        media = GRAPHQL_RESPONSE if modern else "application/json"
        status = self.status if modern or self.legacy_status is None else self.legacy_status
        return Response(orjson.dumps(body), status_code=status, media_type=media, headers=self.headers)


def _challenge() -> dict[str, str]:
    return {"WWW-Authenticate": 'Bearer realm="support-graph"'}


class Door:
    """Authentication, rate limits and request shape for one app.

    Every request is first counted against its client's address (``addresses``), before its
    key is looked up, so a flood of bad keys is throttled like any other; a valid key is then
    counted against its own budget (``callers``), and so is an anonymous caller's address.
    Operations sent by hash get their document here (``persisted``); each operation's cost is
    kept in ``request.state.costs``, and the budget it was counted against in
    ``request.state.rate_budget``.
    """

    def __init__(
        self, keys: KeyRing, settings: Settings, schema: Any, persisted: PersistedQueries | None = None
    ) -> None:
        self.keys, self.limits, self.schema, self.persisted = keys, settings.limits, schema, persisted
        self.require_auth = settings.require_auth
        self.proxies = Proxies(settings.forwarded_allow_ips)
        self.callers = limiter(settings.broker_url, self.limits.rate_per_minute, self.limits.rate_burst)
        self.addresses = limiter(settings.broker_url, *settings.address_rate, name="address")

    def address(self, connection: HTTPConnection) -> str:
        """The client's address (``X-Forwarded-For`` believed only from a trusted proxy)."""
        peer = connection.client.host if connection.client else None
        return self.proxies.client(peer, connection.headers.getlist("x-forwarded-for"))

    async def authenticate(self, authorization: str | None, connection: HTTPConnection | None = None) -> Principal:
        """The caller of an ``Authorization`` value, or ``Refusal``; with ``connection``, its
        address is counted first."""
        if connection is not None:
            await self.throttle(self.addresses, f"addr:{self.address(connection)}")
        try:
            return await self.principal(bearer(authorization))
        except Unauthenticated as error:
            raise Refusal(401, "UNAUTHENTICATED", str(error), _challenge()) from None

    async def principal(self, key: str | None) -> Principal:
        """The caller of a presented key; anonymous only where the server allows it."""
        if key is None:
            if self.require_auth:
                raise Refusal(401, "UNAUTHENTICATED", "An API key is required", _challenge())
            return ANONYMOUS
        principal = await self.keys.check(key)
        if principal is None:
            raise Refusal(401, "UNAUTHENTICATED", "The API key is not valid or was revoked", _challenge())
        return principal

    async def close(self) -> None:
        """Close the limiters' connections (a Redis-shared limiter holds some)."""
        await self.callers.close()
        await self.addresses.close()

    async def throttle(self, limiter: Limiter, caller: str) -> None:
        wait = await limiter.wait(caller)
        if wait:
            raise Refusal(
                429, "RATE_LIMITED", f"Too many requests: retry in {wait:g} s",
                {"Retry-After": str(max(1, math.ceil(wait)))},
            )  # fmt: skip

    async def admit(self, request: Request) -> Principal:
        """Check a ``/graphql`` HTTP request; the caller, or ``Refusal``."""
        principal = await self.authenticate(request.headers.get("authorization"), request)
        caller = principal.key_id or f"ip:{self.address(request)}"
        await self.throttle(self.callers, caller)
        request.state.rate_budget = CallerBudget(self.callers, caller)
        request.state.costs = []
        if request.method == "POST":
            await self._check_post(request, principal.tenant)
        elif request.method == "GET":
            await self._check_get(request, principal.tenant)
        return principal

    async def _check_get(self, request: Request, tenant: str) -> None:
        params = request.query_params
        if params.get("query") is None and params.get("extensions") is None:
            return  # nothing to run: Strawberry answers it
        operation = {
            "query": params.get("query"),
            "variables": _json_parameter(params, "variables"),
            "operationName": params.get("operationName"),
            "extensions": _json_parameter(params, "extensions"),
        }
        await self._admit(request, operation, tenant, over_get=True)
        if operation["query"] != params.get("query"):  # sent by hash: Strawberry reads the document from here
            others = [(name, value) for name, value in params.multi_items() if name != "query"]
            request._query_params = QueryParams([*others, ("query", operation["query"])])

    async def _check_post(self, request: Request, tenant: str) -> None:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise Refusal(
                415, "BAD_USER_INPUT",
                "POST /graphql takes application/json (other content types could be sent cross-site)",
            )  # fmt: skip
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limits.max_body_bytes):
            raise Refusal(413, "BAD_USER_INPUT", f"The body is larger than {self.limits.max_body_bytes} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > self.limits.max_body_bytes:
                raise Refusal(413, "BAD_USER_INPUT", f"The body is larger than {self.limits.max_body_bytes} bytes")
        request._body = bytes(body)  # what Strawberry will read
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise Refusal(400, "BAD_USER_INPUT", "The body is not valid JSON") from None
        request.state.payload = payload  # checked below; the compiled path reads it from here
        if isinstance(payload, list):
            if not payload or len(payload) > self.limits.max_batch:
                raise Refusal(400, "BAD_USER_INPUT", f"A batch holds 1 to {self.limits.max_batch} operations")
            for operation in payload:
                await self._admit(request, operation, tenant)
        else:
            await self._admit(request, payload, tenant)
        operations = payload if isinstance(payload, list) else [payload]
        if any(_persisted(operation) for operation in operations):
            # Strawberry reads the documents from the body; written in one form whether the
            # client sent a hash alone or a hash and its document, so that a retry of the same
            # operation under an Idempotency-Key has the same fingerprint either way
            canonical = [_canonical(operation) for operation in operations]
            request._body = orjson.dumps(canonical if isinstance(payload, list) else canonical[0])

    async def _admit(self, request: Request, operation: Any, tenant: str, *, over_get: bool = False) -> None:
        """Check one operation of ``tenant``'s caller, its document first found by its hash; a
        client's new persisted document is kept once the operation passed."""
        remember = None
        if self.persisted is not None and isinstance(operation, dict):
            try:
                remember = await self.persisted.resolve(operation, tenant)
            except PersistedQueryError as refusal:
                raise _persisted_refusal(refusal) from None
        nodes = self._check_operation(operation, over_get=over_get)
        request.state.costs.append(cost_of(nodes, self.limits))
        if remember is not None and self.persisted is not None:
            await self.persisted.remember(remember, operation["query"], tenant)

    def _check_operation(self, operation: Any, *, over_get: bool = False) -> int:
        """Refuse an operation that is malformed or over the limits; the nodes it may return."""
        if not isinstance(operation, dict):
            raise Refusal(400, "BAD_USER_INPUT", 'The body must be a JSON object: {"query": …, "variables": …}')
        query = operation.get("query")
        if not isinstance(query, str) or not query.strip():
            raise Refusal(400, "BAD_USER_INPUT", "`query` must be a non-empty string")
        variables = operation.get("variables")
        if variables is not None and not isinstance(variables, dict):
            raise Refusal(400, "BAD_USER_INPUT", "`variables` must be a JSON object")
        name = operation.get("operationName")
        if name is not None and not isinstance(name, str):
            raise Refusal(400, "BAD_USER_INPUT", "`operationName` must be a string")
        limits = self.limits
        scanned = prescan(query, limits.max_tokens, 2 * limits.max_depth + 4)
        if scanned:
            raise Refusal(400, "QUERY_TOO_COMPLEX", scanned)
        if variables and variables_too_deep(variables, limits.max_variables_depth):
            raise Refusal(400, "BAD_USER_INPUT", f"`variables` nest deeper than {limits.max_variables_depth} levels")
        document = parsed(query)
        if isinstance(document, GraphQLError):
            raise Refusal(
                400, "BAD_USER_INPUT", document.message,
                locations=document.formatted.get("locations"), legacy_status=200,
            )  # fmt: skip
        chosen = operation_of(document, name)
        kind = chosen.operation if chosen is not None else None
        if kind == OperationType.SUBSCRIPTION:
            raise Refusal(400, "BAD_USER_INPUT", "Subscriptions are served over WebSocket at /graphql")
        if over_get and kind == OperationType.MUTATION:
            raise Refusal(405, "BAD_USER_INPUT", "Mutations are sent with POST, not GET", {"Allow": "POST"})
        problem = too_complex(self.limits, document, self.schema, variables or {}, name)
        if problem is not None:
            details = {k: v for k, v in (problem.extensions or {}).items() if k != "code"}
            refusal = Refusal(400, "QUERY_TOO_COMPLEX", problem.message, legacy_status=200, **details)
            refusal.answer_extensions = {"cost": cost_of(details.get("nodes", 0), self.limits)}
            raise refusal
        if chosen is None:
            return 0  # no operation to run: the schema says why
        return measure(self.schema, document, self.limits, variables or {}, name).nodes


def _persisted_refusal(refusal: PersistedQueryError) -> Refusal:
    """A hash unknown or not allowed is a GraphQL error (200 for plain JSON, as Apollo Server
    answers it); a malformed extension is a bad request."""
    if refusal.code not in (NOT_FOUND, NOT_IN_LIST):
        return Refusal(400, refusal.code, refusal.message)
    # never cached: once the client has registered the document, the same GET must work
    headers = {"Cache-Control": "private, no-cache, must-revalidate"}
    return Refusal(400, refusal.code, refusal.message, headers, legacy_status=200)


def _json_parameter(params: QueryParams, name: str) -> Any:
    """A query parameter holding JSON (``variables``, ``extensions``), or None."""
    raw = params.get(name)
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise Refusal(400, "BAD_USER_INPUT", f"`{name}` is not valid JSON") from None


def _persisted(operation: Any) -> bool:
    """Whether an operation carries ``extensions.persistedQuery``."""
    extensions = operation.get("extensions") if isinstance(operation, dict) else None
    return isinstance(extensions, dict) and "persistedQuery" in extensions


def _canonical(operation: Any) -> Any:
    """An operation with its members in one order (their own values as sent)."""
    return {name: operation[name] for name in sorted(operation)} if isinstance(operation, dict) else operation
