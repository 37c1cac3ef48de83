"""Generic input checks, driven by what the tables declare (length, enum, range, format).

Every check raises ``BadInput`` before anything is written.
"""

from __future__ import annotations

import re
from enum import Enum
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import String

from models.base import ENTITIES, Entity
from models.business_time import BusinessHours, BusinessHoursError
from models.history import api_name, jsonable
from models.ids import type_of
from resolvers.errors import BadInput

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TAGS = list[str]
_DOCUMENTS = (dict, dict | None, _TAGS)  # annotations of JSON document fields
META_FIELDS = frozenset({"id", "tenant", "version", "created_at", "updated_at", "created_by", "deleted_at"})


@cache
def references(kind: type[Entity]) -> dict[str, type[Entity]]:
    """The relation columns of a table and the entity each points to: ``{"requester_id": Contact}``."""
    found = {}
    by_table = {cls.__tablename__: cls for cls in ENTITIES.values()}
    for column in kind.__table__.columns:
        for fk in column.foreign_keys:
            found[column.name] = by_table[fk.column.table.name]
    return found


@cache
def required(kind: type[Entity]) -> list[str]:
    """Fields a create must give: not nullable and without a default."""
    return [
        c.name
        for c in kind.__table__.columns
        if not c.nullable
        and c.default is None
        and c.name not in META_FIELDS
        and kind.model_fields[c.name].default_factory is None
    ]


class _Field(NamedTuple):
    """What ``clean`` needs of one column, read once per table."""

    api: str  # the API field name
    nullable: bool
    length: int | None  # a string column's length limit (0: none); None: not a string column
    info: dict[str, Any]
    target: type[Entity] | None  # the entity a relation column points to
    expected: Any  # the field's annotation
    document: bool  # a JSON document field (``expected`` in ``_DOCUMENTS``), whatever the value given


@cache
def _fields(kind: type[Entity]) -> dict[str, _Field]:
    """The columns a caller may write (all but ``META_FIELDS``), by name."""
    found = {}
    for column in kind.__table__.columns:
        if column.name in META_FIELDS:
            continue
        type_ = column.type
        expected = kind.model_fields[column.name].annotation
        found[column.name] = _Field(
            api=api_name(kind, column.name),
            nullable=bool(column.nullable),
            length=(type_.length or 0) if isinstance(type_, String) else None,
            info=column.info,
            target=references(kind).get(column.name),
            expected=expected,
            document=expected in _DOCUMENTS,
        )
    return found


def clean(kind: type[Entity], values: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    """Check ``values`` for ``kind`` and return them normalised (enums as their names)."""
    fields = _fields(kind)
    out: dict[str, Any] = {}
    for name, value in values.items():
        spec = fields.get(name)
        if spec is None:
            if name in META_FIELDS or name not in kind.__table__.columns:
                raise BadInput(f"{kind.type_name} has no field {name!r}", field=name)
            raise KeyError(name)  # a column's position, not its name: no API name, as ever
        field = spec.api
        if isinstance(value, Enum):
            value = value.value
        if value is None:
            if not spec.nullable:
                raise BadInput(f"{field} cannot be null", field=field)
            out[name] = None
            continue
        if spec.length is not None:
            if not isinstance(value, str):
                raise BadInput(f"{field} must be a string", field=field)
            if "\x00" in value:
                raise BadInput(f"{field} must not contain NUL characters", field=field)
            if not spec.nullable and not value.strip():
                raise BadInput(f"{field} cannot be empty", field=field)
            if spec.length and len(value) > spec.length:
                raise BadInput(f"{field} is longer than {spec.length} characters", field=field)
        info = spec.info
        if info.get("lowercase"):
            value = value.strip().lower()  # emails, domains and slugs are unique regardless of case
        if "enum" in info and value not in info["enum"].__members__:
            raise BadInput(f"{field} must be one of {', '.join(info['enum'].__members__)}", field=field)
        if "range" in info:
            low, high = info["range"]
            if (low is not None and value < low) or (high is not None and value > high):
                span = f"between {low} and {high}" if high is not None else f"at least {low}"
                raise BadInput(f"{field} must be {span}", field=field)
        if info.get("format") == "email" and not _EMAIL.match(value):
            raise BadInput(f"{field} is not a valid email address", field=field)
        target = spec.target
        if target is not None and type_of(value) != target.type_name:
            article = "an" if target.type_name[0] in "AEIOU" else "a"
            raise BadInput(f"{field} must be the id of {article} {target.type_name}", field=field)
        if info.get("system"):  # written by the server's own rules, never by a caller
            out[name] = value
            continue
        if "business_hours" in info:
            value = _business_hours(field, value)
        elif spec.document or isinstance(value, (list, dict)):
            _check_document(field, value, spec.expected)
        if "enum_list" in info:
            value = _enum_list(field, value, info["enum_list"])
        out[name] = value
    if creating:
        for name in required(kind):
            if out.get(name) is None:
                raise BadInput(f"{api_name(kind, name)} is required", field=api_name(kind, name))
    return out


def _check_document(field: str, value: Any, expected: Any) -> None:
    """Tags and labels are lists of short non-blank strings; dimensions are a JSON object."""
    if expected == _TAGS:
        if not isinstance(value, list) or any(
            not isinstance(v, str) or not v.strip() or len(v) > 1000 or "\x00" in v for v in value
        ):
            raise BadInput(f"{field} must be non-empty strings of at most 1000 characters", field=field)
    elif not isinstance(value, dict):
        raise BadInput(f"{field} must be a JSON object", field=field)


def _enum_list(field: str, value: list[str], enum: type[Enum]) -> list[str]:
    """A list of an enum's names, each once, in the enum's order."""
    unknown = [v for v in value if v not in enum.__members__]
    if unknown:
        raise BadInput(f"{field} must hold only {', '.join(enum.__members__)} (not {unknown[0]!r})", field=field)
    return [name for name in enum.__members__ if name in value]


def _business_hours(field: str, value: Any) -> dict[str, Any]:
    """Business hours as the API shapes them, checked and normalised (``models.business_time``)."""
    try:
        return BusinessHours.parse(jsonable(value)).to_document()
    except BusinessHoursError as error:
        raise BadInput(f"{field}: {error}", field=field) from None
