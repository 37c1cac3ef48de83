"""Idempotency keys on ``POST /graphql`` (API.md, "Idempotency keys").

A POST carrying a mutation and ``Idempotency-Key: <1–255 printable ASCII characters>`` first
claims the key for its tenant: one short write unit inserts an ``IN_FLIGHT`` row, and the
table's primary key (tenant, key) lets exactly one of any number of concurrent requests, on any
worker, insert it. The holder runs the request, then keeps its status, media type and body
(``DONE``, for ``ttl`` seconds) — or, for an answer that executed nothing (a refusal, a
validation error) or failed (``INTERNAL``, ``UNAVAILABLE``), deletes the row so that a retry
runs afresh. Everyone else reads the row: the same body gets the kept response with
``Idempotent-Replayed: true`` and writes nothing; another body is 422
``IDEMPOTENCY_KEY_REUSED``; a claim still running is 409 ``IDEMPOTENCY_KEY_IN_USE``.

A row past ``expires_at`` is dead — a kept response past its time, or the claim of a worker that
died mid-request (its lease, ``lease`` seconds) — and the next claim of its key takes it over;
each new claim also prunes up to ``PRUNE_BATCH`` dead rows of any tenant, so the table holds
about one day's keys. Keys on queries are checked for form but keep nothing: a query is safe to
repeat. The fingerprint is the SHA-256 of the body's exact bytes.

Storing the answer never changes it: should the database fail after the request ran, the
client still gets what the request did (the row then stays claimed until its lease ends).
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

import orjson
from graphql import GraphQLError, OperationType
from sqlalchemy import CursorResult, delete, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from starlette.requests import Request
from starlette.responses import Response

import models.idempotency  # noqa: F401  (registers the table with the metadata)
from graph.server.http import Refusal
from graph.validation import operation_of, parsed
from models.db.engine import Database
from models.idempotency import DONE, IN_FLIGHT, IdempotencyKey
from models.types import utcnow
from resolvers.errors import is_unavailable

log = logging.getLogger("support_graph")

HEADER = "idempotency-key"
REPLAYED = "Idempotent-Replayed"
KEY = re.compile(r"[\x20-\x7e]{1,255}")
#: answers that keep nothing: refused before executing, or failed
NOT_KEPT = frozenset({"RATE_LIMITED", "UNAUTHENTICATED", "QUERY_TOO_COMPLEX", "INTERNAL", "UNAVAILABLE"})
#: dead rows (of any tenant) each new claim deletes at most
PRUNE_BATCH = 100
#: how often a claim reads a row that vanished under it (taken over, pruned) before giving up
CLAIM_TRIES = 3

TABLE = IdempotencyKey.__table__
Execute = Callable[[], Awaitable[Response]]


@dataclass(frozen=True)
class Claim:
    """A key this request holds; ``token`` proves it when the request settles or releases it."""

    tenant: str
    key: str
    token: str


class Idempotency:
    """The keys of one app: claim, replay, keep and release."""

    def __init__(self, db: Database, *, ttl_seconds: float, lease_seconds: float) -> None:
        self.db = db
        self.ttl = timedelta(seconds=ttl_seconds)
        self.lease = timedelta(seconds=lease_seconds)

    async def answer(self, request: Request, execute: Execute) -> Response:
        """The response of an admitted request: ``execute()`` under its key, a replay, or a
        ``Refusal`` (an invalid key 400, another body 422, a claim still running 409)."""
        key = requested_key(request)
        if key is None or not is_mutation(getattr(request.state, "payload", None)):
            return await execute()
        fingerprint = hashlib.sha256(await request.body()).hexdigest()
        claim = await self.claim(request.state.principal.tenant, key, fingerprint)
        if isinstance(claim, Response):
            return claim
        try:
            response = await execute()
        except Exception:  # answered by app.py as a refusal or a failure: nothing is kept
            # (a cancelled request is not released: it may have written, its claim waits out its lease)
            await self._quietly(self.release(claim), claim)
            raise
        if keeps(response):
            await self._quietly(self.settle(claim, response), claim)
        else:
            await self._quietly(self.release(claim), claim)
        return response

    async def claim(self, tenant: str, key: str, fingerprint: str) -> Claim | Response:
        """Hold ``key`` for a request, or the kept response to replay; else ``Refusal``."""
        for _ in range(CLAIM_TRIES):
            now, token = utcnow(), secrets.token_hex(16)
            async with self.db.writing() as session:
                # a dead row of this key is taken over: deleted, and the key claimed afresh
                mine = (TABLE.c.tenant == tenant) & (TABLE.c.key == key)
                await session.execute(delete(TABLE).where(mine, TABLE.c.expires_at <= now))
                values = {
                    "tenant": tenant, "key": key, "fingerprint": fingerprint, "claim": token,
                    "state": IN_FLIGHT, "created_at": now, "expires_at": now + self.lease,
                }  # fmt: skip
                inserted = cast("CursorResult[Any]", await session.execute(_claim_statement(self.db.dialect), values))
                if inserted.rowcount == 1:
                    await session.execute(_prune_statement(now))
                    await session.commit()
                    return Claim(tenant, key, token)
                found = (await session.execute(select(TABLE).where(mine))).one_or_none()
                await session.commit()
            if found is None:  # taken over or pruned between the two statements: try again
                continue
            if found.fingerprint != fingerprint:
                raise Refusal(
                    422, "IDEMPOTENCY_KEY_REUSED",
                    "This Idempotency-Key was sent with another request body: use a new key for a new request",
                )  # fmt: skip
            if found.state == DONE:
                headers = {"content-type": found.media_type or "application/json", REPLAYED: "true"}
                return Response((found.body or "").encode(), status_code=found.status_code or 200, headers=headers)
            break
        raise Refusal(
            409, "IDEMPOTENCY_KEY_IN_USE",
            "A request with this Idempotency-Key is still running: retry it in a moment",
            {"Retry-After": "1"},
        )  # fmt: skip

    async def settle(self, claim: Claim, response: Response) -> None:
        """Keep ``response`` as the key's answer for ``ttl``."""
        values = {
            "state": DONE, "status_code": response.status_code, "body": bytes(response.body).decode(),
            "media_type": response.headers.get("content-type"), "expires_at": utcnow() + self.ttl,
        }  # fmt: skip
        async with self.db.writing() as session:
            await session.execute(update(TABLE).where(*_held(claim)).values(**values))
            await session.commit()

    async def release(self, claim: Claim) -> None:
        """Give the key up: the next request with it runs afresh."""
        async with self.db.writing() as session:
            await session.execute(delete(TABLE).where(*_held(claim)))
            await session.commit()

    async def _quietly(self, step: Awaitable[None], claim: Claim) -> None:
        """Settle or release after the request ran; a failure leaves the claim to its lease
        (retries meanwhile get 409) and never changes what the client is told."""
        try:
            await step
        except Exception as error:
            log.warning(
                "idempotency key of tenant %s not settled (%s): it stays claimed for at most %s s",
                claim.tenant, type(error).__name__, int(self.lease.total_seconds()),
                exc_info=not is_unavailable(error),  # an outage is one line; a bug, its traceback
            )  # fmt: skip


