"""Run Command (AWS-RunPatchBaseline) and patch compliance, as a user of the SSM API sees them."""
from __future__ import annotations

import botocore.exceptions
import pytest

from fleetlab import catalog

STATE_FILTER = {"Key": "State", "Values": ["Missing"]}
TRUNCATED = "\n---Output truncated---"  # the agent's marker: the plugin Output keeps 2,500 characters in all


def _code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def _ids(nodes) -> list[str]:
    return [node.node_id for node in nodes]


def _send(aws, operation: str = "Scan", nodes=None, **kwargs) -> str:
    if nodes is not None:
        kwargs["InstanceIds"] = _ids(nodes)
    response = aws.ssm.send_command(DocumentName="AWS-RunPatchBaseline", Parameters={"Operation": [operation]},
                                    **kwargs)
    return response["Command"]["CommandId"]


def _wait(control, aws, command_id: str) -> dict:
    answer = control.post("/commands/wait", {"account": aws.account, "region": aws.region,
                                             "command_id": command_id, "timeout": 30})
    assert answer["done"], answer
    return aws.ssm.list_commands(CommandId=command_id)["Commands"][0]


def _run(control, aws, operation: str = "Scan", nodes=None, **kwargs) -> dict:
    return _wait(control, aws, _send(aws, operation, nodes, **kwargs))


def _invocations(aws, command_id: str, details: bool = False) -> dict[str, dict]:
    pages = aws.ssm.get_paginator("list_command_invocations").paginate(CommandId=command_id, Details=details)
    return {inv["InstanceId"]: inv for page in pages for inv in page["CommandInvocations"]}


def _patches(aws, node_id: str, filters=None) -> list[dict]:
    pages = aws.ssm.get_paginator("describe_instance_patches").paginate(InstanceId=node_id, Filters=filters or [])
    return [patch for page in pages for patch in page["Patches"]]


@pytest.fixture
def agent_seconds(monkeypatch, lab):
    """Simulated time each batch of agents takes (real seconds)."""
    def set_seconds(seconds: float) -> None:
        monkeypatch.setitem(lab.settings, "agent_seconds_per_node", seconds)
    return set_seconds


# --- patching end to end -------------------------------------------------------------------------------------

def _security_baseline(aws, group: str) -> str:
    baseline_id = aws.ssm.create_patch_baseline(
        Name="al2023-security", OperatingSystem="AMAZON_LINUX_2023",
        ApprovalRules={"PatchRules": [{
            "PatchFilterGroup": {"PatchFilters": [
                {"Key": "CLASSIFICATION", "Values": ["Security"]},
                {"Key": "SEVERITY", "Values": ["Critical", "Important"]},
            ]},
            "ApproveAfterDays": 0,
        }]},
    )["BaselineId"]
    aws.ssm.register_patch_baseline_for_patch_group(BaselineId=baseline_id, PatchGroup=group)
    return baseline_id


def _approved(update: catalog.Update) -> bool:
    return update.classification == "Security" and update.severity in ("Critical", "Important")


def _package(kb_id: str) -> str:
    """Linux KBId is name.arch (user guide: InstallOverrideList ids, DescribeInstancePatches KBId)."""
    return kb_id.rsplit(".", 1)[0]


