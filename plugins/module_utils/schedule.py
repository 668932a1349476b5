# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetpatch.ssm project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Maintenance window schedules, time zones and active periods, checked before anything is written.

AWS's rules (SSM user guide, "Reference: Cron and rate expressions for Systems Manager", sections "General
information" and "Cron and rate expressions for maintenance windows"; API reference, CreateMaintenanceWindow):
  * cron(...) has six fields, minutes hours day-of-month month day-of-week year, and an optional leading seconds
    field (seven fields; "Zero (0) is not supported in the seconds field"). Values: minutes 0-59, hours 0-23,
    day-of-month 1-31, month 1-12 or JAN-DEC, day-of-week 1-7 or SUN-SAT, year 1970-2199. Wildcards `, - * /`
    everywhere; `?`, `L` and `W` in day-of-month; `?`, `L` and `#` in day-of-week (`6L` last Friday, `TUE#3` third
    Tuesday). "You cannot specify a value in the Day-of-month and in the Day-of-week fields": one of them is `?`.
    "Cron expressions that lead to rates faster than five (5) minute are not supported."
  * rate(value unit): a positive value; unit minute(s), hour(s), day(s), singular exactly when the value is 1.
  * at(yyyy-mm-ddThh:mm:ss): one run at that time.
  * ScheduleTimezone is an IANA time zone name; StartDate and EndDate are ISO-8601 extended date-times.
