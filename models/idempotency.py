"""Idempotency keys: one row per (tenant, key), holding the claim of the request running under
the key and then the response it gave, until ``expires_at``.

The primary key decides between concurrent requests, whichever worker serves them: the one
whose row is inserted runs; every other one reads the row. A row past ``expires_at`` is dead —
a kept response past its time, or the claim of a worker that died mid-request — and may be
taken over or pruned (graph/server/idempotency.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from sqlalchemy import String, Text
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime, utcnow

if TYPE_CHECKING:
    from sqlalchemy import Table

#: a request holds the key and is running
IN_FLIGHT = "IN_FLIGHT"
#: the request has answered; ``status_code``, ``media_type`` and ``body`` are its response
DONE = "DONE"


class IdempotencyKey(SQLModel, table=True):
    """An ``Idempotency-Key`` of one tenant: who holds it, and what it answered."""

    __tablename__ = "idempotency_key"
    if TYPE_CHECKING:  # set by SQLModel
        __table__: ClassVar[Table]

    tenant: str = Field(primary_key=True, sa_type=String(64))
    key: str = Field(primary_key=True, sa_type=String(255))
    #: SHA-256 (hex) of the request body: the same key with another body is refused
    fingerprint: str = Field(sa_type=String(64))
    #: a random token of the claim holding the row: only its holder may settle or release it
    claim: str = Field(sa_type=String(32))
    state: str = Field(sa_type=String(16))
    status_code: int | None = None
    media_type: str | None = Field(default=None, sa_type=String(100))
    body: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    #: IN_FLIGHT: the end of the claim's lease; DONE: the end of the response's keeping
    expires_at: datetime = Field(index=True, sa_type=UTCDateTime)
