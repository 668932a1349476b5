# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleetpatch.ssm.run_patch_baseline and its companion patch_command_info on a stubbed SSM client.

The Stubber checks every request against botocore's SSM model; `expected_params` pins what the module sends.
"""
from __future__ import annotations

import re

import pytest
from botocore.stub import ANY

from ansible_collections.fleetpatch.ssm.plugins.module_utils import commands
from ansible_collections.fleetpatch.ssm.plugins.modules import patch_command_info
from ansible_collections.fleetpatch.ssm.plugins.modules import run_patch_baseline
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import record_params
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import run_module
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import stubbed
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_commands import COMMAND_ID
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_commands import OTHER_COMMAND_ID
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_commands import SNAPSHOT
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_commands import START
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_commands import command
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_commands import expect_invocations
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_commands import expect_list_commands
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_commands import expect_listing
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_commands import expect_patch_states
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_commands import expect_patches
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_commands import instance
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_commands import invocation
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_commands import node_id
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_commands import patch
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_commands import patch_state

GUID = re.compile(commands.SNAPSHOT_ID_PATTERN)
GROUP_TARGETS = [{"Key": "tag:PatchGroup", "Values": ["db"]}]
SPACED_TARGETS = [{"Key": "tag:Patch Group", "Values": ["db"]}]


def run(args: dict, calls=(), check_mode: bool = False, main=run_patch_baseline.main) -> dict:
    with stubbed() as (client, stubber):
        for queue in calls:
            queue(stubber)
        return run_module(main, args, client, check_mode=check_mode)


def group_listing(*nodes):
    """The two DescribeInstanceInformation calls of a patch group: `nodes` carry the PatchGroup key."""
    def queue(stubber):
        expect_listing(stubber, GROUP_TARGETS, list(nodes))
        expect_listing(stubber, SPACED_TARGETS, [])
    return queue


def sent(targets=None, operation="Install", reboot="NoReboot", snapshot=ANY, response=None, **members):
    """A SendCommand with these Targets (or members such as InstanceIds) and document parameters."""
    params = dict({"DocumentName": "AWS-RunPatchBaseline",
                   "Parameters": {"Operation": [operation], "SnapshotId": [snapshot], "RebootOption": [reboot]}},
                  **members)
    if targets is not None:
        params["Targets"] = targets
    if snapshot is ANY:
        params["Parameters"] = ANY
    return lambda stubber: stubber.add_response("send_command", {"Command": response or command("Pending")}, params)


def polled(answer):
    return lambda stubber: expect_list_commands(stubber, answer)


def reported(invocations, states, patches=None, command_id=COMMAND_ID):
    """The reads after the run: invocations, patch states of their nodes, then each node's patches."""
    def queue(stubber):
        expect_invocations(stubber, invocations, command_id)
        expect_patch_states(stubber, sorted(inv["InstanceId"] for inv in invocations), states)
        for n, rows in (patches or {}).items():
            expect_patches(stubber, n, rows)
    return queue


# ---------------------------------------------------------------------------------------------- validation

@pytest.mark.parametrize("args, message", [
    ({"snapshot_id": "2026-W02"}, "snapshot_id: '2026-W02' is not valid; allowed: a GUID"),
    ({"max_errors": "ten"}, "max_errors: 'ten' is not valid"),
    ({"max_concurrency": "0%"}, "max_concurrency: '0%' is not valid"),
    ({"timeout_seconds": 10}, "timeout_seconds: 10 is out of range; allowed: 30 to 2592000"),
    ({"baseline_override": "/tmp/override.json"}, "baseline_override: '/tmp/override.json' is not valid"),
    ({"patch_group": "db;rm"}, "patch_group: 'db;rm' contains ';'"),
])
def test_invalid_options_fail_naming_the_field_before_any_call(args, message):
    result = run(dict({"operation": "Install", "patch_group": "db"}, **args))
    assert result["failed"] is True and result["msg"].startswith(message)


def test_an_instance_id_fails_naming_its_position():
    result = run({"operation": "Scan", "instance_ids": [node_id(1), "web-01"]})
    assert result["failed"] is True and result["msg"].startswith("instance_ids[1]: 'web-01' is not valid")


