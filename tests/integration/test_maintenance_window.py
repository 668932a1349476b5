# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""maintenance_window, maintenance_window_target, maintenance_window_task and maintenance_window_info through
ansible-playbook against the lab.

Each test works in an account of its own (the `account` fixture of test_patch_baseline.py: STS AssumeRole into a
fresh account id). playbooks/maintenance_window/steps.yml runs one module task per step; what the modules did is
read back with boto3, and the lab's call counter (control API /calls) shows which SSM calls they made.
"""
from __future__ import annotations

import json
import urllib.request
from collections import Counter

from accounts import changes
from accounts import converge
from accounts import failure
from accounts import run_steps

STEPS = "tests/integration/playbooks/maintenance_window/steps.yml"
WINDOW_NAME = "mw-install-auto"


def step(label: str, module: str, spec: dict, check: bool = False) -> dict:
    return {"step": label, "module": module, "spec": spec, "check": check}


def converge_steps(label: str, module: str, spec: dict) -> list:
    """converge() (check mode, apply, check mode again, apply again) of one module."""
    return [dict(s, module=module) for s in converge(label, spec)]


def control(url: str, method: str, path: str, body: dict | None = None) -> dict:
    """A call of the lab's control API at `url`."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{url}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def windows(ssm) -> dict:
    """{name: GetMaintenanceWindow} of the account's windows."""
    identities = ssm.describe_maintenance_windows()["WindowIdentities"]
    return {i["Name"]: ssm.get_maintenance_window(WindowId=i["WindowId"]) for i in identities}


def window_tags(ssm, window_id: str) -> dict:
    tags = ssm.list_tags_for_resource(ResourceType="MaintenanceWindow", ResourceId=window_id)["TagList"]
    return {tag["Key"]: tag["Value"] for tag in tags}


def targets(ssm, window_id: str) -> dict:
    """{name: DescribeMaintenanceWindowTargets row}."""
    rows = ssm.describe_maintenance_window_targets(WindowId=window_id)["Targets"]
    return {row["Name"]: row for row in rows}


def tasks(ssm, window_id: str) -> dict:
    """{name: GetMaintenanceWindowTask}."""
    rows = ssm.describe_maintenance_window_tasks(WindowId=window_id)["Tasks"]
    return {row["Name"]: ssm.get_maintenance_window_task(WindowId=window_id, WindowTaskId=row["WindowTaskId"])
            for row in rows}


def create_window(ssm, name: str = WINDOW_NAME, **members) -> str:
    """A window made directly through the API (test setup, or a change made outside Ansible)."""
    request = dict({"Name": name, "Schedule": "cron(0 3 ? * SUN *)", "Duration": 4, "Cutoff": 1,
                    "AllowUnassociatedTargets": False}, **members)
    return ssm.create_maintenance_window(**request)["WindowId"]


def register_target(ssm, window_id: str, name: str, group: str) -> str:
    return ssm.register_target_with_maintenance_window(
        WindowId=window_id, ResourceType="INSTANCE", Name=name,
        Targets=[{"Key": "tag:PatchGroup", "Values": [group]}])["WindowTargetId"]


# ------------------------------------------------------------------------------------------------ windows

WINDOW = {
    "name": WINDOW_NAME,
    "description": "Weekly install on auto-patched groups",
    "schedule": "cron(0 3 ? * TUE#2 *)",
    "schedule_offset": 4,
    "schedule_timezone": "Europe/Paris",
    "duration": 4,
    "cutoff": 1,
    "start_date": "2026-01-01T00:00:00Z",
    "end_date": "2030-01-01T00:00:00Z",
    "tags": {"Owner": "platform", "PatchPolicy": "prod-auto"},
}

# Every field group of WINDOW changed (and the tag PatchPolicy purged, the active period no longer set).
WINDOW_CHANGED = {
    "name": WINDOW_NAME,
    "description": "Daily install",
    "schedule": "rate(1 day)",
    "duration": 6,
    "cutoff": 2,
    "enabled": False,
    "allow_unassociated_targets": True,
    "tags": {"Owner": "security"},
}

