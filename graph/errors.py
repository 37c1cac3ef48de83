"""Every error a client sees carries ``extensions.code``; nothing internal leaks.

Domain errors keep their message and extensions. Errors in the request itself (syntax,
validation, variables that do not coerce, an unknown enum value) are ``BAD_USER_INPUT``.
An outage — the database or broker cannot be reached or refuses writes
(``resolvers.errors.is_unavailable``) — is ``UNAVAILABLE``: the log gets one line, the HTTP
answer is a 503 with ``Retry-After`` (graph/server/app.py). Anything else is ``INTERNAL``: the
client gets a request id, the log gets the traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import MaskErrors

from resolvers.errors import DomainError, Unavailable, is_unavailable

log = logging.getLogger("support_graph.errors")


def _cause(error: GraphQLError) -> BaseException | None:
    original = error.original_error
    while isinstance(original, GraphQLError) and original.original_error is not None:
        original = original.original_error
    return original


def is_internal(error: GraphQLError) -> bool:
    """An error of ours (a bug), not of the request nor an outage (logged in one line)."""
    original = _cause(error)
    return (
        original is not None and not isinstance(original, (DomainError, GraphQLError)) and not is_unavailable(original)
    )


def _outage(original: BaseException | None) -> bool:
    return original is not None and not isinstance(original, GraphQLError) and is_unavailable(original)


def unavailable(request_id: str, error: BaseException | None = None) -> Unavailable:
    """The ``UNAVAILABLE`` error of a request that met an outage; logs it in one line."""
    if error is not None:
        cause = next((e for e in (error.__cause__, error.__context__) if e is not None), None)
        detail = f"{type(error).__name__}: {error}".splitlines()[0][:300]
        if cause is not None and not str(error):
            detail += f" ({type(cause).__name__}: {cause})".splitlines()[0][:300]
        log.warning("request %s: database or broker unavailable: %s", request_id, detail)
    return Unavailable(requestId=request_id)


def client_error(error: GraphQLError, request_id: str) -> GraphQLError:
    """The error as the client may see it."""
    original = _cause(error)
    if _outage(original) and (not isinstance(original, DomainError) or original.code in ("INTERNAL", "UNAVAILABLE")):
        original = unavailable(request_id, original)
    if isinstance(original, DomainError):
        code, message, extra = original.code, original.message, original.extensions
        if code in ("INTERNAL", "UNAVAILABLE"):  # the log has the cause under this id
            extra = {**extra, "requestId": request_id}
    elif original is None or isinstance(original, GraphQLError):
        extensions = dict(error.extensions or {})
        code = extensions.pop("code", None) or "BAD_USER_INPUT"
        message, extra = error.message, extensions
    else:
        log.error(
            "internal error in request %s at %s", request_id, error.path,
            exc_info=(type(original), original, original.__traceback__),
        )  # fmt: skip
        code, message, extra = "INTERNAL", f"Internal error (request id {request_id})", {}
        extra = {"requestId": request_id}
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={"code": code, **extra},
    )


class ErrorCodes(MaskErrors):
    """Give every error its ``extensions.code`` and mask internal ones (see module doc).

    It also tells the server's ``WriteHealth`` (``/readyz``) when a mutation failed because the
    database refused the write, and when a mutation went through."""

    def on_operation(self) -> Iterator[None]:
        self._outages: list[BaseException] = []
        yield from super().on_operation()
        health = getattr(getattr(self.execution_context.context, "services", None), "writes", None)
        if health is None or self.execution_context.graphql_document is None:
            return
        try:
            kind = self.execution_context.operation_type.value
        except Exception:  # no such operation: nothing ran
            return
        if kind != "mutation":
            return
        result = self.execution_context.result
        errors = getattr(result, "errors", None) or ()
        if getattr(result, "data", None) and not errors:
            health.succeeded()
        for error in self._outages:
            health.failed(error)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        context = self.execution_context.context
        original = _cause(error)
        if original is not None and _outage(original):
            self._outages.append(original)
        return client_error(error, getattr(context, "request_id", "") or "-")
