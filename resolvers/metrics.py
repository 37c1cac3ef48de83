"""Support metrics: ticket volume, backlog, escalations, response and resolution times, CSAT.

Everything is aggregated in SQL — tickets never come into Python — in two statements whatever
the number of tickets: one for the counts and averages, one for the percentiles of both
durations. Percentiles interpolate linearly between the two nearest ranks, as PostgreSQL's
``percentile_cont`` does, using only window functions both SQLite and PostgreSQL have.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Float, and_, case, cast, exists, extract, func, literal, select, union_all
from sqlalchemy.sql import ColumnElement, Select
from sqlmodel import col

from models.db.engine import Database
from models.entities import Ticket
from models.event import Event
from resolvers.query import compile_where

#: The API's grouping → the ticket column whose value is the bucket key.
GROUP_COLUMNS: dict[str, str | None] = {
    "NONE": None,
    "PRIORITY": "priority",
    "CHANNEL": "channel",
    "CATEGORY": "category",
    "ORGANIZATION": "organization_id",
    "ASSIGNEE": "assignee_id",
}
#: The key of the single bucket of an ungrouped call.
ALL = "ALL"
#: Statuses a ticket still needs work in.
OPEN_STATUSES = ("OPEN", "PENDING", "IN_PROGRESS", "ESCALATED", "REOPENED")
ESCALATED_EVENT = "Ticket.Escalated"
#: Percentiles as exact fractions, so the rank arithmetic stays in integers on both databases.
PERCENTILES = {"p50": (1, 2), "p90": (9, 10)}
#: The durations measured, as (end column, start column) of a ticket.
DURATIONS = {
    "first_response": ("first_response_at", "created_at"),
    "resolution": ("resolved_at", "created_at"),
}


@dataclass
class DurationStats:
    """Seconds over the tickets that have the duration; all None when none has it."""

    avg: float | None = None
    p50: float | None = None
    p90: float | None = None


@dataclass
class Csat:
    """Satisfaction ratings: their mean, how many tickets have one, the share rated 4 or 5."""

    average: float | None
    responses: int
    satisfied_rate: float | None


@dataclass
class SlaAttainment:
    """Service-level targets met and breached (a target met at or before its due time)."""

    first_response_met: int = 0
    first_response_breached: int = 0
    resolution_met: int = 0
    resolution_breached: int = 0

    @property
    def attainment(self) -> float | None:
        met = self.first_response_met + self.resolution_met
        missed = self.first_response_breached + self.resolution_breached
        return met / (met + missed) if met + missed else None


@dataclass
class Bucket:
    """The metrics of one group of tickets."""

    key: str | None
    ticket_count: int
    open_count: int
    resolved_count: int
    escalated_count: int
    escalation_rate: float
    first_response_seconds: DurationStats
    resolution_seconds: DurationStats
    csat: Csat
    sla: SlaAttainment


async def support_metrics(
    db: Database,
    *,
    tenant: str,
    where: dict[str, Any] | None = None,
    from_: datetime | None = None,
    to: datetime | None = None,
    group_by: str = "NONE",
) -> list[Bucket]:
    """Metrics of the live tickets of ``tenant`` matching ``where``, created in ``[from_, to)``.

    ``group_by`` NONE gives exactly one bucket keyed ``ALL`` (zeros when nothing matches); any
    other grouping gives one bucket per value present, sorted by key, the bucket of tickets
    without a value (key None) last.
    """
    column = GROUP_COLUMNS[group_by]
    key = None if column is None else Ticket.__table__.columns[column]
    condition = _condition(db, tenant, where, from_, to)
    async with db.reading() as session:
        totals = (await session.execute(_totals(db, tenant, key, condition))).all()
        percentiles = (await session.execute(_percentiles(db, key, condition))).all()

    def key_of(row: Any) -> str | None:
        return ALL if key is None else row.key

    buckets = {key_of(row): _bucket(key_of(row), row) for row in totals}
    for row in percentiles:
        bucket = buckets[key_of(row)]
        stats = getattr(bucket, f"{row.measure}_seconds")
        for name in PERCENTILES:
            setattr(stats, name, _float(getattr(row, name)))
    # Sorted here rather than in SQL: PostgreSQL's collation would order keys unlike SQLite's.
    return sorted(buckets.values(), key=lambda b: (b.key is None, b.key or ""))


# --- the statements --------------------------------------------------------------------------


def _condition(
    db: Database, tenant: str, where: dict[str, Any] | None, from_: datetime | None, to: datetime | None
) -> ColumnElement[bool]:
    parts = [col(Ticket.tenant) == tenant, col(Ticket.deleted_at).is_(None), compile_where(Ticket, where, db.dialect)]
    if from_ is not None:
        parts.append(col(Ticket.created_at) >= from_)
    if to is not None:
        parts.append(col(Ticket.created_at) < to)
    return and_(*parts)


def seconds_between(db: Database, end: ColumnElement[Any], start: ColumnElement[Any]) -> ColumnElement[Any]:
    """``end - start`` in seconds (NULL if either is NULL), in the database's own dialect."""
    if db.dialect == "postgresql":
        return cast(extract("epoch", end - start), Float)
    # SQLite's date functions keep milliseconds: round away the noise julianday's doubles add.
    return func.round((func.julianday(end) - func.julianday(start)) * 86400, 3)