# WINDOW_CHANGED as written another day: other spelling of the schedule.
WINDOW_CHANGED_RESPELLED = dict(WINDOW_CHANGED, schedule="RATE(1 DAY)")


def test_window_create_update_respell_and_delete(account, run_playbook):
    steps = converge_steps("create", "window", WINDOW)
    results = run_steps(run_playbook, account, STEPS, steps)

    assert changes(results) == [("create: check mode", True), ("create: apply", True),
                                ("create: check mode again", False), ("create: apply again", False)]
    assert results["create: check mode"].result["maintenance_window"]["window_id"] is None
    stored = windows(account.ssm)[WINDOW_NAME]
    assert results["create: apply"].result["maintenance_window"]["window_id"] == stored["WindowId"]
    assert (stored["Schedule"], stored["ScheduleOffset"], stored["ScheduleTimezone"]) == (
        "cron(0 3 ? * TUE#2 *)", 4, "Europe/Paris")
    assert (stored["Duration"], stored["Cutoff"], stored["Enabled"], stored["AllowUnassociatedTargets"]) == (
        4, 1, True, False)
    assert (stored["StartDate"], stored["EndDate"]) == ("2026-01-01T00:00:00+00:00", "2030-01-01T00:00:00+00:00")
    assert window_tags(account.ssm, stored["WindowId"]) == {"Owner": "platform", "PatchPolicy": "prod-auto"}

    steps = converge_steps("update", "window", WINDOW_CHANGED) + [
        step("respelled: check mode", "window", WINDOW_CHANGED_RESPELLED, check=True),
        step("respelled: apply", "window", WINDOW_CHANGED_RESPELLED)]
    results = run_steps(run_playbook, account, STEPS, steps)

    assert [changed for _name, changed in changes(results)] == [True, True, False, False, False, False]
    stored = windows(account.ssm)[WINDOW_NAME]
    assert (stored["Schedule"], stored["Duration"], stored["Cutoff"], stored["Enabled"],
            stored["AllowUnassociatedTargets"], stored["Description"]) == (
        "rate(1 day)", 6, 2, False, True, "Daily install")
    # What the task no longer sets is gone (UpdateMaintenanceWindow with Replace=true), not left over.
    assert not {"ScheduleOffset", "ScheduleTimezone", "StartDate", "EndDate"} & set(stored)
    assert window_tags(account.ssm, stored["WindowId"]) == {"Owner": "security"}
    diff = results["update: apply"].result["diff"]
    assert (diff["before"]["schedule_offset"], diff["after"]["schedule_offset"]) == (4, None)
    assert (diff["before"]["enabled"], diff["after"]["enabled"]) == (True, False)

    results = run_steps(run_playbook, account, STEPS,
                        converge_steps("delete", "window", {"name": WINDOW_NAME, "state": "absent"}))
    assert [changed for _name, changed in changes(results)] == [True, True, False, False]
    assert windows(account.ssm) == {}


def test_window_console_drift_is_corrected_and_a_no_op_run_reads_once(account, run_playbook):
    window_id = create_window(account.ssm, Description="edited in the console", ScheduleOffset=2,
                              Schedule="cron(0 3 ? * TUE#2 *)", Tags=[{"Key": "Owner", "Value": "ops"}])
    spec = {"name": WINDOW_NAME, "schedule": "cron(0 3 ? * tue#2 *)", "duration": 4, "cutoff": 1,
            "tags": {"Owner": "ops"}}
    results = run_steps(run_playbook, account, STEPS, [step("drift", "window", spec)])
    assert changes(results) == [("drift", True)]
    stored = windows(account.ssm)[WINDOW_NAME]
    assert (stored["WindowId"], stored.get("Description"), stored.get("ScheduleOffset")) == (window_id, None, None)

    control(account.control_url, "POST", "/calls/reset", {})
    untagged = {key: value for key, value in spec.items() if key != "tags"}
    results = run_steps(run_playbook, account, STEPS, [step("no-op", "window", spec),
                                                       step("no-op, tags unmanaged", "window", untagged)])
    assert changes(results) == [("no-op", False), ("no-op, tags unmanaged", False)]
    # Per no-op run: one DescribeMaintenanceWindows page (find by name) and one GetMaintenanceWindow;
    # ListTagsForResource only when the task manages tags.
    assert account.calls() == Counter(DescribeMaintenanceWindows=2, GetMaintenanceWindow=2, ListTagsForResource=1)


