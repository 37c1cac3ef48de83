"""Persisted queries (API.md, "Frontends and the wider graph"), as Apollo clients speak them.

An operation may carry ``extensions.persistedQuery {version: 1, sha256Hash}`` (over POST, or
over GET as the JSON of the ``extensions`` parameter). With the hash alone, the server runs the
document it knows by that hash, or answers ``PersistedQueryNotFound`` (code
``PERSISTED_QUERY_NOT_FOUND``) so that the client sends it again with its text; with the hash
and the text, the text must hash to it (else ``BAD_USER_INPUT``) and, once it validates, it is
kept for the caller's tenant: in this worker's bounded cache and in the ``persisted_query``
table, which every worker reads on a miss. Clients keep at most ``MAX_CLIENT_DOCUMENTS`` there
(all tenants together), the oldest going first; documents registered by an operator
(``support-graph register-documents``) serve every tenant and are never pruned. A tenant never
finds another tenant's documents: a hash says nothing about what other tenants sent.

With ``--persisted-only`` the server runs registered documents alone — sent by hash or in full
— and refuses anything else with ``PERSISTED_QUERY_NOT_IN_LIST`` (Apollo Router's code for
the same refusal); clients can then register nothing. This holds over WebSocket too.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from cachetools import LRUCache
from graphql import GraphQLError, GraphQLSchema, specified_rules
from sqlalchemy import CursorResult, delete, func, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite

import models.persisted  # noqa: F401  (registers the table with the metadata)
from graph.documents import MAX_DOCUMENT_BYTES
from graph.errors import unavailable
from graph.schema import document_errors
from graph.validation import parsed
from models.db.engine import Database
from models.persisted import EVERY_TENANT, PersistedQuery
from models.types import utcnow
from resolvers.errors import is_unavailable

log = logging.getLogger("support_graph")

TABLE = PersistedQuery.__table__
VERSION = 1
SHA256 = re.compile(r"[0-9a-f]{64}")
NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
NOT_IN_LIST = "PERSISTED_QUERY_NOT_IN_LIST"
#: documents stored by clients that the table keeps (the oldest go first)
MAX_CLIENT_DOCUMENTS = 10_000
#: what this worker's cache of documents may hold, in characters of their text
CACHE_CHARACTERS = 16 * 1024 * 1024
#: the rules a document is validated by before it is kept (the schema's and the compiled path's)
RULES = tuple(specified_rules)


class PersistedQueryError(Exception):
    """A persisted-query refusal: its ``extensions.code`` and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message

    def graphql_error(self) -> GraphQLError:
        return GraphQLError(self.message, extensions={"code": self.code})


@dataclass(frozen=True)
class Stored:
    """A document known by its hash; ``registered`` by an operator, or kept for a tenant."""

    document: str
    registered: bool


def sha256_of(document: str) -> str:
    """The hash a client sends for ``document``: SHA-256 of its UTF-8 text, lowercase hex."""
    return hashlib.sha256(document.encode("utf-8", "surrogatepass")).hexdigest()


def requested_hash(operation: dict[str, Any]) -> str | None:
    """The hash an operation asks for (None without ``extensions.persistedQuery``)."""
    extensions = operation.get("extensions")
    if extensions is None:
        return None
    if not isinstance(extensions, dict):
        raise PersistedQueryError("BAD_USER_INPUT", "`extensions` must be a JSON object")
    asked = extensions.get("persistedQuery")
    if asked is None:
        return None
    if not isinstance(asked, dict) or asked.get("version") != VERSION:
        raise PersistedQueryError(
            "BAD_USER_INPUT", f"Unsupported persisted query version: this server speaks version {VERSION}"
        )
    digest = asked.get("sha256Hash")
    if not isinstance(digest, str) or not SHA256.fullmatch(digest.lower()):
        raise PersistedQueryError(
            "BAD_USER_INPUT", "`extensions.persistedQuery.sha256Hash` must be a SHA-256 in hexadecimal (64 digits)"
        )
    return digest.lower()


