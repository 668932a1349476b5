"""AWS Systems Manager schedule expressions for maintenance windows: parsing, validation, next runs.

The rules followed (SSM user guide, "Reference: Cron and rate expressions for Systems Manager"):
* `cron(...)`: six fields (minutes hours day-of-month month day-of-week year) and an optional leading seconds
  field (seven fields). Values: minutes 0-59, hours 0-23, day-of-month 1-31, month 1-12 or JAN-DEC, day-of-week
  1-7 or SUN-SAT (1 = Sunday), year 1970-2199. Wildcards `, - * /` everywhere, `?` in day-of-month and
  day-of-week, `L` and `W` in day-of-month, `L` and `#` in day-of-week (`6L` = last Friday, `TUE#3` = third
  Tuesday). A value in both day fields is not supported: exactly one of them must be `?`. "Cron expressions that
  lead to rates faster than five (5) minute aren't supported".
* `rate(value unit)`: a positive value; unit minute(s), hour(s), day(s); singular exactly when the value is 1.
* `at(yyyy-mm-ddThh:mm:ss)`: one run at that time.
* ScheduleOffset: days to wait after each cron time; a cron time before the schedule took effect does not count
  even when time + offset is still ahead ("the maintenance window won't run in the period").
* StartDate/EndDate: no run before StartDate or after EndDate. For rate schedules a StartDate in the past means
  "now".

Choices where the guide is silent (stated so the lab is predictable):
* The 5-minute floor documented for cron is applied to rate() too; no other minimum is documented for windows.
* Day ranges must ascend (`MON-FRI`, not `FRI-MON`); `nW` on a day the month lacks never matches.
* A rate schedule runs first at StartDate when that is after the schedule took effect, otherwise one interval
  after it took effect. at() is read in the window's ScheduleTimezone, like cron.
* Wall-clock times that do not exist in the time zone (DST gaps) resolve like `zoneinfo` does (fold=0).

No PyPI library fits: croniter (the usual choice) follows the Unix dialect (day-of-week 0-6 from Sunday, the two
day fields ORed, seconds as a trailing field, no `W`, no `?` rule), so mapping AWS's Quartz-like dialect onto it
would take as much code as parsing it; and no cron library knows rate() or at().
"""
from __future__ import annotations

import calendar
import datetime
import re
from dataclasses import dataclass
from typing import Callable
from zoneinfo import ZoneInfo

UTC = datetime.timezone.utc
MINIMUM_INTERVAL = datetime.timedelta(minutes=5)

_MONTH_NAMES = {name: number for number, name in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), start=1)}
_DAY_NAMES = {name: number for number, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), start=1)}
_UNITS = {"minute": datetime.timedelta(minutes=1), "hour": datetime.timedelta(hours=1),
          "day": datetime.timedelta(days=1)}


class ScheduleError(ValueError):
    """The expression is not one AWS accepts for a maintenance window; the message says why."""


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int] | None = None

    def number(self, token: str) -> int:
        if token.isdigit():
            value = int(token)
        elif self.names and token.upper() in self.names:
            value = self.names[token.upper()]
        else:
            raise ScheduleError(f"'{token}' is not a valid {self.name} value")
        if not self.low <= value <= self.high:
            raise ScheduleError(f"{self.name} value {value} is outside {self.low}-{self.high}")
        return value

    def values(self, text: str) -> frozenset[int]:
        """`*`, `5`, `1-5`, `*/15`, `0/15`, `1-30/2` and comma lists of them."""
        result: set[int] = set()
        for part in text.split(","):
            base, slash, step_text = part.partition("/")
            step = self._step(step_text) if slash else 1
            if base == "*":
                low, high = self.low, self.high
            elif "-" in base:
                first, _, last = base.partition("-")
                low, high = self.number(first), self.number(last)
                if low > high:
                    raise ScheduleError(f"{self.name} range {base} must ascend")
            else:
                low = self.number(base)
                high = self.high if slash else low
            result.update(range(low, high + 1, step))
        return frozenset(result)

    def _step(self, text: str) -> int:
        if not text.isdigit() or int(text) < 1:
            raise ScheduleError(f"'{text}' is not a valid {self.name} increment")
        return int(text)


_SECONDS = _Field("seconds", 0, 59)
_MINUTES = _Field("minutes", 0, 59)
_HOURS = _Field("hours", 0, 23)
_DAY_OF_MONTH = _Field("day-of-month", 1, 31)
_MONTH = _Field("month", 1, 12, _MONTH_NAMES)
_DAY_OF_WEEK = _Field("day-of-week", 1, 7, _DAY_NAMES)
_YEAR = _Field("year", 1970, 2199)

DayRule = Callable[[datetime.date], bool]


def _last_day(day: datetime.date) -> int:
    return calendar.monthrange(day.year, day.month)[1]


def _aws_weekday(day: datetime.date) -> int:
    """AWS numbers days of the week 1 (Sunday) to 7 (Saturday); Python 0 (Monday) to 6 (Sunday)."""
    return (day.weekday() + 1) % 7 + 1