# ------------------------------------------------------------------------------------------------ targets

TARGET = {"window": WINDOW_NAME, "name": "prod-auto", "description": "Auto-patched application servers",
          "targets": [{"key": "tag:PatchGroup", "values": ["prod-auto"]},
                      {"key": "tag:Environment", "values": ["prod", "production"]}],
          "owner_information": "prod-auto weekly install"}
TARGET_CHANGED = {"window": WINDOW_NAME, "name": "prod-auto",
                  "targets": [{"key": "tag:PatchGroup", "values": ["prod-auto", "jump-log"]},
                              {"key": "InstanceIds", "values": ["i-0123456789abcdef0"]}]}
TARGET_CHANGED_REORDERED = dict(TARGET_CHANGED, targets=[
    {"key": "instanceids", "values": ["i-0123456789abcdef0", "i-0123456789abcdef0"]},
    {"key": "tag:PatchGroup", "values": ["jump-log", "prod-auto"]}])


def test_target_register_update_reorder_and_deregister(account, run_playbook):
    window_id = create_window(account.ssm)
    steps = (converge_steps("register", "target", TARGET) + converge_steps("update", "target", TARGET_CHANGED)
             + [step("reordered: check mode", "target", TARGET_CHANGED_REORDERED, check=True),
                step("reordered: apply", "target", TARGET_CHANGED_REORDERED)])
    results = run_steps(run_playbook, account, STEPS, steps)

    assert [changed for _name, changed in changes(results)] == [True, True, False, False, True, True, False, False,
                                                                False, False]
    (stored,) = targets(account.ssm, window_id).values()
    assert results["register: apply"].result["maintenance_window_target"]["window_target_id"] == \
        stored["WindowTargetId"]
    assert sorted(stored["Targets"], key=lambda t: t["Key"]) == [
        {"Key": "InstanceIds", "Values": ["i-0123456789abcdef0"]},
        {"Key": "tag:PatchGroup", "Values": ["jump-log", "prod-auto"]}]
    assert "OwnerInformation" not in stored and "Description" not in stored  # Replace=true nulled them
    diff = results["update: apply"].result["diff"]
    assert diff["before"]["owner_information"] == "prod-auto weekly install" and diff["after"]["owner_information"] \
        is None

    absent = {"window": WINDOW_NAME, "name": "prod-auto", "state": "absent"}
    results = run_steps(run_playbook, account, STEPS, converge_steps("deregister", "target", absent))
    assert [changed for _name, changed in changes(results)] == [True, True, False, False]
    assert targets(account.ssm, window_id) == {}


def test_a_target_in_use_is_kept_naming_the_tasks_unless_safe_is_false(account, run_playbook):
    window_id = create_window(account.ssm)
    target_id = register_target(account.ssm, window_id, "prod-auto", "prod-auto")
    account.ssm.register_task_with_maintenance_window(
        WindowId=window_id, Name="install", TaskType="RUN_COMMAND", TaskArn="AWS-RunPatchBaseline",
        Targets=[{"Key": "WindowTargetIds", "Values": [target_id]}], MaxConcurrency="1", MaxErrors="0")
    absent = {"window": WINDOW_NAME, "name": "prod-auto", "state": "absent"}
    results = run_steps(run_playbook, account, STEPS, [
        step("in use: check mode", "target", absent, check=True), step("in use", "target", absent),
        step("unsafe", "target", dict(absent, safe=False))])

    for name in ("in use: check mode", "in use"):
        assert failure(results, name).startswith(
            f"state: the target 'prod-auto' ({target_id}) cannot be deregistered: tasks install use it")
    assert changes(results)[2] == ("unsafe", True)
    assert targets(account.ssm, window_id) == {}


