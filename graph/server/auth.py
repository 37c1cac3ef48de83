"""Who is calling: the bearer key of a request, checked against the database through a short cache.

A check costs one read; answers (valid and invalid alike, so a flood of one bad key does not
reach the database each time) are remembered for ``ttl`` seconds per worker. A revoked key
therefore stops working within ``ttl`` seconds everywhere.
"""

from __future__ import annotations

import hashlib

from cachetools import TTLCache

from models.db.engine import Database
from resolvers.keys import Principal, lookup


class Unauthenticated(Exception):
    """The request's credentials are missing, malformed or not valid."""


def bearer(authorization: str | None) -> str | None:
    """The key of an ``Authorization: Bearer <key>`` value (None when there is none)."""
    if not authorization:
        return None
    scheme, _, key = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthenticated("Authorization must be `Bearer <api key>`")
    return key.strip()


class KeyRing:
    """Checks presented keys against the database, remembering answers for ``ttl`` seconds."""

    def __init__(self, db: Database, *, ttl: float = 10.0, size: int = 10_000) -> None:
        self.db, self.size = db, size
        self.ttl = ttl

    @property
    def ttl(self) -> float:
        return self._cache.ttl

    @ttl.setter
    def ttl(self, seconds: float) -> None:
        """A new lifetime starts an empty cache."""
        self._cache: TTLCache[bytes, Principal | None] = TTLCache(maxsize=self.size, ttl=seconds)

    async def check(self, key: str) -> Principal | None:
        """The principal of a valid, unrevoked key; None for anything else."""
        # the digest, not the key: bounded memory per entry, and no secrets kept in the process
        digest = hashlib.sha256(key.encode(errors="surrogateescape")).digest()
        try:
            return self._cache[digest]
        except KeyError:
            pass
        principal = await lookup(self.db, key)
        self._cache[digest] = principal
        return principal
