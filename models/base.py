"""The meta-fields every entity carries, and the registry of entity tables."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from sqlalchemy import Index, String

if TYPE_CHECKING:
    from sqlalchemy import Table
from sqlmodel import Field, SQLModel

from models.ids import PREFIXES
from models.types import UTCDateTime, utcnow

DEFAULT_TENANT = "default"
ANONYMOUS_ACTOR = "anonymous"


# The column helpers return what SQLModel's ``Field`` returns: a field description that the
# model class turns into a column (typed ``Any`` by SQLModel, so it fits any annotation).


def text(max_length: int, **kwargs: Any) -> Any:
    """A text column of at most ``max_length`` characters (the API's text limits)."""
    return Field(sa_type=String(max_length), **kwargs)


def enum_column(enum: type[Enum], default: str | None = None, **kwargs: Any) -> Any:
    """An enum stored by its name, so PostgreSQL needs no enum types to migrate."""
    return Field(default=default, sa_type=String(32), sa_column_kwargs={"info": {"enum": enum}}, **kwargs)


def bounded(low: float | None, high: float | None = None, default: float | None = None) -> Any:
    """A number the domain bounds (satisfaction 1–5, a deal's value ≥ 0)."""
    return Field(default=default, sa_column_kwargs={"info": {"range": (low, high)}})


def timestamp(**kwargs: Any) -> Any:
    return Field(default=None, sa_type=UTCDateTime, **kwargs)


def reference(table: str) -> Any:
    """A relation to another entity, by id (always within the same tenant)."""
    return Field(default=None, foreign_key=f"{table}.id", index=True, sa_type=String(40))


class TableClass(Protocol):
    """Any table class: an ``Entity``, or the event log's ``Event``."""

    __table__: ClassVar[Table]


class Entity(SQLModel):
    """Meta-fields: id ``{type}_{sqid}``, tenant, version, timestamps, author, soft delete."""

    #: GraphQL type name ("Ticket") and id prefix ("ticket"); set by each table.
    type_name: ClassVar[str]
    prefix: ClassVar[str]
    if TYPE_CHECKING:  # set by SQLModel on every table class
        __table__: ClassVar[Table]

    id: str = Field(primary_key=True, sa_type=String(40))
    tenant: str = Field(index=True, sa_type=String(64))
    version: int = Field(default=1)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_by: str = Field(sa_type=String(200))
    deleted_at: datetime | None = timestamp()


#: Every entity table by GraphQL type name, filled in by ``models.entities``.
ENTITIES: dict[str, type[Entity]] = {}


def register(cls: type[Entity]) -> type[Entity]:
    """Add an entity table to ``ENTITIES``, with the index its default list order walks."""
    if PREFIXES.get(cls.prefix) != cls.type_name:  # else its ids would name no type (``node(id:)``)
        raise TypeError(f"models.ids.PREFIXES must map {cls.prefix!r} to {cls.type_name!r}")
    table = cls.__table__
    Index(f"ix_{table.name}_tenant_created", table.c.tenant, table.c.created_at, table.c.id)
    ENTITIES[cls.type_name] = cls
    return cls