# ------------------------------------------------------------------------------------------------ tasks

INSTALL = {
    "window": WINDOW_NAME, "name": "install", "description": "Install approved patches",
    "targets": ["prod-auto", "jump-log"], "max_concurrency": "25%", "max_errors": "1",
    "cutoff_behavior": "CANCEL_TASK", "priority": 2,
    "patch_baseline": {"operation": "Install", "reboot_option": "RebootIfNeeded"},
    "run_command": {"output_s3_bucket": "patch-logs-123", "output_s3_key_prefix": "install/", "timeout_seconds": 900,
                    "comment": "weekly install", "cloudwatch_output": {"log_group": "/fleetpatch/install"}},
    "alarm_configuration": {"alarms": ["patching-errors"]},
}
# Every field group changed; run_command options no longer set.
INSTALL_CHANGED = {
    "window": WINDOW_NAME, "name": "install", "targets": ["prod-auto"], "max_concurrency": "10", "max_errors": "0",
    "priority": 1, "service_role_arn": "arn:aws:iam::{account}:role/mw-tasks",
    "patch_baseline": {"operation": "Install", "reboot_option": "NoReboot",
                       "install_override_list": "s3://patch-lists/prod-auto.yaml"},
}


def test_task_register_update_reorder_and_deregister(account, run_playbook):
    window_id = create_window(account.ssm)
    target_ids = {name: register_target(account.ssm, window_id, name, name) for name in ("prod-auto", "jump-log")}
    changed = dict(INSTALL_CHANGED, service_role_arn=INSTALL_CHANGED["service_role_arn"].format(
        account=account.account_id))
    reordered = dict(INSTALL, targets=["jump-log", target_ids["prod-auto"]])
    steps = (converge_steps("register", "task", INSTALL)
             + [step("reordered: check mode", "task", reordered, check=True), step("reordered", "task", reordered)]
             + converge_steps("update", "task", changed))
    results = run_steps(run_playbook, account, STEPS, steps)

    assert [changed for _name, changed in changes(results)] == [True, True, False, False, False, False,
                                                                True, True, False, False]
    registered = results["register: apply"].result["maintenance_window_task"]
    assert registered["targets"] == ["jump-log", "prod-auto"]
    (stored,) = tasks(account.ssm, window_id).values()
    assert stored["TaskArn"] == "AWS-RunPatchBaseline"
    assert stored["Targets"] == [{"Key": "WindowTargetIds", "Values": [target_ids["prod-auto"]]}]
    assert (stored["MaxConcurrency"], stored["MaxErrors"], stored["Priority"]) == ("10", "0", 1)
    assert stored["ServiceRoleArn"] == changed["service_role_arn"]
    assert stored["TaskInvocationParameters"] == {"RunCommand": {"Parameters": {
        "Operation": ["Install"], "RebootOption": ["NoReboot"],
        "InstallOverrideList": ["s3://patch-lists/prod-auto.yaml"]}}}
    assert "CutoffBehavior" not in stored and "AlarmConfiguration" not in stored
    assert "TaskParameters" not in stored and "LoggingInfo" not in stored  # never the deprecated members
    diff = results["update: apply"].result["diff"]
    assert (diff["before"]["patch_baseline"]["reboot_option"], diff["after"]["patch_baseline"]["reboot_option"]) == (
        "RebootIfNeeded", "NoReboot")

    absent = {"window": WINDOW_NAME, "name": "install", "state": "absent"}
    results = run_steps(run_playbook, account, STEPS, converge_steps("deregister", "task", absent))
    assert [changed for _name, changed in changes(results)] == [True, True, False, False]
    assert tasks(account.ssm, window_id) == {}


