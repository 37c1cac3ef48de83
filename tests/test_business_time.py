"""Business time (models/business_time.py): worked examples, refused hours, and the laws.

The examples pin the choices: DST days last what the clock shows in real time, a skipped time is
the instant the clock jumps past it, 00:00–24:00 every day is plain addition. The property tests
check the laws that make due times consistent — adding in steps equals adding at once, counting
undoes adding, both are monotonic, counting is additive — over random hours in zones with one-hour,
half-hour and no DST, and check counting against a slow day-by-day reference.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models import business_time
from models.business_time import (
    WEEKDAYS,
    BusinessHours,
    BusinessHoursError,
    Interval,
    add_business_seconds,
    business_seconds_between,
)

HOUR = 3600
DAY = 24 * HOUR
NEW_YORK, BERLIN, LORD_HOWE = ZoneInfo("America/New_York"), ZoneInfo("Europe/Berlin"), ZoneInfo("Australia/Lord_Howe")


def hours(zone: str, *spans: tuple[str, str, str], holidays: tuple[str, ...] = ()) -> BusinessHours:
    """Hours from ``("MONDAY", "09:00", "17:00")`` rows; ``"WEEKDAYS"`` / ``"DAILY"`` expand."""
    names = {"WEEKDAYS": WEEKDAYS[:5], "DAILY": WEEKDAYS}
    days = [
        {"weekday": weekday, "start": start, "end": end}
        for group, start, end in spans
        for weekday in names.get(group, (group,))
    ]
    return BusinessHours.parse({"timezone": zone, "days": days, "holidays": list(holidays)})


def at(zone: ZoneInfo, *fields: int) -> datetime:
    return datetime(*fields, tzinfo=zone)


def later(moment: datetime, **delta: float) -> datetime:
    """Real time after ``moment`` (``aware + timedelta`` adds wall-clock time in the same zone)."""
    return moment.astimezone(UTC) + timedelta(**delta)


OFFICE = hours("Europe/Berlin", ("WEEKDAYS", "09:00", "17:00"))


# --- examples ---------------------------------------------------------------------------------


def test_around_the_clock_is_plain_addition() -> None:
    start = at(NEW_YORK, 2026, 3, 7, 22)
    assert add_business_seconds(None, start, 5 * HOUR) == later(start, hours=5)
    assert business_seconds_between(None, start, later(start, days=2)) == 2 * DAY
    assert business_seconds_between(None, start, start - timedelta(seconds=1)) == 0


def test_whole_seconds_and_adding_nothing() -> None:
    start = datetime(2026, 1, 5, 12, 0, 0, 700_000, tzinfo=UTC)
    assert add_business_seconds(None, start, 0) == start  # the very instant, fraction and all
    assert add_business_seconds(None, start, 10) == datetime(2026, 1, 5, 12, 0, 10, tzinfo=UTC)
    assert business_seconds_between(None, start, start + timedelta(milliseconds=200)) == 0
    assert business_seconds_between(None, start, start + timedelta(milliseconds=400)) == 1
    saturday = at(BERLIN, 2026, 1, 10, 12)
    assert add_business_seconds(OFFICE, saturday, 0) == saturday  # outside hours: still itself
    assert add_business_seconds(OFFICE, saturday, 1) == at(BERLIN, 2026, 1, 12, 9, 0, 1)


def test_office_hours_across_a_weekend() -> None:
    friday = at(BERLIN, 2026, 1, 9, 16)
    due = add_business_seconds(OFFICE, friday, 2 * HOUR)
    assert due == at(BERLIN, 2026, 1, 12, 10) and due.tzinfo is UTC
    assert add_business_seconds(OFFICE, friday, HOUR) == at(BERLIN, 2026, 1, 9, 17)  # closing time itself
    assert business_seconds_between(OFFICE, friday, due) == 2 * HOUR
    assert add_business_seconds(OFFICE, at(BERLIN, 2026, 1, 10, 3), 30 * HOUR) == at(BERLIN, 2026, 1, 15, 15)


def test_a_lunch_break() -> None:
    lunch = hours("Europe/Berlin", ("WEEKDAYS", "09:00", "12:00"), ("WEEKDAYS", "13:00", "17:00"))
    assert add_business_seconds(lunch, at(BERLIN, 2026, 1, 7, 11), 2 * HOUR) == at(BERLIN, 2026, 1, 7, 14)
    assert add_business_seconds(lunch, at(BERLIN, 2026, 1, 7, 12, 30), 1) == at(BERLIN, 2026, 1, 7, 13, 0, 1)
    assert business_seconds_between(lunch, at(BERLIN, 2026, 1, 7), at(BERLIN, 2026, 1, 8)) == 7 * HOUR


def test_holidays_are_skipped() -> None:
    christmas = hours("Europe/Berlin", ("WEEKDAYS", "09:00", "17:00"), holidays=("2026-12-25",))
    thursday = at(BERLIN, 2026, 12, 24, 16)
    assert add_business_seconds(christmas, thursday, 2 * HOUR) == at(BERLIN, 2026, 12, 28, 10)
    assert business_seconds_between(christmas, thursday, at(BERLIN, 2027, 1, 1)) == 1 * HOUR + 4 * 8 * HOUR


def test_a_year_of_holidays_is_waited_out() -> None:
    all_2026 = tuple((date(2026, 1, 1) + timedelta(days=n)).isoformat() for n in range(365))
    closed = hours("Europe/Berlin", ("WEEKDAYS", "09:00", "17:00"), holidays=all_2026)
    assert add_business_seconds(closed, at(BERLIN, 2025, 12, 31, 16), 2 * HOUR) == at(BERLIN, 2027, 1, 1, 10)


def test_one_minute_a_week_for_thirty_days_of_seconds() -> None:
    """43,200 weeks, more than eight centuries: skipped a week at a time, not walked a day."""
    minute = hours("UTC", ("MONDAY", "09:00", "09:01"))
    start = at(UTC, 2026, 1, 5)  # a Monday
    due = add_business_seconds(minute, start, 30 * DAY)
    assert due == start + timedelta(weeks=30 * DAY // 60 - 1, hours=9, minutes=1)
    assert business_seconds_between(minute, start, due) == 30 * DAY


@pytest.mark.parametrize(
    ("zone", "day", "real_hours"),
    [
        (NEW_YORK, date(2026, 3, 8), 5),  # spring forward at 02:00
        (NEW_YORK, date(2026, 11, 1), 7),  # fall back at 02:00
        (BERLIN, date(2026, 3, 29), 5),  # spring forward at 02:00
        (BERLIN, date(2026, 10, 25), 7),  # fall back at 03:00
    ],
)
def test_a_night_shift_across_a_dst_change_lasts_real_time(zone: ZoneInfo, day: date, real_hours: int) -> None:
    night = hours(str(zone), ("DAILY", "00:00", "06:00"))
    opens, closes = at(zone, day.year, day.month, day.day), at(zone, day.year, day.month, day.day, 6)
    assert (later(closes) - later(opens)).total_seconds() == real_hours * HOUR  # aware arithmetic across the change
    assert business_seconds_between(night, opens, closes + timedelta(hours=12)) == real_hours * HOUR
    assert add_business_seconds(night, opens, real_hours * HOUR) == closes
    assert add_business_seconds(night, opens, real_hours * HOUR + 1) == opens + timedelta(days=1, seconds=1)


@pytest.mark.parametrize(
    ("zone", "change", "shift"),
    [
        (NEW_YORK, date(2026, 3, 8), -HOUR),
        (NEW_YORK, date(2026, 11, 1), HOUR),
        (BERLIN, date(2026, 3, 29), -HOUR),
        (BERLIN, date(2026, 10, 25), HOUR),
        (LORD_HOWE, date(2026, 4, 5), HOUR // 2),  # half-hour DST
        (LORD_HOWE, date(2026, 10, 4), -HOUR // 2),
    ],
)
def test_five_weeks_of_night_shifts_count_the_change_once(zone: ZoneInfo, change: date, shift: int) -> None:
    """Whichever weekday the count starts on, the change falls at a different place in a week."""
    night = hours(str(zone), ("DAILY", "00:00", "06:00"))
    for days_before in range(8):
        first = change - timedelta(days=days_before)
        start, end = (datetime.combine(first + timedelta(days=n), time(0), zone) for n in (0, 35))
        last_shift_ends = datetime.combine(first + timedelta(days=34), time(6), zone)
        assert business_seconds_between(night, start, end) == 35 * 6 * HOUR + shift
        assert add_business_seconds(night, start, 35 * 6 * HOUR + shift) == last_shift_ends


def test_ordinary_weeks_are_skipped_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """A year of office hours walks only the days near its ends, its two DST changes and its
    holiday; a week whose offset probe disagrees is walked instead, with the same result."""
    walked: list[date] = []
    opening = business_time._opening
    monkeypatch.setattr(business_time, "_opening", lambda h, d: walked.append(d) or opening(h, d))
    office = hours("Europe/Berlin", ("WEEKDAYS", "09:00", "17:00"), holidays=("2026-05-01",))
    start, end = at(BERLIN, 2026, 1, 1), at(BERLIN, 2027, 1, 1)
    year = business_seconds_between(office, start, end)
    assert year == (261 - 1) * 8 * HOUR and len(walked) < 3 * 7
    usual = len(walked)
    offset = business_time._offset
    june = at(BERLIN, 2026, 6, 10).timestamp()  # pretend the offset changes and back within three days
    monkeypatch.setattr(business_time, "_offset", lambda z, t: offset(z, t) + (0 <= t - june < 3 * DAY))
    walked.clear()
    assert business_seconds_between(office, start, end) == year and len(walked) >= usual + 7


def test_skipped_and_repeated_wall_times() -> None:
    day = (2026, 3, 8)  # New York's clock jumps from 02:00 to 03:00
    for spans, real_hours in [
        (("SUNDAY", "01:00", "04:00"), 2),
        (("SUNDAY", "02:30", "03:00"), 0),
        (("SUNDAY", "00:00", "02:30"), 2),
    ]:
        shift = hours("America/New_York", spans)
        assert business_seconds_between(shift, at(NEW_YORK, *day), at(NEW_YORK, *day, 12)) == real_hours * HOUR
    # 02:30 is the instant the clock jumps past it (03:00 EDT), not 02:30 read as EST (03:30 EDT)
    late = hours("America/New_York", ("SUNDAY", "02:30", "05:00"))
    assert add_business_seconds(late, at(NEW_YORK, *day), 1) == datetime(2026, 3, 8, 7, 0, 1, tzinfo=UTC)
    # a time shown twice is its first showing: 01:00–01:30 is the first pass only
    twice = hours("America/New_York", ("SUNDAY", "01:00", "01:30"))
    fall_back = at(NEW_YORK, 2026, 11, 1)
    assert business_seconds_between(twice, fall_back, fall_back + timedelta(hours=12)) == HOUR // 2
    assert add_business_seconds(twice, fall_back, 60) == datetime(2026, 11, 1, 5, 1, tzinfo=UTC)


@pytest.mark.parametrize("zone", ["America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kolkata"])
def test_all_day_every_day_is_plain_addition_even_across_dst(zone: str) -> None:
    always = hours(zone, ("DAILY", "00:00", "24:00"))
    tz = ZoneInfo(zone)
    for month, date_ in [(3, 7), (3, 28), (4, 4), (10, 3), (10, 24), (10, 31), (7, 1)]:
        start = at(tz, 2026, month, date_, 23, 17, 5)
        for seconds in (1, 3 * HOUR, DAY, 2 * DAY + 7, 30 * DAY):
            assert add_business_seconds(always, start, seconds) == later(start, seconds=seconds)
            assert business_seconds_between(always, start, later(start, seconds=seconds)) == seconds


def test_naive_instants_and_negative_seconds_are_refused() -> None:
    with pytest.raises(ValueError, match="start must be a timezone-aware datetime"):
        add_business_seconds(OFFICE, datetime(2026, 1, 5), 60)
    with pytest.raises(ValueError, match="end must be a timezone-aware datetime"):
        business_seconds_between(OFFICE, at(UTC, 2026, 1, 5), datetime(2026, 1, 6))
    with pytest.raises(ValueError, match="negative"):
        add_business_seconds(None, at(UTC, 2026, 1, 5), -1)


def test_documents_round_trip() -> None:
    document = {
        "timezone": "Europe/Berlin",
        "days": [
            {"weekday": "FRIDAY", "start": "13:00", "end": "24:00"},
            {"weekday": "FRIDAY", "start": "08:30", "end": "12:00"},
        ],
        "holidays": ["2026-12-25", "2026-01-01"],
    }
    parsed = BusinessHours.parse(document)
    assert parsed.days == (Interval(4, time(13), time(0)), Interval(4, time(8, 30), time(12)))
    assert parsed.to_document() == {**document, "holidays": ["2026-01-01", "2026-12-25"]}


# --- refused hours ----------------------------------------------------------------------------

GOOD: dict[str, Any] = {
    "timezone": "Europe/Berlin",
    "days": [{"weekday": "MONDAY", "start": "09:00", "end": "17:00"}],
    "holidays": [],
}


def monday(**changes: Any) -> dict[str, Any]:
    return {**GOOD, "days": [{"weekday": "MONDAY", "start": "09:00", "end": "17:00", **changes}]}


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({**GOOD, "timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({**GOOD, "timezone": "../../etc/passwd"}, "timezone"),
        ({**GOOD, "timezone": "America"}, "timezone"),
        ({**GOOD, "timezone": 1}, "timezone"),
        (monday(weekday="FUNDAY"), "days[0].weekday"),
        (monday(weekday="monday"), "days[0].weekday"),
        (monday(start="9:00"), "days[0].start"),
        (monday(start="24:00"), "days[0].start"),
        (monday(start="12:60"), "days[0].start"),
        (monday(end="25:00"), "days[0].end"),
        (monday(end=None), "days[0].end"),
        (monday(start="17:00", end="09:00"), "days[0].end"),
        (monday(start="09:00", end="09:00"), "days[0].end"),
        (monday(start="09:00", end="00:00"), "days[0].end"),
        (
            {**GOOD, "days": [*GOOD["days"], {"weekday": "MONDAY", "start": "16:00", "end": "18:00"}]},
            "days[1]: overlaps days[0]",
        ),
        ({**GOOD, "days": []}, "days: at least one interval"),
        ({**GOOD, "days": None}, "days"),
        ({**GOOD, "days": ["MONDAY"]}, "days[0]"),
        ({**GOOD, "days": GOOD["days"] * 57}, "days: at most 56"),
        ({**GOOD, "holidays": ["25.12.2026"]}, "holidays[0]"),
        ({**GOOD, "holidays": ["2026-02-30"]}, "holidays[0]"),
        ({**GOOD, "holidays": ["2026-W52-5"]}, "holidays[0]"),
        ({**GOOD, "holidays": ["2026-01-01", 20260101]}, "holidays[1]"),
        ({**GOOD, "holidays": ["2026-01-01"] * 1001}, "holidays: at most 1000"),
    ],
)
def test_bad_hours_are_refused_naming_the_field(document: dict[str, Any], field: str) -> None:
    with pytest.raises(BusinessHoursError) as refused:
        BusinessHours.parse(document)
    assert str(refused.value).startswith(field) and "\n" not in str(refused.value)


def test_constructed_hours_are_checked_too() -> None:
    with pytest.raises(BusinessHoursError, match=r"^days: at least one"):
        BusinessHours("UTC", ())
    with pytest.raises(BusinessHoursError, match=r"^days\[0\].weekday"):
        BusinessHours("UTC", (Interval(7, time(9), time(17)),))
    with pytest.raises(BusinessHoursError, match=r"^days\[0\].start"):
        BusinessHours("UTC", (Interval(0, time(9, 0, 30), time(17)),))


# --- the laws ---------------------------------------------------------------------------------

ZONES = ["America/New_York", "Europe/Berlin", "Asia/Kolkata", "Australia/Lord_Howe", "UTC"]
#: instants near DST changes of the zones above, where the laws are most likely to break
CHANGES = [datetime(2026, 3, 8, 7), datetime(2026, 11, 1, 6), datetime(2026, 3, 29, 1), datetime(2026, 10, 25, 1),
           datetime(2026, 4, 4, 15), datetime(2026, 10, 3, 15), datetime(2025, 3, 9, 7), datetime(2027, 10, 31, 1)]  # fmt: skip
LAWS = settings(derandomize=True, max_examples=200, deadline=None)
MONTH = 30 * DAY
OPENS = st.one_of(st.integers(0, 1439), st.sampled_from([0, 60, 90, 120, 150, 180]))  # often at night, across DST


@st.composite
def business_hours(draw: st.DrawFn) -> BusinessHours:
    """Valid hours: up to eight non-overlapping intervals in minutes, up to a year of holidays."""
    spans, closed = [], [0] * 7  # where each weekday's latest interval closes, in minutes
    rows = draw(st.lists(st.tuples(OPENS, st.integers(0, 6), st.integers(1, 1440)), min_size=1, max_size=8))
    for opens, weekday, length in sorted(rows):
        if opens >= closed[weekday]:
            closed[weekday] = closes = min(opens + length, 1440)
            spans.append(Interval(weekday, time(opens // 60, opens % 60), time(closes // 60 % 24, closes % 60)))
    first = draw(st.dates(date(2025, 1, 1), date(2028, 12, 31)))
    closure = range(draw(st.sampled_from([0, 0, 0, 3, 40, 365])))  # days off in a row, up to a year
    days_off = {first + timedelta(days=n) for n in [*draw(st.lists(st.integers(0, 400), max_size=20)), *closure]}
    return BusinessHours(draw(st.sampled_from(ZONES)), tuple(spans), frozenset(days_off))


def _minutes(moment: time, end: bool = False) -> int:
    return 1440 if end and moment == time(0) else moment.hour * 60 + moment.minute


instants = st.one_of(
    st.datetimes(datetime(2025, 1, 1), datetime(2028, 12, 31), timezones=st.just(UTC)),
    st.builds(lambda at, shift: (at + timedelta(seconds=shift)).replace(tzinfo=UTC), st.sampled_from(CHANGES), st.integers(-10 * DAY, 10 * DAY)),
)  # fmt: skip
amounts = st.integers(0, MONTH)


@LAWS
@given(business_hours(), instants, amounts, amounts)
def test_adding_in_steps_is_adding_at_once(h: BusinessHours, start: datetime, a: int, b: int) -> None:
    assert add_business_seconds(h, add_business_seconds(h, start, a), b) == add_business_seconds(h, start, a + b)


@LAWS
@given(business_hours(), instants, amounts)
def test_counting_undoes_adding(h: BusinessHours, start: datetime, n: int) -> None:
    assert business_seconds_between(h, start, add_business_seconds(h, start, n)) == n


@LAWS
@given(business_hours(), instants, amounts, amounts)
def test_adding_and_counting_are_monotonic(h: BusinessHours, start: datetime, a: int, b: int) -> None:
    a, b = sorted((a, b))
    assert add_business_seconds(h, start, a) <= add_business_seconds(h, start, b)
    e, f = start + timedelta(seconds=a), start + timedelta(seconds=b)
    assert business_seconds_between(h, start, e) <= business_seconds_between(h, start, f)


@LAWS
@given(business_hours(), instants, amounts, amounts)
def test_counting_is_additive(h: BusinessHours, start: datetime, a: int, b: int) -> None:
    e, f = start + timedelta(seconds=a), start + timedelta(seconds=a + b)
    whole = business_seconds_between(h, start, f)
    assert business_seconds_between(h, start, e) + business_seconds_between(h, e, f) == whole


@LAWS
@given(business_hours(), instants, st.integers(0, 20 * DAY))
def test_counting_agrees_with_a_day_by_day_reference(h: BusinessHours, start: datetime, n: int) -> None:
    end = start + timedelta(seconds=n)
    assert business_seconds_between(h, start, end) == reference_between(h, start, end)


@LAWS
@given(business_hours())
def test_hours_survive_their_document(h: BusinessHours) -> None:
    assert BusinessHours.parse(h.to_document()) == h


def reference_between(h: BusinessHours, start: datetime, end: datetime) -> int:
    """Every interval of every local date, each end found by trying both folds and, for a time
    the clock skips, stepping a minute at a time to where it jumps past it."""
    zone = ZoneInfo(h.timezone)
    s, e = int(start.timestamp() // 1), int(end.timestamp() // 1)
    total, local = 0, start.astimezone(zone).date() - timedelta(days=1)
    while local <= end.astimezone(zone).date():
        for interval in [] if local in h.holidays else [i for i in h.days if i.weekday == local.weekday()]:
            midnight = datetime.combine(local, time(0))
            opens = first_reading(zone, midnight + timedelta(minutes=_minutes(interval.start)))
            closes = first_reading(zone, midnight + timedelta(minutes=_minutes(interval.end, True)))
            total += max(0, min(closes, e) - max(opens, s))
        local += timedelta(days=1)
    return total


def first_reading(zone: ZoneInfo, local: datetime) -> int:
    def wall(instant: int) -> datetime:
        return datetime.fromtimestamp(instant, zone).replace(tzinfo=None)

    readings = [int(local.replace(tzinfo=zone, fold=fold).timestamp()) for fold in (0, 1)]
    exact = [instant for instant in readings if wall(instant) == local]
    if exact:
        return min(exact)
    instant = min(readings)
    while wall(instant) < local:
        instant += 60
    return instant
