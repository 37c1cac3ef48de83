"""The walk of a ``where`` tree, for every reader of its shape (size limits, the columns a live
queue watches)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def where_parts(where: dict[str, Any] | None) -> Iterator[list[tuple[str, Any]]]:
    """The parts of a ``where``, one list of (name, spec) per nested object — ``and_``/``or_``
    lists, ``not_`` objects and field filters alike — walked iteratively (no recursion)."""
    stack = [where]
    while stack:
        part = [(name, spec) for name, spec in (stack.pop() or {}).items() if spec is not None]
        for name, spec in part:
            if name in ("and_", "or_"):
                stack.extend(spec)
            elif name == "not_":
                stack.append(spec)
        yield part