def test_a_targetless_task_sends_no_limits_and_awss_placeholder_is_no_change(account, run_playbook):
    window_id = create_window(account.ssm)
    report = {"window": WINDOW_NAME, "name": "report", "task_type": "LAMBDA",
              "task_arn": f"arn:aws:lambda:{account.region}:{account.account_id}:function:patch-report",
              "lambda": {"payload": '{"window": "install"}', "qualifier": "prod"}}
    results = run_steps(run_playbook, account, STEPS, converge_steps("targetless", "task", report))

    assert [changed for _name, changed in changes(results)] == [True, True, False, False]
    (stored,) = tasks(account.ssm, window_id).values()
    assert (stored["MaxConcurrency"], stored["MaxErrors"]) == ("1", "1")  # AWS's placeholders
    assert results["targetless: apply"].result["maintenance_window_task"]["max_concurrency"] is None
    assert stored["TaskInvocationParameters"]["Lambda"]["Qualifier"] == "prod"


# ------------------------------------------------------------------------------------------------ invalid inputs

VALID_WINDOW = {"name": "mw-invalid", "schedule": "cron(0 3 ? * SUN *)", "duration": 4, "cutoff": 1}
VALID_TARGET = {"window": "mw-invalid", "name": "web", "targets": [{"key": "tag:PatchGroup", "values": ["web"]}]}
VALID_TASK = {"window": "mw-invalid", "name": "scan", "targets": ["web"], "max_concurrency": "10%",
              "max_errors": "1", "patch_baseline": {"operation": "Scan"}}

INVALID = [
    # (case, module, options changed from the valid ones, text the message must contain: field and problem)
    ("cron 5 fields", "window", {"schedule": "cron(0 3 * * SUN)"},
     "schedule: 'cron(0 3 * * SUN)' is not a valid schedule: a cron expression has 6 fields"),
    ("cron both days", "window", {"schedule": "cron(0 3 1 * SUN *)"}, "exactly one of day-of-month and day-of-week"),
    ("cron range", "window", {"schedule": "cron(0 25 ? * SUN *)"}, "hours value '25' is not in 0-23"),
    ("cron too often", "window", {"schedule": "cron(0/2 * ? * SUN *)"}, "runs more often than every 5 minutes"),
    ("rate too often", "window", {"schedule": "rate(1 minute)"}, "runs more often than every 5 minutes"),
    ("rate plural", "window", {"schedule": "rate(7 day)"}, "singular for a value of 1 and plural otherwise"),
    ("rate unit", "window", {"schedule": "rate(1 week)"}, "schedule: 'rate(1 week)' is not a valid schedule"),
    ("cutoff = duration", "window", {"cutoff": 4}, "cutoff: 4 is not below duration (4); allowed: 0 to 3"),
    ("cutoff > duration", "window", {"duration": 2, "cutoff": 3}, "cutoff: 3 is not below duration (2)"),
    ("duration range", "window", {"duration": 25}, "duration: 25 is out of range; allowed: 1 to 24"),
    ("offset range", "window", {"schedule_offset": 7}, "schedule_offset: 7 is out of range; allowed: 1 to 6"),
    ("offset without cron", "window", {"schedule": "rate(7 days)", "schedule_offset": 2},
     "schedule_offset: 2 applies to cron schedules only"),
    ("timezone", "window", {"schedule_timezone": "CET+1"}, "schedule_timezone: 'CET+1' is not an IANA time zone"),
    ("end before start", "window", {"start_date": "2027-01-01", "end_date": "2026-01-01"},
     "end_date: '2026-01-01T00:00:00' is not after start_date"),
    ("date format", "window", {"start_date": "01/02/2026"}, "start_date: '01/02/2026' is not an ISO-8601 date-time"),
    ("window name", "window", {"name": "install window"}, "name: 'install window' is not valid"),
    ("target key", "target", {"targets": [{"key": "PatchGroup", "values": ["web"]}]},
     "targets[0].key: 'PatchGroup' is not a target key for resource_type INSTANCE"),
    ("6 target entries", "target", {"targets": [{"key": f"tag:k{n}", "values": ["v"]} for n in range(6)]},
     "targets: 6 entries; allowed: at most 5"),
    ("instance id", "target", {"targets": [{"key": "InstanceIds", "values": ["web-1"]}]},
     "targets[0].values[0]: 'web-1' is not valid"),
    ("resource group", "target", {"resource_type": "RESOURCE_GROUP"},
     "targets[0].key: 'tag:PatchGroup' is not a target key for resource_type RESOURCE_GROUP"),
    ("concurrency 0", "task", {"max_concurrency": "0"}, "max_concurrency: '0' is not valid"),
    ("concurrency 101%", "task", {"max_concurrency": "101%"}, "max_concurrency: '101%' is not valid"),
    ("errors pattern", "task", {"max_errors": "5 %"}, "max_errors: '5 %' is not valid"),
    ("targets without limits", "task", {"max_errors": None}, "max_errors: required for a task with targets"),
    ("targetless with limits", "task", {"task_type": "LAMBDA", "task_arn": "fn", "targets": None,
                                        "patch_baseline": None, "max_errors": None},
     "max_concurrency: '10%' cannot be set for a task without targets"),
    ("run command without targets", "task", {"targets": None, "max_concurrency": None, "max_errors": None},
     "targets: [] is empty"),
    ("11 task targets", "task", {"targets": [f"t{n}" for n in range(11)]}, "targets: 11 entries; allowed: at most 10"),
    ("override and baseline", "task", {"patch_baseline": {"operation": "Install",
                                                          "install_override_list": "s3://l/x.yaml",
                                                          "baseline_override": "s3://l/b.json"}},
     "patch_baseline.baseline_override: 's3://l/b.json' cannot be combined with install_override_list"),
    ("patch with other document", "task", {"task_arn": "AWS-RunShellScript"},
     "task_arn: 'AWS-RunShellScript' is not AWS-RunPatchBaseline"),
    ("timeout", "task", {"run_command": {"timeout_seconds": 5}}, "run_command.timeout_seconds: 5 is out of range"),
]
VALID = {"window": VALID_WINDOW, "target": VALID_TARGET, "task": VALID_TASK}


