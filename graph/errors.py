"""Every error a client sees carries ``extensions.code``; nothing internal leaks.

Domain errors keep their message and extensions. Errors in the request itself (syntax,
validation, variables that do not coerce, an unknown enum value) are ``BAD_USER_INPUT``.
Anything else is ``INTERNAL``: the client gets a request id, the log gets the traceback.
"""

from __future__ import annotations

import logging

from graphql import GraphQLError
from strawberry.extensions import MaskErrors

from resolvers.errors import DomainError

log = logging.getLogger("support_graph.errors")


def _cause(error: GraphQLError) -> BaseException | None:
    original = error.original_error
    while isinstance(original, GraphQLError) and original.original_error is not None:
        original = original.original_error
    return original


def is_internal(error: GraphQLError) -> bool:
    """An error of ours (a bug, an outage), not of the request."""
    original = _cause(error)
    return original is not None and not isinstance(original, (DomainError, GraphQLError))


def client_error(error: GraphQLError, request_id: str) -> GraphQLError:
    """The error as the client may see it."""
    original = _cause(error)
    if isinstance(original, DomainError):
        code, message, extra = original.code, original.message, original.extensions
        if code == "INTERNAL":  # a hook failed: the log has the traceback under this id
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
    """Give every error its ``extensions.code`` and mask internal ones (see module doc)."""

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        context = self.execution_context.context
        return client_error(error, getattr(context, "request_id", "") or "-")
