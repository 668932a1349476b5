# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleetpatch.ssm.maintenance_window_target on a stubbed SSM client: keyed by name within the window."""
from __future__ import annotations

from botocore.stub import ANY

from ansible_collections.fleetpatch.ssm.plugins.modules import maintenance_window_target
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import run_module
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import stubbed
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_window import WINDOW_ID
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_window import expect_targets
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_window import expect_tasks
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_window import expect_windows
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_window import target_id
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_window import target_row
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_window import task_response
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_window import window_identity

ARGS = {"window": "mw-install-auto", "name": "prod-auto",
        "targets": [{"key": "tag:PatchGroup", "values": ["prod-auto"]}]}
SENT = {"Name": "prod-auto", "Targets": [{"Key": "tag:PatchGroup", "Values": ["prod-auto"]}]}


def expect_read(stubber, rows=()):
    """A run's read: the window by name, then its targets."""
    expect_windows(stubber, [window_identity()])
    expect_targets(stubber, list(rows))


def run(args, calls=(), check_mode=False):
    with stubbed() as (client, stubber):
        for queue in calls:
            queue(stubber)
        return run_module(maintenance_window_target.main, args, client, check_mode=check_mode)


def test_register_then_read_back():
    result = run(ARGS, calls=[
        expect_read,
        lambda s: s.add_response("register_target_with_maintenance_window", {"WindowTargetId": target_id(1)},
                                 dict(SENT, WindowId=WINDOW_ID, ResourceType="INSTANCE", ClientToken=ANY)),
        lambda s: expect_read(s, [target_row("prod-auto")]),
    ])
    assert result["changed"] is True
    assert result["maintenance_window_target"] == {
        "window_id": WINDOW_ID, "window_target_id": target_id(1), "name": "prod-auto", "description": None,
        "resource_type": "INSTANCE", "targets": [{"key": "tag:PatchGroup", "values": ["prod-auto"]}],
        "owner_information": None}


def test_check_mode_registers_nothing():
    result = run(ARGS, calls=[expect_read], check_mode=True)
    assert result["changed"] is True
    assert result["maintenance_window_target"]["window_target_id"] is None
    assert result["maintenance_window_target"]["window_id"] == WINDOW_ID


def test_reordered_and_respelled_targets_are_no_change():
    stored = target_row("prod-auto", Targets=[{"Key": "InstanceIds", "Values": ["i-0123456789abcdef0"]},
                                              {"Key": "tag:PatchGroup", "Values": ["jump-log", "prod-auto"]}])
    args = dict(ARGS, targets=[{"key": "tag:PatchGroup", "values": ["prod-auto", "jump-log"]},
                               {"key": "instanceids", "values": ["i-0123456789abcdef0"]}])
    assert run(args, calls=[lambda s: expect_read(s, [target_row("other", 2), stored])])["changed"] is False


def test_an_update_replaces_the_whole_target():
    stored = target_row("prod-auto", OwnerInformation="old", Description="old")
    result = run(dict(ARGS, owner_information="weekly"), calls=[
        lambda s: expect_read(s, [stored]),
        lambda s: s.add_response("update_maintenance_window_target", {}, dict(
            SENT, WindowId=WINDOW_ID, WindowTargetId=target_id(1), Replace=True, OwnerInformation="weekly")),
        lambda s: expect_read(s, [target_row("prod-auto", OwnerInformation="weekly")]),
    ])
    assert result["diff"] == {
        "before": {"name": "prod-auto", "description": "old", "resource_type": "INSTANCE",
                   "targets": [{"key": "tag:PatchGroup", "values": ["prod-auto"]}], "owner_information": "old"},
        "after": {"name": "prod-auto", "description": None, "resource_type": "INSTANCE",
                  "targets": [{"key": "tag:PatchGroup", "values": ["prod-auto"]}], "owner_information": "weekly"}}


