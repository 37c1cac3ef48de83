"""The compiled path's reads as steps: each step is every statement the read needs next, none of
them depending on another's rows — a level's relations, lists, pages and counts, for all the
reads ``gather`` runs side by side. On PostgreSQL a step of several statements is sent as ONE
statement (a round trip, and PostgreSQL's per-statement work, instead of one per statement): each
statement becomes an array of its rows, as anonymous records, in one ``SELECT``. asyncpg decodes
the records' fields with the codecs it decodes a plain row's columns with, and each statement's
own result converters run on them as on its plain rows, so the rows are the ones it would return
alone. On SQLite (in process: no round trip to save) the statements run one after another.

The combined statement's text is made once per combination of statements and kept on the plan
(``Plan.batches``), so asyncpg prepares it once per connection, as it does any other statement.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, TypeVar

from graph.fastpath_plan import Row
from models.db.plain import Compiled, Read

T = TypeVar("T")
#: a statement and its values
Statement = tuple[Compiled, dict[str, Any]]
#: a read in steps: yields the statements it needs next (independent of each other), is sent
#: their rows in the same order; returns its result
Steps = Generator[list[Statement], list[list[Row]], T]

_PARAMETER = re.compile(r"\$(\d+)")


def one(statement: Compiled, values: dict[str, Any]) -> Steps[list[Row]]:
    """The rows of one statement, as a step of its own."""
    (rows,) = yield [(statement, values)]
    return rows


def gather(reads: list[Steps[Any]]) -> Steps[list[Any]]:
    """The results of ``reads``, run side by side: each step is the next statements of all of
    them that still need one (so a level of one is a step with the same level of the others)."""
    if len(reads) == 1:  # nothing to put side by side
        return [(yield from reads[0])]
    results: list[Any] = [None] * len(reads)
    pending: list[tuple[int, list[Statement]]] = []
    for index, read in enumerate(reads):
        try:
            pending.append((index, next(read)))
        except StopIteration as done:
            results[index] = done.value
    while pending:
        found = yield [statement for _, wanted in pending for statement in wanted]
        start, waiting = 0, []
        for index, wanted in pending:
            part, start = found[start : start + len(wanted)], start + len(wanted)
            try:
                waiting.append((index, reads[index].send(part)))
            except StopIteration as done:
                results[index] = done.value
        pending = waiting
    return results


@dataclass(frozen=True)
class Batch(Compiled):
    """Several statements as one (PostgreSQL): one row, each statement's rows an array of records."""

    parts: tuple[Compiled, ...] = ()

    @classmethod
    def of_parts(cls, parts: tuple[Compiled, ...]) -> Batch | None:
        """The statement standing for ``parts``, or None if one holds quoted text (where ``$1``
        need not be a parameter); SQLAlchemy renders values as parameters, so none does now."""
        if any("'" in part.sql or "$$" in part.sql for part in parts):
            return None
        columns, offset = [], 0
        for index, part in enumerate(parts):
            sql = _PARAMETER.sub(lambda m, o=offset: f"${int(m.group(1)) + o}", part.sql)  # type: ignore[misc]
            # the rows in the statement's order: PostgreSQL keeps a sorted subquery's order here
            columns.append(f"ARRAY(SELECT ROW(_q.*) FROM ({sql}) AS _q) AS _p{index}")
            offset += max((int(n) for n in _PARAMETER.findall(part.sql)), default=0)
        names = tuple(f"_p{i}" for i in range(len(parts)))
        return cls(f"SELECT {', '.join(columns)}", None, (), (), names, (None,) * len(parts), parts)

    def parameters(self, values: dict[str, Any]) -> list[Any]:
        """``values["parts"]``: each statement's values, in order."""
        return [p for part, given in zip(self.parts, values["parts"]) for p in part.parameters(given)]

    def rows(self, raw: list[Any]) -> list[dict[str, Any]]:
        """One row: ``parts``, each statement's rows (converted as that statement converts them)."""
        (row,) = raw
        return [{"parts": [part.rows(found) for part, found in zip(self.parts, row)]}]


def as_read(steps: Steps[T], dialect: str, batches: dict[tuple[str, ...], Batch | None]) -> Read[T]:
    """``steps`` as a plain read (models.db.plain): on PostgreSQL a step of several statements is
    one statement (its text kept in ``batches``), else each runs in turn."""
    try:
        wanted = next(steps)
    except StopIteration as done:
        return done.value
    while True:
        found: list[list[Row]] = []
        batch = None
        if len(wanted) > 1 and dialect == "postgresql":
            key = tuple(statement.sql for statement, _ in wanted)
            if key not in batches:
                batches[key] = Batch.of_parts(tuple(statement for statement, _ in wanted))
            batch = batches[key]
        if batch is not None:
            (row,) = yield batch, {"parts": [values for _, values in wanted]}
            found = row["parts"]
        else:
            for statement, values in wanted:
                found.append((yield statement, values))
        try:
            wanted = steps.send(found)
        except StopIteration as done:
            return done.value
