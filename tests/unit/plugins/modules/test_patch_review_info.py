# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleetpatch.ssm.patch_review_info on a stubbed SSM client: the review of a scan, inventory snapshots, and the
comparison after an install.

The Stubber checks every request against botocore's SSM model; `expected_params` pins what the module sends.
"""
from __future__ import annotations

import datetime

from ansible_collections.fleetpatch.ssm.plugins.modules import patch_review_info
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import run_module
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import stubbed
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_commands import END
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_commands import SNAPSHOT
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_commands import expect_listing
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_commands import expect_patch_states
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_commands import instance
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_commands import node_id
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_commands import patch_state

GROUP_FILTERS = [[{"Key": "tag:PatchGroup", "Values": ["prod-sensitive"]}],
                 [{"Key": "tag:Patch Group", "Values": ["prod-sensitive"]}]]
OTHER_SNAPSHOT = "1b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9"
CAPTURED = "2026-01-05T12:30:00Z"


def row(kb_id: str, version: str, state: str = "MISSING", cves: str | None = None) -> dict:
    found = {"Title": f"{kb_id}:{version}", "KBId": kb_id, "Classification": "", "Severity": "Required",
             "State": state, "InstalledTime": datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)}
    return dict(found, CVEIds=cves) if cves else found


def entry(name: str, version: str, arch: str = "x86_64") -> dict:
    return {"Name": name, "Version": version, "Architecture": arch, "PackageId": f"{name}_{version}.deb"}


def expect_review_rows(stubber, n: int, rows: list) -> None:
    stubber.add_response("describe_instance_patches", {"Patches": rows}, {
        "InstanceId": node_id(n), "MaxResults": 50,
        "Filters": [{"Key": "State", "Values": ["Missing", "Failed", "InstalledPendingReboot"]}]})


def expect_inventory(stubber, n: int, pages: list, type_name: str = "AWS:Application") -> None:
    """ListInventoryEntries followed page by page with NextToken."""
    for number, entries in enumerate(pages):
        request = {"InstanceId": node_id(n), "TypeName": type_name, "MaxResults": 50}
        if number:
            request["NextToken"] = f"token-{number}"
        answer = {"InstanceId": node_id(n), "TypeName": type_name, "SchemaVersion": "1.1", "CaptureTime": CAPTURED,
                  "Entries": entries}
        if number + 1 < len(pages):
            answer["NextToken"] = f"token-{number + 1}"
        stubber.add_response("list_inventory_entries", answer, request)


def run(args: dict, *queues) -> dict:
    with stubbed() as (client, stubber):
        for queue in queues:
            queue(stubber)
        return run_module(patch_review_info.main, args, client, check_mode=True)


def test_a_patch_group_review_lists_each_candidate_with_its_installed_version():
    def calls(stubber):
        expect_listing(stubber, GROUP_FILTERS[0], [instance(1), instance(2)])
        expect_listing(stubber, GROUP_FILTERS[1], [instance(3, ping="ConnectionLost")])
        expect_patch_states(stubber, [node_id(1), node_id(2), node_id(3)], [
            patch_state(1, operation="Scan"), patch_state(2, operation="Scan", snapshot=OTHER_SNAPSHOT)])
        expect_review_rows(stubber, 1, [
            row("openssl.amd64", "3.0.2-0ubuntu1.15", cves="CVE-2026-1111,CVE-2026-0001"),
            row("libssl3.amd64", "3.0.2-0ubuntu1.15", state="FAILED"),
            row("sudo.amd64", "1.9.9-1ubuntu2.5", state="INSTALLED_PENDING_REBOOT")])
        expect_inventory(stubber, 1, [[entry("openssl", "3.0.2-0ubuntu1.12")],
                                      [entry("libssl3", "3.0.2-0ubuntu1.12")]])

    result = run({"patch_group": "prod-sensitive", "snapshot_id": SNAPSHOT}, calls)

    (server,) = result["servers"]
    assert (server["instance_id"], server["os_family"], server["snapshot_id"]) == (node_id(1), "UBUNTU", SNAPSHOT)
    assert server["operation_end_time"] == END.isoformat() and server["inventory_capture_time"] == CAPTURED
    assert [(e["package"], e["installed_version"], e["candidate_version"], e["state"]) for e in server["missing"]] == [
        ("libssl3.amd64", "3.0.2-0ubuntu1.12", "3.0.2-0ubuntu1.15", "FAILED"),
        ("openssl.amd64", "3.0.2-0ubuntu1.12", "3.0.2-0ubuntu1.15", "MISSING")]
    assert server["missing"][1]["cve_ids"] == ["CVE-2026-0001", "CVE-2026-1111"]
    assert server["pending_reboot"] == ["sudo.amd64"] and "installed" not in server
    reasons = {item["instance_id"]: item["reason"] for item in result["not_reported"]}
    assert f"not the Scan of {SNAPSHOT}" in reasons[node_id(2)]  # every operation overwrites the report
    assert reasons[node_id(3)] == "no patch report (agent ConnectionLost)"
    assert result["changed"] is False


def test_an_inventory_snapshot_of_instance_ids_returns_every_installed_version():
    def calls(stubber):
        expect_listing(stubber, [{"Key": "InstanceIds", "Values": [node_id(1), node_id(9)]}],
                       [instance(1, platform="Windows")])
        expect_patch_states(stubber, [node_id(1)], [])
        expect_inventory(stubber, 1, [[{"HotFixId": "KB5044281"}, {"HotFixId": "KB5046616"}]], "AWS:WindowsUpdate")

    result = run({"instance_ids": [node_id(1), node_id(9)], "patches": False, "return_installed": True}, calls)

    (server,) = result["servers"]
    assert server["installed"] == {"KB5044281": "KB5044281", "KB5046616": "KB5046616"} and server["missing"] == []
    assert result["not_reported"] == [{"instance_id": node_id(9), "reason": "not listed as a managed node by AWS "
                                       "(stopped, terminated, unregistered or unknown)"}]


def verify(after: list, captured: str = CAPTURED, **options) -> dict:
    def calls(stubber):
        expect_listing(stubber, [{"Key": "InstanceIds", "Values": [node_id(1)]}], [instance(1)])
        expect_patch_states(stubber, [node_id(1)], [patch_state(1)])
        stubber.add_response("list_inventory_entries", {"Entries": after, "CaptureTime": captured},
                             {"InstanceId": node_id(1), "TypeName": "AWS:Application", "MaxResults": 50})

    args = dict({"instance_ids": [node_id(1)], "patches": False,
                 "expected": {node_id(1): [{"package": "openssl.amd64", "version": "3.0.2-0ubuntu1.15"}]},
                 "installed_before": {node_id(1): {"openssl.x86_64": "3.0.2-0ubuntu1.12", "tzdata.all": "2024a-1"}}},
                **options)
    (verification,) = run(args, calls)["verification"]
    return verification


def test_after_an_install_exactly_the_expected_change_is_verified():
    verification = verify([entry("openssl", "3.0.2-0ubuntu1.15"), entry("tzdata", "2024a-1", "all")])
    assert verification["status"] == "verified"
    assert verification["approved"] == [{"package": "openssl.amd64", "version": "3.0.2-0ubuntu1.15",
                                         "found": "3.0.2-0ubuntu1.15", "ok": True}]


def test_after_an_install_any_other_change_is_a_mismatch():
    verification = verify([entry("openssl", "3.0.2-0ubuntu1.15"), entry("tzdata", "2024b-1", "all")])
    assert verification["status"] == "mismatch"
    assert verification["unapproved_changes"] == [{"package": "tzdata.all", "before": "2024a-1", "after": "2024b-1"}]


def test_inventory_gathered_before_the_install_ended_is_not_compared():
    verification = verify([entry("openssl", "3.0.2-0ubuntu1.12")], inventory_not_before="2026-01-05T13:00:00Z")
    assert verification == {"instance_id": node_id(1), "status": "inventory_stale", "inventory_capture_time": CAPTURED}


def test_a_comparison_needs_the_earlier_inventory_of_every_node():
    with stubbed() as (client, _stubber):
        result = run_module(patch_review_info.main, {
            "instance_ids": [node_id(1)], "expected": {node_id(1): []}, "installed_before": {}}, client)
    assert result["failed"] and result["msg"].startswith(f"installed_before: no earlier inventory of {node_id(1)}")


def test_a_throttled_inventory_page_is_retried():
    def calls(stubber):
        expect_listing(stubber, [{"Key": "InstanceIds", "Values": [node_id(1)]}], [instance(1)])
        expect_patch_states(stubber, [node_id(1)], [])
        stubber.add_client_error("list_inventory_entries", "ThrottlingException", "Rate exceeded")
        expect_inventory(stubber, 1, [[entry("openssl", "3.0.2-0ubuntu1.12")]])

    result = run({"instance_ids": [node_id(1)], "patches": False, "return_installed": True}, calls)
    assert result["servers"][0]["installed"] == {"openssl.x86_64": "3.0.2-0ubuntu1.12"}