class PersistedQueries:
    """The persisted documents of one worker: a bounded cache in front of the table, keyed by
    (tenant, hash); registered documents under ``EVERY_TENANT``."""

    def __init__(
        self, db: Database, schema: GraphQLSchema, *, registered_only: bool = False, keep: int = MAX_CLIENT_DOCUMENTS
    ) -> None:
        self.db, self.schema, self.registered_only, self.keep = db, schema, registered_only, keep
        self._cache: LRUCache[tuple[str, str], str] = LRUCache(
            maxsize=CACHE_CHARACTERS, getsizeof=lambda document: len(document) + 100
        )

    async def resolve(self, operation: dict[str, Any], tenant: str) -> str | None:
        """Fill in ``operation["query"]`` from the document its hash names for ``tenant``'s
        caller, and hold the operation to the registered documents where the server runs only
        those.

        Returns the hash to ``remember`` once the door has checked the operation (a client
        registering its document), else None; raises ``PersistedQueryError`` for a refusal."""
        digest = requested_hash(operation)
        query = operation.get("query")
        if digest is None:
            if self.registered_only and isinstance(query, str):
                await self._require_registered(sha256_of(query))
            return None
        if query is None:
            found = await self.find(digest, tenant)
            if self.registered_only and (found is None or not found.registered):
                raise _not_in_list()
            if found is None:
                raise PersistedQueryError(NOT_FOUND, "PersistedQueryNotFound")
            operation["query"] = found.document
            return None
        if not isinstance(query, str):
            return None  # the door says what is wrong with it
        if sha256_of(query) != digest:
            raise PersistedQueryError(
                "BAD_USER_INPUT", "`extensions.persistedQuery.sha256Hash` is not the SHA-256 of the query"
            )
        if self.registered_only:
            await self._require_registered(digest)
            return None
        known = (EVERY_TENANT, digest) in self._cache or (tenant, digest) in self._cache
        return None if known else digest

    async def find(self, digest: str, tenant: str) -> Stored | None:
        """The document of a hash, registered or kept for ``tenant`` (only registered ones
        with ``registered_only``): from the cache, else the table (then cached)."""
        registered = self._cache.get((EVERY_TENANT, digest))
        if registered is not None:
            return Stored(registered, registered=True)
        mine = None if self.registered_only else self._cache.get((tenant, digest))
        if mine is not None:
            return Stored(mine, registered=False)
        tenants = [EVERY_TENANT] if self.registered_only else [EVERY_TENANT, tenant]
        async with self.db.reading() as session:
            rows = (
                await session.execute(
                    select(TABLE.c.tenant, TABLE.c.document).where(TABLE.c.hash == digest, TABLE.c.tenant.in_(tenants))
                )
            ).all()
        for row in sorted(rows, key=lambda row: row.tenant != EVERY_TENANT):  # a registered one first
            self._cache_it((row.tenant, digest), row.document)
            return Stored(row.document, registered=row.tenant == EVERY_TENANT)
        return None

    async def remember(self, digest: str, query: str, tenant: str) -> None:
        """Keep a client's document under its hash for ``tenant``, if it validates against the
        schema: in this worker's cache and in the table, for every worker. Never fails the
        request: a document the database could not take stays in this worker's cache."""
        if len(query) > MAX_DOCUMENT_BYTES:
            return  # run, not kept: the client goes on sending its text
        document = parsed(query)
        if isinstance(document, GraphQLError) or document_errors(self.schema, query, document, RULES):
            return
        self._cache_it((tenant, digest), query)
        try:
            await self._store(digest, query, tenant)
        except Exception as error:
            log.warning(
                "persisted query %s kept by this worker only: %s", digest[:12], type(error).__name__,
                exc_info=not is_unavailable(error),  # an outage is one line; a bug, its traceback
            )  # fmt: skip

    async def _store(self, digest: str, query: str, tenant: str) -> None:
        values = {"hash": digest, "tenant": tenant, "document": query, "name": None, "created_at": utcnow()}
        async with self.db.writing() as session:
            inserted = await session.execute(_insert(self.db.dialect).values(**values).on_conflict_do_nothing())
            if cast("CursorResult[Any]", inserted).rowcount == 1:
                await session.execute(_prune_statement(self.keep))
            await session.commit()

    async def _require_registered(self, digest: str) -> None:
        found = await self.find(digest, EVERY_TENANT)
        if found is None or not found.registered:
            raise _not_in_list()

    def _cache_it(self, key: tuple[str, str], document: str) -> None:
        with contextlib.suppress(ValueError):  # larger than the whole cache: not kept
            self._cache[key] = document


