"""Business time's fast paths agree with the walk they replaced (issue 19).

``models.business_time`` adds a plain day's intervals to its midnight (a cached per-zone-and-date
look-up) instead of converting each interval's ends, and ``models.sla_clock.hours_of`` reads each
distinct hours document once. The reference below is the walk as it was before (its ``_walk``
and ``_opening`` verbatim, calling the helpers that did not change); the properties compare due times and counts over random hours in zones with odd changes (at
midnight, half an hour, negative DST, a skipped calendar day, a two-hour DST), start instants near
those changes and sub-second ones, durations up to a month of business seconds, and holidays.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.business_time import (  # the reference's helpers: unchanged by issue 19
    _EPOCH,
    _MIDNIGHT,
    _ONE_DAY,
    _PROBES,
    _SEVEN_DAYS,
    _UNBOUNDED,
    _WEEK,
    WEEKDAYS,
    BusinessHours,
    BusinessHoursError,
    Interval,
    _first_reading,
    _free_week,
    _offset,
    _whole_seconds,
    add_business_seconds,
    business_seconds_between,
)
from models.service_levels import SlaPolicy
from models.sla_clock import due_times, hours_of

DAY = 86_400
MONTH = 30 * DAY
ZONES = [
    "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Havana", "Asia/Beirut",
    "America/Santiago", "Pacific/Apia", "Europe/Dublin", "Antarctica/Troll", "Africa/Casablanca",
    "America/St_Johns", "Asia/Kathmandu", "Europe/Moscow", "Pacific/Kiritimati", "Asia/Gaza", "UTC",
]  # fmt: skip


def _changes(zone: str, first: int = 1990, last: int = 2035) -> list[datetime]:
    """The instants at which the zone's UTC offset changed in those years (to the second)."""
    tz = ZoneInfo(zone)

    def offset(instant: int) -> Any:
        return datetime.fromtimestamp(instant, tz).utcoffset()

    found, step = [], 6 * 3600
    instant, end = int(datetime(first, 1, 1, tzinfo=UTC).timestamp()), int(datetime(last, 1, 1, tzinfo=UTC).timestamp())
    while instant < end:
        if offset(instant) != offset(instant + step):
            low, high = instant, instant + step
            while high - low > 1:
                middle = (low + high) // 2
                low, high = (middle, high) if offset(middle) == offset(low) else (low, middle)
            found.append(datetime.fromtimestamp(high, UTC))
        instant += step
    return found


CHANGES = {zone: _changes(zone) for zone in ZONES}
SETTINGS = settings(derandomize=True, max_examples=400, deadline=None)
OPENS = st.one_of(st.integers(0, 1439), st.sampled_from([0, 30, 60, 90, 120, 150, 180, 1380]))