@pytest.mark.parametrize("args, message", [
    ({"patch_group": "db", "tags": {"Env": "dev"}}, "parameters are mutually exclusive: instance_ids|tags|patch_group"),
    ({}, "one of the following is required: instance_ids, tags, patch_group"),
    ({"patch_group": "db", "install_override_list": "s3://b/l.yaml", "baseline_override": "s3://b/o.json"},
     "parameters are mutually exclusive: install_override_list|baseline_override"),
])
def test_targets_and_overrides_are_exclusive(args, message):
    result = run(dict({"operation": "Install"}, **args))
    assert result["failed"] is True and message in result["msg"]


# ---------------------------------------------------------------------------------------------- protected groups

SENSITIVE = "prod-sensitive"


def protected_listing(plain=(), spaced=()):
    """The guard's two DescribeInstanceInformation calls: nodes tagged PatchGroup / Patch Group = prod-sensitive."""
    def queue(stubber):
        expect_listing(stubber, [{"Key": "tag:PatchGroup", "Values": [SENSITIVE]}], list(plain))
        expect_listing(stubber, [{"Key": "tag:Patch Group", "Values": [SENSITIVE]}], list(spaced))
    return queue


def tag_listing(*nodes):
    return lambda stubber: expect_listing(stubber, [{"Key": "tag:Tier", "Values": ["app"]}], list(nodes))


@pytest.mark.parametrize("check_mode", [False, True])
def test_an_install_reaching_a_protected_node_by_tags_is_refused_before_sendcommand(check_mode):
    # mi-...2 carries Tier=app and, under the other tag key, the sensitive group: no SendCommand is queued.
    result = run({"operation": "Install", "tags": {"Tier": "app"}, "protected_patch_groups": [SENSITIVE]},
                 [tag_listing(instance(1), instance(2)), protected_listing(spaced=[instance(2), instance(9)])],
                 check_mode=check_mode)
    assert result["failed"] is True
    assert result["msg"] == (
        f"protected_patch_groups: Install refused, nothing was sent: {node_id(2)} belong to the protected patch "
        f"group(s) {SENSITIVE}. Their installs go only through an approved InstallOverrideList "
        "(install_override_list; the fleetpatch.ssm.sensitive_patching role's install step), never the "
        "baseline's approvals")


def test_an_install_of_instance_ids_names_every_protected_one():
    ids = [node_id(1), node_id(2), node_id(3)]
    result = run({"operation": "Install", "instance_ids": ids, "protected_patch_groups": [SENSITIVE]}, [
        lambda stubber: expect_listing(stubber, [{"Key": "InstanceIds", "Values": ids}], [instance(1), instance(2)]),
        protected_listing(plain=[instance(3)], spaced=[instance(1)])])  # mi-..3 is not listed: named, so checked
    assert result["failed"] is True and f"{node_id(1)}, {node_id(3)} belong to the protected" in result["msg"]


def test_a_baseline_override_does_not_lift_the_guard():
    result = run({"operation": "Install", "patch_group": SENSITIVE, "protected_patch_groups": [SENSITIVE],
                  "baseline_override": "s3://b/everything.json"},
                 [lambda stubber: (expect_listing(stubber, [{"Key": "tag:PatchGroup", "Values": [SENSITIVE]}],
                                                  [instance(1)]),
                                   expect_listing(stubber, [{"Key": "tag:Patch Group", "Values": [SENSITIVE]}], [])),
                  protected_listing(plain=[instance(1)])])
    assert result["failed"] is True and "Install refused, nothing was sent" in result["msg"]


def test_an_install_override_list_or_a_scan_passes_without_reading_the_groups():
    override = run({"operation": "Install", "tags": {"Tier": "app"}, "protected_patch_groups": [SENSITIVE],
                    "install_override_list": "s3://approvals/CHG-1.yaml"},
                   [tag_listing(instance(2))], check_mode=True)
    scan = run({"operation": "Scan", "tags": {"Tier": "app"}, "protected_patch_groups": [SENSITIVE]},
               [tag_listing(instance(2))], check_mode=True)
    assert "failed" not in override and "failed" not in scan  # the stubber would fail on an unexpected listing


