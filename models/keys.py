"""API keys: each names a tenant and an actor. Only a hash of the secret is stored."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime, utcnow


class ApiKey(SQLModel, table=True):
    """A key ``sgk_<id>_<secret>``: the id finds the row, the secret's SHA-256 proves it."""

    __tablename__ = "api_key"

    id: str = Field(primary_key=True, sa_type=String(40))
    tenant: str = Field(index=True, sa_type=String(64))
    actor: str = Field(sa_type=String(200))
    secret_hash: str = Field(sa_type=String(64))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