def test_scan_then_install_changes_exactly_what_the_baseline_approves(aws, control):
    baseline_id = _security_baseline(aws, "prod-auto")
    nodes = aws.launch("amzn-2023", 2, {"PatchGroup": "prod-auto"})
    before = {node.node_id: dict(node.installed) for node in nodes}

    scan = _run(control, aws, "Scan", nodes)
    assert (scan["Status"], scan["TargetCount"], scan["CompletedCount"]) == ("Success", 2, 2)
    assert all(node.installed == before[node.node_id] for node in nodes), "Scan must not change packages"
    missing = {node.node_id: {_package(p["KBId"]) for p in _patches(aws, node.node_id, [STATE_FILTER])}
               for node in nodes}
    assert any(missing.values()), "the seeded nodes lack approved security updates"
    for node in nodes:
        for patch in _patches(aws, node.node_id, [STATE_FILTER]):
            assert patch["Classification"] == "Security" and patch["Severity"] in ("Critical", "Important")

    install = _run(control, aws, "Install", nodes)
    assert install["Status"] == "Success"
    states = {s["InstanceId"]: s for s in aws.ssm.describe_instance_patch_states(InstanceIds=_ids(nodes))[
        "InstancePatchStates"]}
    platform_catalog = catalog.catalog_for(nodes[0].platform)
    left_available = []
    for node in nodes:
        changed = {name for name, version in node.installed.items() if before[node.node_id].get(name) != version}
        assert missing[node.node_id] <= changed
        # Anything else that changed is a dependency the approved versions require.
        required = {name for package in missing[node.node_id]
                    for name, _ in platform_catalog.packages[package].record(node.installed[package]).requires}
        assert changed - missing[node.node_id] <= required
        state = states[node.node_id]
        assert (state["Operation"], state["BaselineId"].endswith(baseline_id), state["PatchGroup"]) == \
               ("Install", True, "prod-auto")
        assert state["MissingCount"] == 0
        assert not _patches(aws, node.node_id, [STATE_FILTER])
        left_available += [u for name, version in node.installed.items() if name in platform_catalog.packages
                           for u in platform_catalog.packages[name].newer(version,
                                                                          released_by=install["RequestedDateTime"])]
    # What the baseline does not approve (other classifications or severities) is still available, and only that.
    assert left_available and not any(_approved(update) for update in left_available)
    # Another account sees none of it.
    from conftest import make_session

    other = make_session(aws.endpoint, "299999999998").client("ssm", endpoint_url=aws.endpoint)
    assert other.describe_instance_patch_states(InstanceIds=_ids(nodes))["InstancePatchStates"] == []
    assert other.list_commands()["Commands"] == []
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        other.describe_instance_patches(InstanceId=nodes[0].node_id)
    assert _code(excinfo) == "InvalidInstanceId"


# --- compliance reads --------------------------------------------------------------------------------------------

def test_patch_states_page_and_take_at_most_50_ids(aws, control):
    scanned = aws.launch("ubuntu-22.04", 12, {"PatchGroup": "nonprod"})
    never_scanned = aws.launch("ubuntu-22.04", 1)
    _run(control, aws, "Scan", scanned)
    ids = _ids(scanned) + _ids(never_scanned) + ["i-0123456789abcdef0"]

    first = aws.ssm.describe_instance_patch_states(InstanceIds=ids, MaxResults=10)
    assert len(first["InstancePatchStates"]) == 10 and first["NextToken"]
    rest = aws.ssm.describe_instance_patch_states(InstanceIds=ids, MaxResults=10, NextToken=first["NextToken"])
    assert "NextToken" not in rest
    listed = [s["InstanceId"] for s in first["InstancePatchStates"] + rest["InstancePatchStates"]]
    assert sorted(listed) == sorted(_ids(scanned))  # no state before a first scan: absent, like unknown ids

    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        aws.ssm.describe_instance_patch_states(InstanceIds=[f"i-{n:017x}" for n in range(51)])
    assert _code(excinfo) == "ValidationException"
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        aws.ssm.describe_instance_patch_states(InstanceIds=ids, NextToken="not-a-token")
    assert _code(excinfo) == "InvalidNextToken"


def test_patch_group_states_filter_on_counts(aws, control):
    nodes = aws.launch("amzn-2", 3, {"PatchGroup": "jump-log"})
    _run(control, aws, "Scan", nodes + aws.launch("amzn-2", 1, {"PatchGroup": "other"}))
    by_count = {s["InstanceId"]: s["MissingCount"]
                for s in aws.ssm.describe_instance_patch_states(InstanceIds=_ids(nodes))["InstancePatchStates"]}

    def group_states(**kwargs) -> set[str]:
        pages = aws.ssm.get_paginator("describe_instance_patch_states_for_patch_group").paginate(
            PatchGroup="jump-log", **kwargs)
        return {s["InstanceId"] for page in pages for s in page["InstancePatchStates"]}

    assert group_states() == set(by_count)
    threshold = sorted(by_count.values())[1]
    assert group_states(Filters=[{"Key": "MissingCount", "Values": [str(threshold)], "Type": "GreaterThan"}]) == \
        {node_id for node_id, count in by_count.items() if count > threshold}
    assert group_states(Filters=[{"Key": "MissingCount", "Values": [str(threshold)], "Type": "Equal"}]) == \
        {node_id for node_id, count in by_count.items() if count == threshold}
    for bad in ({"Key": "Operation", "Values": ["Scan"], "Type": "Equal"},
                {"Key": "MissingCount", "Values": ["many"], "Type": "Equal"}):
        with pytest.raises(botocore.exceptions.ClientError) as excinfo:
            group_states(Filters=[bad])
        assert _code(excinfo) == "InvalidFilter"