def _duration(db: Database, measure: str) -> ColumnElement[Any]:
    end, start = DURATIONS[measure]
    columns = Ticket.__table__.columns
    return seconds_between(db, columns[end], columns[start])


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _totals(
    db: Database, tenant: str, key: ColumnElement[Any] | None, condition: ColumnElement[bool]
) -> Select[*tuple[Any, ...]]:
    """One row per group (exactly one without a key): counts, averages, CSAT."""
    escalated = exists().where(
        col(Event.tenant) == tenant, col(Event.target) == col(Ticket.id), col(Event.type) == ESCALATED_EVENT
    )
    keys = [] if key is None else [key.label("key")]
    return (
        select(
            *keys,
            func.count().label("ticket_count"),
            _count_if(col(Ticket.status).in_(OPEN_STATUSES)).label("open_count"),
            _count_if(col(Ticket.resolved_at).is_not(None)).label("resolved_count"),
            _count_if(escalated).label("escalated_count"),
            func.avg(_duration(db, "first_response")).label("first_response_avg"),
            func.avg(_duration(db, "resolution")).label("resolution_avg"),
            func.avg(cast(col(Ticket.satisfaction), Float)).label("csat_average"),
            func.count(col(Ticket.satisfaction)).label("csat_responses"),
            _count_if(col(Ticket.satisfaction) >= 4).label("csat_satisfied"),
            *_sla_counts(),
        )
        .where(condition)
        .group_by(*([] if key is None else [key]))
    )


def _percentiles(
    db: Database, key: ColumnElement[Any] | None, condition: ColumnElement[bool]
) -> Select[*tuple[Any, ...]]:
    """One row per (measure, group) that has values: p50 and p90 of the measure's seconds.

    Ranks each group's values (``rn`` 1…n); percentile p sits at position 1 + p·(n−1) and
    interpolates between the ranks around it: v[lo]·(1−frac) + v[lo+1]·frac.
    """
    measures = []
    for measure, (end, _) in DURATIONS.items():
        measures.append(
            select(
                literal(measure).label("measure"),
                *([] if key is None else [key.label("key")]),
                _duration(db, measure).label("value"),
            ).where(condition, Ticket.__table__.columns[end].is_not(None))
        )
    values = union_all(*measures).subquery("measured")
    partition = [values.c.measure, *([] if key is None else [values.c.key])]
    ranked = select(
        *values.c,
        func.row_number().over(partition_by=partition, order_by=values.c.value).label("rn"),
        func.count().over(partition_by=partition).label("n"),
    ).subquery("ranked")

    interpolated = []
    for name, (numerator, denominator) in PERCENTILES.items():
        steps = numerator * (ranked.c.n - 1)  # p·(n−1) = steps / denominator
        lo = 1 + steps // denominator  # integer division on both databases
        frac = cast(steps % denominator, Float) / literal(float(denominator), Float)
        interpolated.append(
            func.sum(
                case(
                    (ranked.c.rn == lo, ranked.c.value * (1 - frac)),
                    (ranked.c.rn == lo + 1, ranked.c.value * frac),
                    else_=0,
                )
            ).label(name)
        )
    group = [ranked.c.measure, *([] if key is None else [ranked.c.key])]
    return select(*group, *interpolated).group_by(*group)


# --- rows to buckets ---------------------------------------------------------------------------


def _sla_counts() -> list[ColumnElement[Any]]:
    """Per target: met (its event at or before the due time) and breached (stamped)."""
    table = Ticket.__table__
    counts: list[ColumnElement[Any]] = []
    for name, event in (("first_response", "first_response_at"), ("resolution", "resolved_at")):
        due, happened = table.c[f"{name}_due_at"], table.c[event]
        counts.append(_count_if(and_(due.is_not(None), happened.is_not(None), happened <= due)).label(f"{name}_met"))
        counts.append(_count_if(table.c[f"{name}_breached_at"].is_not(None)).label(f"{name}_breached"))
    return counts


def _float(value: Any) -> float | None:
    return None if value is None else float(value)  # PostgreSQL may answer with Decimals


def _bucket(key: str | None, row: Any) -> Bucket:
    tickets, responses = int(row.ticket_count), int(row.csat_responses)
    escalated = int(row.escalated_count)
    return Bucket(
        key=key,
        ticket_count=tickets,
        open_count=int(row.open_count),
        resolved_count=int(row.resolved_count),
        escalated_count=escalated,
        escalation_rate=escalated / tickets if tickets else 0.0,
        first_response_seconds=DurationStats(avg=_float(row.first_response_avg)),
        resolution_seconds=DurationStats(avg=_float(row.resolution_avg)),
        csat=Csat(
            average=_float(row.csat_average),
            responses=responses,
            satisfied_rate=int(row.csat_satisfied) / responses if responses else None,
        ),
        sla=SlaAttainment(
            int(row.first_response_met), int(row.first_response_breached),
            int(row.resolution_met), int(row.resolution_breached),
        ),
    )  # fmt: skip