def test_an_install_that_reaches_no_protected_node_goes_on():
    result = run({"operation": "Install", "tags": {"Tier": "app"}, "protected_patch_groups": [SENSITIVE]},
                 [tag_listing(instance(1)), protected_listing(spaced=[instance(9)])], check_mode=True)
    assert "failed" not in result and [t["instance_id"] for t in result["targets"]] == [node_id(1)]


def test_a_protected_group_is_checked_like_a_tag_value():
    result = run({"operation": "Install", "patch_group": "db", "protected_patch_groups": ["ok", "db;rm"]})
    assert result["failed"] is True and result["msg"].startswith("protected_patch_groups[1]: 'db;rm' contains ';'")


# ---------------------------------------------------------------------------------------------- check mode

def test_check_mode_lists_the_targets_and_sends_nothing():
    result = run({"operation": "Install", "patch_group": "db"}, [group_listing(instance(1), instance(2))],
                 check_mode=True)
    assert result["changed"] is True and result["command_ids"] == []
    assert [target["instance_id"] for target in result["targets"]] == [node_id(1), node_id(2)]
    assert GUID.fullmatch(result["snapshot_id"])
    assert result["document_parameters"] == {"Operation": ["Install"], "SnapshotId": [result["snapshot_id"]],
                                             "RebootOption": ["NoReboot"]}


def test_a_scan_in_check_mode_is_not_a_change_and_ignores_the_override_list_with_a_warning():
    result = run({"operation": "Scan", "patch_group": "db", "install_override_list": "s3://approvals/list.yaml"},
                 [group_listing(instance(1))], check_mode=True)
    assert result["changed"] is False
    assert "InstallOverrideList" not in result["document_parameters"]
    assert result["warnings"] == ["install_override_list is ignored by a Scan (AWS-RunPatchBaseline); it is not sent."]


# ---------------------------------------------------------------------------------------------- runs

def test_an_install_waits_and_reports_what_each_node_installed():
    result = run({"operation": "Install", "patch_group": "db", "snapshot_id": SNAPSHOT}, [
        group_listing(instance(1), instance(2)),
        sent(GROUP_TARGETS, snapshot=SNAPSHOT),
        polled(command("Success")),
        reported([invocation(1), invocation(2)], [patch_state(1), patch_state(2)],
                 {1: [patch("openssl", "INSTALLED_PENDING_REBOOT", installed=START), patch("bash")], 2: []}),
    ])
    assert result["changed"] is True and result["clean"] is True and "failed" not in result
    assert (result["command_id"], result["snapshot_id"], result["status"]) == (COMMAND_ID, SNAPSHOT, "Success")
    assert [p["title"] for p in result["nodes"][0]["installed_patches"]] == ["openssl"]
    assert result["reboot_pending_nodes"] == [node_id(1)]  # NoReboot, the module's default
    assert result["summary"] == "Success: 2/2 nodes done, 0 error(s); every node succeeded"


def test_an_install_that_installed_nothing_is_not_a_change():
    result = run({"operation": "Install", "patch_group": "db", "snapshot_id": SNAPSHOT}, [
        group_listing(instance(1)), sent(GROUP_TARGETS), polled(command("Success", targets=1)),
        reported([invocation(1)], [patch_state(1)], {1: [patch("bash")]}),
    ])
    assert result["changed"] is False and result["nodes"][0]["installed_patches"] == []


def test_a_reboot_only_install_is_a_change():
    """Nothing left to install, but RebootIfNeeded reboots the node whose patches were pending a reboot."""
    result = run({"operation": "Install", "patch_group": "db", "snapshot_id": SNAPSHOT,
                  "reboot_option": "RebootIfNeeded"}, [
        group_listing(instance(1)),
        lambda s: expect_patch_states(s, [node_id(1)], [patch_state(1, pending_reboot=3)]),  # before the run
        sent(GROUP_TARGETS, reboot="RebootIfNeeded"), polled(command("Success", targets=1)),
        reported([invocation(1)], [patch_state(1)], {1: []}),
    ])
    assert result["changed"] is True and result["reboot_pending_nodes"] == []