def _not_in_list() -> PersistedQueryError:
    return PersistedQueryError(
        NOT_IN_LIST,
        "This server runs only registered documents: register this operation with `support-graph "
        "register-documents`, then send it (or its extensions.persistedQuery hash) again",
    )


def _insert(dialect: str) -> Any:
    return (postgresql if dialect == "postgresql" else sqlite).insert(TABLE)


def _prune_statement(keep: int) -> Any:
    """DELETE the clients' documents past the newest ``keep`` (of all tenants)."""
    clients = TABLE.c.tenant != EVERY_TENANT
    beyond = select(TABLE.c.hash, TABLE.c.tenant).where(clients).order_by(TABLE.c.created_at.desc()).offset(keep)
    return delete(TABLE).where(clients, tuple_(TABLE.c.hash, TABLE.c.tenant).in_(beyond))


@dataclass(frozen=True)
class Registration:
    """A trusted document: its hash, text and operation name."""

    hash: str
    document: str
    name: str | None = None


async def register(db: Database, documents: Iterable[Registration]) -> int:
    """Register trusted documents, for every tenant, in one transaction; how many were not
    registered before."""
    rows = [
        {"hash": d.hash, "tenant": EVERY_TENANT, "document": d.document, "name": d.name, "created_at": utcnow()}
        for d in documents
    ]
    registered = select(func.count()).where(TABLE.c.tenant == EVERY_TENANT)
    async with db.writing() as session:
        before = (await session.execute(registered)).scalar_one()
        for start in range(0, len(rows), 500):
            statement = _insert(db.dialect).values(rows[start : start + 500])
            name = func.coalesce(statement.excluded.name, TABLE.c.name)
            statement = statement.on_conflict_do_update(index_elements=["hash", "tenant"], set_={"name": name})
            await session.execute(statement)
        after = (await session.execute(registered)).scalar_one()
        await session.commit()
    return int(after - before)


def persisted_handlers(transport_ws: type, legacy_ws: type, persisted: PersistedQueries) -> tuple[type, type]:
    """The WebSocket handler classes, with each operation's document resolved by its hash and,
    with ``--persisted-only``, refused unless registered. Clients register nothing over
    WebSocket (Apollo's WebSocket link sends every document in full)."""

    class TransportWS(transport_ws):
        async def handle_subscribe(self, message: Any) -> None:
            payload = message.get("payload")
            if self.connection_acknowledged and isinstance(payload, dict):
                refusal = await _resolved(persisted, payload, self.context)
                if refusal is not None:
                    await self.send_message({"id": message["id"], "type": "error", "payload": [refusal.formatted]})
                    return
            await super().handle_subscribe(message)

    class LegacyWS(legacy_ws):
        async def handle_start(self, message: Any) -> None:
            payload = message.get("payload")
            if self.connection_acknowledged and isinstance(payload, dict):
                refusal = await _resolved(persisted, payload, self.context)
                if refusal is not None:
                    await self.send_message({"id": message["id"], "type": "error", "payload": refusal.formatted})
                    return
            await super().handle_start(message)

    return TransportWS, LegacyWS


async def _resolved(persisted: PersistedQueries, payload: dict[str, Any], context: Any) -> GraphQLError | None:
    """Resolve a WebSocket operation's document in place, for the connection's tenant; the
    error refusing it, if any."""
    try:
        await persisted.resolve(payload, context.tenant)
    except PersistedQueryError as refusal:
        return refusal.graphql_error()
    except Exception as error:  # the table could not be read
        if not is_unavailable(error):
            log.error("persisted query lookup failed", exc_info=error)
            return GraphQLError("Internal error", extensions={"code": "INTERNAL"})
        outage = unavailable("-", error)
        return GraphQLError(outage.message, extensions={"code": outage.code, **outage.extensions})
    return None
