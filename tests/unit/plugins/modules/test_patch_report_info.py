# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleetpatch.ssm.patch_report_info on stubbed STS, SSM and EC2 clients, with a real history file.

Stubber fails on any call it was not given an answer for: each test's stubbed answers are exactly the calls the
module may make (a test that stubs no DescribeInstancePatches proves the module did not call it).
"""
from __future__ import annotations

import datetime

import pytest

from ansible_collections.fleetpatch.ssm.plugins.module_utils import accounts
from ansible_collections.fleetpatch.ssm.plugins.module_utils.history import History
from ansible_collections.fleetpatch.ssm.plugins.modules import patch_history_info
from ansible_collections.fleetpatch.ssm.plugins.modules import patch_report_info
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import no_sleep
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import run_module
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_accounts import StubbedClients

UTC = datetime.timezone.utc
ACCOUNT = "123456789012"
LINUX, AZURE = "i-0123456789abcdef0", "mi-0123456789abcdef0"
AZURE_VM = "7d3c1a52-5e0f-4b8e-9c61-2f4a8b9e0d13"
PAGE = {"MaxResults": 50}


def at(day: int) -> datetime.datetime:
    return datetime.datetime(2026, 3, day, 12, tzinfo=UTC)


def information(day: int) -> dict:
    return {"InstanceInformationList": [
        {"InstanceId": LINUX, "PingStatus": "Online", "LastPingDateTime": at(day), "PlatformType": "Linux",
         "PlatformName": "Ubuntu", "PlatformVersion": "22.04", "ResourceType": "EC2Instance",
         "ComputerName": "ip-10-0-0-1", "SourceId": LINUX, "SourceType": "AWS::EC2::Instance"},
        {"InstanceId": AZURE, "PingStatus": "ConnectionLost", "LastPingDateTime": at(1), "PlatformType": "Linux",
         "PlatformName": "Ubuntu", "PlatformVersion": "20.04", "ResourceType": "ManagedInstance",
         "Name": "az-app-weu-001", "SourceId": AZURE_VM, "SourceType": "Microsoft.Compute/virtualMachines"},
    ]}


def state(day: int, operation: str = "Scan", **counts) -> dict:
    return {"InstancePatchStates": [{
        "InstanceId": LINUX, "PatchGroup": "prod-auto", "BaselineId": "pb-0123456789abcdef0",
        "SnapshotId": f"00000000-0000-4000-8000-0000000000{day:02d}", "OperationStartTime": at(day),
        "OperationEndTime": at(day), "Operation": operation, "RebootOption": "RebootIfNeeded", **counts}]}


def patches(*rows) -> dict:
    return {"Patches": [{"Title": title, "KBId": title.split(":")[0], "Classification": "", "Severity": "Important",
                         "State": state_name, "InstalledTime": installed or datetime.datetime(1970, 1, 1, tzinfo=UTC)}
                        for title, state_name, installed in rows]}


@pytest.fixture
def clients(monkeypatch):
    factory = StubbedClients()
    monkeypatch.setattr(accounts.Sessions, "_boto3_client",
                        lambda self, session, service, region: factory(session, service, region))
    yield factory
    for stubber in factory.stubbers.values():
        stubber.assert_no_pending_responses()


def expect_listing(clients, day: int, operation: str = "Scan", **counts) -> None:
    clients.stub("sts").add_response("get_caller_identity", {"Account": ACCOUNT})
    clients.stub("ec2").add_response("describe_instances", {"Reservations": [{"Instances": [
        {"InstanceId": LINUX, "Tags": [{"Key": "Name", "Value": "app-01"}]}]}]}, {"MaxResults": 1000})
    clients.stub("ssm").add_response("describe_instance_information", information(day), PAGE)
    clients.stub("ssm").add_response("describe_instance_patch_states", state(day, operation, **counts),
                                     dict(PAGE, InstanceIds=[LINUX, AZURE]))


def expect_patches(clients, *rows) -> None:
    clients.stub("ssm").add_response("describe_instance_patches", patches(*rows), dict(PAGE, InstanceId=LINUX))


def collect(tmp_path, clients, check_mode=False, **args):
    args = dict({"history_path": str(tmp_path / "history.sqlite"), "max_workers": 1, "node_workers": 1,
                 "access_key": "unit", "secret_key": "unit"}, **args)
    return run_module(patch_report_info.main, args, clients, check_mode=check_mode)


def test_first_collection_records_every_node_and_says_which_ones_did_not_report(tmp_path, clients):
    expect_listing(clients, 1, MissingCount=1, InstalledCount=1)
    expect_patches(clients, ("curl.amd64:7.81.0-1ubuntu1.15", "INSTALLED", at(1)),
                   ("openssl.amd64:3.0.2-0ubuntu1.15", "MISSING", None))

    result = collect(tmp_path, clients, label="week0")

    assert result["changed"] is False
    assert result["run"]["run_id"] == 1 and result["run"]["recorded"] is True
    assert result["run"]["as_of"] == at(1).isoformat()  # AWS's clock: the newest ping
    assert result["totals"] == {"nodes": 2, "reported": 1, "no_patch_state": 1, "unreadable": 0,
                                "not_collected": 0, "not_listed": 0, "changes": 0, "rows_read": 1, "duplicates": 0}
    assert result["not_reported"] == [{"account_id": ACCOUNT, "region": "eu-west-1", "instance_id": AZURE,
                                       "name": "az-app-weu-001", "status": "no_patch_state",
                                       "reason": "no patch compliance data: AWS-RunPatchBaseline has not reported "
                                                 "for this node"}]
    assert result["failures"] == [] and result["changes"] == []
    with History.open(str(tmp_path / "history.sqlite")) as history:
        nodes = {n["instance_id"]: n for n in history.query(
            "SELECT n.instance_id, o.name, o.cloud, o.azure_vm_id FROM observations o JOIN nodes n USING (node_id)")}
    assert nodes[LINUX]["name"] == "app-01"  # the EC2 Name tag
    assert (nodes[AZURE]["cloud"], nodes[AZURE]["azure_vm_id"]) == ("azure", AZURE_VM)


def test_a_node_whose_state_did_not_change_is_not_read_again_and_a_changed_one_is(tmp_path, clients):
    expect_listing(clients, 1)
    expect_patches(clients, ("openssl.amd64:3.0.2-0ubuntu1.14", "INSTALLED", at(1)))
    collect(tmp_path, clients)
    expect_listing(clients, 1)  # same state: no DescribeInstancePatches stubbed, none may be called
    unchanged = collect(tmp_path, clients)
    assert unchanged["totals"]["rows_read"] == 0 and unchanged["totals"]["reported"] == 1

    expect_listing(clients, 8, operation="Install")
    expect_patches(clients, ("openssl.amd64:3.0.2-0ubuntu1.15", "INSTALLED", at(8)))
    installed = collect(tmp_path, clients)

    assert [(c["instance_id"], c["node_name"], c["name"], c["from_version"], c["to_version"], c["operation"],
             c["installed_time_check"]) for c in installed["changes"]] == [
        (LINUX, "app-01", "openssl", "3.0.2-0ubuntu1.14", "3.0.2-0ubuntu1.15", "Install", "confirms")]


def test_patches_throttled_through_every_retry_get_one_more_attempt(tmp_path, clients):
    expect_listing(clients, 1)
    for attempt in range(10):  # SSM_RETRY gives up after 10 attempts
        clients.stub("ssm").add_client_error("describe_instance_patches", "ThrottlingException",
                                             expected_params=dict(PAGE, InstanceId=LINUX))
    expect_patches(clients, ("curl.amd64:7.81.0-1ubuntu1.15", "INSTALLED", at(1)))
    with no_sleep():
        result = collect(tmp_path, clients)
    assert result["totals"]["reported"] == 1 and result["not_reported"][0]["instance_id"] == AZURE


def test_a_node_that_stays_unreadable_is_listed_with_the_error(tmp_path, clients):
    expect_listing(clients, 1)
    clients.stub("ssm").add_client_error("describe_instance_patches", "AccessDeniedException",
                                         "not authorized to perform: ssm:DescribeInstancePatches", http_status_code=400)
    result = collect(tmp_path, clients)
    unreadable = [n for n in result["not_reported"] if n["instance_id"] == LINUX]
    assert unreadable[0]["status"] == "unreadable"
    assert "not authorized to perform: ssm:DescribeInstancePatches" in unreadable[0]["reason"]


def test_check_mode_collects_and_compares_but_keeps_nothing(tmp_path, clients):
    expect_listing(clients, 1)
    expect_patches(clients, ("curl.amd64:7.81.0-1ubuntu1.15", "INSTALLED", at(1)))
    result = collect(tmp_path, clients, check_mode=True)
    assert result["run"]["recorded"] is False and result["totals"]["reported"] == 1
    with History.open(str(tmp_path / "history.sqlite")) as history:
        assert history.runs() == []


def test_an_invalid_target_fails_before_any_call(tmp_path, clients):
    result = collect(tmp_path, clients, targets=[{"role_arn": "arn:aws:iam::1:role/x"}])
    assert result["failed"] is True
    assert "targets[0].role_arn" in result["msg"]


def test_history_info_answers_from_the_file(tmp_path, clients):
    expect_listing(clients, 1)
    expect_patches(clients, ("openssl.amd64:3.0.2-0ubuntu1.14", "INSTALLED", at(1)))
    collect(tmp_path, clients)
    expect_listing(clients, 8, operation="Install")
    expect_patches(clients, ("openssl.amd64:3.0.2-0ubuntu1.15", "INSTALLED", at(8)))
    collect(tmp_path, clients)
    history_path = str(tmp_path / "history.sqlite")

    runs = run_module(patch_history_info.main, {"history_path": history_path, "query": "runs"}, None)["runs"]
    changes = run_module(patch_history_info.main, {"history_path": history_path, "query": "changes",
                                                   "package": "openssl*", "days": 7}, None)["changes"]
    diffs = run_module(patch_history_info.main, {"history_path": history_path, "query": "diff",
                                                 "instance": "app-01"}, None)["diffs"]
    report = run_module(patch_history_info.main, {"history_path": history_path}, None)["report"]
    bad = run_module(patch_history_info.main, {"history_path": history_path, "query": "changes",
                                               "since": "last tuesday"}, None)

    assert [(r["run_id"], r["changes"]) for r in runs] == [(2, 1), (1, 0)]
    assert [(c["instance_id"], c["to_version"]) for c in changes] == [(LINUX, "3.0.2-0ubuntu1.15")]
    assert [[c["to_version"] for c in d["changes"]] for d in diffs] == [["3.0.2-0ubuntu1.15"]]
    assert report["run"]["run_id"] == 2 and report["totals"]["updated_packages"] == 1
    assert bad["failed"] is True and bad["msg"].startswith("since: 'last tuesday' is not valid")