def test_instance_patches_filters_and_paging(aws, control):
    node = aws.launch("ubuntu-20.04", 1)[0]
    _run(control, aws, "Scan", [node])
    everything = _patches(aws, node.node_id)
    assert len(everything) == len(node.patch_rows) > 10
    first = aws.ssm.describe_instance_patches(InstanceId=node.node_id, MaxResults=10)
    assert first["Patches"] == everything[:10] and first["NextToken"]

    missing = _patches(aws, node.node_id, [STATE_FILTER])
    assert missing == [p for p in everything if p["State"] == "MISSING"]
    one_kb = everything[0]["KBId"]
    assert {p["KBId"] for p in _patches(aws, node.node_id, [{"Key": "KBId", "Values": [one_kb]}])} == {one_kb}

    for bad in ({"Key": "InstalledTime", "Values": ["2024-01-01"]}, {"Key": "State", "Values": ["MISSING"]}):
        with pytest.raises(botocore.exceptions.ClientError) as excinfo:
            aws.ssm.describe_instance_patches(InstanceId=node.node_id, Filters=[bad])
        assert _code(excinfo) == "InvalidFilter"
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        aws.ssm.describe_instance_patches(InstanceId="i-0123456789abcdef0")
    assert _code(excinfo) == "InvalidInstanceId"


# --- rate controls, failures, offline nodes ----------------------------------------------------------------------

def _max_overlap(invocations: dict[str, dict]) -> int:
    """The most invocations that ran at one moment, from their plugins' start and finish times."""
    spans = [(p["ResponseStartDateTime"], p["ResponseFinishDateTime"])
             for inv in invocations.values() for p in inv["CommandPlugins"] if "skipped" not in p["Output"]]
    return max(sum(start <= moment < end for start, end in spans) for moment, _ in spans)


@pytest.mark.parametrize("max_concurrency, expected", [("2", 2), ("50%", 3)])
def test_max_concurrency_limits_nodes_running_at_once(aws, control, agent_seconds, max_concurrency, expected):
    agent_seconds(0.15)
    nodes = aws.launch("ubuntu-24.04", 6)
    command_id = _send(aws, "Scan", nodes, MaxConcurrency=max_concurrency)
    assert _wait(control, aws, command_id)["Status"] == "Success"
    invocations = _invocations(aws, command_id, details=True)
    assert _max_overlap(invocations) == expected
    starts = sorted(inv["CommandPlugins"][0]["ResponseStartDateTime"] for inv in invocations.values())
    assert starts[0] < starts[1], "Run Command starts with a single node"


def test_max_errors_stops_sending_and_fails_the_command(aws, control, lab):
    nodes = aws.launch("amzn-2023", 5)
    for node in nodes:
        node.fail_install = "dnf lock held by another process"
    command = _run(control, aws, "Install", nodes, MaxConcurrency="1", MaxErrors="1")
    assert (command["Status"], command["ErrorCount"], command["CompletedCount"]) == ("Failed", 2, 5)
    invocations = _invocations(aws, command["CommandId"])
    details = sorted(inv["StatusDetails"] for inv in invocations.values())
    assert details == ["Failed", "Failed", "Terminated", "Terminated", "Terminated"]
    terminated = [inv for inv in invocations.values() if inv["StatusDetails"] == "Terminated"]
    assert {inv["Status"] for inv in terminated} == {"Cancelled"}
    assert all(lab.find_node(inv["InstanceId"]).fail_install for inv in terminated), "never delivered"


