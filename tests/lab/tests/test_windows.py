"""Maintenance windows in the lab: schedules, windows, targets, tasks, executions and the scheduler stand-in.

The tests after "executions that run commands or need nodes" drive RUN_COMMAND tasks through the lab's SendCommand
(commands.py) or launch managed nodes (provision.py, catalog.py); the others use only windows.py and schedule.py.
"""
from __future__ import annotations

import datetime
import json
import re
import time
from zoneinfo import ZoneInfo

import botocore.exceptions
import pytest

from fleetlab import schedule

UTC = datetime.timezone.utc


def _code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def _lab_now(control) -> datetime.datetime:
    return datetime.datetime.fromisoformat(control.get("/clock")["now"])


def _window(aws, **overrides) -> str:
    params = {"Name": "mw-test", "Schedule": "cron(0 2 ? * SUN *)", "Duration": 4, "Cutoff": 1,
              "AllowUnassociatedTargets": False, **overrides}
    return aws.ssm.create_maintenance_window(**params)["WindowId"]


def _windows(aws) -> list[dict]:
    return [w for page in aws.ssm.get_paginator("describe_maintenance_windows").paginate()
            for w in page["WindowIdentities"]]


def _tag_target(aws, window_id: str, value: str = "prod-auto", **overrides) -> str:
    params = {"WindowId": window_id, "ResourceType": "INSTANCE",
              "Targets": [{"Key": "tag:PatchGroup", "Values": [value]}], **overrides}
    return aws.ssm.register_target_with_maintenance_window(**params)["WindowTargetId"]


def _automation_task(aws, window_id: str, **overrides) -> str:
    params = {"WindowId": window_id, "TaskArn": "AWS-RestartEC2Instance", "TaskType": "AUTOMATION",
              "TaskInvocationParameters": {"Automation": {"Parameters": {
                  "InstanceId": ["{{RESOURCE_ID}}"], "Note": ["{{WINDOW_EXECUTION_ID}}/{{TASK_EXECUTION_ID}}"]}}},
              **overrides}
    return aws.ssm.register_task_with_maintenance_window(**params)["WindowTaskId"]


def _run_command_task(aws, window_id: str, targets: list[dict], **overrides) -> str:
    params = {"WindowId": window_id, "TaskArn": "AWS-RunPatchBaseline", "TaskType": "RUN_COMMAND",
              "Targets": targets, "MaxConcurrency": "10%", "MaxErrors": "1", "Priority": 1,
              "TaskInvocationParameters": {"RunCommand": {"Parameters": {
                  "Operation": ["Scan"], "SnapshotId": ["{{WINDOW_EXECUTION_ID}}"]}}}, **overrides}
    return aws.ssm.register_task_with_maintenance_window(**params)["WindowTaskId"]


def _execute(aws, control, window_id: str) -> dict:
    result = control.post("/windows/execute", {"account": aws.account, "region": aws.region,
                                               "window_id": window_id, "wait": True, "timeout": 30})
    assert result["finished"]
    return result