def _last_weekday(day: datetime.date) -> datetime.date:
    """The last Monday-to-Friday day of `day`'s month (`LW`)."""
    last = day.replace(day=_last_day(day))
    while last.weekday() >= 5:
        last -= datetime.timedelta(days=1)
    return last


def _nearest_weekday(day: datetime.date, wanted: int) -> bool:
    """`nW`: the weekday nearest to day n, never leaving the month (Quartz semantics, which AWS follows)."""
    last = _last_day(day)
    if wanted > last:
        return False
    target = datetime.date(day.year, day.month, wanted)
    if target.weekday() == 5:  # Saturday: the Friday before, or Monday when the 1st is a Saturday
        target += datetime.timedelta(days=2 if wanted == 1 else -1)
    elif target.weekday() == 6:  # Sunday: the Monday after, or Friday when the last day is a Sunday
        target += datetime.timedelta(days=-2 if wanted == last else 1)
    return day == target


def _day_of_month_rule(text: str) -> DayRule:
    if text == "L":
        return lambda day: day.day == _last_day(day)
    if text == "LW":
        return lambda day: day == _last_weekday(day)
    match = re.fullmatch(r"(\d{1,2})W", text)
    if match:
        wanted = _DAY_OF_MONTH.number(match.group(1))
        return lambda day: _nearest_weekday(day, wanted)
    days = _DAY_OF_MONTH.values(text)
    return lambda day: day.day in days


def _day_of_week_rule(text: str) -> DayRule:
    if text == "L":  # the last day of the week: Saturday
        return lambda day: _aws_weekday(day) == 7
    match = re.fullmatch(r"(\w+)L", text)
    if match:  # `6L`: the last Friday of the month
        weekday = _DAY_OF_WEEK.number(match.group(1))
        return lambda day: _aws_weekday(day) == weekday and day.day + 7 > _last_day(day)
    match = re.fullmatch(r"(\w+)#(\d)", text)
    if match:  # `TUE#3`: the third Tuesday of the month
        weekday, nth = _DAY_OF_WEEK.number(match.group(1)), int(match.group(2))
        if not 1 <= nth <= 5:
            raise ScheduleError(f"day-of-week occurrence #{nth} is outside 1-5")
        return lambda day: _aws_weekday(day) == weekday and (day.day - 1) // 7 + 1 == nth
    weekdays = _DAY_OF_WEEK.values(text)
    return lambda day: _aws_weekday(day) in weekdays


@dataclass(frozen=True)
class Cron:
    expression: str
    times: tuple[datetime.time, ...]  # times of day, ascending
    months: frozenset[int]
    years: frozenset[int]
    day_rule: DayRule

    def next_local(self, after: datetime.datetime) -> datetime.datetime | None:
        """The first matching wall-clock time strictly after `after` (naive, in the window's time zone)."""
        day = after.date()
        while True:
            if day.year not in self.years:
                later = [year for year in self.years if year > day.year]
                if not later:
                    return None
                day = datetime.date(min(later), 1, 1)
                continue
            if day.month not in self.months:
                day = (day.replace(day=1) + datetime.timedelta(days=32)).replace(day=1)
                continue
            if self.day_rule(day):
                for time in self.times:
                    candidate = datetime.datetime.combine(day, time)
                    if candidate > after:
                        return candidate
            day += datetime.timedelta(days=1)


@dataclass(frozen=True)
class Rate:
    expression: str
    interval: datetime.timedelta


@dataclass(frozen=True)
class At:
    expression: str
    local_time: datetime.datetime  # naive, in the window's time zone


Schedule = Cron | Rate | At


def parse(expression: str) -> Schedule:
    """Parse a maintenance window Schedule; ScheduleError says what AWS would reject."""
    match = re.fullmatch(r"(cron|rate|at)\((.*)\)", expression, flags=re.DOTALL)
    if not match:
        raise ScheduleError("the schedule must be a cron(...), rate(...) or at(...) expression")
    kind, body = match.group(1), match.group(2).strip()
    return {"cron": _parse_cron, "rate": _parse_rate, "at": _parse_at}[kind](expression, body)


def _parse_cron(expression: str, body: str) -> Cron:
    fields = body.split()
    if len(fields) not in (6, 7):
        raise ScheduleError(f"a cron expression has 6 fields (7 with seconds); got {len(fields)}")
    seconds = _SECONDS.values(fields.pop(0)) if len(fields) == 7 else frozenset({0})
    minutes_text, hours_text, dom_text, month_text, dow_text, year_text = fields
    if (dom_text == "?") == (dow_text == "?"):
        raise ScheduleError("exactly one of day-of-month and day-of-week must be '?'")
    for name, text in (("minutes", minutes_text), ("hours", hours_text), ("month", month_text), ("year", year_text)):
        if "?" in text:
            raise ScheduleError(f"'?' is only allowed in day-of-month or day-of-week, not in {name}")
    day_rule = _day_of_week_rule(dow_text) if dom_text == "?" else _day_of_month_rule(dom_text)
    times = tuple(sorted(datetime.time(hour, minute, second)
                         for hour in _HOURS.values(hours_text)
                         for minute in _MINUTES.values(minutes_text)
                         for second in seconds))
    _require_minimum_interval(times)
    return Cron(expression, times, _MONTH.values(month_text), _YEAR.values(year_text), day_rule)