def test_errors_within_max_errors_leave_the_command_incomplete(aws, control):
    nodes = aws.launch("amzn-2023", 3)
    nodes[1].fail_install = "disk full"
    command = _run(control, aws, "Install", nodes, MaxConcurrency="1", MaxErrors="1")
    assert (command["Status"], command["StatusDetails"], command["ErrorCount"]) == ("Failed", "Incomplete", 1)
    failed = aws.ssm.get_command_invocation(CommandId=command["CommandId"], InstanceId=nodes[1].node_id,
                                            PluginName="PatchLinux")
    assert (failed["Status"], failed["StatusDetails"]) == ("Failed", "Failed")
    assert failed["ResponseCode"] != 0 and "disk full" in failed["StandardOutputContent"]
    assert {aws.ssm.get_command_invocation(CommandId=command["CommandId"], InstanceId=n.node_id)["Status"]
            for n in (nodes[0], nodes[2])} == {"Success"}


def test_offline_node_is_undeliverable_and_does_not_count_as_an_error(aws, control):
    online, offline = aws.launch("windows-2022", 2)
    offline.online = False
    command = _run(control, aws, "Scan", [online, offline])  # MaxErrors defaults to 0
    assert (command["Status"], command["ErrorCount"], command["CompletedCount"]) == ("Success", 0, 2)
    invocations = _invocations(aws, command["CommandId"], details=True)
    assert (invocations[offline.node_id]["Status"], invocations[offline.node_id]["StatusDetails"]) == \
        ("Failed", "Undeliverable")
    assert invocations[offline.node_id]["CommandPlugins"] == []
    assert offline.patch_state is None
    assert [p["Name"] for p in invocations[online.node_id]["CommandPlugins"]] == ["PatchWindows", "PatchLinux"]

    only_offline = _run(control, aws, "Scan", [offline])
    assert only_offline["Status"] == "Failed"


def test_command_not_delivered_before_its_timeout_times_out(aws, control, agent_seconds):
    agent_seconds(1.0)  # the clock moves on while the first command still runs
    busy = aws.launch("ubuntu-22.04", 1)
    queued = aws.launch("ubuntu-22.04", 2)
    first = _send(aws, "Scan", busy)
    late = _send(aws, "Scan", queued, TimeoutSeconds=30)  # queued behind the first command
    control.post("/clock/advance", {"hours": 0.02})  # 72 s of lab time: past the 30 s delivery timeout
    assert _wait(control, aws, first)["Status"] == "Success"
    command = _wait(control, aws, late)
    assert (command["Status"], command["StatusDetails"], command["DeliveryTimedOutCount"]) == \
        ("TimedOut", "DeliveryTimedOut", 2)
    assert {inv["Status"] for inv in _invocations(aws, late).values()} == {"TimedOut"}


def test_targets_select_by_tag_and_an_empty_selection_succeeds(aws, control):
    tagged = aws.launch("amzn-2", 2, {"PatchGroup": "prod-sensitive"})
    aws.launch("amzn-2", 1, {"PatchGroup": "prod-auto"})
    command = _run(control, aws, "Scan", Targets=[{"Key": "tag:PatchGroup", "Values": ["prod-sensitive"]}])
    assert command["TargetCount"] == 2 and command["InstanceIds"] == []
    assert set(_invocations(aws, command["CommandId"])) == set(_ids(tagged))

    nobody = _run(control, aws, "Scan", Targets=[{"Key": "tag:PatchGroup", "Values": ["nobody"]}])
    assert (nobody["Status"], nobody["StatusDetails"], nobody["TargetCount"]) == ("Success", "NoInstancesInTag", 0)


# --- cancelling, waiting, listing --------------------------------------------------------------------------------

