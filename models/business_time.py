"""Business time: the seconds of a team's opening hours that pass between two instants.

Opening hours are local wall-clock intervals per weekday in an IANA time zone, less whole local
days off (holidays). An interval on a local date is the stretch of real time from the first
instant the local clock reads its start to the first instant it reads its end (or anything
later). So an interval lasts the real time that passes while the clock moves through it: 01:00–04:00
is two real hours on a spring-forward night and four on a fall-back one; 00:00–24:00 every day
is the whole of time, DST or not. A time the clock skips (02:30 on a spring-forward night) is
the instant it jumps past it, and a time the clock shows twice is its first showing. That rule
keeps the mapping monotonic, so intervals never end before they start nor overlap — which
zoneinfo's own reading of a skipped time (shifted forward by the gap: 02:30 → 03:30) would not.

Time is counted in whole seconds: the sub-second part of an instant is dropped (toward the past)
before counting. ``business_seconds_between(h, s, e)`` counts the business seconds in
``[s, e)``; ``add_business_seconds(h, s, n)`` is ``s`` itself for ``n == 0`` and otherwise the
earliest instant ``t`` with ``business_seconds_between(h, s, t) == n``. Hence the laws the tests
check: ``add(add(s, a), b) == add(s, a + b)``, ``between(s, add(s, n)) == n``, both monotonic,
and ``between`` additive over adjacent spans.

Cost: the walk goes forward a local day at a time; a day with one UTC offset throughout (almost
every day) costs four zoneinfo look-ups once per zone and date (cached), its intervals then plain
additions to its midnight; on other days each interval's ends are converted (two to four look-ups
each). A week with no holiday and no UTC-offset change counts as the weekly total after about six
look-ups. So a span costs O(weeks + 7 × (holidays + offset changes) × intervals a day): a year
of office hours with two DST changes and ten holidays is under 130 steps, thirty days of seconds
at one minute a week (830 years) some 43,000. Offset changes are found by probing each skipped
week at its first midnight, two and five days in, and its last midnight; that would miss a zone
changing its offset and back within three days, which no zone in the tz database does (the
closest pair, Freetown in 1939, is just under four days).
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from itertools import pairwise
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKDAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
#: the most intervals (eight a day) and holidays one set of hours takes
MAX_INTERVALS = 7 * 8
MAX_HOLIDAYS = 1000

_DAY = 86_400
_WEEK = 7 * _DAY
_ONE_DAY = timedelta(days=1)
_SEVEN_DAYS = timedelta(days=7)
_SECOND = timedelta(seconds=1)
_MIDNIGHT = time(0)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)
_EPOCH_ORDINAL = _NAIVE_EPOCH.toordinal()
_UNBOUNDED = 2**62  # a budget or an end no walk reaches
_PROBES = (2 * _DAY, 5 * _DAY)  # inside a week, beside its two midnights: no gap longer than 3 days
_HHMM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ZONE_NAME = re.compile(r"[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*")


class BusinessHoursError(ValueError):
    """Opening hours that cannot be used; the one-line message names the field."""


class Interval(NamedTuple):
    """Opening hours on one weekday (0 = Monday), in local wall-clock time. An ``end`` of
    ``time(0)`` is midnight at the end of the day (``"24:00"`` in a document)."""

    weekday: int
    start: time
    end: time


@dataclass(frozen=True)
class BusinessHours:
    """When a team works: ``days`` in the local time of ``timezone``, except ``holidays``.

    Construction checks everything ``parse`` does beyond the document's spelling, so any
    ``BusinessHours`` has at least one interval and time always comes to pass.
    """

    timezone: str
    days: tuple[Interval, ...]
    holidays: frozenset[date] = frozenset()
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    _spans: tuple[tuple[tuple[int, int], ...], ...] = field(init=False, repr=False, compare=False)
    _weekly: int = field(init=False, repr=False, compare=False)
    _holidays: tuple[date, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.days:
            raise BusinessHoursError("days: at least one interval is needed, or these hours never occur")
        if len(self.days) > MAX_INTERVALS:
            raise BusinessHoursError(f"days: at most {MAX_INTERVALS} intervals are allowed, got {len(self.days)}")
        if len(self.holidays) > MAX_HOLIDAYS:
            raise BusinessHoursError(f"holidays: at most {MAX_HOLIDAYS} are allowed, got {len(self.holidays)}")
        if any(not isinstance(h, date) or isinstance(h, datetime) for h in self.holidays):
            raise BusinessHoursError("holidays: every holiday must be a date")
        per_weekday: list[list[tuple[int, int, int]]] = [[] for _ in WEEKDAYS]
        for index, interval in enumerate(self.days):
            opens, closes = _check_interval(index, interval)
            per_weekday[interval.weekday].append((opens, closes, index))
        for weekday, spans in enumerate(per_weekday):
            spans.sort()
            for (_, closes, first), (opens, _, second) in pairwise(spans):
                if opens < closes:
                    raise BusinessHoursError(
                        f"days[{max(first, second)}]: overlaps days[{min(first, second)}] on {WEEKDAYS[weekday]}"
                    )
        object.__setattr__(self, "_zone", _zone(self.timezone))
        object.__setattr__(self, "_spans", tuple(tuple((o, c) for o, c, _ in spans) for spans in per_weekday))
        object.__setattr__(self, "_weekly", sum(c - o for spans in per_weekday for o, c, _ in spans))
        object.__setattr__(self, "_holidays", tuple(sorted(self.holidays)))

    @classmethod
    def parse(cls, document: Mapping[str, Any]) -> BusinessHours:
        """Read the API shape ``{"timezone", "days": [{"weekday", "start", "end"}], "holidays"}``;
        ``BusinessHoursError`` names the first field that is wrong."""
        if not isinstance(document, Mapping):
            raise BusinessHoursError("businessHours: expected an object")
        timezone = document.get("timezone")
        if not isinstance(timezone, str):
            raise BusinessHoursError("timezone: expected an IANA time zone name such as Europe/Berlin")
        days = document.get("days")
        if not isinstance(days, list):
            raise BusinessHoursError("days: expected a list of {weekday, start, end}")
        if len(days) > MAX_INTERVALS:
            raise BusinessHoursError(f"days: at most {MAX_INTERVALS} intervals are allowed, got {len(days)}")
        holidays = document.get("holidays", [])
        if not isinstance(holidays, list):
            raise BusinessHoursError("holidays: expected a list of dates such as 2026-12-25")
        if len(holidays) > MAX_HOLIDAYS:
            raise BusinessHoursError(f"holidays: at most {MAX_HOLIDAYS} are allowed, got {len(holidays)}")
        intervals = tuple(_parse_day(index, day) for index, day in enumerate(days))
        return cls(timezone, intervals, frozenset(_parse_holiday(i, text) for i, text in enumerate(holidays)))

    def to_document(self) -> dict[str, Any]:
        """The API shape, intervals in their order, holidays sorted."""
        return {
            "timezone": self.timezone,
            "days": [
                {
                    "weekday": WEEKDAYS[interval.weekday],
                    "start": interval.start.strftime("%H:%M"),
                    "end": "24:00" if interval.end == _MIDNIGHT else interval.end.strftime("%H:%M"),
                }
                for interval in self.days
            ],
            "holidays": [holiday.isoformat() for holiday in self._holidays],
        }


def add_business_seconds(hours: BusinessHours | None, start: datetime, seconds: int) -> datetime:
    """The instant, in UTC, at which ``seconds`` of business time have passed since ``start``.

    ``hours=None`` is around the clock. ``seconds == 0`` gives ``start`` itself; otherwise the
    result is the earliest whole second by which that much business time has passed, so it may
    be the very end of an interval. ``OverflowError`` when that lies past the year 9999.
    """
    if seconds < 0:
        raise ValueError("seconds must not be negative")
    origin = _whole_seconds(start, "start")
    if seconds == 0:
        return start.astimezone(UTC)
    if hours is None:
        return _EPOCH + timedelta(seconds=origin + seconds)
    reached, _ = _walk(hours, origin, budget=seconds, until=_UNBOUNDED)
    return _EPOCH + timedelta(seconds=reached)


def business_seconds_between(hours: BusinessHours | None, start: datetime, end: datetime) -> int:
    """The whole seconds of business time in ``[start, end)``; 0 when ``end`` is not after
    ``start``. ``hours=None`` is around the clock."""
    origin, until = _whole_seconds(start, "start"), _whole_seconds(end, "end")
    if until <= origin:
        return 0
    if hours is None:
        return until - origin
    _, counted = _walk(hours, origin, budget=_UNBOUNDED, until=until)
    return counted


# --- the walk ---------------------------------------------------------------------------------


def _walk(hours: BusinessHours, origin: int, *, budget: int, until: int) -> tuple[int, int]:
    """Count business time forward from ``origin`` (POSIX seconds) until ``budget`` seconds have
    passed or the instant ``until`` is reached; return where it stopped and what it counted."""
    zone = hours._zone
    day = datetime.fromtimestamp(origin, zone).date()
    # the local date's midnight is never after origin (the clock already read it), so no earlier
    # day's interval reaches past origin
    midnight = _day_start(zone, day)[0]
    counted = 0
    while midnight < until:
        if midnight >= origin and counted + hours._weekly < budget and _free_week(hours, day):
            week_end = _day_start(zone, day + _SEVEN_DAYS)[0]
            offset = _offset(zone, midnight)
            # a week of wall-clock time in a week of real time, and the same offset at the probes:
            # no offset change, so every interval lasts its wall-clock length
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
        midnight = _day_start(zone, day)[0]
    return until, counted


def _free_week(hours: BusinessHours, day: date) -> bool:
    """Whether the seven days from ``day`` hold no holiday."""
    after = bisect_left(hours._holidays, day)
    return after == len(hours._holidays) or hours._holidays[after] >= day + _SEVEN_DAYS


def _opening(hours: BusinessHours, day: date) -> Iterator[tuple[int, int]]:
    """The intervals of one local date as real stretches ``(opens, closes)``, in order."""
    if day in hours.holidays:
        return
    first, plain = _day_start(hours._zone, day)
    if plain:  # one offset all day: the clock reads each time of day once, that long after midnight
        for opens, closes in hours._spans[day.weekday()]:
            yield first + opens, first + closes
        return
    midnight = datetime.combine(day, _MIDNIGHT)
    for opens, closes in hours._spans[day.weekday()]:
        yield (
            _first_reading(hours._zone, midnight + timedelta(seconds=opens)),
            _first_reading(hours._zone, midnight + timedelta(seconds=closes)),
        )


@lru_cache(maxsize=4096)
def _day_start(zone: ZoneInfo, day: date) -> tuple[int, bool]:
    """The first instant at which the clock of ``zone`` reads ``day`` (its midnight), and whether
    the day is plain: the clock reads 00:00 then and keeps one UTC offset until the next midnight,
    24 hours later. Cached: a zone's calendar does not change, and due times cluster on few days.

    An offset equal at both midnights means none changed in between, since no zone changes its
    offset and back within a day (nor within three: see the module's docstring)."""
    first = _first_reading(zone, datetime.combine(day, _MIDNIGHT))
    offset = _offset(zone, first)
    naive = (day.toordinal() - _EPOCH_ORDINAL) * _DAY
    # the last date has no next midnight to look at: it is walked interval by interval
    return first, first + offset == naive and day < date.max and _offset(zone, first + _DAY) == offset


def _first_reading(zone: ZoneInfo, local: datetime) -> int:
    """The first instant at which the clock of ``zone`` reads ``local`` or later."""
    naive = (local - _NAIVE_EPOCH) // _SECOND
    candidates = [naive - _utc_offset(local.replace(tzinfo=zone, fold=fold)) for fold in (0, 1)]
    for instant in sorted(candidates):
        if _wall(zone, instant) == local:
            return instant
    # skipped: the answer is the transition, between the readings with the offsets before and after
    low, high = min(candidates), max(candidates)
    while high - low > 1:
        middle = (low + high) // 2
        if _wall(zone, middle) >= local:
            high = middle
        else:
            low = middle
    return high


def _wall(zone: ZoneInfo, instant: int) -> datetime:
    return datetime.fromtimestamp(instant, zone).replace(tzinfo=None)


def _offset(zone: ZoneInfo, instant: int) -> int:
    return _utc_offset(datetime.fromtimestamp(instant, zone))


def _utc_offset(moment: datetime) -> int:
    offset = moment.utcoffset()
    return 0 if offset is None else offset // _SECOND


def _whole_seconds(moment: datetime, name: str) -> int:
    """POSIX seconds of an aware datetime, the sub-second part dropped toward the past."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    return (moment - _EPOCH) // _SECOND


# --- reading and checking ---------------------------------------------------------------------


def _zone(name: str) -> ZoneInfo:
    if len(name) > 64 or not _ZONE_NAME.fullmatch(name):
        raise BusinessHoursError(f"timezone: {_shown(name)} is not an IANA time zone name such as Europe/Berlin")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise BusinessHoursError(f"timezone: unknown IANA time zone {_shown(name)}") from None


def _check_interval(index: int, interval: Interval) -> tuple[int, int]:
    """The interval as seconds of its day ``(opens, closes)``, closes up to 86400."""
    weekday, start, end = interval
    if isinstance(weekday, bool) or not isinstance(weekday, int) or not 0 <= weekday <= 6:
        raise BusinessHoursError(f"days[{index}].weekday: expected 0 (Monday) to 6 (Sunday), got {_shown(weekday)}")
    for name, moment in (("start", start), ("end", end)):
        if not isinstance(moment, time) or moment.tzinfo is not None or moment.second or moment.microsecond:
            raise BusinessHoursError(f"days[{index}].{name}: expected a local time in whole minutes")
    opens = start.hour * 3600 + start.minute * 60
    closes = _DAY if end == _MIDNIGHT else end.hour * 3600 + end.minute * 60
    if closes <= opens:
        raise BusinessHoursError(f"days[{index}].end: must be after start ({_clock(opens)}), got {_clock(closes)}")
    return opens, closes


def _parse_day(index: int, day: object) -> Interval:
    if not isinstance(day, Mapping):
        raise BusinessHoursError(f"days[{index}]: expected an object with weekday, start and end")
    weekday = day.get("weekday")
    if weekday not in WEEKDAYS:
        raise BusinessHoursError(f"days[{index}].weekday: expected MONDAY…SUNDAY, got {_shown(weekday)}")
    start, end = day.get("start"), day.get("end")
    if end == "00:00":
        raise BusinessHoursError(f"days[{index}].end: must be after start; write 24:00 for midnight at the day's end")
    return Interval(
        WEEKDAYS.index(weekday),
        _parse_time(f"days[{index}].start", start, end=False),
        _parse_time(f"days[{index}].end", end, end=True),
    )


def _parse_time(name: str, text: object, *, end: bool) -> time:
    if end and text == "24:00":
        return _MIDNIGHT
    match = _HHMM.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        latest = "24:00" if end else "23:59"
        raise BusinessHoursError(f"{name}: expected a time HH:MM from 00:00 to {latest}, got {_shown(text)}")
    return time(int(match[1]), int(match[2]))


def _parse_holiday(index: int, text: object) -> date:
    if isinstance(text, str) and _ISO_DATE.fullmatch(text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    raise BusinessHoursError(f"holidays[{index}]: expected a date YYYY-MM-DD, got {_shown(text)}")


def _clock(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"