Choices where the guide is silent, stated here: the 5-minute floor documented for cron is applied to rate() too;
`#` and `L` forms stand alone in their field (no lists of them, as in EventBridge's "only one expression");
day-of-week `#` occurrences are 1 to 5. Names and units are matched in any case and sent upper-case (cron) or
lower-case (rate units), so spelling AWS ignores is never a change.
"""

from __future__ import annotations

import datetime
import re

try:
    import zoneinfo
except ImportError:  # Python < 3.9: time zones are left to AWS to check
    zoneinfo = None

from .validation import reject

MINIMUM_INTERVAL_SECONDS = 5 * 60
ALLOWED = (
    "allowed: cron(minutes hours day-of-month month day-of-week year), rate(<n> minute(s)|hour(s)|day(s)) or "
    "at(yyyy-mm-ddThh:mm:ss)"
)
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_RATE_UNITS = {"minute": 60, "hour": 3600, "day": 86400}


class _Invalid(ValueError):
    """Why an expression is not one AWS accepts (becomes part of the ParameterError)."""


class _Field:
    """One numeric cron field: its range and, for month and day-of-week, the names that stand for numbers."""

    def __init__(self, name: str, low: int, high: int, names=()) -> None:
        self.name, self.low, self.high = name, low, high
        self.names = {label: low + index for index, label in enumerate(names)}

    def number(self, token: str) -> int:
        value = self.names.get(token) if not token.isdigit() else int(token)
        if value is None or not self.low <= value <= self.high:
            raise _Invalid(f"{self.name} value {token!r} is not in {self.low}-{self.high}"
                           + (f" or {self.names_range()}" if self.names else ""))
        return value

    def names_range(self) -> str:
        labels = list(self.names)
        return f"{labels[0]}-{labels[-1]}"

    def values(self, text: str) -> set:
        """The values `text` selects: `*`, `n`, `a-b`, each optionally `/step`, in a comma list."""
        selected = set()
        for item in text.split(","):
            base, slash, step = item.partition("/")
            if slash and not (step.isdigit() and int(step) >= 1):
                raise _Invalid(f"{self.name} increment {step!r} is not a positive number")
            if base == "*":
                low, high = self.low, self.high
            elif "-" in base:
                first, last = base.split("-", 1)
                low, high = self.number(first), self.number(last)
                if low > high:
                    raise _Invalid(f"{self.name} range {base!r} runs backwards")
            else:
                low = self.number(base)
                high = self.high if slash else low
            selected.update(range(low, high + 1, int(step) if slash else 1))
        return selected


_SECONDS = _Field("seconds", 1, 59)  # "Zero (0) is not supported in the seconds field"
_MINUTES = _Field("minutes", 0, 59)
_HOURS = _Field("hours", 0, 23)
_DAY_OF_MONTH = _Field("day-of-month", 1, 31)
_MONTH = _Field("month", 1, 12, _MONTHS)
_DAY_OF_WEEK = _Field("day-of-week", 1, 7, _DAYS)
_YEAR = _Field("year", 1970, 2199)


def _check_day_of_month(text: str) -> None:
    if text in ("?", "L", "LW"):
        return
    match = re.fullmatch(r"(\d{1,2})W", text)
    if match:
        _DAY_OF_MONTH.number(match.group(1))
        return
    _DAY_OF_MONTH.values(text)


def _check_day_of_week(text: str) -> None:
    if text in ("?", "L"):
        return
    match = re.fullmatch(r"(\w+)L", text)
    if match:
        _DAY_OF_WEEK.number(match.group(1))
        return
    match = re.fullmatch(r"(\w+)#(\d+)", text)
    if match:
        _DAY_OF_WEEK.number(match.group(1))
        if not 1 <= int(match.group(2)) <= 5:
            raise _Invalid(f"day-of-week occurrence #{match.group(2)} is not in 1-5")
        return
    _DAY_OF_WEEK.values(text)


def _check_cron(body: str) -> str:
    fields = body.upper().split()
    if len(fields) not in (6, 7):
        raise _Invalid(f"a cron expression has 6 fields (7 with seconds first), not {len(fields)}")
    seconds = _SECONDS.values(fields[0]) if len(fields) == 7 else {0}
    minutes, hours, day_of_month, month, day_of_week, year = fields[-6:]
    if (day_of_month == "?") == (day_of_week == "?"):
        raise _Invalid("exactly one of day-of-month and day-of-week must be '?'")
    _check_day_of_month(day_of_month)
    _check_day_of_week(day_of_week)
    _MONTH.values(month)
    _YEAR.values(year)
    _check_cron_interval(seconds, _MINUTES.values(minutes), _HOURS.values(hours))
    return " ".join(fields)


def _check_cron_interval(seconds: set, minutes: set, hours: set) -> None:
    """Runs of one day closer than 5 minutes ("rates faster than five (5) minute are not supported")."""
    marks = sorted(hour * 3600 + minute * 60 + second for hour in hours for minute in minutes for second in seconds)
    if any(later - earlier < MINIMUM_INTERVAL_SECONDS for earlier, later in zip(marks, marks[1:])):
        raise _Invalid("it runs more often than every 5 minutes, which AWS does not support")


def _check_rate(body: str) -> str:
    match = re.fullmatch(r"(\d+)\s+([a-z]+)", body.lower())
    if not match or match.group(2).rstrip("s") not in _RATE_UNITS:
        raise _Invalid("a rate expression is rate(<positive number> <minute(s)|hour(s)|day(s)>)")
    value, unit = int(match.group(1)), match.group(2)
    if value < 1:
        raise _Invalid("the rate value must be a positive number")
    if (value == 1) == unit.endswith("s"):
        raise _Invalid("the unit is singular for a value of 1 and plural otherwise, e.g. rate(1 day), rate(7 days)")
    if value * _RATE_UNITS[unit.rstrip("s")] < MINIMUM_INTERVAL_SECONDS:
        raise _Invalid("it runs more often than every 5 minutes, which AWS does not support")
    return f"{value} {unit}"


def _check_at(body: str) -> str:
    try:
        datetime.datetime.strptime(body, "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        raise _Invalid("an at expression is at(yyyy-mm-ddThh:mm:ss), e.g. at(2026-07-07T15:55:00)") from None
    return body


_KINDS = {"cron": _check_cron, "rate": _check_rate, "at": _check_at}


def canonical_schedule(field: str, expression: str) -> str:
    """The schedule in the spelling the module sends and compares; rejects what AWS does not accept."""
    match = re.fullmatch(r"\s*(cron|rate|at)\((.*)\)\s*", expression or "", flags=re.IGNORECASE | re.DOTALL)
    try:
        if not match:
            raise _Invalid("it is not a cron(...), rate(...) or at(...) expression")
        kind = match.group(1).lower()
        return f"{kind}({_KINDS[kind](match.group(2).strip())})"
    except _Invalid as why:
        reject(field, expression, f"is not a valid schedule: {why}; {ALLOWED}")
    return expression  # not reached


def schedule_kind(expression: str) -> str:
    """`cron`, `rate` or `at` (of a schedule canonical_schedule accepted)."""
    return expression.split("(", 1)[0].lower()


def _time_zones() -> set:
    """The IANA names this machine knows; empty when it has no time zone database (AWS then checks alone)."""
    return zoneinfo.available_timezones() if zoneinfo else set()


def check_timezone(field: str, name) -> None:
    known = _time_zones()
    if name is not None and known and name not in known:
        reject(field, name, "is not an IANA time zone name; allowed: e.g. UTC, Europe/Paris, America/Los_Angeles")


def canonical_moment(field: str, text):
    """An ISO-8601 extended date-time (StartDate/EndDate) written one way: `2026-01-05T20:00:00+01:00`.

    AWS keeps the offset the user gives (or none: then the time is read in the window's time zone), so the offset
    is kept; only the spelling is normalised (`Z`, missing seconds, a date alone).
    """
    if text is None:
        return None
    try:
        return datetime.datetime.fromisoformat(re.sub(r"[zZ]$", "+00:00", text)).isoformat()
    except ValueError:
        reject(field, text, "is not an ISO-8601 date-time; allowed: e.g. 2026-01-05T20:00:00+01:00 or 2026-01-05")
    return text  # not reached


def check_active_period(start, end, timezone) -> None:
    """EndDate after StartDate (canonical_moment values); times without offset are read in `timezone`."""
    if start is None or end is None:
        return
    zone = _zone(timezone)
    first, last = (_aware(datetime.datetime.fromisoformat(text), zone) for text in (start, end))
    if last <= first:
        reject("end_date", end, f"is not after start_date {start!r}; allowed: a later date-time")


def _zone(name):
    if zoneinfo and name in _time_zones():
        return zoneinfo.ZoneInfo(name)
    return datetime.timezone.utc


def _aware(moment: datetime.datetime, zone) -> datetime.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)