def test_cancel_command_stops_invocations_that_have_not_run(aws, control, agent_seconds):
    agent_seconds(1.0)  # CancelCommand arrives while the first node's step is still running
    nodes = aws.launch("amzn-2023", 3)
    before = {node.node_id: dict(node.installed) for node in nodes}
    command_id = _send(aws, "Install", nodes, MaxConcurrency="1")
    aws.ssm.cancel_command(CommandId=command_id)
    command = _wait(control, aws, command_id)
    assert (command["Status"], command["StatusDetails"]) == ("Cancelled", "Cancelled")
    assert {inv["Status"] for inv in _invocations(aws, command_id).values()} == {"Cancelled"}
    assert all(node.installed == before[node.node_id] for node in nodes)
    aws.ssm.cancel_command(CommandId=command_id)  # a finished command: nothing to do, no error


def test_command_executed_waiter(aws, agent_seconds):
    agent_seconds(0.3)
    good, bad = aws.launch("ubuntu-22.04", 2)
    bad.fail_install = "dpkg was interrupted"
    command_id = _send(aws, "Install", [good, bad], MaxErrors="1")
    waiter = aws.ssm.get_waiter("command_executed")
    waiter.wait(CommandId=command_id, InstanceId=good.node_id, WaiterConfig={"Delay": 1, "MaxAttempts": 10})
    with pytest.raises(botocore.exceptions.WaiterError, match="Failed"):
        waiter.wait(CommandId=command_id, InstanceId=bad.node_id, WaiterConfig={"Delay": 1, "MaxAttempts": 10})


def test_list_commands_pages_newest_first_and_filters(aws, control):
    nodes = aws.launch("amzn-2", 1)
    sent = [_run(control, aws, "Scan", nodes)["CommandId"] for _ in range(3)]
    nodes[0].fail_install = "broken rpmdb"
    failed = _run(control, aws, "Install", nodes)["CommandId"]

    first = aws.ssm.list_commands(MaxResults=2)
    rest = aws.ssm.list_commands(MaxResults=2, NextToken=first["NextToken"])
    assert [c["CommandId"] for c in first["Commands"] + rest["Commands"]] == [failed, *reversed(sent)]
    assert [c["CommandId"] for c in aws.ssm.list_commands(
        Filters=[{"key": "Status", "value": "Failed"}])["Commands"]] == [failed]
    assert len(aws.ssm.list_commands(InstanceId=nodes[0].node_id,
                                     Filters=[{"key": "ExecutionStage", "value": "Complete"}])["Commands"]) == 4
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        aws.ssm.list_command_invocations(Filters=[{"key": "ExecutionStage", "value": "Complete"}])
    assert _code(excinfo) == "InvalidFilterKey"
    assert [c for c in control.get("/commands/pending")["commands"] if c["account"] == aws.account] == []


# --- output ------------------------------------------------------------------------------------------------------

def test_output_goes_to_s3_at_the_documented_key(aws, control):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=f"patch-logs-{aws.account}", CreateBucketConfiguration={"LocationConstraint": aws.region})
    node = aws.launch("ubuntu-22.04", 1)[0]
    command = _run(control, aws, "Scan", [node], OutputS3BucketName=f"patch-logs-{aws.account}",
                   OutputS3KeyPrefix="runs/weekly")
    key = f"runs/weekly/{command['CommandId']}/{node.node_id}/awsrunShellScript/PatchLinux/stdout"
    stored = s3.get_object(Bucket=f"patch-logs-{aws.account}", Key=key)["Body"].read().decode()
    step = aws.ssm.get_command_invocation(CommandId=command["CommandId"], InstanceId=node.node_id,
                                          PluginName="PatchLinux")
    assert stored and step["StandardOutputContent"] == stored[:24000]
    assert step["StandardOutputUrl"].endswith(f"/patch-logs-{aws.account}/{key}")
    plugin = _invocations(aws, command["CommandId"], details=True)[node.node_id]["CommandPlugins"][1]
    assert plugin["Name"] == "PatchLinux"
    assert plugin["OutputS3KeyPrefix"] == f"runs/weekly/{command['CommandId']}/{node.node_id}/awsrunShellScript"
    assert plugin["Output"] == (stored if len(stored) <= 2500 else stored[:2500 - len(TRUNCATED)] + TRUNCATED)
    invocation_level = aws.ssm.get_command_invocation(CommandId=command["CommandId"], InstanceId=node.node_id)
    assert invocation_level["Status"] == "Success" and invocation_level["StandardOutputContent"] == ""

    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        _send(aws, "Scan", [node], OutputS3BucketName="no-such-bucket-fleetlab")
    assert _code(excinfo) == "InvalidOutputFolder"