def _require_minimum_interval(times: tuple[datetime.time, ...]) -> None:
    """Runs closer than 5 minutes within a day are rejected ("rates faster than five minute aren't supported")."""
    marks = [time.hour * 3600 + time.minute * 60 + time.second for time in times]
    if any(later - earlier < MINIMUM_INTERVAL.total_seconds() for earlier, later in zip(marks, marks[1:])):
        raise ScheduleError("cron expressions that run more often than every 5 minutes are not supported")


def _parse_rate(expression: str, body: str) -> Rate:
    match = re.fullmatch(r"(\d+)\s+(minute|minutes|hour|hours|day|days)", body)
    if not match:
        raise ScheduleError("a rate expression is rate(<positive number> <minute(s)|hour(s)|day(s)>)")
    value, unit = int(match.group(1)), match.group(2)
    if value < 1:
        raise ScheduleError("the rate value must be a positive number")
    if (value == 1) == unit.endswith("s"):
        raise ScheduleError("use a singular unit for a value of 1 and a plural unit otherwise")
    interval = value * _UNITS[unit.rstrip("s")]
    if interval < MINIMUM_INTERVAL:
        raise ScheduleError("rates faster than every 5 minutes are not supported")
    return Rate(expression, interval)


def _parse_at(expression: str, body: str) -> At:
    try:
        moment = datetime.datetime.strptime(body, "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        raise ScheduleError("an at expression is at(yyyy-mm-ddThh:mm:ss)") from None
    return At(expression, moment)


@dataclass(frozen=True)
class Timing:
    """When a window runs: its schedule read in its time zone, with offset and active period applied.

    `effective_from` is when this schedule took effect (window creation or the last schedule change).
    """

    schedule: Schedule
    timezone: ZoneInfo
    effective_from: datetime.datetime
    offset_days: int = 0
    start: datetime.datetime | None = None
    end: datetime.datetime | None = None

    def next_after(self, moment: datetime.datetime) -> datetime.datetime | None:
        """The first run strictly after `moment` (aware datetimes, UTC result), None if the window won't run."""
        floor = moment
        if self.start is not None and self.start > floor:
            floor = self.start - datetime.timedelta(microseconds=1)  # a run exactly at StartDate counts
        run = self._next_run(floor)
        if run is None or (self.end is not None and run > self.end):
            return None
        return run

    def runs_between(self, after: datetime.datetime, until: datetime.datetime,
                     limit: int) -> list[datetime.datetime]:
        """Runs in (after, until], at most `limit` of them."""
        runs: list[datetime.datetime] = []
        run = self.next_after(after)
        while run is not None and run <= until and len(runs) < limit:
            runs.append(run)
            run = self.next_after(run)
        return runs

    def _next_run(self, floor: datetime.datetime) -> datetime.datetime | None:
        if isinstance(self.schedule, Rate):
            return self._next_rate_run(floor)
        if isinstance(self.schedule, At):
            run = self.schedule.local_time.replace(tzinfo=self.timezone).astimezone(UTC)
            return run if run > floor else None
        return self._next_cron_run(floor)

    def _next_rate_run(self, floor: datetime.datetime) -> datetime.datetime:
        interval = self.schedule.interval
        if self.start is not None and self.start > self.effective_from:
            first = self.start
        else:
            first = self.effective_from + interval
        if floor < first:
            return first
        return first + ((floor - first) // interval + 1) * interval

    def _next_cron_run(self, floor: datetime.datetime) -> datetime.datetime | None:
        offset = datetime.timedelta(days=self.offset_days)
        local_floor = self._local(floor)
        # The cron time itself must follow the moment the schedule took effect (see the module docstring).
        after = max(local_floor - offset, self._local(self.effective_from))
        while True:
            base = self.schedule.next_local(after)
            if base is None:
                return None
            run = (base + offset).replace(tzinfo=self.timezone).astimezone(UTC)
            if run > floor:
                return run
            after = base  # a DST fold mapped the wall time before the floor: try the next one

    def _local(self, moment: datetime.datetime) -> datetime.datetime:
        return moment.astimezone(self.timezone).replace(tzinfo=None)


def format_time(moment: datetime.datetime, timezone: ZoneInfo) -> str:
    """AWS's MaintenanceWindowStringDateTime style: `2020-02-19T16:00Z`, `2018-10-20T05:34:56-07:00`."""
    local = moment.astimezone(timezone)
    text = local.strftime("%Y-%m-%dT%H:%M" if local.second == 0 else "%Y-%m-%dT%H:%M:%S")
    offset = local.utcoffset() or datetime.timedelta()
    if not offset:
        return text + "Z"
    sign = "-" if offset < datetime.timedelta() else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{text}{sign}{minutes // 60:02d}:{minutes % 60:02d}"
