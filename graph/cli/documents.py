"""``support-graph register-documents FILE``: trusted documents, the only ones a server started
with ``--persisted-only`` runs.

FILE is either a JSON object of hash → document, or Apollo's persisted-query manifest
(``{"format": "apollo-persisted-query-manifest", "version": 1, "operations": [{"id", "body",
"name", "type"}]}``, as ``generate-persisted-query-manifest`` writes it). Every hash must be the
SHA-256 of its document and every document must parse and validate against the schema; one
that does not refuses the whole file, and nothing is registered.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from graphql import DocumentNode, GraphQLError, OperationDefinitionNode

from graph.schema import document_errors, schema
from graph.server.persisted import RULES, SHA256, Registration, register, sha256_of
from graph.validation import parsed
from models.db import migrate
from models.db.engine import Database

MANIFEST = "apollo-persisted-query-manifest"
#: the problems a refused file lists, at most
SHOWN = 20


class Refused(ValueError):
    """A file that registers nothing; the message says why, one problem a line."""


def read(path: Path) -> list[Registration]:
    """The documents of a file, each checked; ``Refused`` if any is wrong."""
    try:
        content = orjson.loads(path.read_bytes())
    except OSError as error:
        raise Refused(f"{path}: cannot read it ({error.strerror})") from None
    except orjson.JSONDecodeError as error:
        raise Refused(f"{path}: not JSON ({error})") from None
    entries = _entries(path, content)
    problems = [f"{where}: {problem}" for where, entry in entries if (problem := _problem(entry))]
    if problems:
        shown = "\n".join(f"  {p}" for p in problems[:SHOWN])
        more = f"\n  … and {len(problems) - SHOWN} more" if len(problems) > SHOWN else ""
        raise Refused(
            f"{path}: {len(problems)} of {len(entries)} documents refused, nothing registered:\n{shown}{more}"
        )
    unique = {entry.hash.lower(): Registration(entry.hash.lower(), entry.document, entry.name) for _, entry in entries}
    return list(unique.values())  # a manifest may list one document twice


@dataclass(frozen=True)
class _Entry:
    """A document as the file gives it (not yet checked), and the operation type a manifest
    says it has."""

    hash: Any
    document: Any
    name: Any = None
    kind: Any = None


def _entries(path: Path, content: Any) -> list[tuple[str, _Entry]]:
    """(where in the file, entry) for each document of either format."""
    if not isinstance(content, dict):
        raise Refused(f"{path}: expected a JSON object of hash → document, or an Apollo persisted-query manifest")
    if "format" not in content:
        return [(f"{key[:16]}…" if len(key) > 16 else key, _Entry(key, body)) for key, body in content.items()]
    if content["format"] != MANIFEST or content.get("version") != 1:
        raise Refused(f'{path}: a manifest must have "format": "{MANIFEST}" and "version": 1')
    operations = content.get("operations")
    if not isinstance(operations, list):
        raise Refused(f'{path}: the manifest\'s "operations" must be a list')
    entries = []
    for n, operation in enumerate(operations):
        item = operation if isinstance(operation, dict) else {}
        where = f"operations[{n}]" + (f" ({item['name']})" if isinstance(item.get("name"), str) else "")
        entries.append((where, _Entry(item.get("id"), item.get("body"), item.get("name"), item.get("type"))))
    return entries


def _problem(entry: _Entry) -> str | None:
    """What is wrong with one entry (None if nothing is)."""
    if not isinstance(entry.hash, str) or not SHA256.fullmatch(entry.hash.lower()):
        return "the hash must be a SHA-256 in hexadecimal (64 digits)"
    if not isinstance(entry.document, str) or not entry.document.strip():
        return "the document must be a non-empty string"
    if entry.name is not None and not isinstance(entry.name, str):
        return "the name must be a string"
    if sha256_of(entry.document) != entry.hash.lower():
        return f"the hash is not the SHA-256 of the document (that is {sha256_of(entry.document)})"
    document = parsed(entry.document)
    if isinstance(document, GraphQLError):
        return f"does not parse: {document.message}"
    errors = document_errors(schema._schema, entry.document, document, RULES)
    if errors:
        return f"does not validate: {errors[0].message}"
    if entry.kind is not None and entry.kind not in _kinds(document):
        said = orjson.dumps(entry.kind).decode()
        return (
            f'the manifest says "type": {said}, the document holds {" and ".join(_kinds(document)) or "no operation"}'
        )
    return None


def _kinds(document: DocumentNode) -> list[str]:
    return [d.operation.value for d in document.definitions if isinstance(d, OperationDefinitionNode)]


async def register_documents(path: Path, database_url: str) -> int:
    """The command: check the file, then register all of it at once."""
    try:
        documents = read(path)
    except Refused as refused:
        print(f"support-graph: {refused}", file=sys.stderr)
        return 1
    db = Database(database_url)
    try:
        await migrate.upgrade(db)
        new = await register(db, documents)
    finally:
        await db.dispose()
    count = f"{len(documents)} document{'' if len(documents) == 1 else 's'}"
    print(f"{count} registered ({new} new, {len(documents) - new} already registered)")
    return 0
