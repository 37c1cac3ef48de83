"""``where`` compiles to SQL without deprecated constructs on either database.

``not`` over ``hasAny`` negated a JSON-typed expression on PostgreSQL (the ``?|`` operator took
its left side's type), which SQLAlchemy 2.1 deprecates and will refuse ("will raise in a future
release"): the operator is a comparison, and the NULL-safe ``coalesce`` is a Boolean.
"""

from __future__ import annotations

import warnings

import pytest
from sqlalchemy import Boolean
from sqlalchemy.dialects import postgresql, sqlite

from models.base import ENTITIES
from resolvers.query import compile_where

DIALECTS = {"postgresql": postgresql.dialect(), "sqlite": sqlite.dialect()}
WHERES = [
    {"not_": {"tags": {"has_any": ["vip", "billing"]}}},
    {"not_": {"or_": [{"tags": {"has_any": ["vip"]}}, {"subject": {"contains": "x"}}]}},
    {"and_": [{"not_": {"not_": {"tags": {"has_any": ["a"]}}}}]},
]


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("where", WHERES)
def test_negated_tag_filters_compile_without_warnings(dialect: str, where: dict):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        condition = compile_where(ENTITIES["Ticket"], where, dialect)
        sql = str(condition.compile(dialect=DIALECTS[dialect]))
    assert "tags" in sql and isinstance(condition.type, Boolean)