def test_invalid_inputs_fail_naming_the_field_and_write_nothing(account, run_playbook):
    steps = [step(case, module, {k: v for k, v in dict(VALID[module], **options).items() if v is not None})
             for case, module, options, _message in INVALID]
    results = run_steps(run_playbook, account, STEPS, steps)

    for case, _module, _options, expected in INVALID:
        assert expected in failure(results, case), case
    # Validation runs before any SSM call: the account saw none, so nothing can have been written.
    assert account.calls() == Counter()
    assert windows(account.ssm) == {}


def test_a_missing_window_or_target_fails_naming_the_field_and_writes_nothing(account, run_playbook):
    window_id = create_window(account.ssm, name="mw-invalid")
    results = run_steps(run_playbook, account, STEPS, [
        step("no window", "target", dict(VALID_TARGET, window="mw-nope")),
        step("no window id", "task", dict(VALID_TASK, window="mw-0000000000000000a")),
        step("no target", "task", VALID_TASK)])

    assert failure(results, "no window").startswith("window: 'mw-nope' is not a maintenance window in this account")
    assert failure(results, "no window id").startswith("window: 'mw-0000000000000000a' is not a maintenance window")
    assert failure(results, "no target").startswith("targets: 'web' is not a target of the window 'mw-invalid'")
    assert (targets(account.ssm, window_id), tasks(account.ssm, window_id)) == ({}, {})


# ------------------------------------------------------------------------------------------------ a whole policy

POLICY = [
    ("window", {"name": WINDOW_NAME, "schedule": "cron(0 3 ? * TUE#2 *)", "schedule_offset": 4, "duration": 4,
                "cutoff": 1, "tags": {"Owner": "platform"}}),
    ("target", {"window": WINDOW_NAME, "name": "prod-auto", "targets": [{"key": "tag:PatchGroup",
                                                                         "values": ["prod-auto"]}]}),
    ("target", {"window": WINDOW_NAME, "name": "jump-log", "targets": [{"key": "tag:PatchGroup",
                                                                        "values": ["jump-log"]}]}),
    ("task", dict(INSTALL, patch_baseline={"operation": "Install"}, run_command=None, alarm_configuration=None)),
    ("task", {"window": WINDOW_NAME, "name": "scan", "priority": 0, "targets": ["prod-auto", "jump-log"],
              "max_concurrency": "50%", "max_errors": "10%", "patch_baseline": {"operation": "Scan"}}),
]