def requested_key(request: Request) -> str | None:
    """The ``Idempotency-Key`` of a POST, None without one; ``Refusal`` for an invalid one."""
    if request.method != "POST":
        return None
    values = request.headers.getlist(HEADER)
    if not values:
        return None
    if len(values) > 1 or not KEY.fullmatch(values[0]):
        raise Refusal(400, "BAD_USER_INPUT", "Idempotency-Key must be one value of 1 to 255 printable ASCII characters")
    return values[0]


def is_mutation(payload: Any) -> bool:
    """Whether a request body (one operation or a batch) runs a mutation."""
    for operation in payload if isinstance(payload, list) else [payload]:
        query = operation.get("query") if isinstance(operation, dict) else None
        document = parsed(query) if isinstance(query, str) else None
        if document is None or isinstance(document, GraphQLError):
            continue
        chosen = operation_of(document, operation.get("operationName"))
        if chosen is not None and chosen.operation == OperationType.MUTATION:
            return True
    return False


def keeps(response: Response) -> bool:
    """Whether an answer is kept: it executed (data, or an error at a path — a business
    error such as ``NOT_FOUND``) and no error is a refusal or a failure (``NOT_KEPT``)."""
    body = getattr(response, "body", None)
    if not isinstance(body, bytes | memoryview) or response.status_code >= 500:
        return False
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    answers = [a for a in (answer if isinstance(answer, list) else [answer]) if isinstance(a, dict)]
    errors = [e for a in answers for e in a.get("errors") or () if isinstance(e, dict)]
    if any((e.get("extensions") or {}).get("code") in NOT_KEPT for e in errors):
        return False
    return any(a.get("data") is not None for a in answers) or any("path" in e for e in errors)


def _held(claim: Claim) -> tuple[Any, ...]:
    return TABLE.c.tenant == claim.tenant, TABLE.c.key == claim.key, TABLE.c.claim == claim.token


def _claim_statement(dialect: str) -> Any:
    """INSERT the claim unless the key has a row: the primary key decides between workers."""
    return (postgresql if dialect == "postgresql" else sqlite).insert(TABLE).on_conflict_do_nothing()


def _prune_statement(now: Any) -> Any:
    """DELETE up to ``PRUNE_BATCH`` dead rows; rows another transaction holds are skipped
    (``SKIP LOCKED`` on PostgreSQL; SQLite has one writer)."""
    dead = (
        select(TABLE.c.tenant, TABLE.c.key)
        .where(TABLE.c.expires_at <= now)
        .order_by(TABLE.c.expires_at)
        .limit(PRUNE_BATCH)
        .with_for_update(skip_locked=True)
    )
    return delete(TABLE).where(tuple_(TABLE.c.tenant, TABLE.c.key).in_(dead))