def test_a_scan_is_not_a_change_and_reports_missing_counts():
    result = run({"operation": "Scan", "tags": {"Tier": "db"}, "snapshot_id": SNAPSHOT}, [
        lambda s: expect_listing(s, [{"Key": "tag:Tier", "Values": ["db"]}], [instance(1)]),
        sent([{"Key": "tag:Tier", "Values": ["db"]}], operation="Scan"),
        polled(command("Success", operation="Scan", targets=1)),
        reported([invocation(1)], [patch_state(1, operation="Scan", MissingCount=7)]),
    ])
    assert result["changed"] is False
    assert result["nodes"][0]["patch_state"]["missing_count"] == 7


def test_every_command_of_a_run_gets_the_one_generated_snapshot():
    ids = [node_id(n) for n in range(1, 61)]
    calls = [lambda s: expect_listing(s, [{"Key": "InstanceIds", "Values": ids[:50]}], []),
             lambda s: expect_listing(s, [{"Key": "InstanceIds", "Values": ids[50:]}], []),
             sent(InstanceIds=ids[:50]),
             sent(InstanceIds=ids[50:], response=command("Pending", command_id=OTHER_COMMAND_ID))]
    with stubbed() as (client, stubber):
        for queue in calls:
            queue(stubber)
        requests = record_params(client, "SendCommand")
        result = run_module(run_patch_baseline.main, {"operation": "Install", "instance_ids": ids, "wait": False},
                            client)
    snapshots = {request["Parameters"]["SnapshotId"][0] for request in requests}
    assert snapshots == {result["snapshot_id"]} and GUID.fullmatch(result["snapshot_id"])
    assert result["command_ids"] == [COMMAND_ID, OTHER_COMMAND_ID] and result["command_id"] == COMMAND_ID
    assert (result["changed"], result["done"], result["status"]) == (True, False, "Pending")  # SendCommand's answer
    assert "nodes" not in result
    assert result["warnings"][0].startswith("Not listed as managed nodes by AWS")


def test_a_failed_and_an_offline_node_fail_the_task_after_the_run_naming_both():
    failing = invocation(2, "Failed", code=1, output="ERROR: package installation failed: dpkg lock")
    offline = invocation(3, "Failed", "Undeliverable", delivered=False)
    result = run({"operation": "Install", "patch_group": "db", "max_errors": "1", "snapshot_id": SNAPSHOT}, [
        group_listing(instance(1), instance(2), instance(3, ping="ConnectionLost")),
        sent(GROUP_TARGETS, MaxErrors="1"),
        polled(command("Failed", "Incomplete", targets=3, errors=1)),
        reported([invocation(1), failing, offline], [patch_state(1), patch_state(2)],
                 {1: [patch("openssl", installed=START)], 2: [patch("openssl", "FAILED")]}),
    ])
    assert result["failed"] is True
    assert result["msg"] == ("AWS-RunPatchBaseline Install did not succeed on every node: Incomplete: 3/3 nodes "
                             f"done, 1 error(s); 1 failed ({node_id(2)}); 1 undeliverable ({node_id(3)})")
    assert (result["failed_nodes"], result["undeliverable_nodes"]) == ([node_id(2)], [node_id(3)])
    assert result["nodes"][0]["outcome"] == "succeeded" and result["changed"] is True
    assert result["nodes"][1]["failed_patches"][0]["title"] == "openssl"
    assert result["warnings"] == [f"The SSM agent of {node_id(3)} is not online: the command will be Undeliverable "
                                  "there."]


@pytest.mark.parametrize("answer, failed", [
    (command("Failed", "Incomplete", targets=2, errors=1), False),  # within max_errors: AWS calls it Incomplete
    (command("Failed", "Failed", targets=2, errors=1), True),  # beyond max_errors
])
def test_without_fail_on_node_errors_aws_verdict_decides(answer, failed):
    result = run({"operation": "Install", "patch_group": "db", "fail_on_node_errors": False}, [
        group_listing(instance(1), instance(2)), sent(GROUP_TARGETS), polled(answer),
        reported([invocation(1), invocation(2, "Failed", code=1)], []),
    ])
    assert result.get("failed", False) is failed
    assert result["failed_nodes"] == [node_id(2)] and result["clean"] is False