def test_plugin_output_keeps_2500_characters_and_get_command_invocation_24000(aws, control):
    node = aws.launch("amzn-2023", 1)[0]
    node.fail_install = "transaction check error: " + "file conflicts with another package; " * 100
    command = _run(control, aws, "Install", [node])
    plugin = _invocations(aws, command["CommandId"], details=True)[node.node_id]["CommandPlugins"][1]
    full = aws.ssm.get_command_invocation(CommandId=command["CommandId"], InstanceId=node.node_id,
                                          PluginName="PatchLinux")["StandardOutputContent"]
    assert len(full) > 2500 and node.fail_install is None and "file conflicts" in full
    assert plugin["Output"] == full[:2500 - len(TRUNCATED)] + TRUNCATED


# --- what SendCommand and the readers reject ---------------------------------------------------------------------

INVALID_PARAMETERS = [
    {},                                                                      # Operation is required
    {"Operation": ["Patch"]},                                                # not an allowed value
    {"Operation": ["Scan"], "RebootOption": ["Always"]},
    {"Operation": ["Scan"], "SnapshotId": ["weekly-2024-01"]},              # not a GUID
    {"Operation": ["Install"], "InstallOverrideList": ["http://example.com/list.yaml"]},  # s3:// or https:// only
    {"Operation": ["Scan"], "Commands": ["apt-get upgrade -y"]},             # not a parameter of the document
    {"Operation": ["Scan", "Install"]},                                      # a String takes one value
]


def test_send_command_rejects_invalid_document_parameters(aws):
    node = aws.launch("ubuntu-22.04", 1)[0]
    for parameters in INVALID_PARAMETERS:
        with pytest.raises(botocore.exceptions.ClientError) as excinfo:
            aws.ssm.send_command(DocumentName="AWS-RunPatchBaseline", InstanceIds=[node.node_id],
                                 Parameters=parameters)
        assert _code(excinfo) == "InvalidParameters", parameters
    assert aws.ssm.list_commands()["Commands"] == []


def test_unknown_documents_nodes_commands_and_invocations(aws, control):
    node = aws.launch("ubuntu-22.04", 1)[0]
    cases = [
        (lambda: aws.ssm.send_command(DocumentName="AWS-RunShellScript", InstanceIds=[node.node_id],
                                      Parameters={"commands": ["uptime"]}), "InvalidDocument"),
        (lambda: _send(aws, "Scan", InstanceIds=["i-0123456789abcdef0"]), "InvalidInstanceId"),
        (lambda: aws.ssm.list_commands(CommandId="00000000-0000-4000-8000-000000000000"), "InvalidCommandId"),
        (lambda: aws.ssm.cancel_command(CommandId="00000000-0000-4000-8000-000000000000"), "InvalidCommandId"),
        (lambda: aws.ssm.get_command_invocation(CommandId="00000000-0000-4000-8000-000000000000",
                                                InstanceId=node.node_id), "InvocationDoesNotExist"),
    ]
    for call, code in cases:
        with pytest.raises(botocore.exceptions.ClientError) as excinfo:
            call()
        assert _code(excinfo) == code

    command_id = _run(control, aws, "Scan", [node])["CommandId"]
    other = aws.launch("ubuntu-22.04", 1)[0]
    for kwargs, code in (({"InstanceId": other.node_id}, "InvocationDoesNotExist"),
                         ({"InstanceId": node.node_id, "PluginName": "aws:runShellScript"}, "InvalidPluginName")):
        with pytest.raises(botocore.exceptions.ClientError) as excinfo:
            aws.ssm.get_command_invocation(CommandId=command_id, **kwargs)
        assert _code(excinfo) == code
    skipped = aws.ssm.get_command_invocation(CommandId=command_id, InstanceId=node.node_id, PluginName="PatchWindows")
    assert skipped["Status"] == "Success" and "skipped" in skipped["StandardOutputContent"]
