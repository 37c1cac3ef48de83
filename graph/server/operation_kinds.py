"""What a WebSocket operation is, for sharing (graph/server/fanout.py), and per-event executor memos.

A subscription without an ``after`` cursor on any root field may share one execution with every
subscriber of the same document and variables; one that resumes from a cursor runs alone; a query
or mutation is neither. Operations are told apart once per document (a bounded ``DocumentCache``).
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError, OperationDefinitionNode, OperationType
from graphql.pyutils import RefMap

from graph.documents import DocumentCache
from graph.validation import parsed

#: What an operation is: a subscription that may share an execution, one that runs alone (it
#: resumes from a cursor), or not a subscription (a query or mutation over WebSocket).
SHARED, ALONE, OTHER = "shared", "alone", "other"
_KINDS: DocumentCache[str] = DocumentCache(max_entries=512)


def kind(query: str, operation_name: str | None) -> str:
    """``SHARED``, ``ALONE`` or ``OTHER`` (see the module)."""
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


def shareable(query: str, operation_name: str | None) -> bool:
    """A subscription without an ``after`` cursor on any root field."""
    return kind(query, operation_name) == SHARED


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


def scope_events(schema: Any) -> None:
    """Give ``schema`` (a Strawberry schema) an executor class that scopes memos to one event."""
    current = getattr(schema, "execution_context_class", None)
    if current is not None and not getattr(current, "_scoped_per_event", False):
        schema.execution_context_class = type(f"EventScoped{current.__name__}", (_EventScoped, current), {})
