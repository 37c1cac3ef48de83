"""Persisted queries: GraphQL documents known by the SHA-256 of their text.

A document is either registered by an operator (``support-graph register-documents``: a trusted
document, for every tenant, and the only kind a server started with ``--persisted-only`` runs)
or kept for one tenant after one of its clients sent it with its hash (automatic persisted
queries). Client documents are per tenant, so that no tenant can learn, by asking for a hash,
whether another one ever sent a given text.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from sqlalchemy import Index, String, Text
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime, utcnow

if TYPE_CHECKING:
    from sqlalchemy import Table

#: the ``tenant`` of the documents an operator registered: they serve every tenant (no tenant
#: has an empty name)
EVERY_TENANT = ""


class PersistedQuery(SQLModel, table=True):
    """A GraphQL document and its SHA-256 (lowercase hex), registered or kept for a tenant."""

    __tablename__ = "persisted_query"
    __table_args__ = (Index("ix_persisted_query_created_at", "created_at"),)
    if TYPE_CHECKING:  # set by SQLModel
        __table__: ClassVar[Table]

    hash: str = Field(primary_key=True, sa_type=String(64))
    #: the tenant whose client sent it, or ``EVERY_TENANT`` for a registered document
    tenant: str = Field(primary_key=True, sa_type=String(64))
    document: str = Field(sa_type=Text)
    #: the operation's name, as a manifest gives it
    name: str | None = Field(default=None, sa_type=String(200))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
