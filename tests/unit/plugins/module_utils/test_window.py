# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Windows, targets and tasks in the user's terms: validation, normalisation both ways, requests without unset
fields, and the SSM calls (every one checked against botocore's model by Stubber).

The API answers and module parameters built here are shared with the module tests (tests/unit/plugins/modules).
"""
from __future__ import annotations

import datetime

import pytest
from botocore.stub import ANY

from ansible_collections.fleetpatch.ssm.plugins.module_utils import window as api
from ansible_collections.fleetpatch.ssm.plugins.module_utils.validation import ParameterError
from ansible_collections.fleetpatch.ssm.plugins.modules import maintenance_window
from ansible_collections.fleetpatch.ssm.plugins.modules import maintenance_window_target
from ansible_collections.fleetpatch.ssm.plugins.modules import maintenance_window_task
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import ACCOUNT
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import NOW
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import stubbed

WINDOW_ID = "mw-0123456789abcdef0"
SERVICE_LINKED_ROLE = f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/ssm.amazonaws.com/AWSServiceRoleForAmazonSSM"


def target_id(n: int) -> str:
    return f"{n:08x}-0000-4000-8000-000000000000"


def task_id(n: int) -> str:
    return f"{n:08x}-1111-4000-8000-000000000000"


def module_params(spec: dict, **options) -> dict:
    """What AnsibleModule hands a module: every option of `spec`, defaults filled in (nested ones too)."""
    params = {name: option.get("default") for name, option in spec.items()}
    for name, value in options.items():
        suboptions = spec[name].get("options")
        if suboptions and isinstance(value, dict):
            value = module_params(suboptions, **value)
        params[name] = value
    return params


def window_params(**options) -> dict:
    base = {"name": "mw-install-auto", "schedule": "cron(0 3 ? * SUN *)", "duration": 4, "cutoff": 1}
    return module_params(maintenance_window.argument_spec(), **dict(base, **options))


def target_params(**options) -> dict:
    base = {"window": "mw-install-auto", "name": "prod-auto", "targets": [{"key": "tag:PatchGroup",
                                                                          "values": ["prod-auto"]}]}
    return module_params(maintenance_window_target.argument_spec(), **dict(base, **options))


def task_params(**options) -> dict:
    base = {"window": "mw-install-auto", "name": "install", "targets": ["prod-auto"], "max_concurrency": "10%",
            "max_errors": "1", "patch_baseline": {"operation": "Install"}}
    return module_params(maintenance_window_task.argument_spec(), **dict(base, **options))


# ---------------------------------------------------------------------------------------------- API answers

def window_response(**members) -> dict:
    """GetMaintenanceWindow of the window window_params() describes, with `members` changed."""
    response = {"WindowId": WINDOW_ID, "Name": "mw-install-auto", "Schedule": "cron(0 3 ? * SUN *)", "Duration": 4,
                "Cutoff": 1, "AllowUnassociatedTargets": False, "Enabled": True,
                "NextExecutionTime": "2026-01-11T03:00Z", "CreatedDate": NOW, "ModifiedDate": NOW}
    response.update(members)
    return response


def window_identity(name: str = "mw-install-auto", window_id: str = WINDOW_ID) -> dict:
    """A DescribeMaintenanceWindows identity."""
    return {"WindowId": window_id, "Name": name, "Enabled": True, "Duration": 4, "Cutoff": 1,
            "Schedule": "cron(0 3 ? * SUN *)"}


def target_row(name, n=1, targets=None, resource_type="INSTANCE", **members) -> dict:
    """A DescribeMaintenanceWindowTargets row."""
    row = {"WindowId": WINDOW_ID, "WindowTargetId": target_id(n), "ResourceType": resource_type,
           "Targets": targets or [{"Key": "tag:PatchGroup", "Values": [name]}]}
    if name is not None:
        row["Name"] = name
    row.update(members)
    return row


def patch_invocation(operation="Install", reboot="RebootIfNeeded", **members) -> dict:
    return {"RunCommand": dict({"Parameters": {"Operation": [operation], "RebootOption": [reboot]}}, **members)}


def task_response(name="install", n=1, targets=(1,), **members) -> dict:
    """GetMaintenanceWindowTask of the task task_params() describes (window targets by number), `members` changed."""
    response = {"WindowId": WINDOW_ID, "WindowTaskId": task_id(n), "Name": name, "TaskType": "RUN_COMMAND",
                "TaskArn": "AWS-RunPatchBaseline", "Priority": 1, "ServiceRoleArn": SERVICE_LINKED_ROLE,
                "TaskInvocationParameters": patch_invocation()}
    if targets:
        response.update(Targets=[{"Key": "WindowTargetIds", "Values": [target_id(t) for t in targets]}],
                        MaxConcurrency="10%", MaxErrors="1")
    else:  # targetless: AWS's placeholders
        response.update(MaxConcurrency="1", MaxErrors="1")
    response.update(members)
    return response


def task_row(response: dict) -> dict:
    """The DescribeMaintenanceWindowTasks row of a GetMaintenanceWindowTask answer."""
    row = {key: value for key, value in response.items() if key != "TaskInvocationParameters"}
    row["Type"] = row.pop("TaskType")
    return row


def fails(message: str, build, *args):
    with pytest.raises(ParameterError) as error:
        build(*args)
    assert str(error.value).startswith(message), str(error.value)


# ---------------------------------------------------------------------------------------------- windows

def test_a_window_task_is_validated_and_normalised_and_unset_fields_are_none():
    assert api.desired_window(window_params(schedule="cron(0 3 ? * sun *)", start_date="2026-01-01T00:00Z")) == {
        "name": "mw-install-auto", "description": None, "schedule": "cron(0 3 ? * SUN *)", "schedule_timezone": None,
        "schedule_offset": None, "duration": 4, "cutoff": 1, "start_date": "2026-01-01T00:00:00+00:00",
        "end_date": None, "allow_unassociated_targets": False, "enabled": True,
    }


@pytest.mark.parametrize("options, message", [
    ({"name": "install window"}, "name: 'install window' is not valid; allowed: 3 to 128 letters"),
    ({"description": "x" * 129}, "description: '" + "x" * 129 + "' has 129 characters; allowed: 1 to 128"),
    ({"schedule": "cron(0 3 * * SUN *)"}, "schedule: 'cron(0 3 * * SUN *)' is not a valid schedule: exactly one"),
    ({"duration": 25, "cutoff": 1}, "duration: 25 is out of range; allowed: 1 to 24"),
    ({"duration": 0, "cutoff": 0}, "duration: 0 is out of range; allowed: 1 to 24"),
    ({"cutoff": 24, "duration": 24}, "cutoff: 24 is out of range; allowed: 0 to 23"),
    ({"cutoff": 4, "duration": 4}, "cutoff: 4 is not below duration (4); allowed: 0 to 3"),
    ({"cutoff": 5, "duration": 2}, "cutoff: 5 is not below duration (2); allowed: 0 to 1"),
    ({"schedule_offset": 7}, "schedule_offset: 7 is out of range; allowed: 1 to 6"),
    ({"schedule_offset": 2, "schedule": "rate(7 days)"},
     "schedule_offset: 2 applies to cron schedules only, not 'rate(7 days)'"),
    ({"schedule_timezone": "Paris"}, "schedule_timezone: 'Paris' is not an IANA time zone name"),
    ({"start_date": "01/01/2026"}, "start_date: '01/01/2026' is not an ISO-8601 date-time"),
    ({"start_date": "2026-06-01", "end_date": "2026-01-01"}, "end_date: '2026-01-01T00:00:00' is not after"),
])
def test_invalid_windows_fail_naming_the_field(options, message):
    fails(message, api.desired_window, window_params(**options))


def test_a_window_read_from_aws_compares_equal_to_the_task_that_made_it():
    task = api.desired_window(window_params(schedule="cron(0 3 ? * tue#2 *)", schedule_offset=4,
                                            schedule_timezone="Europe/Paris", start_date="2026-01-01T00:00:00Z",
                                            description="install", enabled=False))
    response = window_response(Schedule="cron(0 3 ? * TUE#2 *)", ScheduleOffset=4, ScheduleTimezone="Europe/Paris",
                               StartDate="2026-01-01T00:00Z", Description="install", Enabled=False)
    current = api.window_state(response)
    assert {key: current[key] for key in task} == task
    assert current["window_id"] == WINDOW_ID and current["created_date"] == "2026-01-05T12:00:00+00:00"


def test_a_window_made_elsewhere_with_values_the_module_refuses_is_still_read():
    current = api.window_state(window_response(Schedule="cron(0/1 * * * ? *)", StartDate="next monday"))
    assert (current["schedule"], current["start_date"]) == ("cron(0/1 * * * ? *)", "next monday")


def test_requests_carry_only_what_is_set():
    state = api.desired_window(window_params())
    assert api.window_request(state) == {"Name": "mw-install-auto", "Schedule": "cron(0 3 ? * SUN *)",
                                         "Duration": 4, "Cutoff": 1, "AllowUnassociatedTargets": False}
    state = api.desired_window(window_params(description="d", schedule_offset=2, schedule_timezone="UTC",
                                             start_date="2026-01-01", end_date="2027-01-01"))
    assert api.window_request(state) == {
        "Name": "mw-install-auto", "Schedule": "cron(0 3 ? * SUN *)", "Duration": 4, "Cutoff": 1,
        "AllowUnassociatedTargets": False, "Description": "d", "ScheduleTimezone": "UTC", "ScheduleOffset": 2,
        "StartDate": "2026-01-01T00:00:00", "EndDate": "2027-01-01T00:00:00"}


def test_a_disabled_window_is_created_then_disabled_with_one_client_token():
    state = api.desired_window(window_params(enabled=False))
    with stubbed() as (client, stubber):
        stubber.add_response("create_maintenance_window", {"WindowId": WINDOW_ID}, dict(
            api.window_request(state), ClientToken=ANY, Tags=[{"Key": "Owner", "Value": "ops"}]))
        stubber.add_response("update_maintenance_window", {"WindowId": WINDOW_ID},
                             {"WindowId": WINDOW_ID, "Enabled": False})
        assert api.create_window(client, state, {"Owner": "ops"}) == WINDOW_ID


def test_an_update_replaces_the_whole_window_and_says_whether_it_is_enabled():
    state = api.desired_window(window_params())
    with stubbed() as (client, stubber):
        stubber.add_response("update_maintenance_window", {"WindowId": WINDOW_ID}, dict(
            api.window_request(state), WindowId=WINDOW_ID, Replace=True, Enabled=True))
        api.update_window(client, WINDOW_ID, state)


def test_find_window_keeps_exact_names_and_refuses_duplicates():
    with stubbed() as (client, stubber):
        stubber.add_response("describe_maintenance_windows", {"WindowIdentities": [
            window_identity("mw-install-auto-2", "mw-00000000000000002"), window_identity()]},
            {"Filters": [{"Key": "Name", "Values": ["mw-install-auto"]}], "MaxResults": 50})
        assert api.find_window(client, "mw-install-auto")["window_id"] == WINDOW_ID
    with stubbed() as (client, stubber):
        stubber.add_response("describe_maintenance_windows", {"WindowIdentities": [
            window_identity(), window_identity(window_id="mw-00000000000000002")]})
        fails("window: 'mw-install-auto' names 2 maintenance windows in this account and region",
              api.find_window, client, "mw-install-auto", "window")


def test_list_windows_pages_and_filters_on_enabled():
    with stubbed() as (client, stubber):
        stubber.add_response("describe_maintenance_windows", {"WindowIdentities": [window_identity("mw-a")],
                                                              "NextToken": "t"},
                             {"Filters": [{"Key": "Enabled", "Values": ["false"]}], "MaxResults": 50})
        stubber.add_response("describe_maintenance_windows", {"WindowIdentities": [window_identity("mw-b")]},
                             {"Filters": [{"Key": "Enabled", "Values": ["false"]}], "MaxResults": 50,
                              "NextToken": "t"})
        assert [w["name"] for w in api.list_windows(client, enabled=False)] == ["mw-a", "mw-b"]


# ---------------------------------------------------------------------------------------------- targets

def test_target_keys_order_case_and_duplicates_that_aws_ignores_are_normalised():
    written_once = api.desired_target(target_params(targets=[
        {"key": "tag:PatchGroup", "values": ["prod-auto", "jump-log"]},
        {"key": "InstanceIds", "values": ["i-0123456789abcdef0"]}]))
    written_again = api.desired_target(target_params(targets=[
        {"key": "instanceids", "values": ["i-0123456789abcdef0", "i-0123456789abcdef0"]},
        {"key": "TAG:PatchGroup", "values": ["jump-log", "prod-auto"]}]))
    assert written_again == written_once
    assert written_once["targets"] == [{"key": "InstanceIds", "values": ["i-0123456789abcdef0"]},
                                       {"key": "tag:PatchGroup", "values": ["jump-log", "prod-auto"]}]


def test_tag_keys_keep_their_case():
    state = api.desired_target(target_params(targets=[{"key": "tag:patchgroup", "values": ["a"]}]))
    assert state["targets"] == [{"key": "tag:patchgroup", "values": ["a"]}]


@pytest.mark.parametrize("options, message", [
    ({"name": "a"}, "name: 'a' is not valid"),
    ({"targets": []}, "targets: 0 entries; allowed: at least 1"),
    ({"targets": [{"key": f"tag:k{n}", "values": ["v"]} for n in range(6)]}, "targets: 6 entries; allowed: at most 5"),
    ({"targets": [{"key": "tag:a", "values": []}]}, "targets[0].values: 0 entries; allowed: at least 1"),
    ({"targets": [{"key": "tag:a", "values": [str(n) for n in range(51)]}]},
     "targets[0].values: 51 entries; allowed: at most 50"),
    ({"targets": [{"key": "PatchGroup", "values": ["a"]}]},
     "targets[0].key: 'PatchGroup' is not a target key for resource_type INSTANCE; allowed: InstanceIds, "
     "tag:<tag key> or tag-key"),
    ({"targets": [{"key": "tag:", "values": ["a"]}]}, "targets[0].key: 'tag:' is not a target key"),
    ({"targets": [{"key": "tag:" + "k" * 129, "values": ["a"]}]}, "targets[0].key: '" + "k" * 129 + "' has 129"),
    ({"targets": [{"key": "InstanceIds", "values": ["web-1"]}]},
     "targets[0].values[0]: 'web-1' is not valid; allowed: EC2 instance IDs (i-...) or managed node IDs (mi-...)"),
    ({"targets": [{"key": "tag:a", "values": ["1"]}, {"key": "TAG:a", "values": ["2"]}]},
     "targets[].key: 'tag:a' is given more than once"),
    ({"resource_type": "RESOURCE_GROUP"}, "targets[0].key: 'tag:PatchGroup' is not a target key for resource_type "
                                          "RESOURCE_GROUP; allowed: resource-groups:Name"),
    ({"resource_type": "RESOURCE_GROUP", "targets": [{"key": "resource-groups:ResourceTypeFilters",
                                                      "values": ["AWS::EC2::Instance"]}]},
     "targets: ['resource-groups:ResourceTypeFilters'] has no resource-groups:Name"),
    ({"resource_type": "RESOURCE_GROUP", "targets": [{"key": "resource-groups:Name", "values": ["a", "b"]}]},
     "targets[0].values: 2 entries; allowed: at most 1"),
    ({"owner_information": ""}, "owner_information: '' has 0 characters; allowed: 1 to 128"),
])
def test_invalid_targets_fail_naming_the_field(options, message):
    fails(message, api.desired_target, target_params(**options))


def test_a_target_read_from_aws_compares_equal_and_requests_carry_only_what_is_set():
    task = api.desired_target(target_params(resource_type="RESOURCE_GROUP", owner_information="web", targets=[
        {"key": "resource-groups:resourcetypefilters", "values": ["AWS::EC2::Instance"]},
        {"key": "resource-groups:name", "values": ["web"]}]))
    current = api.target_state(target_row("prod-auto", resource_type="RESOURCE_GROUP", OwnerInformation="web",
                                          Targets=[{"Key": "resource-groups:Name", "Values": ["web"]},
                                                   {"Key": "resource-groups:ResourceTypeFilters",
                                                    "Values": ["AWS::EC2::Instance"]}]))
    assert {key: current[key] for key in task} == task
    assert api.target_request(task) == {
        "Targets": [{"Key": "resource-groups:Name", "Values": ["web"]},
                    {"Key": "resource-groups:ResourceTypeFilters", "Values": ["AWS::EC2::Instance"]}],
        "Name": "prod-auto", "OwnerInformation": "web"}


def test_listing_the_targets_of_a_window_that_does_not_exist_is_none():
    with stubbed() as (client, stubber):
        stubber.add_client_error("describe_maintenance_window_targets", "DoesNotExistException",
                                 f"Maintenance window {WINDOW_ID} does not exist")
        assert api.list_targets(client, WINDOW_ID) is None


def test_register_and_deregister_target_calls():
    state = api.desired_target(target_params())
    with stubbed() as (client, stubber):
        stubber.add_response("register_target_with_maintenance_window", {"WindowTargetId": target_id(1)}, {
            "WindowId": WINDOW_ID, "ResourceType": "INSTANCE", "ClientToken": ANY, "Name": "prod-auto",
            "Targets": [{"Key": "tag:PatchGroup", "Values": ["prod-auto"]}]})
        stubber.add_response("deregister_target_from_maintenance_window", {}, {
            "WindowId": WINDOW_ID, "WindowTargetId": target_id(1), "Safe": True})
        assert api.register_target(client, WINDOW_ID, state) == target_id(1)
        api.deregister_target(client, WINDOW_ID, target_id(1), True)


# ---------------------------------------------------------------------------------------------- tasks

def test_patch_baseline_writes_the_documents_parameters():
    state = api.desired_task(task_params(patch_baseline={
        "operation": "Install", "reboot_option": "NoReboot", "snapshot_id": "12345699-9405-4f69-bc5e-9315a0000000",
        "install_override_list": "s3://patch-lists/db.yaml"}))
    assert state["task_arn"] == "AWS-RunPatchBaseline"
    assert state["run_command"]["parameters"] == {
        "Operation": ["Install"], "RebootOption": ["NoReboot"], "SnapshotId": ["12345699-9405-4f69-bc5e-9315a0000000"],
        "InstallOverrideList": ["s3://patch-lists/db.yaml"]}
    assert state["patch_baseline"] == {"operation": "Install", "reboot_option": "NoReboot",
                                       "snapshot_id": "12345699-9405-4f69-bc5e-9315a0000000",
                                       "install_override_list": "s3://patch-lists/db.yaml", "baseline_override": None}
    assert "service_role_arn" not in state  # unset: AWS's service-linked role, not compared


@pytest.mark.parametrize("options, message", [
    ({"priority": -1}, "priority: -1 is negative"),
    ({"targets": [], "max_concurrency": None, "max_errors": None},
     "targets: [] is empty; allowed: Run Command tasks need window targets (targets) or instance_ids"),
    ({"max_concurrency": None}, "max_concurrency: required for a task with targets; allowed: a number of targets"),
    ({"max_errors": None}, "max_errors: required for a task with targets"),
    ({"max_concurrency": "0"}, "max_concurrency: '0' is not valid; allowed: a number of targets from 1"),
    ({"max_concurrency": "101%"}, "max_concurrency: '101%' is not valid"),
    ({"max_concurrency": "05"}, "max_concurrency: '05' is not valid"),
    ({"max_errors": "-1"}, "max_errors: '-1' is not valid; allowed: a number of errors from 0"),
    ({"max_errors": "1.5%"}, "max_errors: '1.5%' is not valid"),
    ({"targets": ["t"] * 11}, "targets: 11 entries; allowed: at most 10"),
    ({"instance_ids": ["server-1"]}, "instance_ids[0]: 'server-1' is not valid"),
    ({"task_arn": "AWS-RunShellScript"}, "task_arn: 'AWS-RunShellScript' is not AWS-RunPatchBaseline"),
    ({"patch_baseline": None}, "task_arn: required"),
    ({"run_command": {"parameters": {"Operation": "Scan"}}},
     "run_command.parameters: ['Operation'] cannot be combined with patch_baseline"),
    ({"patch_baseline": {"operation": "Install", "install_override_list": "https://x/l.yaml",
                         "baseline_override": "s3://b/o.json"}},
     "patch_baseline.baseline_override: 's3://b/o.json' cannot be combined with install_override_list"),
    ({"patch_baseline": {"operation": "Install", "snapshot_id": "latest"}},
     "patch_baseline.snapshot_id: 'latest' is not valid; allowed: a GUID"),
    ({"patch_baseline": {"operation": "Install", "snapshot_id": "{{WINDOW_EXECUTION_ID}}"}},
     "patch_baseline.snapshot_id: '{{WINDOW_EXECUTION_ID}}' is not valid; allowed: a GUID"),
    ({"patch_baseline": {"operation": "Install", "install_override_list": "ftp://x/l.yaml"}},
     "patch_baseline.install_override_list: 'ftp://x/l.yaml' is not valid; allowed: an https:// or s3:// URL"),
    ({"task_type": "AUTOMATION", "targets": [], "max_concurrency": None, "max_errors": None, "task_arn": "Runbook"},
     "patch_baseline: 'AWS-RunPatchBaseline' is a Run Command document, not a AUTOMATION task"),
    ({"task_type": "LAMBDA", "targets": [], "patch_baseline": None, "task_arn": "fn"},
     "max_concurrency: '10%' cannot be set for a task without targets"),
    ({"task_type": "LAMBDA", "targets": [], "max_concurrency": None, "patch_baseline": None, "task_arn": "fn"},
     "max_errors: '1' cannot be set for a task without targets"),
    ({"task_type": "LAMBDA", "patch_baseline": None, "task_arn": "fn", "run_command": {"comment": "x"}},
     "run_command: ['comment'] applies to RUN_COMMAND tasks, not LAMBDA; allowed: lambda for LAMBDA tasks"),
    ({"run_command": {"timeout_seconds": 10}}, "run_command.timeout_seconds: 10 is out of range; allowed: 30 to"),
    ({"run_command": {"comment": "c" * 101}}, "run_command.comment: '" + "c" * 101 + "' has 101 characters"),
    ({"run_command": {"document_version": "latest"}},
     "run_command.document_version: 'latest' is not valid; allowed: $LATEST, $DEFAULT or a version number"),
    ({"run_command": {"output_s3_bucket": "ab"}}, "run_command.output_s3_bucket: 'ab' has 2 characters"),
    ({"run_command": {"cloudwatch_output": {"log_group": "g" * 513}}},
     "run_command.cloudwatch_output.log_group: '" + "g" * 513 + "' has 513 characters"),
    ({"alarm_configuration": {"alarms": ["a", "b"]}}, "alarm_configuration.alarms: 2 entries; allowed: at most 1"),
    ({"alarm_configuration": {"alarms": [" "]}}, "alarm_configuration.alarms[0]: ' ' is not valid"),
    ({"description": ""}, "description: '' has 0 characters"),
    ({"task_type": "STEP_FUNCTIONS", "targets": [], "max_concurrency": None, "max_errors": None,
      "patch_baseline": None, "task_arn": "arn:aws:states:eu-west-1:123456789012:stateMachine:m",
      "step_functions": {"name": "n" * 81}}, "step_functions.name: '" + "n" * 81 + "' has 81 characters"),
    ({"task_type": "AUTOMATION", "targets": [], "max_concurrency": None, "max_errors": None, "patch_baseline": None,
      "task_arn": "Runbook", "automation": {"parameters": {"p": ["v"] * 51}}},
     "automation.parameters.p: 51 entries; allowed: at most 50"),
])
def test_invalid_tasks_fail_naming_the_field(options, message):
    fails(message, api.desired_task, task_params(**options))


def test_a_task_read_from_aws_compares_equal_to_the_task_that_made_it():
    task = api.desired_task(task_params(
        targets=["prod-auto", target_id(2)], cutoff_behavior="CANCEL_TASK",
        alarm_configuration={"alarms": ["patching-errors"]},
        run_command={"comment": "weekly", "timeout_seconds": 600, "output_s3_bucket": "logs",
                     "cloudwatch_output": {"log_group": "/fleetpatch"},
                     "notification_config": {"arn": "arn:aws:sns:eu-west-1:123456789012:t",
                                             "events": ["Failed", "TimedOut", "Failed"]}}))
    task["targets"], _unknown = api.task_target_names(task["targets"], [
        api.target_state(target_row("prod-auto", 1)), api.target_state(target_row(None, 2))])
    response = task_response(
        targets=(2, 1), CutoffBehavior="CANCEL_TASK",
        AlarmConfiguration={"Alarms": [{"Name": "patching-errors"}], "IgnorePollAlarmFailure": False},
        TaskInvocationParameters=patch_invocation(
            Comment="weekly", TimeoutSeconds=600, OutputS3BucketName="logs",
            CloudWatchOutputConfig={"CloudWatchLogGroupName": "/fleetpatch", "CloudWatchOutputEnabled": True},
            NotificationConfig={"NotificationArn": "arn:aws:sns:eu-west-1:123456789012:t",
                                "NotificationEvents": ["TimedOut", "Failed"]}))
    current = api.task_state(response, {target_id(1): "prod-auto", target_id(2): None})
    assert {key: current[key] for key in task} == task
    assert current["targets"] == sorted(["prod-auto", target_id(2)])
    assert current["service_role_arn"] == SERVICE_LINKED_ROLE


def test_a_targetless_task_sends_neither_limit_and_awss_placeholder_is_no_difference():
    task = api.desired_task(task_params(task_type="LAMBDA", task_arn="patch-report", targets=None,
                                        max_concurrency=None, max_errors=None, patch_baseline=None,
                                        **{"lambda": {"payload": '{"window": "install"}', "qualifier": "prod"}}))
    request = api.task_request(task, [])
    assert request == {"TaskArn": "patch-report", "Priority": 1, "Name": "install", "TaskInvocationParameters": {
        "Lambda": {"Qualifier": "prod", "Payload": b'{"window": "install"}'}}}
    response = task_response(targets=(), TaskType="LAMBDA", TaskArn="patch-report", TaskInvocationParameters={
        "Lambda": {"Qualifier": "prod", "Payload": b'{"window": "install"}'}})
    current = api.task_state(response, {})
    assert (current["max_concurrency"], current["max_errors"]) == (None, None)
    assert {key: current[key] for key in task} == task
    assert current["run_command"] is None and current["patch_baseline"] is None


def test_task_requests_carry_only_what_is_set_and_never_the_deprecated_members():
    task = api.desired_task(task_params(instance_ids=["mi-0123456789abcdef0"]))
    request = api.task_request(task, [target_id(1)])
    assert request == {
        "TaskArn": "AWS-RunPatchBaseline", "Priority": 1, "Name": "install", "MaxConcurrency": "10%", "MaxErrors": "1",
        "Targets": [{"Key": "WindowTargetIds", "Values": [target_id(1)]},
                    {"Key": "InstanceIds", "Values": ["mi-0123456789abcdef0"]}],
        "TaskInvocationParameters": {"RunCommand": {"Parameters": {"Operation": ["Install"],
                                                                   "RebootOption": ["RebootIfNeeded"]}}}}


def test_window_targets_are_named_by_name_or_id_and_unknown_ones_reported():
    targets = [api.target_state(target_row("prod-auto", 1)), api.target_state(target_row(None, 2))]
    assert api.task_target_names(["prod-auto", target_id(1), target_id(2), "nope"], targets) == (
        sorted(["prod-auto", target_id(2)]), ["nope"])
    assert api.task_target_ids(["prod-auto", target_id(2)], targets) == [target_id(1), target_id(2)]


def test_register_and_update_task_calls_match_the_model():
    task = api.desired_task(task_params())
    with stubbed() as (client, stubber):
        stubber.add_response("register_task_with_maintenance_window", {"WindowTaskId": task_id(1)}, dict(
            api.task_request(task, [target_id(1)]), WindowId=WINDOW_ID, TaskType="RUN_COMMAND", ClientToken=ANY))
        stubber.add_response("update_maintenance_window_task", {"WindowId": WINDOW_ID}, dict(
            api.task_request(task, [target_id(1)]), WindowId=WINDOW_ID, WindowTaskId=task_id(1), Replace=True))
        assert api.register_task(client, WINDOW_ID, task, [target_id(1)]) == task_id(1)
        api.update_task(client, WINDOW_ID, task_id(1), task, [target_id(1)])


def test_recent_executions_newest_first_with_their_tasks():
    def execution(n, day):
        return {"WindowId": WINDOW_ID, "WindowExecutionId": task_id(n), "Status": "SUCCESS",
                "StartTime": datetime.datetime(2026, 1, day, tzinfo=datetime.timezone.utc)}

    with stubbed() as (client, stubber):
        stubber.add_response("describe_maintenance_window_executions", {"WindowExecutions": [
            execution(1, 4), execution(3, 18), execution(2, 11)]}, {"WindowId": WINDOW_ID, "MaxResults": 50})
        for n in (3, 2):
            stubber.add_response("describe_maintenance_window_execution_tasks", {"WindowExecutionTaskIdentities": [{
                "WindowExecutionId": task_id(n), "TaskExecutionId": target_id(n), "Status": "FAILED",
                "StatusDetails": "boom", "TaskArn": "AWS-RunPatchBaseline", "TaskType": "RUN_COMMAND"}]},
                {"WindowExecutionId": task_id(n), "MaxResults": 50})
        executions = api.recent_executions(client, WINDOW_ID, 2)
    assert [e["window_execution_id"] for e in executions] == [task_id(3), task_id(2)]
    assert executions[0]["start_time"] == "2026-01-18T00:00:00+00:00"
    assert executions[0]["tasks"] == [{"task_execution_id": target_id(3), "task_arn": "AWS-RunPatchBaseline",
                                       "task_type": "RUN_COMMAND", "status": "FAILED", "status_details": "boom",
                                       "start_time": None, "end_time": None}]


def test_patch_documents_by_name_or_arn():
    assert api.is_patch_document("AWS-RunPatchBaseline")
    assert api.is_patch_document("arn:aws:ssm:eu-west-1::document/AWS-RunPatchBaseline")
    assert not api.is_patch_document("AWS-RunPatchBaselineWithHooks")


def test_without_patch_baseline_any_document_runs_with_its_own_parameters():
    state = api.desired_task(task_params(task_arn="AWS-RunShellScript", patch_baseline=None,
                                         run_command={"parameters": {"commands": ["systemctl stop app", "sync"],
                                                                     "executionTimeout": 600}}))
    assert state["run_command"]["parameters"] == {"commands": ["systemctl stop app", "sync"],
                                                  "executionTimeout": ["600"]}
    assert "patch_baseline" not in state


# ---------------------------------------------------------------------------------------------- expected calls
# (used by the module tests: each queues one call with its exact request)

def expect_windows(stubber, identities: list, name: str = "mw-install-auto") -> None:
    """DescribeMaintenanceWindows looking a window up by name."""
    stubber.add_response("describe_maintenance_windows", {"WindowIdentities": identities},
                         {"Filters": [{"Key": "Name", "Values": [name]}], "MaxResults": 50})


def expect_targets(stubber, rows: list) -> None:
    stubber.add_response("describe_maintenance_window_targets", {"Targets": rows},
                         {"WindowId": WINDOW_ID, "MaxResults": 50})


def expect_tasks(stubber, responses: list) -> None:
    """DescribeMaintenanceWindowTasks listing the tasks whose GetMaintenanceWindowTask answers are `responses`."""
    stubber.add_response("describe_maintenance_window_tasks", {"Tasks": [task_row(r) for r in responses]},
                         {"WindowId": WINDOW_ID, "MaxResults": 50})


def expect_task(stubber, response: dict) -> None:
    stubber.add_response("get_maintenance_window_task", response,
                         {"WindowId": WINDOW_ID, "WindowTaskId": response["WindowTaskId"]})
