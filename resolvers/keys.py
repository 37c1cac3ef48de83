"""Issuing, revoking and checking API keys.

A key reads ``sgk_<id>_<secret>``; the database keeps the id, tenant, actor and the SHA-256 of
the secret (a random 256-bit secret needs no slow hash). ``lookup`` reads the database each
time; the server caches its answers briefly (``graph.server.auth``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlmodel import col

from models.db.engine import Database
from models.keys import ApiKey
from models.types import utcnow

_KEY = re.compile(r"^sgk_([A-Za-z0-9]{8,32})_([A-Za-z0-9_-]{20,100})$")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,63}$")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the tenant whose data they see and the actor their events record."""

    tenant: str
    actor: str
    key_id: str | None = None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def create_key(db: Database, *, tenant: str, actor: str | None = None) -> tuple[ApiKey, str]:
    """A new key for ``tenant`` (actor defaults to ``api:<id>``); returns the row and the key."""
    for name, value in (("tenant", tenant), ("actor", actor)):
        if value is not None and not NAME.match(value):
            raise ValueError(f"{name} must be 1–64 letters, digits or _.:@- (got {value!r})")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    row = ApiKey(id=key_id, tenant=tenant, actor=actor or f"api:{key_id}", secret_hash=_hash(secret))
    async with db.sessions() as session:
        session.add(row)
        await session.commit()
    return row, f"sgk_{key_id}_{secret}"


async def revoke_key(db: Database, key_or_id: str) -> bool:
    """Revoke a key by its id or the whole key; False if there was no such live key."""
    match = _KEY.match(key_or_id)
    key_id = match.group(1) if match else key_or_id
    async with db.sessions() as session:
        # an UPDATE without RETURNING answers with a CursorResult; AsyncSession.execute types a Result
        result = cast(
            "CursorResult[Any]",
            await session.execute(
                update(ApiKey)
                .where(col(ApiKey.id) == key_id, col(ApiKey.revoked_at).is_(None))
                .values(revoked_at=utcnow())
            ),
        )
        await session.commit()
    return result.rowcount > 0


async def lookup(db: Database, key: str) -> Principal | None:
    """The principal of a valid, unrevoked key; None for anything else (one read, no cache)."""
    match = _KEY.match(key)
    if match is None:
        return None
    key_id, secret = match.groups()
    async with db.reading() as session:
        row = (await session.execute(select(ApiKey).where(col(ApiKey.id) == key_id))).scalar()
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.secret_hash, _hash(secret)):
        return None
    return Principal(tenant=row.tenant, actor=row.actor, key_id=row.id)
