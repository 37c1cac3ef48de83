"""Caches of work done per GraphQL document (parsing, validation, plans), bounded for hostile input.

A cache keyed by the raw text keeps every distinct document a client sends — 1,000 documents of
a megabyte each are a gigabyte. ``DocumentCache`` keys by a digest of the text instead, evicts
the least recently used entries past a count and past an estimate of the bytes they hold, and
keeps documents over ``max_document_bytes`` only among the last ``large_entries`` (a fixed few:
enough for the door, the schema and the compiled path to parse one request's large document
once, since lexing a megabyte takes about a second; clients that send the same large document
again and again are rare, and persisted queries serve them).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Hashable
from dataclasses import replace
from threading import Lock
from typing import Generic, TypeVar

from cachetools import LRUCache
from graphql import FieldNode, SelectionSetNode

V = TypeVar("V")

#: what a cached document costs, as a multiple of its text: a parsed AST or a plan holds a few
#: objects per token, each some tens of bytes (measured: about 12x for graphql-core's AST)
OVERHEAD = 16
MAX_DOCUMENT_BYTES = 64 * 1024
_MISSING = object()


def digest(text: str) -> bytes:
    """A short, collision-resistant key for a document's text."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class DocumentCache(Generic[V]):
    """``get(text, make, *extra)``: ``make()`` once per (document, extra), within bounds.

    ``extra`` distinguishes answers that depend on more than the text (an operation name, a
    limit). Entries and their estimated bytes are both bounded; least recently used go first.
    """

    def __init__(
        self,
        *,
        max_entries: int = 1024,
        max_bytes: int = 32 * 1024 * 1024,
        max_document_bytes: int = MAX_DOCUMENT_BYTES,
        large_entries: int = 2,
    ) -> None:
        self.max_entries = max_entries
        self.max_document_bytes = max_document_bytes
        self._large: LRUCache[tuple[Hashable, ...], V] | None = LRUCache(large_entries) if large_entries else None
        self._entries: LRUCache[tuple[Hashable, ...], tuple[int, V]] = LRUCache(
            maxsize=max_bytes, getsizeof=lambda entry: entry[0]
        )
        self._lock = Lock()  # the schema's caches are also used from graphql-core's worker threads

    def get(self, text: str, make: Callable[[], V], *extra: Hashable) -> V:
        key = (digest(text), *extra)
        if len(text) > self.max_document_bytes:
            return self._get_large(key, make)
        with self._lock:
            found = self._entries.get(key)
        if found is not None:
            return found[1]
        value = make()
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.popitem()
            with contextlib.suppress(ValueError):  # larger than the whole byte budget: not kept
                self._entries[key] = (max(len(text) * OVERHEAD, 1), value)
        return value

    def _get_large(self, key: tuple[Hashable, ...], make: Callable[[], V]) -> V:
        if self._large is None:
            return make()
        with self._lock:
            found = self._large.get(key, _MISSING)
        if found is not _MISSING:
            return found  # type: ignore[return-value]
        value = make()
        with self._lock:
            self._large[key] = value
        return value

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        """The estimated bytes held."""
        return int(self._entries.currsize)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            if self._large is not None:
                self._large.clear()


def merge_fields(node: FieldNode) -> FieldNode | None:
    """``node`` with the fields selected twice under one key merged, at every level, in the
    order GraphQL runs them (``nodes { id } nodes { name }`` is ``nodes { id name }``), for a
    valid document (whose fields can be merged). None where a selection is a fragment or has a
    directive: those are merged only knowing the types and the variables."""
    fields: dict[str, FieldNode] = {}
    for item in node.selection_set.selections if node.selection_set else ():
        if not isinstance(item, FieldNode) or item.directives:
            return None
        key = item.alias.value if item.alias else item.name.value
        first = fields.setdefault(key, item)
        if first is not item and first.selection_set and item.selection_set:
            fields[key] = _with(first, [*first.selection_set.selections, *item.selection_set.selections])
    children = [merge_fields(child) for child in fields.values()]
    return node if node.selection_set is None else None if None in children else _with(node, children)


def _with(node: FieldNode, selections: list) -> FieldNode:
    return replace(node, selection_set=SelectionSetNode(selections=tuple(selections)))  # never change a shared AST