def policy_steps(label: str, check: bool = False) -> list:
    return [step(f"{label}: {module} {spec['name']}", module, {k: v for k, v in spec.items() if v is not None}, check)
            for module, spec in POLICY]


def test_a_policy_checked_on_a_fresh_account_then_applied_then_a_no_op_run_reads_once(account, run_playbook):
    results = run_steps(run_playbook, account, STEPS, policy_steps("check", check=True))
    assert all(changed is True for _name, changed in changes(results))
    # The window does not exist yet: targets and tasks say so in a warning, and nothing is written.
    assert "does not exist (yet)" in results["check: target prod-auto"].result["warnings"][0]
    assert windows(account.ssm) == {}

    results = run_steps(run_playbook, account, STEPS, policy_steps("apply"))
    assert all(changed is True for _name, changed in changes(results))

    control(account.control_url, "POST", "/calls/reset", {})
    results = run_steps(run_playbook, account, STEPS, policy_steps("again"))
    assert not any(changed for _name, changed in changes(results))
    # 5 resources: per window 1 list + 1 read (+ tags), per target 2 lists, per task 3 lists + 1 read.
    assert account.calls() == Counter(DescribeMaintenanceWindows=5, GetMaintenanceWindow=1, ListTagsForResource=1,
                                      DescribeMaintenanceWindowTargets=4, DescribeMaintenanceWindowTasks=2,
                                      GetMaintenanceWindowTask=2)


# ------------------------------------------------------------------------------------------------ info

def test_info_lists_windows_targets_tasks_and_the_last_run(account, run_playbook):
    window_id = create_window(account.ssm, Tags=[{"Key": "Owner", "Value": "ops"}])
    target_id = register_target(account.ssm, window_id, "prod-auto", "prod-auto")
    account.ssm.register_task_with_maintenance_window(
        WindowId=window_id, Name="scan", TaskType="RUN_COMMAND", TaskArn="AWS-RunPatchBaseline", Priority=0,
        Targets=[{"Key": "WindowTargetIds", "Values": [target_id]}], MaxConcurrency="1", MaxErrors="0",
        TaskInvocationParameters={"RunCommand": {"Parameters": {"Operation": ["Scan"]}}})
    create_window(account.ssm, name="mw-disabled")
    account.ssm.update_maintenance_window(WindowId=windows(account.ssm)["mw-disabled"]["WindowId"], Enabled=False)
    execution = control(account.control_url, "POST", "/windows/execute", {
        "account": account.account_id, "region": account.region, "window_id": window_id, "wait": True})
    assert execution["finished"] is True

    results = run_steps(run_playbook, account, STEPS, [
        step("every window", "info", {}),
        step("last run", "info", {"name": WINDOW_NAME, "executions": 1, "include_targets": False}),
        step("disabled", "info", {"enabled": False, "include_tasks": False})])

    every = results["every window"].result["maintenance_windows"]
    assert [w["name"] for w in every] == ["mw-disabled", WINDOW_NAME]
    mine = every[1]
    assert mine["tags"] == {"Owner": "ops"} and mine["targets"][0]["name"] == "prod-auto"
    assert mine["tasks"][0]["patch_baseline"]["operation"] == "Scan" and mine["tasks"][0]["targets"] == ["prod-auto"]
    (last,) = results["last run"].result["maintenance_windows"]
    assert "targets" not in last and last["tasks"][0]["name"] == "scan"
    (run,) = last["executions"]
    assert run["window_execution_id"] == execution["window_execution_id"]
    assert run["status"] == execution["status"] and [t["task_arn"] for t in run["tasks"]] == ["AWS-RunPatchBaseline"]
    assert [w["name"] for w in results["disabled"].result["maintenance_windows"]] == ["mw-disabled"]
