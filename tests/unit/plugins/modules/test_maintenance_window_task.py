# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleetpatch.ssm.maintenance_window_task on a stubbed SSM client: the exact calls of each kind of run."""
from __future__ import annotations

import pytest
from botocore.stub import ANY

from ansible_collections.fleetpatch.ssm.plugins.modules import maintenance_window_task
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import run_module
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import stubbed
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_window import WINDOW_ID
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_window import expect_targets
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_window import expect_task
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_window import expect_tasks
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_window import expect_windows
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_window import patch_invocation
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_window import target_id
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_window import target_row
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_window import task_id
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_window import task_response
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_window import window_identity

ARGS = {"window": "mw-install-auto", "name": "install", "targets": ["prod-auto"], "max_concurrency": "10%",
        "max_errors": "1", "patch_baseline": {"operation": "Install"}}
# What the module sends for ARGS.
SENT = {"Name": "install", "TaskArn": "AWS-RunPatchBaseline", "Priority": 1, "MaxConcurrency": "10%",
        "MaxErrors": "1", "Targets": [{"Key": "WindowTargetIds", "Values": [target_id(1)]}],
        "TaskInvocationParameters": patch_invocation()}
TARGETS = [target_row("prod-auto", 1), target_row("jump-log", 2)]


def expect_read(stubber, response=None):
    """A run's read: window by name, its targets, its tasks, then GetMaintenanceWindowTask of the one found."""
    expect_windows(stubber, [window_identity()])
    expect_targets(stubber, TARGETS)
    expect_tasks(stubber, [task_response("scan", 9)] + ([response] if response else []))
    if response:
        expect_task(stubber, response)


def run(args, calls=(), check_mode=False):
    with stubbed() as (client, stubber):
        for queue in calls:
            queue(stubber)
        return run_module(maintenance_window_task.main, args, client, check_mode=check_mode)


def test_register_a_patching_task_then_read_it_back():
    result = run(ARGS, calls=[
        expect_read,
        lambda s: s.add_response("register_task_with_maintenance_window", {"WindowTaskId": task_id(1)},
                                 dict(SENT, WindowId=WINDOW_ID, TaskType="RUN_COMMAND", ClientToken=ANY)),
        lambda s: expect_read(s, task_response()),
    ])
    assert result["changed"] is True
    task = result["maintenance_window_task"]
    assert (task["window_task_id"], task["targets"], task["task_arn"]) == (
        task_id(1), ["prod-auto"], "AWS-RunPatchBaseline")
    assert task["patch_baseline"]["operation"] == "Install"


def test_check_mode_registers_nothing():
    result = run(ARGS, calls=[expect_read], check_mode=True)
    assert result["changed"] is True
    assert result["maintenance_window_task"]["window_task_id"] is None
    assert result["maintenance_window_task"]["targets"] == ["prod-auto"]


def test_a_run_that_changes_nothing_reads_the_task_once_whatever_the_target_spelling():
    response = task_response(targets=(2, 1))
    args = dict(ARGS, targets=[target_id(1), "jump-log", "prod-auto"])
    result = run(args, calls=[lambda s: expect_read(s, response)])
    assert result == {"changed": False, "maintenance_window_task": result["maintenance_window_task"]}
    assert result["maintenance_window_task"]["targets"] == ["jump-log", "prod-auto"]


@pytest.mark.parametrize("change, members", [
    ({"priority": 0, "description": "install first"}, {"Priority": 0, "Description": "install first"}),
    ({"targets": ["prod-auto", "jump-log"]},
     {"Targets": [{"Key": "WindowTargetIds", "Values": [target_id(2), target_id(1)]}]}),
    ({"max_concurrency": "2", "max_errors": "0%"}, {"MaxConcurrency": "2", "MaxErrors": "0%"}),
    ({"cutoff_behavior": "CANCEL_TASK", "alarm_configuration": {"alarms": ["patch-errors"]}},
     {"CutoffBehavior": "CANCEL_TASK",
      "AlarmConfiguration": {"Alarms": [{"Name": "patch-errors"}], "IgnorePollAlarmFailure": False}}),
    ({"service_role_arn": "arn:aws:iam::123456789012:role/mw"},
     {"ServiceRoleArn": "arn:aws:iam::123456789012:role/mw"}),
    ({"patch_baseline": {"operation": "Install", "reboot_option": "NoReboot"}},
     {"TaskInvocationParameters": patch_invocation(reboot="NoReboot")}),
    ({"run_command": {"output_s3_bucket": "logs", "output_s3_key_prefix": "install/", "timeout_seconds": 600,
                      "comment": "weekly", "cloudwatch_output": {"log_group": "/fleetpatch"}}},
     {"TaskInvocationParameters": patch_invocation(
         OutputS3BucketName="logs", OutputS3KeyPrefix="install/", TimeoutSeconds=600, Comment="weekly",
         CloudWatchOutputConfig={"CloudWatchOutputEnabled": True, "CloudWatchLogGroupName": "/fleetpatch"})}),
])
def test_each_field_group_is_updated_with_the_whole_task(change, members):
    update = dict(SENT, WindowId=WINDOW_ID, WindowTaskId=task_id(1), Replace=True)
    update.update(members)
    result = run(dict(ARGS, **change), calls=[
        lambda s: expect_read(s, task_response()),
        lambda s: s.add_response("update_maintenance_window_task", {}, update),
        lambda s: expect_read(s, task_response()),
    ])
    assert result["changed"] is True


