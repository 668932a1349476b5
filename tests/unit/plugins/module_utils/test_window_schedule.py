# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Maintenance window schedules, time zones and active periods: what AWS accepts passes in one spelling, the rest
fails naming the field, the value and the reason."""
from __future__ import annotations

import re

import pytest

from ansible_collections.fleetpatch.ssm.plugins.module_utils import schedule
from ansible_collections.fleetpatch.ssm.plugins.module_utils.validation import ParameterError


@pytest.mark.parametrize("expression, canonical", [
    # The user guide's maintenance window examples.
    ("cron(0 2 ? * THU#3 *)", "cron(0 2 ? * THU#3 *)"),
    ("cron(15 10 ? * MON-FRI *)", "cron(15 10 ? * MON-FRI *)"),
    ("cron(0 2 L * ? *)", "cron(0 2 L * ? *)"),
    ("cron(15 10 ? * 6L *)", "cron(15 10 ? * 6L *)"),
    ("cron(30 23 ? * TUE#3 *)", "cron(30 23 ? * TUE#3 *)"),
    ("cron(24 30 09 ? * * *)", "cron(24 30 09 ? * * *)"),  # seven fields: seconds first
    ("cron(0/5 8-17 ? * MON-FRI *)", "cron(0/5 8-17 ? * MON-FRI *)"),  # exactly every 5 minutes
    ("cron(0 */1 ? * MON *)", "cron(0 */1 ? * MON *)"),
    ("cron(0 2 15W * ? 2026-2030)", "cron(0 2 15W * ? 2026-2030)"),
    ("cron(0 2 LW jan,jul ? *)", "cron(0 2 LW JAN,JUL ? *)"),
    ("rate(30 minutes)", "rate(30 minutes)"),
    ("rate(1 hour)", "rate(1 hour)"),
    ("rate(25 days)", "rate(25 days)"),
    ("rate(5 minutes)", "rate(5 minutes)"),
    ("at(2026-07-07T15:55:00)", "at(2026-07-07T15:55:00)"),
    # Spelling AWS ignores: case of names and units, spaces.
    ("  CRON( 0  2 ?  * sun * ) ", "cron(0 2 ? * SUN *)"),
    ("Rate(7 DAYS)", "rate(7 days)"),
])
def test_schedules_aws_accepts_are_written_one_way(expression, canonical):
    assert schedule.canonical_schedule("schedule", expression) == canonical
    assert schedule.canonical_schedule("schedule", canonical) == canonical


@pytest.mark.parametrize("expression, reason", [
    ("cron(0 2 * * SUN)", "a cron expression has 6 fields (7 with seconds first), not 5"),
    ("cron(0 2 * * ? * * *)", "not 8"),
    ("cron(0 2 * * SUN *)", "exactly one of day-of-month and day-of-week must be '?'"),
    ("cron(0 2 ? * ? *)", "exactly one of day-of-month and day-of-week must be '?'"),
    ("cron(60 2 ? * SUN *)", "minutes value '60' is not in 0-59"),
    ("cron(0 24 ? * SUN *)", "hours value '24' is not in 0-23"),
    ("cron(0 2 32 * ? *)", "day-of-month value '32' is not in 1-31"),
    ("cron(0 2 ? * 8 *)", "day-of-week value '8' is not in 1-7 or SUN-SAT"),
    ("cron(0 2 ? * SUNDAY *)", "day-of-week value 'SUNDAY'"),
    ("cron(0 2 ? 13 MON *)", "month value '13' is not in 1-12 or JAN-DEC"),
    ("cron(0 2 ? * MON 1969)", "year value '1969' is not in 1970-2199"),
    ("cron(0 2 ? * TUE#6 *)", "day-of-week occurrence #6 is not in 1-5"),
    ("cron(0 2 ? * FRI-MON *)", "day-of-week range 'FRI-MON' runs backwards"),
    ("cron(0/0 2 ? * MON *)", "minutes increment '0' is not a positive number"),
    ("cron(0 2 ? * MON/x *)", "day-of-week increment 'X'"),
    ("cron(0 2 ? * MON * extra)", "seconds value '0' is not in 1-59"),  # 7 fields: the first is seconds
    ("cron(0/4 * ? * MON *)", "runs more often than every 5 minutes"),
    ("cron(0,3 2 ? * MON *)", "runs more often than every 5 minutes"),
    ("cron(* 2 ? * MON *)", "runs more often than every 5 minutes"),
    ("rate(4 minutes)", "runs more often than every 5 minutes"),
    ("rate(0 hours)", "the rate value must be a positive number"),
    ("rate(1 hours)", "singular for a value of 1 and plural otherwise"),
    ("rate(5 hour)", "singular for a value of 1 and plural otherwise"),
    ("rate(2 weeks)", "rate(<positive number> <minute(s)|hour(s)|day(s)>)"),
    ("rate(-5 minutes)", "rate(<positive number>"),
    ("at(2026-02-30T10:00:00)", "an at expression is at(yyyy-mm-ddThh:mm:ss)"),
    ("at(2026-07-07 15:55)", "an at expression is at(yyyy-mm-ddThh:mm:ss)"),
    ("0 2 * * SUN", "it is not a cron(...), rate(...) or at(...) expression"),
    ("every sunday", "it is not a cron(...), rate(...) or at(...) expression"),
])
def test_schedules_aws_rejects_fail_naming_the_field_value_and_reason(expression, reason):
    with pytest.raises(ParameterError) as error:
        schedule.canonical_schedule("schedule", expression)
    message = str(error.value)
    assert message.startswith(f"schedule: {expression!r} is not a valid schedule: ")
    assert reason in message
    assert message.endswith(schedule.ALLOWED)


@pytest.mark.parametrize("expression, kind", [
    ("cron(0 2 ? * SUN *)", "cron"), ("rate(7 days)", "rate"), ("at(2026-07-07T15:55:00)", "at")])
def test_schedule_kind(expression, kind):
    assert schedule.schedule_kind(expression) == kind


def test_iana_time_zones_pass_and_others_fail():
    for name in ("UTC", "Europe/Paris", "America/Los_Angeles", "Asia/Seoul", None):
        schedule.check_timezone("schedule_timezone", name)
    for name in ("CEST", "Europe/Pariss", "europe/paris", "+02:00"):
        with pytest.raises(ParameterError, match=re.escape(f"schedule_timezone: {name!r} is not an IANA time zone")):
            schedule.check_timezone("schedule_timezone", name)


def test_without_a_time_zone_database_aws_checks_alone(monkeypatch):
    monkeypatch.setattr(schedule, "zoneinfo", None)
    schedule.check_timezone("schedule_timezone", "Europe/Pariss")


@pytest.mark.parametrize("text, canonical", [
    ("2026-01-05T20:00:00+01:00", "2026-01-05T20:00:00+01:00"),
    ("2026-01-05T20:00Z", "2026-01-05T20:00:00+00:00"),
    ("2026-01-05T20:00:00z", "2026-01-05T20:00:00+00:00"),
    ("2026-01-05T20:00:00", "2026-01-05T20:00:00"),  # no offset: read in the window's time zone, kept so
    ("2026-01-05", "2026-01-05T00:00:00"),
    (None, None),
])
def test_dates_are_written_one_way_keeping_their_offset(text, canonical):
    assert schedule.canonical_moment("start_date", text) == canonical


@pytest.mark.parametrize("text", ["05/01/2026", "2026-13-01T00:00:00", "tomorrow", "2026-01-05T25:00:00"])
def test_dates_that_are_not_iso_8601_fail(text):
    with pytest.raises(ParameterError, match=re.escape(f"end_date: {text!r} is not an ISO-8601 date-time; allowed:")):
        schedule.canonical_moment("end_date", text)


def test_the_active_period_ends_after_it_starts():
    schedule.check_active_period("2026-01-01T00:00:00+00:00", "2026-01-01T00:00:01+00:00", None)
    schedule.check_active_period(None, "2026-01-01T00:00:00", None)
    # 01:00 in Paris is midnight UTC: an end at 00:30 UTC is after it, one at 23:30 UTC the day before is not.
    schedule.check_active_period("2026-01-01T01:00:00", "2026-01-01T00:30:00+00:00", "Europe/Paris")
    with pytest.raises(ParameterError, match=re.escape(
            "end_date: '2025-12-31T23:30:00+00:00' is not after start_date '2026-01-01T01:00:00'")):
        schedule.check_active_period("2026-01-01T01:00:00", "2025-12-31T23:30:00+00:00", "Europe/Paris")