def test_a_run_still_going_at_the_wait_timeout_fails_and_names_the_running_nodes():
    result = run({"operation": "Scan", "patch_group": "db", "wait_timeout": 0}, [
        group_listing(instance(1), instance(2)), sent(GROUP_TARGETS, operation="Scan"),
        polled(command("InProgress", operation="Scan", completed=1)),
        reported([invocation(1), invocation(2, "InProgress", code=-1)], []),
    ])
    assert result["failed"] is True
    assert result["msg"].startswith("AWS-RunPatchBaseline Scan still running after 0 s (InProgress: 1/2 nodes done")
    assert result["running_nodes"] == [node_id(2)] and result["command_ids"] == [COMMAND_ID]


def test_a_patch_group_without_nodes_sends_nothing():
    result = run({"operation": "Install", "patch_group": "db"}, [group_listing()])
    assert (result["changed"], result["command_ids"], result["status"]) == (False, [], "NoInstancesInTag")
    assert result["warnings"] == ["No managed node matches {'patch_group': 'db'}: nothing was sent."]


def test_a_failed_second_command_names_the_first_one_running():
    ids = [node_id(n) for n in range(1, 52)]
    result = run({"operation": "Install", "instance_ids": ids}, [
        lambda s: expect_listing(s, [{"Key": "InstanceIds", "Values": ids[:50]}], []),
        lambda s: expect_listing(s, [{"Key": "InstanceIds", "Values": ids[50:]}], []),
        sent(InstanceIds=ids[:50]),
        lambda s: s.add_client_error("send_command", "InvalidInstanceId", "Instances not in a valid state"),
    ])
    assert result["failed"] is True
    assert result["msg"].startswith(f"Failed to send AWS-RunPatchBaseline (commands already running: {COMMAND_ID})")


# ---------------------------------------------------------------------------------------------- patch_command_info

def info(args: dict, calls=()) -> dict:
    return run(args, calls, main=patch_command_info.main)


def test_progress_costs_one_call_per_command():
    result = info({"command_ids": [COMMAND_ID]}, [polled(command("InProgress", targets=40, completed=12, errors=1))])
    assert (result["changed"], result["done"], result["percent_complete"]) == (False, False, 30)
    assert (result["operation"], result["snapshot_id"]) == ("Install", SNAPSHOT)
    assert result["summary"] == "InProgress: 12/40 nodes done, 1 error(s)" and "nodes" not in result


def test_details_report_every_node_without_failing_the_task():
    result = info({"command_id": COMMAND_ID, "details": True}, [
        polled(command("Failed", targets=2, errors=1)),
        reported([invocation(1), invocation(2, "Failed", code=1)], [patch_state(1), patch_state(2)],
                 {1: [patch("openssl", installed=START)], 2: []}),
    ])
    assert "failed" not in result and result["clean"] is False and result["failed_nodes"] == [node_id(2)]
    assert result["nodes"][0]["installed_patches"][0]["title"] == "openssl"


def test_waiting_for_a_run_reads_it_until_done(monkeypatch):
    monkeypatch.setattr(commands.time, "sleep", lambda seconds: None)
    result = info({"command_ids": [COMMAND_ID], "wait_timeout": 600}, [
        polled(command("InProgress", completed=1)), polled(command("InProgress", completed=1)),
        polled(command("Success")),
    ])
    assert (result["done"], result["status"], result["completed_count"]) == (True, "Success", 2)


def test_commands_of_another_document_are_refused():
    result = info({"command_ids": [COMMAND_ID]}, [polled(command(document="AWS-RunShellScript"))])
    assert result["failed"] is True
    assert result["msg"] == f"command_ids: {COMMAND_ID} (AWS-RunShellScript) do not run AWS-RunPatchBaseline"


def test_a_command_id_of_the_wrong_length_fails_before_any_call():
    result = info({"command_ids": ["1234"]})
    assert result["failed"] is True and result["msg"].startswith("command_ids[0]: '1234' has 4 characters")
