# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleetpatch.ssm.maintenance_window_info on a stubbed SSM client: what it returns and what each option costs."""
from __future__ import annotations

import datetime

from ansible_collections.fleetpatch.ssm.plugins.modules import maintenance_window_info
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import run_module
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import stubbed
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_window import WINDOW_ID
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_window import expect_targets
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_window import expect_task
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_window import expect_tasks
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_window import target_row
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_window import task_response
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_window import window_identity
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_window import window_response

EXECUTION_ID = "aaaaaaaa-0000-4000-8000-000000000000"


def expect_window(stubber, filters=()):
    stubber.add_response("describe_maintenance_windows", {"WindowIdentities": [window_identity()]},
                         {"Filters": list(filters), "MaxResults": 50})
    stubber.add_response("get_maintenance_window", window_response(), {"WindowId": WINDOW_ID})
    stubber.add_response("list_tags_for_resource", {"TagList": [{"Key": "Owner", "Value": "ops"}]},
                         {"ResourceType": "MaintenanceWindow", "ResourceId": WINDOW_ID})


def run(args, calls):
    with stubbed() as (client, stubber):
        for queue in calls:
            queue(stubber)
        return run_module(maintenance_window_info.main, args, client)


def test_windows_with_targets_tasks_by_priority_and_recent_executions():
    install, stop = task_response("install"), task_response("stop-app", 2, Priority=0, TaskArn="AWS-RunShellScript",
                                                            TaskInvocationParameters={})

    def executions(stubber):
        start = datetime.datetime(2026, 1, 11, 3, tzinfo=datetime.timezone.utc)
        stubber.add_response("describe_maintenance_window_executions", {"WindowExecutions": [{
            "WindowId": WINDOW_ID, "WindowExecutionId": EXECUTION_ID, "Status": "FAILED", "StartTime": start,
            "EndTime": start}]}, {"WindowId": WINDOW_ID, "MaxResults": 50})
        stubber.add_response("describe_maintenance_window_execution_tasks", {"WindowExecutionTaskIdentities": []},
                             {"WindowExecutionId": EXECUTION_ID, "MaxResults": 50})

    result = run({"executions": 3}, [
        expect_window, lambda s: expect_targets(s, [target_row("prod-auto")]),
        lambda s: expect_tasks(s, [install, stop]), lambda s: expect_task(s, install), lambda s: expect_task(s, stop),
        executions])

    assert result["changed"] is False
    (window,) = result["maintenance_windows"]
    assert (window["name"], window["tags"], window["allow_unassociated_targets"]) == (
        "mw-install-auto", {"Owner": "ops"}, False)
    assert [target["name"] for target in window["targets"]] == ["prod-auto"]
    assert [task["name"] for task in window["tasks"]] == ["stop-app", "install"]  # the order they run in
    assert window["tasks"][1]["targets"] == ["prod-auto"]
    assert window["executions"] == [{"window_execution_id": EXECUTION_ID, "status": "FAILED", "status_details": None,
                                     "start_time": "2026-01-11T03:00:00+00:00",
                                     "end_time": "2026-01-11T03:00:00+00:00", "tasks": []}]


def test_without_targets_and_tasks_a_window_costs_its_read_and_tags_only():
    result = run({"name": "mw-install-auto", "enabled": True, "include_targets": False, "include_tasks": False},
                 [lambda s: expect_window(s, [{"Key": "Name", "Values": ["mw-install-auto"]},
                                              {"Key": "Enabled", "Values": ["true"]}])])
    (window,) = result["maintenance_windows"]
    assert "targets" not in window and "tasks" not in window and "executions" not in window


def test_executions_out_of_range_fail_before_any_call():
    result = run({"executions": 101}, [])
    assert result["failed"] is True
    assert result["msg"] == "executions: 101 is out of range; allowed: 0 to 100"
