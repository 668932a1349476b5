# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleetpatch.ssm.maintenance_window end to end on a stubbed SSM client: the exact calls of each kind of run.

Stubber fails a test on any call that is not queued, so each test also proves that nothing else was called.
"""
from __future__ import annotations

import pytest
from botocore.stub import ANY

from ansible_collections.fleetpatch.ssm.plugins.modules import maintenance_window
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import run_module
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import stubbed
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_window import WINDOW_ID
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_window import expect_windows
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_window import window_identity
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_window import window_response

ARGS = {"name": "mw-install-auto", "schedule": "cron(0 3 ? * SUN *)", "duration": 4, "cutoff": 1}
# What the module sends for ARGS: the required members, nothing unset.
SENT = {"Name": "mw-install-auto", "Schedule": "cron(0 3 ? * SUN *)", "Duration": 4, "Cutoff": 1,
        "AllowUnassociatedTargets": False}


def expect_read(stubber, response=None, tags=None):
    """The read of a run: find by name, GetMaintenanceWindow, ListTagsForResource when the task sets tags."""
    if response is None:
        expect_windows(stubber, [])
        return
    expect_windows(stubber, [window_identity()])
    stubber.add_response("get_maintenance_window", response, {"WindowId": WINDOW_ID})
    if tags is not None:
        stubber.add_response("list_tags_for_resource", {"TagList": [{"Key": k, "Value": v} for k, v in tags.items()]},
                             {"ResourceType": "MaintenanceWindow", "ResourceId": WINDOW_ID})


def run(args, calls=(), check_mode=False):
    with stubbed() as (client, stubber):
        for queue in calls:
            queue(stubber)
        return run_module(maintenance_window.main, args, client, check_mode=check_mode)


def test_create_sends_the_window_with_tags_then_reads_it_back():
    def create(stubber):
        stubber.add_response("create_maintenance_window", {"WindowId": WINDOW_ID}, dict(
            SENT, ClientToken=ANY, Tags=[{"Key": "Owner", "Value": "ops"}]))

    result = run(dict(ARGS, tags={"Owner": "ops"}), calls=[
        expect_read, create, lambda s: expect_read(s, window_response(), tags={"Owner": "ops"})])
    assert result["changed"] is True
    assert result["maintenance_window"]["window_id"] == WINDOW_ID
    assert result["maintenance_window"]["tags"] == {"Owner": "ops"}
    assert result["diff"]["before"] == {}
    assert result["diff"]["after"]["schedule"] == "cron(0 3 ? * SUN *)"


def test_check_mode_create_only_reads_and_predicts():
    result = run(ARGS, calls=[expect_read], check_mode=True)
    assert result["changed"] is True
    assert result["maintenance_window"]["window_id"] is None
    assert result["maintenance_window"]["duration"] == 4


def test_a_run_that_changes_nothing_reads_once_even_in_another_spelling():
    result = run(dict(ARGS, schedule="cron(0 3 ? * sun *)"), calls=[lambda s: expect_read(s, window_response())])
    assert result == {"changed": False, "maintenance_window": result["maintenance_window"]}


@pytest.mark.parametrize("change, members", [
    ({"description": "Weekly install"}, {"Description": "Weekly install"}),
    ({"schedule": "cron(0 3 ? * TUE#2 *)", "schedule_offset": 4, "schedule_timezone": "Europe/Paris"},
     {"Schedule": "cron(0 3 ? * TUE#2 *)", "ScheduleOffset": 4, "ScheduleTimezone": "Europe/Paris"}),
    ({"duration": 6, "cutoff": 2}, {"Duration": 6, "Cutoff": 2}),
    ({"start_date": "2026-01-01T00:00:00Z", "end_date": "2027-01-01T00:00:00Z"},
     {"StartDate": "2026-01-01T00:00:00+00:00", "EndDate": "2027-01-01T00:00:00+00:00"}),
    ({"allow_unassociated_targets": True}, {"AllowUnassociatedTargets": True}),
    ({"enabled": False}, {"Enabled": False}),
])
def test_each_field_group_is_updated_with_the_whole_window(change, members):
    update = dict(SENT, WindowId=WINDOW_ID, Replace=True, Enabled=True)
    update.update(members)
    result = run(dict(ARGS, **change), calls=[
        lambda s: expect_read(s, window_response()),
        lambda s: s.add_response("update_maintenance_window", {"WindowId": WINDOW_ID}, update),
        lambda s: expect_read(s, window_response()),
    ])
    assert result["changed"] is True
    assert set(change) <= set(result["diff"]["after"])


def test_fields_no_longer_set_are_cleared_by_the_replacing_update():
    current = window_response(Description="old", ScheduleOffset=2, ScheduleTimezone="UTC", EndDate="2027-01-01")
    result = run(ARGS, calls=[
        lambda s: expect_read(s, current),
        lambda s: s.add_response("update_maintenance_window", {"WindowId": WINDOW_ID},
                                 dict(SENT, WindowId=WINDOW_ID, Replace=True, Enabled=True)),
        lambda s: expect_read(s, window_response()),
    ])
    assert result["diff"]["before"]["schedule_offset"] == 2
    assert result["diff"]["after"]["schedule_offset"] is None


def test_a_tag_change_touches_tags_only():
    result = run(dict(ARGS, tags={"Owner": "platform"}), calls=[
        lambda s: expect_read(s, window_response(), tags={"Owner": "ops", "Team": "db"}),
        lambda s: s.add_response("remove_tags_from_resource", {}, {
            "ResourceType": "MaintenanceWindow", "ResourceId": WINDOW_ID, "TagKeys": ["Team"]}),
        lambda s: s.add_response("add_tags_to_resource", {}, {
            "ResourceType": "MaintenanceWindow", "ResourceId": WINDOW_ID,
            "Tags": [{"Key": "Owner", "Value": "platform"}]}),
        lambda s: expect_read(s, window_response(), tags={"Owner": "platform"}),
    ])
    assert (result["diff"]["before"]["tags"], result["diff"]["after"]["tags"]) == (
        {"Owner": "ops", "Team": "db"}, {"Owner": "platform"})


def test_delete_and_delete_again():
    result = run({"name": "mw-install-auto", "state": "absent"}, calls=[
        lambda s: expect_read(s, window_response()),
        lambda s: s.add_response("delete_maintenance_window", {"WindowId": WINDOW_ID}, {"WindowId": WINDOW_ID})])
    assert result["changed"] is True and result["maintenance_window"] is None
    assert result["diff"]["before"]["window_id"] == WINDOW_ID
    assert run({"name": "mw-install-auto", "state": "absent"}, calls=[expect_read]) == {
        "changed": False, "maintenance_window": None}


@pytest.mark.parametrize("change, message", [
    ({"cutoff": 4}, "cutoff: 4 is not below duration (4)"),
    ({"schedule": "rate(1 minute)"}, "schedule: 'rate(1 minute)' is not a valid schedule"),
    ({"schedule": "rate(7 days)", "schedule_offset": 1}, "schedule_offset: 1 applies to cron schedules only"),
    ({"tags": {"aws:owner": "me"}}, "tags: 'aws:owner' uses the prefix 'aws:'"),
])
def test_invalid_input_fails_before_any_call(change, message):
    result = run(dict(ARGS, **change))
    assert result["failed"] is True
    assert result["msg"].startswith(message)


def test_schedule_duration_and_cutoff_are_required_to_create():
    result = run({"name": "mw-install-auto", "duration": 2})
    assert result["failed"] is True
    assert "schedule" in result["msg"] and "cutoff" in result["msg"]