@st.composite
def calendars(draw: st.DrawFn) -> tuple[BusinessHours, datetime]:
    """Valid hours in one of ``ZONES`` and a start instant, often within days of an offset change."""
    zone = draw(st.sampled_from(ZONES))
    spans, closed = [], [0] * 7
    rows = draw(st.lists(st.tuples(OPENS, st.integers(0, 6), st.integers(1, 1440)), min_size=1, max_size=10))
    for opens, weekday, length in sorted(rows):
        if opens >= closed[weekday]:
            closed[weekday] = closes = min(opens + length, 1440)
            spans.append(Interval(weekday, time(opens // 60, opens % 60), time(closes // 60 % 24, closes % 60)))
    if CHANGES[zone] and draw(st.booleans()):
        near = draw(st.sampled_from(CHANGES[zone]))
        start = near + timedelta(
            seconds=draw(st.integers(-3 * DAY, 3 * DAY)), microseconds=draw(st.integers(0, 999_999))
        )
    else:
        start = draw(st.datetimes(datetime(1990, 1, 1), datetime(2034, 12, 1), timezones=st.just(UTC)))
    local = start.astimezone(ZoneInfo(zone)).date()
    closure = range(draw(st.sampled_from([0, 0, 0, 1, 3, 40])))
    days_off = {local + timedelta(days=n) for n in [*draw(st.lists(st.integers(-2, 60), max_size=12)), *closure]}
    return BusinessHours(zone, tuple(spans), frozenset(days_off)), start


amounts = st.one_of(st.integers(0, 3 * DAY), st.integers(0, MONTH))


@SETTINGS
@given(calendars(), amounts)
def test_adding_agrees_with_the_old_walk(calendar: tuple[BusinessHours, datetime], n: int) -> None:
    hours, start = calendar
    assert add_business_seconds(hours, start, n) == reference_add(hours, start, n)


@SETTINGS
@given(calendars(), amounts)
def test_counting_agrees_with_the_old_walk(calendar: tuple[BusinessHours, datetime], n: int) -> None:
    hours, start = calendar
    end = start + timedelta(seconds=n, microseconds=n % 7 * 100_000)
    assert business_seconds_between(hours, start, end) == reference_between(hours, start, end)


@SETTINGS
@given(
    calendars(), st.integers(1, 40 * 3600), st.integers(1, 200 * 3600), st.lists(st.integers(0, 5 * DAY), max_size=6)
)
def test_due_times_agree_with_the_old_walk(
    calendar: tuple[BusinessHours, datetime], respond: int, resolve: int, marks: list[int]
) -> None:
    """A policy's due times, pauses included, as ``due_times`` gives them (cached hours, fast walk)
    and as the old walk over freshly read hours gives them."""
    hours, created_at = calendar
    document = hours.to_document()
    policy = SlaPolicy(name="p", first_response_seconds=respond, resolution_seconds=resolve, business_hours=document)
    moments = sorted(created_at + timedelta(seconds=mark) for mark in marks)
    targets = (["FIRST_RESPONSE", "RESOLUTION"], ["RESOLUTION"])
    pauses = [[a.isoformat(), b.isoformat(), targets[i % 2]] for i, (a, b) in enumerate(zip(moments[::2], moments[1::2], strict=False))]  # fmt: skip
    for _ in range(2):  # read fresh, then from the cache
        assert due_times(policy, created_at, pauses) == reference_due_times(
            document, respond, resolve, created_at, pauses
        )


def test_hours_are_read_once_per_document_and_bad_ones_every_time() -> None:
    days = [{"weekday": WEEKDAYS[d], "start": "09:00", "end": "17:00"} for d in range(5)]
    document = {"timezone": "Europe/Berlin", "days": days, "holidays": ["2026-12-25"]}
    first = hours_of(SlaPolicy(name="a", business_hours=document))
    again = hours_of(SlaPolicy(name="b", business_hours={**document, "days": [dict(day) for day in days]}))
    assert first is again and first == BusinessHours.parse(document)
    # the same text in other types is another document, read (and refused) as it is
    with pytest.raises(BusinessHoursError, match="holidays: expected a list"):
        hours_of(SlaPolicy(name="c", business_hours={**document, "holidays": ("2026-12-25",)}))
    with pytest.raises(BusinessHoursError, match="days: expected a list"):
        hours_of(SlaPolicy(name="d", business_hours={**document, "days": tuple(days)}))
    for _ in range(2):
        with pytest.raises(BusinessHoursError, match=r"days\[0\].weekday"):
            hours_of(SlaPolicy(name="e", business_hours={**document, "days": [{**days[0], "weekday": True}]}))
    assert hours_of(SlaPolicy(name="f", business_hours=None)) is None


def test_a_skipped_calendar_day_and_midnight_changes() -> None:
    """Samoa skipped 30 December 2011; Havana and Beirut change their clocks at midnight."""
    daily = [Interval(d, time(0), time(0)) for d in range(7)]
    night = [Interval(d, time(0, 30), time(2)) for d in range(7)]
    for zone, around in [("Pacific/Apia", datetime(2011, 12, 29, tzinfo=UTC)),
                         ("America/Havana", datetime(2026, 3, 7, tzinfo=UTC)),
                         ("America/Havana", datetime(2026, 10, 31, tzinfo=UTC)),
                         ("Asia/Beirut", datetime(2026, 3, 28, tzinfo=UTC))]:  # fmt: skip
        for spans in (daily, night):
            hours = BusinessHours(zone, tuple(spans))
            for hour in range(0, 72, 5):
                start = around + timedelta(hours=hour)
                for n in (1, 1800, 3600, 5400, DAY, 3 * DAY):
                    assert add_business_seconds(hours, start, n) == reference_add(hours, start, n)
                    end = start + timedelta(seconds=n)
                    assert business_seconds_between(hours, start, end) == reference_between(hours, start, end)


# --- the reference: models/business_time.py's walk before issue 19 (``_walk`` and ``_opening``
# verbatim; the helpers it calls, which issue 19 did not change, imported) -----------------------


def reference_add(hours: BusinessHours, start: datetime, seconds: int) -> datetime:
    origin = _whole_seconds(start, "start")
    if seconds == 0:
        return start.astimezone(UTC)
    reached, _ = _walk(hours, origin, budget=seconds, until=_UNBOUNDED)
    return _EPOCH + timedelta(seconds=reached)


def reference_between(hours: BusinessHours, start: datetime, end: datetime) -> int:
    origin, until = _whole_seconds(start, "start"), _whole_seconds(end, "end")
    if until <= origin:
        return 0
    _, counted = _walk(hours, origin, budget=_UNBOUNDED, until=until)
    return counted


def reference_due_times(
    document: dict[str, Any], respond: int, resolve: int, created_at: datetime, pauses: list[list[Any]]
) -> dict[str, datetime]:
    hours = BusinessHours.parse(document)
    if created_at.microsecond:
        created_at = created_at.replace(microsecond=0) + timedelta(seconds=1)
    due = {}
    for metric, seconds, column in (("FIRST_RESPONSE", respond, "first_response_due_at"),
                                    ("RESOLUTION", resolve, "resolution_due_at")):  # fmt: skip
        paused = sum(
            reference_between(hours, datetime.fromisoformat(p[0]), datetime.fromisoformat(p[1]))
            for p in pauses
            if metric in p[2]
        )
        due[column] = reference_add(hours, created_at, seconds + paused)
    return due


def _walk(hours: BusinessHours, origin: int, *, budget: int, until: int) -> tuple[int, int]:
    zone = hours._zone
    day = datetime.fromtimestamp(origin, zone).date()
    midnight = _first_reading(zone, datetime.combine(day, _MIDNIGHT))
    counted = 0
    while midnight < until:
        if midnight >= origin and counted + hours._weekly < budget and _free_week(hours, day):
            week_end = _first_reading(zone, datetime.combine(day + _SEVEN_DAYS, _MIDNIGHT))
            offset = _offset(zone, midnight)
            if (
                week_end <= until
                and week_end - midnight == _WEEK
                and all(_offset(zone, midnight + probe) == offset for probe in _PROBES)
            ):
                counted += hours._weekly
                day, midnight = day + _SEVEN_DAYS, week_end
                continue
        for opens, closes in _opening(hours, day):
            opens, closes = max(opens, origin), min(closes, until)
            if closes <= opens:
                continue
            if counted + (closes - opens) >= budget:
                return opens + (budget - counted), budget
            counted += closes - opens
        day += _ONE_DAY
        midnight = _first_reading(zone, datetime.combine(day, _MIDNIGHT))
    return until, counted


def _opening(hours: BusinessHours, day: date) -> Iterator[tuple[int, int]]:
    if day in hours.holidays:
        return
    midnight = datetime.combine(day, _MIDNIGHT)
    for opens, closes in hours._spans[day.weekday()]:
        yield (
            _first_reading(hours._zone, midnight + timedelta(seconds=opens)),
            _first_reading(hours._zone, midnight + timedelta(seconds=closes)),
        )
