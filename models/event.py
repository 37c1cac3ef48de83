"""The immutable event log and the per-tenant sequence that orders it by commit."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import BigInteger, Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.types import JSONDocument, UTCDateTime, utcnow

if TYPE_CHECKING:
    from sqlalchemy import Table


class Event(SQLModel, table=True):
    """One lifecycle event: ``Ticket.Escalated`` on a target, by an actor, at a version.

    ``seq`` is gapless per tenant and assigned in commit order (see ``TenantSequence``).
    """

    type_name: ClassVar[str] = "Event"
    prefix: ClassVar[str] = "evt"
    if TYPE_CHECKING:  # set by SQLModel
        __table__: ClassVar[Table]
    __table_args__ = (
        UniqueConstraint("tenant", "seq", name="uq_event_tenant_seq"),
        Index("ix_event_tenant_target_seq", "tenant", "target", "seq", "id"),  # an entity's events, listed
    )

    id: str = Field(primary_key=True, sa_type=String(40))
    tenant: str = Field(sa_type=String(64))
    seq: int | None = Field(default=None, sa_type=BigInteger, nullable=False)
    type: str = Field(sa_type=String(64), index=True)
    entity_type: str = Field(sa_type=String(32))
    target: str = Field(sa_type=String(40))
    actor: str = Field(sa_type=String(200))
    timestamp: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    version: int
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSONDocument)
    cause_id: str | None = Field(default=None, sa_type=String(40))


class TenantSequence(SQLModel, table=True):
    """The last event sequence number of each tenant.

    Appending an event increments this row inside the verb's transaction; the row lock it takes
    serialises appends per tenant until commit, so sequence order is commit order.
    """

    __tablename__ = "tenant_sequence"
    if TYPE_CHECKING:  # set by SQLModel
        __table__: ClassVar[Table]

    tenant: str = Field(primary_key=True, sa_type=String(64))
    last_seq: int = Field(default=0, sa_type=BigInteger)
