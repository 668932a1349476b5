# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run Command helpers for AWS-RunPatchBaseline: validation, the request, targets, waiting, per-node results.

Every AWS call goes through botocore's Stubber, which checks each request against the SSM model. The answer
builders at the top (`command`, `invocation`, `patch_state`, `patch`, `instance`) are shared with the module tests.
"""
from __future__ import annotations

import datetime

import pytest

from ansible_collections.fleetpatch.ssm.plugins.module_utils import commands
from ansible_collections.fleetpatch.ssm.plugins.module_utils.validation import ParameterError
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import NOW
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import record_params
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import stubbed

SNAPSHOT = "8b8f2d4e-6a36-4c5e-9d57-0f3c1a2b4c5d"
COMMAND_ID = "0b6a1c3e-3f1a-4c57-9a0e-1f2d3c4b5a69"
OTHER_COMMAND_ID = "1c7b2d4f-4a2b-4d68-8b1f-2a3e4d5c6b7a"
START = NOW + datetime.timedelta(minutes=1)
END = NOW + datetime.timedelta(minutes=6)


def node_id(n: int) -> str:
    return f"mi-{n:017x}"


# ---------------------------------------------------------------------------------------------- API answers

def instance(n: int, ping: str = "Online", platform: str = "Linux") -> dict:
    """An InstanceInformation record."""
    return {"InstanceId": node_id(n), "PingStatus": ping, "PlatformType": platform, "PlatformName": "Ubuntu",
            "PlatformVersion": "22.04", "ResourceType": "ManagedInstance", "ComputerName": f"db-{n}"}


def command(status: str = "Success", details: str | None = None, command_id: str = COMMAND_ID,
            operation: str = "Install", reboot: str = "NoReboot", snapshot: str | None = SNAPSHOT, targets: int = 2,
            completed: int | None = None, errors: int = 0, document: str = "AWS-RunPatchBaseline") -> dict:
    """A Command (SendCommand / ListCommands)."""
    parameters = {"Operation": [operation], "RebootOption": [reboot]}
    if snapshot:
        parameters["SnapshotId"] = [snapshot]
    return {
        "CommandId": command_id, "DocumentName": document, "Parameters": parameters, "RequestedDateTime": NOW,
        "Status": status, "StatusDetails": details or status, "TargetCount": targets,
        "CompletedCount": targets if completed is None else completed, "ErrorCount": errors,
        "DeliveryTimedOutCount": 0, "MaxConcurrency": "50", "MaxErrors": "0",
        "Targets": [{"Key": "tag:PatchGroup", "Values": ["db"]}], "InstanceIds": [],
    }


def invocation(n: int, status: str = "Success", details: str | None = None, code: int = 0, output: str = "",
               command_id: str = COMMAND_ID, delivered: bool = True) -> dict:
    """A CommandInvocation with Details: the node's step, and the other platform's step skipped with code 0."""
    plugins = []
    if delivered:
        plugins = [
            {"Name": "PatchWindows", "Status": "Success", "StatusDetails": "Success", "ResponseCode": 0,
             "Output": "Step execution skipped due to unsatisfied preconditions"},
            {"Name": "PatchLinux", "Status": status, "StatusDetails": details or status, "ResponseCode": code,
             "Output": output},
        ]
    return {"CommandId": command_id, "InstanceId": node_id(n), "InstanceName": f"db-{n}", "Status": status,
            "StatusDetails": details or status, "CommandPlugins": plugins}


def patch_state(n: int, operation: str = "Install", snapshot: str = SNAPSHOT, pending_reboot: int = 0,
                **counts) -> dict:
    """An InstancePatchState of one run."""
    return dict({
        "InstanceId": node_id(n), "PatchGroup": "db", "BaselineId": "pb-00000000000000001", "SnapshotId": snapshot,
        "InstalledCount": 10, "InstalledOtherCount": 0, "InstalledPendingRebootCount": pending_reboot,
        "InstalledRejectedCount": 0, "MissingCount": 0, "FailedCount": 0, "NotApplicableCount": 0,
        "OperationStartTime": START, "OperationEndTime": END, "Operation": operation,
    }, **counts)


def patch(title: str, state: str = "INSTALLED", installed: datetime.datetime = NOW, cves: str | None = None) -> dict:
    """A PatchComplianceData row."""
    row = {"Title": title, "KBId": f"{title}.amd64", "Classification": "Security", "Severity": "Important",
           "State": state, "InstalledTime": installed}
    if cves:
        row["CVEIds"] = cves
    return row


def expect_list_commands(stubber, answer: dict) -> None:
    stubber.add_response("list_commands", {"Commands": [answer]}, {"CommandId": answer["CommandId"]})


def expect_invocations(stubber, invocations: list, command_id: str = COMMAND_ID) -> None:
    stubber.add_response("list_command_invocations", {"CommandInvocations": invocations},
                         {"CommandId": command_id, "Details": True, "MaxResults": 50})


def expect_patch_states(stubber, ids: list, states: list) -> None:
    stubber.add_response("describe_instance_patch_states", {"InstancePatchStates": states},
                         {"InstanceIds": ids, "MaxResults": 50})


def expect_patches(stubber, n: int, rows: list) -> None:
    stubber.add_response("describe_instance_patches", {"Patches": rows}, {
        "InstanceId": node_id(n), "MaxResults": 50,
        "Filters": [{"Key": "State", "Values": ["Installed", "InstalledOther", "InstalledPendingReboot", "Failed"]}],
    })


def expect_listing(stubber, filters: list, nodes: list) -> None:
    stubber.add_response("describe_instance_information", {"InstanceInformationList": nodes},
                         {"Filters": filters, "MaxResults": 50})


# ---------------------------------------------------------------------------------------------- validation

RUN = {"operation": "Install", "reboot_option": "NoReboot"}


@pytest.mark.parametrize("options, message", [
    ({"snapshot_id": "not-a-guid"}, "snapshot_id: 'not-a-guid' is not valid; allowed: a GUID"),
    ({"install_override_list": "ftp://host/list.yaml"}, "install_override_list: 'ftp://host/list.yaml' is not valid"),
    ({"install_override_list": "s3://bucket/"}, "install_override_list: 's3://bucket/' is not valid"),
    ({"baseline_override": "s3://bucket/$HOME.json"}, "baseline_override: 's3://bucket/$HOME.json' is not valid; "
                                                      "allowed: a file name without"),
    ({"max_concurrency": "0"}, "max_concurrency: '0' is not valid; allowed: a number of nodes from 1"),
    ({"max_concurrency": "101%"}, "max_concurrency: '101%' is not valid"),
    ({"max_concurrency": "12345678"}, "max_concurrency: '12345678' has 8 characters; allowed: 1 to 7"),
    ({"max_errors": "-1"}, "max_errors: '-1' is not valid; allowed: a number of errors from 0"),
    ({"max_errors": "05"}, "max_errors: '05' is not valid"),
    ({"timeout_seconds": 29}, "timeout_seconds: 29 is out of range; allowed: 30 to 2592000"),
    ({"comment": "c" * 101}, "comment: '" + "c" * 101 + "' has 101 characters; allowed: 0 to 100"),
    ({"output_s3_bucket": "ab"}, "output_s3_bucket: 'ab' has 2 characters; allowed: 3 to 63"),
    ({"cloudwatch_log_group_name": "/patch", "cloudwatch_output": False},
     "cloudwatch_log_group_name: '/patch' is set while cloudwatch_output is false"),
    ({"wait_timeout": -1}, "wait_timeout: -1 is out of range"),
    ({"poll_interval": 0}, "poll_interval: 0 is out of range; allowed: 1 to 3600"),
])
def test_run_options_are_refused_naming_the_field(options, message):
    with pytest.raises(ParameterError) as error:
        commands.check_run_options(dict(RUN, **options))
    assert str(error.value).startswith(message)


@pytest.mark.parametrize("options", [
    {"snapshot_id": SNAPSHOT.upper()},
    {"install_override_list": "https://s3.eu-west-1.amazonaws.com/approvals/2026-W02/ubuntu.yaml"},
    {"install_override_list": "s3://approvals/2026-W02/ubuntu.yaml", "baseline_override": "s3://b/o.json"},
    {"max_concurrency": "1", "max_errors": "0"},
    {"max_concurrency": "100%", "max_errors": "0%"},
    {"max_concurrency": "5%", "max_errors": "10%"},
    {"timeout_seconds": 30, "cloudwatch_log_group_name": "/aws/ssm/patch"},
])
def test_valid_run_options_pass(options):
    commands.check_run_options(dict(RUN, **options))


@pytest.mark.parametrize("targets, message", [
    ({"instance_ids": []}, "instance_ids: 0 entries; allowed: at least 1"),
    ({"instance_ids": [node_id(1), "host-1"]}, "instance_ids[1]: 'host-1' is not valid; allowed: an EC2 instance ID"),
    ({"instance_ids": [node_id(1), node_id(1)]}, f"instance_ids: '{node_id(1)}' is given more than once"),
    ({"tags": {}}, "tags: 0 entries; allowed: at least 1"),
    ({"tags": {f"k{i}": "v" for i in range(6)}}, "tags: 6 entries; allowed: at most 5"),
    ({"tags": {"Env+Tier": "dev"}}, "tags.Env+Tier: 'Env+Tier' contains '+'"),
    ({"tags": {"Env;": "dev"}}, "tags.Env;: 'Env;' contains ';'"),
    ({"tags": {"Env": [str(i) for i in range(51)]}}, "tags.Env: 51 entries; allowed: at most 50"),
    ({"tags": {"Env": []}}, "tags.Env: 0 entries; allowed: at least 1"),
    ({"patch_group": ""}, "patch_group: '' has 0 characters; allowed: 1 to 256"),
    ({"patch_group": "db|prod"}, "patch_group: 'db|prod' contains '|'"),
])
def test_targets_are_refused_naming_the_field(targets, message):
    with pytest.raises(ParameterError) as error:
        commands.check_targets(targets)
    assert str(error.value).startswith(message)


# ---------------------------------------------------------------------------------------------- the request

def test_the_document_always_gets_operation_snapshot_and_reboot_option():
    assert commands.document_parameters("Install", SNAPSHOT, "NoReboot") == {
        "Operation": ["Install"], "SnapshotId": [SNAPSHOT], "RebootOption": ["NoReboot"]}


def test_a_scan_never_sends_the_install_override_list():
    url = "s3://approvals/list.yaml"
    assert "InstallOverrideList" not in commands.document_parameters("Scan", SNAPSHOT, "NoReboot", url)
    assert commands.document_parameters("Install", SNAPSHOT, "NoReboot", url)["InstallOverrideList"] == [url]


def test_unset_options_are_not_sent_and_set_ones_are_valid_for_sendcommand():
    full = dict(RUN, comment="weekly", timeout_seconds=600, max_concurrency="10%", max_errors="1",
                output_s3_bucket="patch-logs", output_s3_key_prefix="runs", cloudwatch_log_group_name="/patch")
    with stubbed() as (client, stubber):
        for params in (RUN, full):
            stubber.add_response("send_command", {"Command": command("Pending")})
        sent = record_params(client, "SendCommand")
        for params in (RUN, full):
            commands.send_command(client, dict(commands.command_request(params, SNAPSHOT), InstanceIds=[node_id(1)]))
    assert sent[0] == {"DocumentName": "AWS-RunPatchBaseline", "InstanceIds": [node_id(1)],
                       "Parameters": commands.document_parameters("Install", SNAPSHOT, "NoReboot")}
    assert sent[1]["CloudWatchOutputConfig"] == {"CloudWatchOutputEnabled": True, "CloudWatchLogGroupName": "/patch"}
    assert (sent[1]["MaxConcurrency"], sent[1]["MaxErrors"], sent[1]["TimeoutSeconds"]) == ("10%", "1", 600)


def test_sendcommand_is_retried_when_throttled():
    with stubbed() as (client, stubber):
        stubber.add_client_error("send_command", "ThrottlingException", http_status_code=400)
        stubber.add_response("send_command", {"Command": command("Pending")})
        request = dict(commands.command_request(RUN, SNAPSHOT), InstanceIds=[node_id(1)])
        assert commands.send_command(client, request)["CommandId"] == COMMAND_ID


# ---------------------------------------------------------------------------------------------- targets

def test_instance_ids_go_in_commands_of_50_each_listed_first():
    ids = [node_id(n) for n in range(1, 121)]
    with stubbed() as (client, stubber):
        for chunk in (ids[:50], ids[50:100], ids[100:]):
            expect_listing(stubber, [{"Key": "InstanceIds", "Values": chunk}], [instance(int(chunk[0][3:], 16))])
        selections = commands.target_selections(client, instance_ids=ids)
    assert [selection.address for selection in selections] == [
        {"InstanceIds": ids[:50]}, {"InstanceIds": ids[50:100]}, {"InstanceIds": ids[100:]}]
    assert commands.unlisted_ids(selections) == sorted(set(ids) - {node_id(1), node_id(51), node_id(101)})


def test_tags_are_one_command_whose_targets_are_anded_and_values_ored():
    targets = [{"Key": "tag:Env", "Values": ["dev", "qa"]}, {"Key": "tag:Tier", "Values": ["3"]}]
    with stubbed() as (client, stubber):
        expect_listing(stubber, targets, [instance(1), instance(2, ping="ConnectionLost")])
        selections = commands.target_selections(client, tags={"Tier": 3, "Env": ["dev", "qa"]})
    assert [selection.address for selection in selections] == [{"Targets": targets}]
    assert commands.offline_ids(selections) == [node_id(2)]


def test_a_patch_group_is_one_command_per_tag_key_its_nodes_carry():
    with stubbed() as (client, stubber):
        expect_listing(stubber, [{"Key": "tag:PatchGroup", "Values": ["db"]}], [])
        expect_listing(stubber, [{"Key": "tag:Patch Group", "Values": ["db"]}], [instance(1), instance(2)])
        selections = commands.target_selections(client, patch_group="db")
    assert [selection.address for selection in selections] == [
        {"Targets": [{"Key": "tag:Patch Group", "Values": ["db"]}]}]
    assert [commands.node_view(node)["instance_id"] for node in selections[0].nodes] == [node_id(1), node_id(2)]


def test_a_patch_group_under_both_keys_is_two_commands():
    with stubbed() as (client, stubber):
        expect_listing(stubber, [{"Key": "tag:PatchGroup", "Values": ["db"]}], [instance(1)])
        expect_listing(stubber, [{"Key": "tag:Patch Group", "Values": ["db"]}], [instance(2)])
        selections = commands.target_selections(client, patch_group="db")
    keys = [selection.address["Targets"][0]["Key"] for selection in selections]
    assert keys == ["tag:PatchGroup", "tag:Patch Group"]


def test_a_node_with_the_group_under_both_keys_is_refused_by_name():
    with stubbed() as (client, stubber):
        expect_listing(stubber, [{"Key": "tag:PatchGroup", "Values": ["db"]}], [instance(1), instance(2)])
        expect_listing(stubber, [{"Key": "tag:Patch Group", "Values": ["db"]}], [instance(2)])
        with pytest.raises(ParameterError, match=f"patch_group: 'db' is the value of both .* of {node_id(2)};"):
            commands.target_selections(client, patch_group="db")


def test_tags_that_list_no_node_send_nothing():
    with stubbed() as (client, stubber):
        expect_listing(stubber, [{"Key": "tag:Env", "Values": ["gone"]}], [])
        assert commands.target_selections(client, tags={"Env": "gone"}) == []


# ---------------------------------------------------------------------------------------------- waiting

class FakeTime:
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_waiting_polls_listcommands_until_every_command_is_done():
    fake = FakeTime()
    with stubbed() as (client, stubber):
        expect_list_commands(stubber, command("InProgress", completed=0))
        expect_list_commands(stubber, command("InProgress", completed=1))
        expect_list_commands(stubber, command("Failed", completed=2, errors=1))
        done = commands.wait_for_commands(client, [COMMAND_ID], 600, 15, fake.sleep, fake.clock)
    assert done[0]["Status"] == "Failed" and fake.sleeps == [15, 15]


def test_waiting_stops_at_the_timeout_with_the_commands_as_they_are():
    fake = FakeTime()
    with stubbed() as (client, stubber):
        for moment in (0, 15, 30, 40):  # the last poll is at the deadline
            expect_list_commands(stubber, command("InProgress", completed=0, targets=moment + 2))
        statuses = commands.wait_for_commands(client, [COMMAND_ID], 40, 15, fake.sleep, fake.clock)
    assert statuses[0]["TargetCount"] == 42 and fake.sleeps == [15, 15, 10]  # the deadline's answer


def test_a_throttled_poll_is_retried():
    with stubbed() as (client, stubber):
        stubber.add_client_error("list_commands", "ThrottlingException", http_status_code=400)
        expect_list_commands(stubber, command())
        assert commands.wait_for_commands(client, [COMMAND_ID], 0, 15)[0]["Status"] == "Success"


# ---------------------------------------------------------------------------------------------- per node

def test_installed_patches_are_those_installed_during_the_operation():
    rows = [patch("openssl", installed=START + datetime.timedelta(minutes=2)),
            patch("curl", "INSTALLED_OTHER", installed=END),
            patch("kernel", "INSTALLED_PENDING_REBOOT", installed=START),
            patch("bash", installed=START - datetime.timedelta(seconds=1)),   # before this run
            patch("zlib", "MISSING", installed=START + datetime.timedelta(minutes=1))]
    installed = commands.installed_by_run(rows, patch_state(1))
    assert [row["Title"] for row in installed] == ["openssl", "curl", "kernel"]


@pytest.mark.parametrize("reboot, state, installed, pending", [
    ("NoReboot", patch_state(1), [patch("openssl")], True),
    ("NoReboot", patch_state(1), [], False),
    ("RebootIfNeeded", patch_state(1), [patch("openssl")], False),
    ("RebootIfNeeded", patch_state(1, pending_reboot=2), [], True),
    ("NoReboot", None, None, None),
])
def test_reboot_pending(reboot, state, installed, pending):
    run = commands.Run.of(command(reboot=reboot))
    assert commands.reboot_pending(run, state, installed) is pending


def test_the_response_code_is_the_failing_steps():
    assert commands.step_result(invocation(1, "Failed", code=1, output="E: lock")["CommandPlugins"]) == (1, "E: lock")
    assert commands.step_result(invocation(1)["CommandPlugins"]) == (0, None)
    assert commands.step_result([]) == (None, None)


def test_a_state_is_this_runs_report_only_with_its_operation_and_snapshot():
    run = commands.Run.of(command())
    assert run.reported(patch_state(1))
    assert not run.reported(patch_state(1, operation="Scan"))
    assert not run.reported(patch_state(1, snapshot="11111111-2222-3333-4444-555555555555"))
    assert not run.reported(None)


def test_without_a_snapshot_a_state_is_this_runs_when_it_ended_after_the_command_was_sent():
    run = commands.Run.of(command(snapshot=None))
    assert run.reported(patch_state(1))
    assert not run.reported(patch_state(1, OperationEndTime=NOW - datetime.timedelta(days=7)))


def test_collect_nodes_assembles_each_nodes_result():
    failing = invocation(2, "Failed", code=1, output="ERROR: package installation failed: dpkg lock")
    with stubbed() as (client, stubber):
        undeliverable = invocation(3, "Failed", "Undeliverable", delivered=False)
        expect_invocations(stubber, [failing, invocation(1), undeliverable])
        expect_patch_states(stubber, [node_id(1), node_id(2), node_id(3)], [
            patch_state(1), patch_state(2, FailedCount=1),
            patch_state(3, snapshot="11111111-2222-3333-4444-555555555555")])  # an older run's report
        expect_patches(stubber, 1, [patch("openssl", installed=START), patch("bash")])
        expect_patches(stubber, 2, [patch("openssl", "FAILED", installed=datetime.datetime(1970, 1, 1),
                                          cves="CVE-2026-0001,CVE-2026-0002")])
        nodes = commands.collect_nodes(client, [command()])
    first, second, third = nodes
    assert [node["instance_id"] for node in nodes] == [node_id(1), node_id(2), node_id(3)]
    assert (first["outcome"], first["response_code"], first["output"], first["reboot_pending"]) == \
        ("succeeded", 0, None, True)
    assert [p["title"] for p in first["installed_patches"]] == ["openssl"] and first["failed_patches"] == []
    assert first["patch_state"]["installed_count"] == 10
    assert first["patch_state"]["operation_start_time"] == START.isoformat()
    assert (second["outcome"], second["response_code"]) == ("failed", 1)
    assert second["output"].endswith("dpkg lock") and second["installed_patches"] == []
    assert second["failed_patches"][0]["cve_ids"] == ["CVE-2026-0001", "CVE-2026-0002"]
    assert (third["outcome"], third["patch_state"], third["installed_patches"], third["reboot_pending"]) == \
        ("undeliverable", None, None, None)


def test_a_scan_reads_no_packages():
    with stubbed() as (client, stubber):
        expect_invocations(stubber, [invocation(1)])
        expect_patch_states(stubber, [node_id(1)], [patch_state(1, operation="Scan", MissingCount=4)])
        nodes = commands.collect_nodes(client, [command(operation="Scan")])
    assert nodes[0]["patch_state"]["missing_count"] == 4 and nodes[0]["installed_patches"] is None


def test_patch_states_are_read_50_ids_per_call():
    ids = [node_id(n) for n in range(1, 61)]
    with stubbed() as (client, stubber):
        expect_patch_states(stubber, ids[:50], [patch_state(1)])
        expect_patch_states(stubber, ids[50:], [patch_state(51)])
        assert sorted(commands.patch_states(client, ids)) == [node_id(1), node_id(51)]


# ---------------------------------------------------------------------------------------------- the run

@pytest.mark.parametrize("answers, status", [
    ([command("Pending")], "Pending"),
    ([command("Success"), command("InProgress")], "InProgress"),
    ([command("Success")], "Success"),
    ([command("Success", "NoInstancesInTag")], "NoInstancesInTag"),
    ([command("Success"), command("Success", "NoInstancesInTag")], "Success"),
    ([command("Failed", "Incomplete"), command("Success")], "Incomplete"),
    ([command("Failed", "Incomplete"), command("Failed")], "Failed"),
    ([command("TimedOut", "DeliveryTimedOut"), command("Failed", "Incomplete")], "DeliveryTimedOut"),
])
def test_one_status_for_the_runs_commands(answers, status):
    assert commands.run_status(answers) == status


@pytest.mark.parametrize("status, failed", [
    ("Success", False), ("Incomplete", False), ("NoInstancesInTag", False),
    ("Failed", True), ("DeliveryTimedOut", True), ("Cancelled", True),
])
def test_awss_own_verdict(status, failed):
    assert commands.aws_verdict_failed(status) is failed


def test_the_report_names_the_nodes_that_did_not_succeed():
    nodes = [
        commands.node_result(invocation(1), commands.Run.of(command()), None, None),
        commands.node_result(invocation(2, "Failed", code=1), commands.Run.of(command()), None, None),
        commands.node_result(invocation(3, "Failed", "Undeliverable", delivered=False), commands.Run.of(command()),
                             None, None),
        commands.node_result(invocation(4, "TimedOut", "DeliveryTimedOut", delivered=False),
                             commands.Run.of(command()), None, None),
        commands.node_result(invocation(5, "Cancelled", "Terminated", delivered=False), commands.Run.of(command()),
                             None, None),
    ]
    report = commands.run_report([command("Failed", targets=5, errors=1)], nodes)
    assert (report["failed_nodes"], report["undeliverable_nodes"], report["timed_out_nodes"],
            report["cancelled_nodes"]) == ([node_id(2)], [node_id(3)], [node_id(4)], [node_id(5)])
    assert report["clean"] is False and report["done"] is True and report["percent_complete"] == 100
    assert report["summary"] == (f"Failed: 5/5 nodes done, 1 error(s); 1 failed ({node_id(2)}); 1 undeliverable "
                                 f"({node_id(3)}); 1 timed out ({node_id(4)}); 1 cancelled ({node_id(5)})")


def test_progress_of_a_run_under_way():
    report = commands.run_report([command("InProgress", targets=40, completed=12, errors=1),
                                  command("Pending", command_id=OTHER_COMMAND_ID, targets=0, completed=0)])
    assert (report["status"], report["done"], report["target_count"], report["percent_complete"]) == \
        ("InProgress", False, 40, 30)
    assert report["summary"] == "InProgress: 12/40 nodes done, 1 error(s)" and "nodes" not in report