def test_a_changed_task_type_replaces_the_task():
    args = {"window": "mw-install-auto", "name": "install", "task_type": "LAMBDA", "task_arn": "report"}
    result = run(args, calls=[
        lambda s: expect_read(s, task_response()),
        lambda s: s.add_response("deregister_task_from_maintenance_window", {},
                                 {"WindowId": WINDOW_ID, "WindowTaskId": task_id(1)}),
        lambda s: s.add_response("register_task_with_maintenance_window", {"WindowTaskId": task_id(2)}, {
            "WindowId": WINDOW_ID, "TaskType": "LAMBDA", "ClientToken": ANY, "Name": "install", "TaskArn": "report",
            "Priority": 1}),
        lambda s: expect_read(s, task_response(n=2, targets=(), TaskType="LAMBDA", TaskArn="report",
                                               TaskInvocationParameters={})),
    ])
    assert result["changed"] is True
    assert result["maintenance_window_task"]["window_task_id"] == task_id(2)
    assert (result["diff"]["before"]["task_type"], result["diff"]["after"]["task_type"]) == ("RUN_COMMAND", "LAMBDA")


def test_a_targetless_task_with_awss_placeholders_is_no_change():
    args = {"window": "mw-install-auto", "name": "report", "task_type": "LAMBDA", "task_arn": "report"}
    response = task_response("report", targets=(), TaskType="LAMBDA", TaskArn="report", TaskInvocationParameters={})
    assert run(args, calls=[lambda s: expect_read(s, response)])["changed"] is False


def test_an_unknown_target_fails_naming_the_known_ones_and_warns_in_check_mode():
    args = dict(ARGS, targets=["prod-auto", "db"])
    failed = run(args, calls=[expect_read])
    assert failed["failed"] is True
    assert failed["msg"].startswith("targets: 'db' is not a target of the window 'mw-install-auto'; allowed: the name "
                                    "or ID of one of its targets (jump-log, prod-auto)")
    checked = run(args, calls=[expect_read], check_mode=True)
    assert checked["changed"] is True and checked["maintenance_window_task"]["targets"] == ["db", "prod-auto"]
    assert "check mode assumes an earlier task registers them" in checked["warnings"][0]


def test_in_check_mode_a_window_that_does_not_exist_yet_is_a_warning():
    result = run(ARGS, calls=[lambda s: expect_windows(s, [])], check_mode=True)
    assert result["changed"] is True
    assert result["maintenance_window_task"]["window_id"] is None
    assert result["warnings"][0].startswith("window 'mw-install-auto' does not exist (yet)")


def test_a_snapshot_id_is_sent_with_a_warning_that_windows_supply_their_own():
    snapshot = "12345699-9405-4f69-bc5e-9315a0000000"
    args = dict(ARGS, patch_baseline={"operation": "Install", "snapshot_id": snapshot})
    result = run(args, calls=[lambda s: expect_read(s, task_response(
        TaskInvocationParameters=patch_invocation(Parameters={"Operation": ["Install"], "SnapshotId": [snapshot],
                                                              "RebootOption": ["RebootIfNeeded"]})))])
    assert result["changed"] is False
    assert result["warnings"] == [
        "patch_baseline.snapshot_id is set: in a maintenance window AWS recommends leaving it unset (Patch Manager "
        "supplies one per window execution), and a snapshot is kept at most three days"]


def test_deregister_and_again():
    args = {"window": "mw-install-auto", "name": "install", "state": "absent"}
    result = run(args, calls=[
        lambda s: expect_read(s, task_response()),
        lambda s: s.add_response("deregister_task_from_maintenance_window", {},
                                 {"WindowId": WINDOW_ID, "WindowTaskId": task_id(1)})])
    assert result["changed"] is True and result["maintenance_window_task"] is None
    assert run(args, calls=[expect_read]) == {"changed": False, "maintenance_window_task": None}


@pytest.mark.parametrize("change, message", [
    ({"max_concurrency": "0"}, "max_concurrency: '0' is not valid"),
    ({"max_errors": None}, "max_errors: required for a task with targets"),
    ({"task_type": "STEP_FUNCTIONS", "patch_baseline": None, "task_arn": "sm", "targets": None,
      "max_concurrency": None}, "max_errors: '1' cannot be set for a task without targets"),
    ({"patch_baseline": {"operation": "Install", "snapshot_id": "run-1"}}, "patch_baseline.snapshot_id: 'run-1'"),
])
def test_invalid_input_fails_before_any_call(change, message):
    result = run(dict(ARGS, **change))
    assert result["failed"] is True
    assert result["msg"].startswith(message)