def _finished_execution(aws, execution_id: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        execution = aws.ssm.get_maintenance_window_execution(WindowExecutionId=execution_id)
        if execution["Status"] not in ("PENDING", "IN_PROGRESS", "CANCELLING") or time.monotonic() > deadline:
            return execution
        time.sleep(0.05)


def _execution_tasks(aws, execution_id: str) -> list[dict]:
    return aws.ssm.describe_maintenance_window_execution_tasks(WindowExecutionId=execution_id)[
        "WindowExecutionTaskIdentities"]


def _invocations(aws, execution_id: str, task_execution_id: str) -> list[dict]:
    return aws.ssm.describe_maintenance_window_execution_task_invocations(
        WindowExecutionId=execution_id, TaskId=task_execution_id)["WindowExecutionTaskInvocationIdentities"]


# --- schedule expressions ------------------------------------------------------------------------------------

@pytest.mark.parametrize("expression", [
    "cron(0 2 ? * THU#3 *)", "cron(15 10 ? * * *)", "cron(15 10 ? * MON-FRI *)", "cron(0 2 L * ? *)",
    "cron(15 10 ? * 6L *)", "cron(30 23 ? * TUE#3 *)", "cron(0 */30 * * * ? *)", "cron(24 30 09 ? * * *)",
    "cron(0/5 8-17 ? * MON-FRI *)", "cron(0 3 15W * ? *)", "cron(0 3 LW * ? 2030-2040)", "cron(0 0 1 JAN,JUL ? *)",
    "rate(5 minutes)", "rate(30 minutes)", "rate(1 hour)", "rate(5 hours)",
    "rate(1 day)", "rate(25 days)", "at(2030-07-07T13:15:30)",
])
def test_documented_schedules_are_accepted(expression):
    assert schedule.parse(expression).expression == expression


@pytest.mark.parametrize("expression, reason", [
    ("cron(0 2 * * * *)", "one of day-of-month and day-of-week must be '?'"),
    ("cron(0 2 ? * ? *)", "one of day-of-month and day-of-week must be '?'"),
    ("cron(0 2 ? * SUN)", "6 fields"),
    ("cron(0 1 2 3 4 5 6 7)", "6 fields"),
    ("cron(60 2 ? * SUN *)", "minutes value 60"),
    ("cron(0 24 ? * SUN *)", "hours value 24"),
    ("cron(0 2 32 * ? *)", "day-of-month value 32"),
    ("cron(0 2 ? 13 SUN *)", "month value 13"),
    ("cron(0 2 ? * 8 *)", "day-of-week value 8"),
    ("cron(0 2 ? * FUNDAY *)", "not a valid day-of-week"),
    ("cron(0 2 ? * TUE#6 *)", "#6"),
    ("cron(0 2 ? * SUN 2200)", "year value 2200"),
    ("cron(0 2 ? ? SUN *)", "'?' is only allowed"),
    ("cron(0/1 * * * ? *)", "5 minutes"),
    ("cron(0 2 ? * FRI-MON *)", "must ascend"),
    ("rate(1 hours)", "singular"),
    ("rate(5 hour)", "plural"),
    ("rate(0 minutes)", "positive"),
    ("rate(4 minutes)", "5 minutes"),
    ("rate(1 week)", "minute(s)|hour(s)|day(s)"),
    ("at(2030-02-30T00:00:00)", "at(yyyy-mm-ddThh:mm:ss)"),
    ("at(2030-02-01 00:00:00)", "at(yyyy-mm-ddThh:mm:ss)"),
    ("0 2 ? * SUN *", "cron(...), rate(...) or at(...)"),
])
def test_invalid_schedules_are_rejected_with_the_reason(expression, reason):
    with pytest.raises(schedule.ScheduleError, match=re.escape(reason)):
        schedule.parse(expression)


def _runs(expression: str, after: str, count: int = 3, zone: str = "UTC", **timing) -> list[str]:
    tz = ZoneInfo(zone)
    start = datetime.datetime.fromisoformat(after)
    times = schedule.Timing(schedule.parse(expression), tz, effective_from=start, **timing)
    far = datetime.datetime(2200, 1, 1, tzinfo=UTC)
    return [schedule.format_time(run, tz) for run in times.runs_between(start, far, count)]


def test_cron_special_days_follow_the_aws_reference():
    after = "2025-01-01T00:00:00+00:00"
    assert _runs("cron(0 2 ? * THU#3 *)", after) == ["2025-01-16T02:00Z", "2025-02-20T02:00Z", "2025-03-20T02:00Z"]
    assert _runs("cron(15 10 ? * 6L *)", after) == ["2025-01-31T10:15Z", "2025-02-28T10:15Z", "2025-03-28T10:15Z"]
    assert _runs("cron(0 2 L * ? *)", after) == ["2025-01-31T02:00Z", "2025-02-28T02:00Z", "2025-03-31T02:00Z"]
    # 15W: Saturday 15 Feb and Sunday 15 Jun 2025 move to the nearest weekday in the month.
    assert _runs("cron(0 3 15W * ? *)", after, 6)[1] == "2025-02-14T03:00Z"
    assert _runs("cron(0 3 15W * ? *)", after, 6)[5] == "2025-06-16T03:00Z"
    assert _runs("cron(24 30 09 ? * * *)", after, 1) == ["2025-01-01T09:30:24Z"]
    assert _runs("cron(0 0 1 1 ? 2027)", after, 3) == ["2027-01-01T00:00Z"]


def test_cron_runs_in_the_window_time_zone_across_daylight_saving():
    runs = _runs("cron(0 16 ? * TUE *)", "2025-03-01T00:00:00+00:00", 3, zone="America/Los_Angeles")
    assert runs == ["2025-03-04T16:00-08:00", "2025-03-11T16:00-07:00", "2025-03-18T16:00-07:00"]


def test_schedule_offset_adds_days_but_not_for_a_cron_time_before_the_window_existed():
    # Third Tuesday of January 2025 is the 21st; with offset 2 the window runs Thursday the 23rd.
    assert _runs("cron(30 23 ? * TUE#3 *)", "2025-01-01T00:00:00+00:00", 1, offset_days=2) == ["2025-01-23T23:30Z"]
    # Created on the 22nd: the 21st already passed in this period, so the first run is in February (21st + 2).
    assert _runs("cron(30 23 ? * TUE#3 *)", "2025-01-22T00:00:00+00:00", 1, offset_days=2) == ["2025-02-20T23:30Z"]


def test_rate_runs_from_the_start_date_or_one_interval_after_creation():
    assert _runs("rate(7 days)", "2025-01-01T10:00:00+00:00", 2) == ["2025-01-08T10:00Z", "2025-01-15T10:00Z"]
    start = datetime.datetime(2025, 2, 1, 5, 34, 56, tzinfo=UTC)
    assert _runs("rate(1 day)", "2025-01-01T10:00:00+00:00", 2, start=start) == [
        "2025-02-01T05:34:56Z", "2025-02-02T05:34:56Z"]


def test_start_and_end_dates_bound_the_runs():
    end = datetime.datetime(2025, 1, 20, tzinfo=UTC)
    start = datetime.datetime(2025, 1, 10, tzinfo=UTC)
    assert _runs("cron(0 2 ? * SUN *)", "2025-01-01T00:00:00+00:00", 5, start=start, end=end) == [
        "2025-01-12T02:00Z", "2025-01-19T02:00Z"]


def test_at_runs_once_in_the_window_time_zone():
    assert _runs("at(2030-07-07T13:15:30)", "2025-01-01T00:00:00+00:00", 3, zone="Asia/Seoul") == [
        "2030-07-07T13:15:30+09:00"]


# --- windows -------------------------------------------------------------------------------------------------

def test_window_lifecycle_round_trips_every_field(aws, control):
    now = _lab_now(control)
    start = (now + datetime.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    end = (now + datetime.timedelta(days=90)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    window_id = aws.ssm.create_maintenance_window(
        Name="mw-install-auto", Description="weekly install", StartDate=start, EndDate=end,
        Schedule="cron(30 23 ? * TUE#3 *)", ScheduleTimezone="Europe/Paris", ScheduleOffset=2, Duration=4,
        Cutoff=1, AllowUnassociatedTargets=True)["WindowId"]
    got = aws.ssm.get_maintenance_window(WindowId=window_id)
    assert {k: got[k] for k in ("Name", "Description", "StartDate", "EndDate", "Schedule", "ScheduleTimezone",
                                "ScheduleOffset", "Duration", "Cutoff", "AllowUnassociatedTargets", "Enabled")} == {
        "Name": "mw-install-auto", "Description": "weekly install", "StartDate": start, "EndDate": end,
        "Schedule": "cron(30 23 ? * TUE#3 *)", "ScheduleTimezone": "Europe/Paris", "ScheduleOffset": 2,
        "Duration": 4, "Cutoff": 1, "AllowUnassociatedTargets": True, "Enabled": True}
    assert got["CreatedDate"] == got["ModifiedDate"]
    assert got["NextExecutionTime"].endswith(("+01:00", "+02:00"))  # Paris time, two days after a Tuesday
    next_run = datetime.datetime.fromisoformat(got["NextExecutionTime"])
    assert next_run.weekday() == 3 and next_run > now

    [identity] = _windows(aws)
    assert identity["WindowId"] == window_id and identity["NextExecutionTime"] == got["NextExecutionTime"]
    assert "AllowUnassociatedTargets" not in identity

    assert aws.ssm.delete_maintenance_window(WindowId=window_id)["WindowId"] == window_id
    assert _windows(aws) == []


def test_tags_given_at_creation_belong_to_the_window_until_it_is_deleted(aws, lab):
    window_id = _window(aws, Tags=[{"Key": "owner", "Value": "ops"}, {"Key": "Patch Group", "Value": "prod"}])
    tags = aws.ssm.list_tags_for_resource(ResourceType="MaintenanceWindow", ResourceId=window_id)["TagList"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("Patch Group", "prod"), ("owner", "ops")]
    aws.ssm.delete_maintenance_window(WindowId=window_id)
    assert ("MaintenanceWindow", window_id) not in lab.region(aws.account, aws.region).tags


INVALID_WINDOWS = [
    ({"Cutoff": 4, "Duration": 4}, "Cutoff was 4"),
    ({"Schedule": "rate(7 days)", "ScheduleOffset": 2}, "ScheduleOffset"),
    ({"ScheduleTimezone": "Mars/Olympus_Mons"}, "ScheduleTimezone"),
    ({"Schedule": "cron(0 2 * * * *)"}, "Schedule"),
    ({"Schedule": "rate(1 hours)"}, "Schedule"),
    ({"StartDate": "next tuesday"}, "StartDate"),
    ({"EndDate": "2001-01-01T00:00:00Z"}, "EndDate must be in the future"),
    ({"StartDate": "2101-01-02T00:00:00Z", "EndDate": "2101-01-01T00:00:00Z"}, "later than StartDate"),
    ({"Duration": 25}, "duration"),
    ({"Cutoff": 24, "Duration": 24}, "cutoff"),
    ({"ScheduleOffset": 7}, "scheduleOffset"),
    ({"Name": "has spaces"}, "name"),
]


def test_invalid_windows_are_rejected_and_nothing_is_created(aws):
    for overrides, message in INVALID_WINDOWS:
        with pytest.raises(botocore.exceptions.ClientError) as excinfo:
            _window(aws, **overrides)
        assert _code(excinfo) == "ValidationException", overrides
        assert message in str(excinfo.value), overrides
    assert _windows(aws) == []


def test_fifty_windows_per_account_and_region(aws):
    for index in range(50):
        _window(aws, Name=f"mw-{index:02d}")
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        _window(aws, Name="mw-51st")
    assert _code(excinfo) == "ResourceLimitExceededException"
    assert len(_windows(aws)) == 50


def test_client_token_makes_create_idempotent(aws):
    first = _window(aws, ClientToken="token-1")
    assert _window(aws, ClientToken="token-1") == first
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        _window(aws, ClientToken="token-1", Duration=5)
    assert _code(excinfo) == "IdempotentParameterMismatch"
    assert [w["WindowId"] for w in _windows(aws)] == [first]


def test_update_changes_only_what_it_is_sent(aws):
    window_id = _window(aws, Description="before", ScheduleTimezone="UTC")
    updated = aws.ssm.update_maintenance_window(WindowId=window_id, Duration=6, Enabled=False)
    assert updated["Duration"] == 6 and updated["Enabled"] is False
    got = aws.ssm.get_maintenance_window(WindowId=window_id)
    assert got["Description"] == "before" and got["ScheduleTimezone"] == "UTC" and got["Cutoff"] == 1
    assert "NextExecutionTime" not in got  # a disabled window does not run
    assert got["ModifiedDate"] >= got["CreatedDate"]


def test_update_with_replace_needs_the_required_fields_and_nulls_the_others(aws):
    window_id = _window(aws, Description="before", ScheduleTimezone="Europe/Paris")
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        aws.ssm.update_maintenance_window(WindowId=window_id, Replace=True, Duration=6)
    assert _code(excinfo) == "ValidationException"
    assert "Name" in str(excinfo.value) and "Schedule" in str(excinfo.value)
    assert aws.ssm.get_maintenance_window(WindowId=window_id)["Duration"] == 4

    replaced = aws.ssm.update_maintenance_window(
        WindowId=window_id, Replace=True, Name="mw-replaced", Schedule="rate(7 days)", Duration=3, Cutoff=0,
        AllowUnassociatedTargets=True)
    assert "Description" not in replaced and "ScheduleTimezone" not in replaced
    got = aws.ssm.get_maintenance_window(WindowId=window_id)
    assert (got["Name"], got["Schedule"], got["Duration"], got["Cutoff"]) == ("mw-replaced", "rate(7 days)", 3, 0)
    assert "Description" not in got and "ScheduleTimezone" not in got


def test_update_validates_the_resulting_window(aws):
    window_id = _window(aws, Duration=4, Cutoff=2)
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        aws.ssm.update_maintenance_window(WindowId=window_id, Duration=2)
    assert _code(excinfo) == "ValidationException"
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        aws.ssm.update_maintenance_window(WindowId=window_id, ScheduleOffset=1, Schedule="rate(1 day)")
    assert _code(excinfo) == "ValidationException"
    got = aws.ssm.get_maintenance_window(WindowId=window_id)
    assert (got["Duration"], got["Schedule"]) == (4, "cron(0 2 ? * SUN *)") and "ScheduleOffset" not in got


def test_unknown_ids_answer_does_not_exist(aws):
    missing_window = "mw-0123456789abcdef0"
    missing_uuid = "11111111-2222-3333-4444-555555555555"
    calls = [
        lambda: aws.ssm.get_maintenance_window(WindowId=missing_window),
        lambda: aws.ssm.update_maintenance_window(WindowId=missing_window, Duration=3),
        lambda: aws.ssm.register_target_with_maintenance_window(
            WindowId=missing_window, ResourceType="INSTANCE", Targets=[{"Key": "InstanceIds", "Values": ["i-1"]}]),
        lambda: aws.ssm.describe_maintenance_window_tasks(WindowId=missing_window),
        lambda: aws.ssm.get_maintenance_window_execution(WindowExecutionId=missing_uuid),
        lambda: aws.ssm.describe_maintenance_window_execution_tasks(WindowExecutionId=missing_uuid),
        lambda: aws.ssm.cancel_maintenance_window_execution(WindowExecutionId=missing_uuid),
        lambda: aws.ssm.describe_maintenance_window_schedule(WindowId=missing_window),
    ]
    for call in calls:
        with pytest.raises(botocore.exceptions.ClientError) as excinfo:
            call()
        assert _code(excinfo) == "DoesNotExistException"
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        aws.ssm.get_maintenance_window(WindowId=missing_window)
    assert excinfo.value.response["Error"]["Message"] == f"Maintenance window {missing_window} does not exist"

    window_id = _window(aws)
    for call in (lambda: aws.ssm.get_maintenance_window_task(WindowId=window_id, WindowTaskId=missing_uuid),
                 lambda: aws.ssm.deregister_task_from_maintenance_window(WindowId=window_id,
                                                                         WindowTaskId=missing_uuid),
                 lambda: aws.ssm.update_maintenance_window_target(WindowId=window_id, WindowTargetId=missing_uuid,
                                                                  Name="renamed"),
                 lambda: aws.ssm.deregister_target_from_maintenance_window(WindowId=window_id,
                                                                           WindowTargetId=missing_uuid)):
        with pytest.raises(botocore.exceptions.ClientError) as excinfo:
            call()
        assert _code(excinfo) == "DoesNotExistException"
    # The model lists no DoesNotExistException for these two: an unknown window has no executions, and
    # deleting an unknown window succeeds.
    assert aws.ssm.describe_maintenance_window_executions(WindowId=missing_window)["WindowExecutions"] == []
    assert aws.ssm.delete_maintenance_window(WindowId=missing_window)["WindowId"] == missing_window


def test_describe_windows_filters_and_pages(aws):
    for index in range(12):
        _window(aws, Name=f"patch-{index:02d}")
    other = _window(aws, Name="scan-all")
    aws.ssm.update_maintenance_window(WindowId=other, Enabled=False)

    first = aws.ssm.describe_maintenance_windows()
    assert len(first["WindowIdentities"]) == 10 and first["NextToken"]  # 10 when MaxResults is omitted
    pages = list(aws.ssm.get_paginator("describe_maintenance_windows").paginate(PaginationConfig={"PageSize": 10}))
    assert [len(p["WindowIdentities"]) for p in pages] == [10, 3]
    assert len({w["WindowId"] for p in pages for w in p["WindowIdentities"]}) == 13

    by_prefix = aws.ssm.describe_maintenance_windows(Filters=[{"Key": "Name", "Values": ["patch-1"]}],
                                                     MaxResults=50)["WindowIdentities"]
    assert sorted(w["Name"] for w in by_prefix) == ["patch-10", "patch-11"]
    disabled = aws.ssm.describe_maintenance_windows(Filters=[{"Key": "Enabled", "Values": ["false"]}])
    assert [w["WindowId"] for w in disabled["WindowIdentities"]] == [other]

    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        aws.ssm.describe_maintenance_windows(Filters=[{"Key": "Owner", "Values": ["ops"]}])
    assert _code(excinfo) == "ValidationException"
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        aws.ssm.describe_maintenance_windows(MaxResults=101)
    assert _code(excinfo) == "ValidationException"


def test_schedule_lists_upcoming_runs_in_the_window_time_zone(aws, control):
    window_id = _window(aws, Name="weekly-la", Schedule="cron(0 16 ? * TUE *)",
                        ScheduleTimezone="America/Los_Angeles")
    runs = aws.ssm.describe_maintenance_window_schedule(WindowId=window_id, MaxResults=3)
    times = [datetime.datetime.fromisoformat(r["ExecutionTime"]) for r in runs["ScheduledWindowExecutions"]]
    assert len(times) == 3 and runs["NextToken"]
    assert all(t.weekday() == 1 and t.hour == 16 and t.utcoffset() in (datetime.timedelta(hours=-8),
                                                                        datetime.timedelta(hours=-7))
               for t in times)
    assert times[1] - times[0] >= datetime.timedelta(days=6)
    before = (times[1] - datetime.timedelta(hours=1)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    filtered = aws.ssm.describe_maintenance_window_schedule(
        WindowId=window_id, Filters=[{"Key": "ScheduledBefore", "Values": [before]}])
    assert len(filtered["ScheduledWindowExecutions"]) == 1
    assert aws.ssm.get_maintenance_window(WindowId=window_id)["NextExecutionTime"] == \
        runs["ScheduledWindowExecutions"][0]["ExecutionTime"]


# --- targets -------------------------------------------------------------------------------------------------

def test_target_lifecycle_round_trips_and_replace_nulls_optional_fields(aws):
    window_id = _window(aws)
    target_id = _tag_target(aws, window_id, OwnerInformation="team-a", Name="auto-group", Description="auto")
    [row] = aws.ssm.describe_maintenance_window_targets(WindowId=window_id)["Targets"]
    assert row == {"WindowId": window_id, "WindowTargetId": target_id, "ResourceType": "INSTANCE",
                   "Targets": [{"Key": "tag:PatchGroup", "Values": ["prod-auto"]}], "OwnerInformation": "team-a",
                   "Name": "auto-group", "Description": "auto"}

    updated = aws.ssm.update_maintenance_window_target(WindowId=window_id, WindowTargetId=target_id, Name="renamed")
    assert updated["Name"] == "renamed" and updated["OwnerInformation"] == "team-a"
    assert updated["Targets"] == [{"Key": "tag:PatchGroup", "Values": ["prod-auto"]}]

    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        aws.ssm.update_maintenance_window_target(WindowId=window_id, WindowTargetId=target_id, Replace=True,
                                                 Name="x-only")
    assert _code(excinfo) == "ValidationException"
    replaced = aws.ssm.update_maintenance_window_target(
        WindowId=window_id, WindowTargetId=target_id, Replace=True,
        Targets=[{"Key": "InstanceIds", "Values": ["i-0123456789abcdef0"]}])
    assert "Name" not in replaced and "OwnerInformation" not in replaced and "Description" not in replaced

    filtered = aws.ssm.describe_maintenance_window_targets(
        WindowId=window_id, Filters=[{"Key": "WindowTargetId", "Values": [target_id]},
                                     {"Key": "Type", "Values": ["INSTANCE"]}])["Targets"]
    assert [t["WindowTargetId"] for t in filtered] == [target_id]
    assert aws.ssm.describe_maintenance_window_targets(
        WindowId=window_id, Filters=[{"Key": "OwnerInformation", "Values": ["team-a"]}])["Targets"] == []


INVALID_WINDOW_TARGETS = [
    ("INSTANCE", [{"Key": "resource-groups:Name", "Values": ["web"]}]),
    ("RESOURCE_GROUP", [{"Key": "tag:PatchGroup", "Values": ["prod-auto"]}]),
    ("INSTANCE", [{"Key": "Name", "Values": ["web"]}]),
    ("INSTANCE", []),
    ("INSTANCE", [{"Key": "tag:PatchGroup", "Values": []}]),
]


def test_invalid_window_targets_are_rejected(aws):
    window_id = _window(aws)
    for resource_type, targets in INVALID_WINDOW_TARGETS:
        with pytest.raises(botocore.exceptions.ClientError) as excinfo:
            aws.ssm.register_target_with_maintenance_window(WindowId=window_id, ResourceType=resource_type,
                                                            Targets=targets)
        assert _code(excinfo) == "ValidationException", targets
    assert aws.ssm.describe_maintenance_window_targets(WindowId=window_id)["Targets"] == []


def test_hundred_targets_per_window_and_target_client_token(aws):
    window_id = _window(aws)
    first = _tag_target(aws, window_id, "group-0", ClientToken="t-0")
    assert _tag_target(aws, window_id, "group-0", ClientToken="t-0") == first
    for index in range(1, 100):
        _tag_target(aws, window_id, f"group-{index}")
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        _tag_target(aws, window_id, "group-100")
    assert _code(excinfo) == "ResourceLimitExceededException"
    pages = aws.ssm.get_paginator("describe_maintenance_window_targets").paginate(WindowId=window_id)
    assert sum(len(page["Targets"]) for page in pages) == 100


def test_safe_deregistration_refuses_a_target_a_task_uses(aws):
    window_id = _window(aws)
    used = _tag_target(aws, window_id, "prod-auto")
    unused = _tag_target(aws, window_id, "nonprod")
    _run_command_task(aws, window_id, [{"Key": "WindowTargetIds", "Values": [used]}])
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        aws.ssm.deregister_target_from_maintenance_window(WindowId=window_id, WindowTargetId=used, Safe=True)
    assert _code(excinfo) == "TargetInUseException"
    aws.ssm.deregister_target_from_maintenance_window(WindowId=window_id, WindowTargetId=unused, Safe=True)
    remaining = aws.ssm.describe_maintenance_window_targets(WindowId=window_id)["Targets"]
    assert [t["WindowTargetId"] for t in remaining] == [used]
    aws.ssm.deregister_target_from_maintenance_window(WindowId=window_id, WindowTargetId=used)
    assert aws.ssm.describe_maintenance_window_targets(WindowId=window_id)["Targets"] == []


def test_windows_for_target_finds_windows_by_node_id(aws):
    registered = _window(aws, Name="has-node")
    aws.ssm.register_target_with_maintenance_window(
        WindowId=registered, ResourceType="INSTANCE",
        Targets=[{"Key": "InstanceIds", "Values": ["i-0123456789abcdef0", "i-0fedcba9876543210"]}])
    _window(aws, Name="other")
    found = aws.ssm.describe_maintenance_windows_for_target(
        ResourceType="INSTANCE", Targets=[{"Key": "InstanceIds", "Values": ["i-0fedcba9876543210"]}])
    assert found["WindowIdentities"] == [{"WindowId": registered, "Name": "has-node"}]
    schedule_rows = aws.ssm.describe_maintenance_window_schedule(
        ResourceType="INSTANCE", Targets=[{"Key": "InstanceIds", "Values": ["i-0fedcba9876543210"]}],
        MaxResults=2)["ScheduledWindowExecutions"]
    assert {row["WindowId"] for row in schedule_rows} == {registered}


# --- tasks ---------------------------------------------------------------------------------------------------

def test_run_command_task_round_trips_every_field(aws):
    window_id = _window(aws)
    target_id = _tag_target(aws, window_id)
    invocation = {"RunCommand": {
        "Comment": "weekly install", "TimeoutSeconds": 600, "DocumentVersion": "$DEFAULT",
        "OutputS3BucketName": "patch-logs", "OutputS3KeyPrefix": "runs/{{WINDOW_EXECUTION_ID}}",
        "CloudWatchOutputConfig": {"CloudWatchLogGroupName": "/patch", "CloudWatchOutputEnabled": True},
        "Parameters": {"Operation": ["Install"], "RebootOption": ["RebootIfNeeded"]}}}
    alarm = {"IgnorePollAlarmFailure": True, "Alarms": [{"Name": "patch-errors"}]}
    task_id = _run_command_task(
        aws, window_id, [{"Key": "WindowTargetIds", "Values": [target_id]}], TaskInvocationParameters=invocation,
        Priority=3, MaxConcurrency="10%", MaxErrors="0", Name="install", Description="install auto groups",
        ServiceRoleArn="arn:aws:iam::123456789012:role/mw-role", CutoffBehavior="CANCEL_TASK",
        AlarmConfiguration=alarm)
    got = aws.ssm.get_maintenance_window_task(WindowId=window_id, WindowTaskId=task_id)
    assert {k: got[k] for k in ("TaskType", "TaskArn", "Targets", "TaskInvocationParameters", "Priority",
                                "MaxConcurrency", "MaxErrors", "Name", "Description", "ServiceRoleArn",
                                "CutoffBehavior", "AlarmConfiguration")} == {
        "TaskType": "RUN_COMMAND", "TaskArn": "AWS-RunPatchBaseline",
        "Targets": [{"Key": "WindowTargetIds", "Values": [target_id]}], "TaskInvocationParameters": invocation,
        "Priority": 3, "MaxConcurrency": "10%", "MaxErrors": "0", "Name": "install",
        "Description": "install auto groups", "ServiceRoleArn": "arn:aws:iam::123456789012:role/mw-role",
        "CutoffBehavior": "CANCEL_TASK", "AlarmConfiguration": alarm}
    [row] = aws.ssm.describe_maintenance_window_tasks(WindowId=window_id)["Tasks"]
    assert row["Type"] == "RUN_COMMAND" and row["Priority"] == 3 and row["WindowTaskId"] == task_id
    assert row["MaxConcurrency"] == "10%" and row["Targets"] == got["Targets"]


def test_targetless_lambda_task_reports_placeholder_concurrency_and_its_payload(aws):
    window_id = _window(aws)
    payload = b'{"instance": "{{RESOURCE_ID}}"}'
    task_id = aws.ssm.register_task_with_maintenance_window(
        WindowId=window_id, TaskArn="arn:aws:lambda:eu-west-1:123456789012:function:notify", TaskType="LAMBDA",
        TaskInvocationParameters={"Lambda": {"Payload": payload, "Qualifier": "$LATEST"}})["WindowTaskId"]
    got = aws.ssm.get_maintenance_window_task(WindowId=window_id, WindowTaskId=task_id)
    assert (got["MaxConcurrency"], got["MaxErrors"]) == ("1", "1")  # "the system inserts a placeholder value of 1"
    assert got["TaskInvocationParameters"]["Lambda"]["Payload"] == payload
    assert got["Priority"] == 1  # the lab's default (see windows.py)
    assert got["ServiceRoleArn"].endswith(":role/aws-service-role/ssm.amazonaws.com/AWSServiceRoleForAmazonSSM")
    assert "Targets" not in got


INVALID_TASKS = [
    ({"Targets": []}, "ValidationException"),  # Run Command tasks need targets
    ({"MaxErrors": None}, "ValidationException"),  # tasks with targets need MaxConcurrency and MaxErrors
    ({"Targets": [{"Key": "WindowTargetIds", "Values": ["11111111-2222-3333-4444-555555555555"]}]},
     "DoesNotExistException"),
    ({"Targets": [{"Key": "InstanceIds", "Values": ["i-0123456789abcdef0"]}]}, "ValidationException"),
    ({"Targets": [{"Key": "tag:PatchGroup", "Values": ["prod-auto"]}]}, "ValidationException"),
    ({"TaskInvocationParameters": {"Automation": {"Parameters": {"x": ["y"]}}}}, "ValidationException"),
    ({"MaxConcurrency": "0"}, "ValidationException"),  # the model's pattern
    ({"TaskType": "BATCH"}, "ValidationException"),  # the model's enum
]


def test_invalid_tasks_are_rejected_and_nothing_is_registered(aws):
    window_id = _window(aws)  # AllowUnassociatedTargets=False: InstanceIds targets are refused
    target_id = _tag_target(aws, window_id)
    for overrides, code in INVALID_TASKS:
        params = {"WindowId": window_id, "TaskArn": "AWS-RunPatchBaseline", "TaskType": "RUN_COMMAND",
                  "Targets": [{"Key": "WindowTargetIds", "Values": [target_id]}], "MaxConcurrency": "1",
                  "MaxErrors": "1", **overrides}
        with pytest.raises(botocore.exceptions.ClientError) as excinfo:
            aws.ssm.register_task_with_maintenance_window(**{k: v for k, v in params.items() if v is not None})
        assert _code(excinfo) == code, overrides
    assert aws.ssm.describe_maintenance_window_tasks(WindowId=window_id)["Tasks"] == []


def test_targetless_tasks_take_no_concurrency_and_unassociated_targets_need_the_window_option(aws):
    window_id = _window(aws, AllowUnassociatedTargets=True)
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        _automation_task(aws, window_id, MaxConcurrency="2")
    assert _code(excinfo) == "ValidationException"
    task_id = _run_command_task(aws, window_id, [{"Key": "instanceids", "Values": ["i-0123456789abcdef0"]}])
    assert aws.ssm.get_maintenance_window_task(WindowId=window_id, WindowTaskId=task_id)["Targets"] == [
        {"Key": "instanceids", "Values": ["i-0123456789abcdef0"]}]


def test_task_quotas(aws):
    window_id = _window(aws)
    targets = [_tag_target(aws, window_id, f"group-{index}") for index in range(11)]
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        _run_command_task(aws, window_id, [{"Key": "WindowTargetIds", "Values": targets}])
    assert _code(excinfo) == "ResourceLimitExceededException"  # 10 targets per task
    for index in range(20):
        _automation_task(aws, window_id, Name=f"task-{index:02d}")
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        _automation_task(aws, window_id, Name="task-21st")
    assert _code(excinfo) == "ResourceLimitExceededException"  # 20 tasks per window
    pages = list(aws.ssm.get_paginator("describe_maintenance_window_tasks").paginate(
        WindowId=window_id, PaginationConfig={"PageSize": 10}))
    assert [len(page["Tasks"]) for page in pages] == [10, 10]
    automation_at_priority_1 = aws.ssm.describe_maintenance_window_tasks(
        WindowId=window_id, Filters=[{"Key": "TaskType", "Values": ["AUTOMATION"]},
                                     {"Key": "Priority", "Values": ["1"]}], MaxResults=100)["Tasks"]
    assert len(automation_at_priority_1) == 20


def test_update_task_keeps_unsent_fields_replaces_invocation_parameters_and_replace_nulls(aws):
    window_id = _window(aws)
    target_id = _tag_target(aws, window_id)
    invocation = {"RunCommand": {"Comment": "c", "OutputS3BucketName": "logs",
                                 "Parameters": {"Operation": ["Scan"]}}}
    task_id = _run_command_task(aws, window_id, [{"Key": "WindowTargetIds", "Values": [target_id]}],
                                TaskInvocationParameters=invocation, Name="scan", Priority=5)
    updated = aws.ssm.update_maintenance_window_task(
        WindowId=window_id, WindowTaskId=task_id,
        TaskInvocationParameters={"RunCommand": {"OutputS3BucketName": "other-logs"}})
    # "If you ... specify only a different OutputS3BucketName value, the values for Comment ... are removed."
    assert updated["TaskInvocationParameters"] == {"RunCommand": {"OutputS3BucketName": "other-logs"}}
    assert updated["Name"] == "scan" and updated["Priority"] == 5 and updated["MaxErrors"] == "1"

    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        aws.ssm.update_maintenance_window_task(WindowId=window_id, WindowTaskId=task_id, Replace=True, Priority=2)
    assert _code(excinfo) == "ValidationException"  # Replace needs TaskArn
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:  # ...and, for Run Command, targets
        aws.ssm.update_maintenance_window_task(WindowId=window_id, WindowTaskId=task_id, Replace=True,
                                               TaskArn="AWS-RunShellScript")
    assert _code(excinfo) == "ValidationException"
    replaced = aws.ssm.update_maintenance_window_task(
        WindowId=window_id, WindowTaskId=task_id, Replace=True, TaskArn="AWS-RunShellScript",
        Targets=[{"Key": "WindowTargetIds", "Values": [target_id]}], MaxConcurrency="2", MaxErrors="0")
    assert "Name" not in replaced and "TaskInvocationParameters" not in replaced
    got = aws.ssm.get_maintenance_window_task(WindowId=window_id, WindowTaskId=task_id)
    assert got["TaskArn"] == "AWS-RunShellScript" and got["TaskType"] == "RUN_COMMAND" and "Name" not in got

    aws.ssm.deregister_task_from_maintenance_window(WindowId=window_id, WindowTaskId=task_id)
    assert aws.ssm.describe_maintenance_window_tasks(WindowId=window_id)["Tasks"] == []


def test_task_client_token_is_idempotent(aws):
    window_id = _window(aws)
    first = _automation_task(aws, window_id, ClientToken="task-token")
    assert _automation_task(aws, window_id, ClientToken="task-token") == first
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        _automation_task(aws, window_id, ClientToken="task-token", Priority=9)
    assert _code(excinfo) == "IdempotentParameterMismatch"


# --- executions ----------------------------------------------------------------------------------------------

def test_execute_now_records_tasks_in_priority_order_and_never_fakes_unsimulated_tasks(aws, control):
    window_id = _window(aws, AllowUnassociatedTargets=True)
    _automation_task(aws, window_id, Priority=5, Name="late")
    _automation_task(aws, window_id, Priority=0, Name="early")
    result = _execute(aws, control, window_id)
    execution_id = result["window_execution_id"]
    assert result["status"] == "FAILED"

    execution = aws.ssm.get_maintenance_window_execution(WindowExecutionId=execution_id)
    assert execution["Status"] == "FAILED"
    assert execution["StatusDetails"] == "One or more tasks in the orchestration failed."
    assert execution["StartTime"] <= execution["EndTime"]
    tasks = _execution_tasks(aws, execution_id)
    assert [t["TaskExecutionId"] for t in tasks] == execution["TaskIds"]
    by_id = {t["TaskExecutionId"]: t for t in tasks}
    first, second = (aws.ssm.get_maintenance_window_execution_task(WindowExecutionId=execution_id, TaskId=task_id)
                     for task_id in execution["TaskIds"])
    assert (first["Priority"], second["Priority"]) == (0, 5)  # lower priority first
    assert first["EndTime"] <= second["StartTime"]
    assert first["Type"] == "AUTOMATION" and first["TaskParameters"][0]["InstanceId"] == {
        "Values": ["{{RESOURCE_ID}}"]}
    for task_execution_id, task in by_id.items():
        assert task["Status"] == "FAILED" and "Not simulated" in task["StatusDetails"]
        [invocation] = _invocations(aws, execution_id, task_execution_id)
        assert invocation["Status"] == "FAILED" and "Not simulated" in invocation["StatusDetails"]
        note = json.loads(invocation["Parameters"])["Automation"]["Parameters"]["Note"]
        assert note == [f"{execution_id}/{task_execution_id}"]  # pseudo parameters substituted
        got = aws.ssm.get_maintenance_window_execution_task_invocation(
            WindowExecutionId=execution_id, TaskId=task_execution_id, InvocationId=invocation["InvocationId"])
        assert got == {**invocation, "ResponseMetadata": got["ResponseMetadata"]}
    succeeded = aws.ssm.describe_maintenance_window_execution_tasks(
        WindowExecutionId=execution_id, Filters=[{"Key": "STATUS", "Values": ["SUCCESS"]}])
    assert succeeded["WindowExecutionTaskIdentities"] == []
    # Cancelling a finished execution changes nothing.
    aws.ssm.cancel_maintenance_window_execution(WindowExecutionId=execution_id)
    assert aws.ssm.get_maintenance_window_execution(WindowExecutionId=execution_id)["Status"] == "FAILED"


def test_executions_are_listed_newest_first_with_paging_and_time_filters(aws, control):
    window_id = _window(aws)
    ids = [_execute(aws, control, window_id)["window_execution_id"] for _ in range(11)]
    listed = [e for page in aws.ssm.get_paginator("describe_maintenance_window_executions").paginate(
        WindowId=window_id, PaginationConfig={"PageSize": 10}) for e in page["WindowExecutions"]]
    assert {e["WindowExecutionId"] for e in listed} == set(ids)
    assert [e["StartTime"] for e in listed] == sorted((e["StartTime"] for e in listed), reverse=True)
    assert all(e["Status"] == "SUCCESS" for e in listed)  # a window without tasks succeeds
    future = (_lab_now(control) + datetime.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    after = aws.ssm.describe_maintenance_window_executions(
        WindowId=window_id, Filters=[{"Key": "ExecutedAfter", "Values": [future]}])
    assert after["WindowExecutions"] == []


def test_a_disabled_window_does_not_run(aws, control):
    window_id = _window(aws)
    aws.ssm.update_maintenance_window(WindowId=window_id, Enabled=False)
    with pytest.raises(RuntimeError, match="HTTP 400.*disabled"):
        control.post("/windows/execute", {"account": aws.account, "region": aws.region, "window_id": window_id})
    assert aws.ssm.describe_maintenance_window_executions(WindowId=window_id)["WindowExecutions"] == []


def test_run_due_fires_windows_whose_schedule_came_round(aws, control):
    weekly = _window(aws, Name="weekly", Schedule="rate(7 days)")
    daily = _window(aws, Name="daily", Schedule="rate(1 day)")
    disabled = _window(aws, Name="disabled", Schedule="rate(1 day)")
    aws.ssm.update_maintenance_window(WindowId=disabled, Enabled=False)
    body = {"account": aws.account, "wait": True, "timeout": 30}

    assert control.post("/windows/run-due", body)["started"] == []
    control.post("/clock/advance", {"days": 1, "hours": 1})
    started = control.post("/windows/run-due", body)
    assert [s["window_id"] for s in started["started"]] == [daily] and started["finished"]
    assert control.post("/windows/run-due", body)["started"] == []  # one run per occurrence

    control.post("/clock/advance", {"days": 6})
    started = {s["window_id"] for s in control.post("/windows/run-due", body)["started"]}
    assert started == {weekly, daily}
    # Re-enabling a window does not fire the runs it missed while disabled.
    aws.ssm.update_maintenance_window(WindowId=disabled, Enabled=True)
    assert control.post("/windows/run-due", body)["started"] == []
    assert len(aws.ssm.describe_maintenance_window_executions(WindowId=weekly)["WindowExecutions"]) == 1


# --- executions that run commands or need nodes (commands.py's SendCommand, provision.py) ---------------------

def test_run_command_task_sends_one_command_per_window_target_in_turn(aws, control, lab):
    aws.launch("ubuntu-22.04", 2, {"PatchGroup": "prod-auto"})
    aws.launch("amzn-2023", 1, {"PatchGroup": "nonprod"})
    window_id = _window(aws)
    auto = _tag_target(aws, window_id, "prod-auto", OwnerInformation="team-a")
    nonprod = _tag_target(aws, window_id, "nonprod")
    _run_command_task(aws, window_id, [{"Key": "WindowTargetIds", "Values": [auto, nonprod]}])
    result = _execute(aws, control, window_id)
    execution_id = result["window_execution_id"]
    [task] = _execution_tasks(aws, execution_id)
    invocations = sorted(_invocations(aws, execution_id, task["TaskExecutionId"]), key=lambda i: i["StartTime"])
    assert [i["WindowTargetId"] for i in invocations] == [auto, nonprod]
    assert invocations[0]["OwnerInformation"] == "team-a"
    assert invocations[0]["EndTime"] <= invocations[1]["StartTime"]  # several targets run one after the other
    commands = lab.region(aws.account, aws.region).commands
    for invocation, node_count in zip(invocations, (2, 1)):
        command = commands[invocation["ExecutionId"]]
        assert len(command.invocations) == node_count
        parameters = json.loads(invocation["Parameters"])
        assert parameters["documentName"] == "AWS-RunPatchBaseline"
        assert parameters["parameters"]["SnapshotId"] == [execution_id]  # {{WINDOW_EXECUTION_ID}}
        assert sorted(parameters["instanceIds"]) == sorted(command.invocations)
        assert invocation["Status"] == {"Success": "SUCCESS", "Failed": "FAILED"}[command.status]
    assert result["status"] in ("SUCCESS", "FAILED")
    assert task["Status"] == ("SUCCESS" if all(i["Status"] == "SUCCESS" for i in invocations) else "FAILED")


def test_run_command_task_whose_targets_select_no_node_has_no_invocations(aws, control):
    window_id = _window(aws)
    target_id = _tag_target(aws, window_id, "nobody-has-this")
    _run_command_task(aws, window_id, [{"Key": "WindowTargetIds", "Values": [target_id]}])
    result = _execute(aws, control, window_id)
    [task] = _execution_tasks(aws, result["window_execution_id"])
    assert (task["Status"], task["StatusDetails"]) == ("SUCCESS", "No invocations to execute.")
    assert result["status"] == "SUCCESS"


def test_pseudo_parameters_per_node_make_one_invocation_per_node(aws, control):
    aws.launch("ubuntu-22.04", 2, {"PatchGroup": "prod-auto"})
    window_id = _window(aws)
    target_id = _tag_target(aws, window_id, "prod-auto")
    _automation_task(aws, window_id, Targets=[{"Key": "WindowTargetIds", "Values": [target_id]}],
                     MaxConcurrency="1", MaxErrors="1")
    result = _execute(aws, control, window_id)
    [task] = _execution_tasks(aws, result["window_execution_id"])
    invocations = _invocations(aws, result["window_execution_id"], task["TaskExecutionId"])
    ids = sorted(json.loads(i["Parameters"])["Automation"]["Parameters"]["InstanceId"][0] for i in invocations)
    assert len(ids) == 2 and all(node.startswith("i-") for node in ids)  # {{RESOURCE_ID}} is each node's id
    assert all(i["WindowTargetId"] == target_id for i in invocations)


def test_lambda_payload_is_substituted_per_invocation(aws, control):
    window_id = _window(aws)
    aws.ssm.register_task_with_maintenance_window(
        WindowId=window_id, TaskArn="arn:aws:lambda:eu-west-1:123456789012:function:notify", TaskType="LAMBDA",
        TaskInvocationParameters={"Lambda": {"Payload": b'{"window": "{{WINDOW_ID}}"}'}})
    result = _execute(aws, control, window_id)
    [task] = _execution_tasks(aws, result["window_execution_id"])
    [invocation] = _invocations(aws, result["window_execution_id"], task["TaskExecutionId"])
    payload = json.loads(invocation["Parameters"])["Lambda"]["Payload"]
    assert json.loads(payload) == {"window": window_id}


def _slow_window(aws, lab, monkeypatch, **window) -> str:
    """A window whose first task is a Run Command that takes about two seconds on its one node."""
    monkeypatch.setitem(lab.settings, "agent_seconds_per_node", 2.0)
    aws.launch("ubuntu-22.04", 1, {"PatchGroup": "slow"})
    window_id = _window(aws, **window)
    target_id = _tag_target(aws, window_id, "slow")
    _run_command_task(aws, window_id, [{"Key": "WindowTargetIds", "Values": [target_id]}], Priority=1)
    _automation_task(aws, window_id, Priority=2)
    return window_id


def test_no_task_starts_after_the_cutoff_and_an_overlapping_run_is_skipped(aws, control, lab, monkeypatch):
    window_id = _slow_window(aws, lab, monkeypatch, Duration=2, Cutoff=1)
    request = {"account": aws.account, "region": aws.region, "window_id": window_id}
    running = control.post("/windows/execute", request)
    assert running["status"] == "IN_PROGRESS" and not running["finished"]
    overlapping = control.post("/windows/execute", request)
    assert overlapping["status"] == "SKIPPED_OVERLAPPING"
    control.post("/clock/advance", {"hours": 1.5})  # past start + Duration - Cutoff while the first task runs

    execution = _finished_execution(aws, running["window_execution_id"])
    assert execution["Status"] == "TIMED_OUT"
    first, second = (aws.ssm.get_maintenance_window_execution_task(
        WindowExecutionId=running["window_execution_id"], TaskId=task_id) for task_id in execution["TaskIds"])
    assert first["Status"] == "SUCCESS"  # CutoffBehavior CONTINUE_TASK (the default): a running task goes on
    assert (second["Status"], second["StatusDetails"]) == (
        "TIMED_OUT", "The task did not start before the maintenance window cutoff.")
    statuses = {e["WindowExecutionId"]: e["Status"] for e in aws.ssm.describe_maintenance_window_executions(
        WindowId=window_id)["WindowExecutions"]}
    assert statuses == {running["window_execution_id"]: "TIMED_OUT",
                        overlapping["window_execution_id"]: "SKIPPED_OVERLAPPING"}


def test_cancelling_stops_tasks_that_have_not_started(aws, control, lab, monkeypatch):
    window_id = _slow_window(aws, lab, monkeypatch)
    running = control.post("/windows/execute", {"account": aws.account, "region": aws.region,
                                                "window_id": window_id})
    aws.ssm.cancel_maintenance_window_execution(WindowExecutionId=running["window_execution_id"])
    assert aws.ssm.get_maintenance_window_execution(
        WindowExecutionId=running["window_execution_id"])["Status"] == "CANCELLING"
    execution = _finished_execution(aws, running["window_execution_id"])
    assert execution["Status"] == "CANCELLED"
    first, second = _execution_tasks(aws, running["window_execution_id"])
    assert first["Status"] == "SUCCESS"  # "Tasks already in progress will continue to completion."
    assert second["Status"] == "CANCELLED"


def test_at_most_five_window_executions_run_at_once(aws, control, lab, monkeypatch):
    monkeypatch.setitem(lab.settings, "agent_seconds_per_node", 2.0)
    aws.launch("ubuntu-22.04", 1, {"PatchGroup": "slow"})
    windows = []
    for index in range(6):
        window_id = _window(aws, Name=f"busy-{index}")
        target_id = _tag_target(aws, window_id, "slow")
        _run_command_task(aws, window_id, [{"Key": "WindowTargetIds", "Values": [target_id]}])
        windows.append(window_id)
    for window_id in windows[:5]:
        control.post("/windows/execute", {"account": aws.account, "region": aws.region, "window_id": window_id})
    with pytest.raises(RuntimeError, match="HTTP 400.*Concurrent executions"):
        control.post("/windows/execute", {"account": aws.account, "region": aws.region, "window_id": windows[5]})
    assert aws.ssm.describe_maintenance_window_executions(WindowId=windows[5])["WindowExecutions"] == []