def test_changing_the_resource_type_is_refused():
    args = dict(ARGS, resource_type="RESOURCE_GROUP", targets=[{"key": "resource-groups:Name", "values": ["web"]}])
    result = run(args, calls=[lambda s: expect_read(s, [target_row("prod-auto")])])
    assert result["failed"] is True
    assert result["msg"].startswith(f"resource_type: 'RESOURCE_GROUP' differs from 'INSTANCE', the type of the "
                                    f"registered target 'prod-auto' ({target_id(1)}), and AWS cannot change it")


def test_a_target_tasks_use_is_not_deregistered_and_the_tasks_are_named():
    result = run({"window": "mw-install-auto", "name": "prod-auto", "state": "absent"}, calls=[
        lambda s: expect_read(s, [target_row("prod-auto")]),
        lambda s: expect_tasks(s, [task_response("install"), task_response("scan", 2, targets=(2,))]),
    ])
    assert result["failed"] is True
    assert result["msg"] == (f"state: the target 'prod-auto' ({target_id(1)}) cannot be deregistered: tasks install "
                             "use it; remove it from those tasks first, or set safe=false")


def test_deregister_safely_and_again():
    args = {"window": "mw-install-auto", "name": "prod-auto", "state": "absent"}
    result = run(args, calls=[
        lambda s: expect_read(s, [target_row("prod-auto")]),
        lambda s: expect_tasks(s, []),
        lambda s: s.add_response("deregister_target_from_maintenance_window", {}, {
            "WindowId": WINDOW_ID, "WindowTargetId": target_id(1), "Safe": True}),
    ])
    assert result["changed"] is True and result["maintenance_window_target"] is None
    assert run(args, calls=[expect_read])["changed"] is False


def test_safe_false_deregisters_without_looking_at_tasks():
    result = run({"window": "mw-install-auto", "name": "prod-auto", "state": "absent", "safe": False}, calls=[
        lambda s: expect_read(s, [target_row("prod-auto")]),
        lambda s: s.add_response("deregister_target_from_maintenance_window", {}, {
            "WindowId": WINDOW_ID, "WindowTargetId": target_id(1), "Safe": False}),
    ])
    assert result["changed"] is True


def test_a_window_by_id_costs_no_lookup_and_an_unknown_one_fails_naming_the_field():
    def unknown(stubber):
        stubber.add_client_error("describe_maintenance_window_targets", "DoesNotExistException", "no such window")

    result = run(dict(ARGS, window=WINDOW_ID), calls=[lambda s: expect_targets(s, [target_row("prod-auto")])])
    assert result["changed"] is False
    result = run(dict(ARGS, window=WINDOW_ID), calls=[unknown])
    assert result["failed"] is True
    assert result["msg"].startswith(f"window: '{WINDOW_ID}' is not a maintenance window in this account and region")


def test_a_missing_window_is_nothing_to_delete_and_a_warning_in_check_mode():
    absent = run(dict(ARGS, state="absent"), calls=[lambda s: expect_windows(s, [])])
    assert absent == {"changed": False, "maintenance_window_target": None}
    checked = run(ARGS, calls=[lambda s: expect_windows(s, [])], check_mode=True)
    assert checked["changed"] is True
    assert checked["warnings"] == ["window 'mw-install-auto' does not exist (yet): check mode assumes an earlier "
                                   "task creates it"]
    failed = run(ARGS, calls=[lambda s: expect_windows(s, [])])
    assert failed["failed"] is True and failed["msg"].startswith("window: 'mw-install-auto' is not a maintenance")


def test_two_targets_of_one_name_are_an_error():
    result = run(ARGS, calls=[lambda s: expect_read(s, [target_row("prod-auto"), target_row("prod-auto", 2)])])
    assert result["failed"] is True
    assert result["msg"].startswith("name: 'prod-auto' names 2 maintenance window targets in maintenance window "
                                    "'mw-install-auto'")


def test_invalid_input_fails_before_any_call():
    result = run(dict(ARGS, targets=[{"key": "Name", "values": ["web-1"]}]))
    assert result["failed"] is True
    assert result["msg"].startswith("targets[0].key: 'Name' is not a target key for resource_type INSTANCE")
