# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One machine per server: the merge rules of fleet_merge (and the facts that follow from them)."""
from __future__ import annotations

from ansible_collections.fleetpatch.ssm.plugins.plugin_utils.fleet_facts import machine_facts
from ansible_collections.fleetpatch.ssm.plugins.plugin_utils.fleet_facts import patch_group_drift
from ansible_collections.fleetpatch.ssm.plugins.plugin_utils.fleet_merge import MATCH_RULES
from ansible_collections.fleetpatch.ssm.plugins.plugin_utils.fleet_merge import merge
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.inventory.fleet_records import ACCOUNT
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.inventory.fleet_records import REGION
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.inventory.fleet_records import ec2
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.inventory.fleet_records import hybrid
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.inventory.fleet_records import node
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.inventory.fleet_records import sources
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.inventory.fleet_records import vm

VM_ID = "e0ed29a8-b1f4-4079-86d0-989085dc6ef6"
AZURE = "Microsoft.Compute/virtualMachines"


def merged_with_notes(srcs, rules=MATCH_RULES, tag_keys=("AzureVmId", "AzureResourceId")):
    """(facts of every machine, notes of the merge)"""
    notes = []
    machines = merge(srcs, rules, tag_keys, notes.append)
    return [machine_facts(m, {ACCOUNT: "shared"}) for m in machines], notes


def merged(srcs, rules=MATCH_RULES):
    return merged_with_notes(srcs, rules)[0]


def by_id(facts):
    return {f["fleet_id"]: f for f in facts}


def test_an_ec2_instance_and_its_ssm_record_are_one_host():
    facts = merged(sources([ec2("i-0a", {"Name": "web-1", "PatchGroup": "prod-auto"})], [node("i-0a")]))

    assert len(facts) == 1
    host = facts[0]
    assert host["fleet_sources"] == ["ec2", "ssm"]
    assert (host["fleet_cloud"], host["fleet_patch_group"], host["fleet_ping_status"]) == ("aws", "prod-auto", "Online")
    assert (host["fleet_os_family"], host["fleet_os_version"], host["fleet_platform"]) == ("ubuntu", "22.04", "linux")
    assert host["fleet_account_name"] == "shared"


def test_the_same_instance_id_in_another_account_is_another_machine():
    facts = merged(sources([ec2("i-0a"), ec2("i-0a", account="234567890123")], [node("i-0a")]))

    assert sorted((f["fleet_account_id"], f["fleet_managed"]) for f in facts) == [
        ("123456789012", True), ("234567890123", False)]


def test_an_ec2_node_that_ec2_did_not_list_is_left_out_where_ec2_was_listed():
    # e.g. the EC2 filters exclude it: the SSM record must not bring it back
    facts = merged(sources([ec2("i-0a")], [node("i-0a"), node("i-0b")]))

    assert sorted(by_id(facts)) == ["i-0a"]


def test_an_ec2_node_is_left_out_where_the_ec2_listing_failed():
    # its tags (patch group) are unknown: a play excluding its patch group could otherwise pick it
    facts = merged(sources([], [node("i-0a", region="us-east-1")], ec2_listed=set()))

    assert facts == []


def test_with_the_ec2_source_off_ec2_nodes_come_from_ssm_alone():
    facts = merged(sources([], [node("i-0a")], ec2_listed=set(), ec2_enabled=False))

    assert [(f["fleet_id"], f["fleet_cloud"], f["fleet_patch_group"]) for f in facts] == [("i-0a", "aws", None)]


def test_a_hybrid_node_whose_tags_could_not_be_read_is_left_out():
    facts = merged(sources([], [hybrid("mi-00000000000000001", "db1.corp", tags=None),
                                hybrid("mi-00000000000000002", "db2.corp", tags={"PatchGroup": "prod-sensitive"})]))

    assert sorted(by_id(facts)) == ["mi-00000000000000002"]


def test_an_azure_vm_registered_as_a_hybrid_node_is_one_host_by_source_id():
    registered = hybrid("mi-00000000000000001", "other-name", tags={"PatchGroup": "prod-auto"},
                        source_id=VM_ID.upper(), source_type=AZURE)
    facts = merged(sources([], [registered], [vm("az-app-001", VM_ID, tags={"PatchGroup": "prod-auto", "Tier": "app"})]))

    assert len(facts) == 1
    host = facts[0]
    assert host["fleet_sources"] == ["ssm", "azure"]
    assert (host["fleet_id"], host["fleet_cloud"], host["fleet_matched_by"]) == ("mi-00000000000000001", "azure", "source_id")
    assert host["fleet_tags"] == {"PatchGroup": "prod-auto", "Tier": "app"}
    assert (host["fleet_region"], host["fleet_location"]) == (REGION, "westeurope")


def test_a_node_tagged_with_the_vm_id_or_resource_id_is_that_vm():
    by_vm_id = hybrid("mi-00000000000000001", "x1", tags={"AzureVmId": VM_ID})
    second = vm("az-app-002", "0d6f7b1a-0000-4000-8000-000000000002")
    by_resource_id = hybrid("mi-00000000000000002", "x2", tags={"AzureResourceId": second["id"].upper()})
    facts = merged(sources([], [by_vm_id, by_resource_id], [vm("az-app-001", VM_ID), second]))

    assert {f["fleet_id"]: (f["fleet_azure"]["name"], f["fleet_matched_by"]) for f in facts} == {
        "mi-00000000000000001": ("az-app-001", "tag"), "mi-00000000000000002": ("az-app-002", "tag")}


def test_computer_name_matches_the_first_label_case_insensitively():
    facts = merged(sources([], [hybrid("mi-00000000000000001", "AZ-APP-001.corp.example", tags={})],
                           [vm("az-app-001", VM_ID)]))

    assert [(f["fleet_id"], f["fleet_matched_by"]) for f in facts] == [("mi-00000000000000001", "computer_name")]


def test_a_computer_name_shared_by_two_vms_merges_nothing_and_says_so():
    facts, notes = merged_with_notes(sources(
        [], [hybrid("mi-00000000000000001", "app.corp", tags={})],
        [vm("app", VM_ID, resource_group="rg-a"), vm("app", "0d6f7b1a-0000-4000-8000-000000000002", resource_group="rg-b")]))

    assert len(facts) == 3
    assert all(f["fleet_matched_by"] is None for f in facts)
    assert notes == ["1 hybrid node(s) match several Azure VMs by computer_name and were not merged: "
                     "mi-00000000000000001"]


def test_a_vm_claimed_by_two_nodes_by_computer_name_merges_nothing():
    facts, notes = merged_with_notes(sources([], [hybrid("mi-00000000000000001", "app.corp", tags={}),
                                                  hybrid("mi-00000000000000002", "APP", tags={})], [vm("app", VM_ID)]))

    assert len(facts) == 3
    assert "matches 2 hybrid nodes by computer_name and was not merged" in notes[0]


def test_a_vm_registered_twice_belongs_to_the_node_that_pinged_last():
    stale = hybrid("mi-00000000000000001", "app", tags={}, source_id=VM_ID, source_type=AZURE, pinged=1)
    live = hybrid("mi-00000000000000002", "app", tags={}, source_id=VM_ID, source_type=AZURE, pinged=5)
    facts, notes = merged_with_notes(sources([], [stale, live], [vm("app", VM_ID)]))

    hosts = by_id(facts)
    assert hosts["mi-00000000000000002"]["fleet_azure"]["vm_id"] == VM_ID
    assert hosts["mi-00000000000000001"]["fleet_azure"] is None
    assert hosts["mi-00000000000000001"]["fleet_cloud"] == "azure"  # its SourceType says so
    assert len(facts) == 2
    assert "mi-00000000000000002 (last ping) is the VM's" in notes[0]


def test_rules_apply_in_the_given_order_and_only_those_given():
    # the tag says VM A, the computer name says VM B: the first rule listed wins; without rules nothing merges
    vm_a, vm_b = vm("vm-a", VM_ID), vm("vm-b", "0d6f7b1a-0000-4000-8000-000000000002")
    registered = hybrid("mi-00000000000000001", "vm-b", tags={"AzureVmId": VM_ID})

    tag_first = merged(sources([], [registered], [vm_a, vm_b]), rules=["tag", "computer_name"])
    name_first = merged(sources([], [registered], [vm_a, vm_b]), rules=["computer_name", "tag"])
    no_rules = merged(sources([], [registered], [vm_a, vm_b]), rules=[])

    assert by_id(tag_first)["mi-00000000000000001"]["fleet_azure"]["name"] == "vm-a"
    assert by_id(name_first)["mi-00000000000000001"]["fleet_azure"]["name"] == "vm-b"
    assert len(no_rules) == 3


def test_unmatched_hybrid_nodes_are_on_premises_unless_their_source_type_says_otherwise():
    facts = merged(sources([], [
        hybrid("mi-00000000000000001", "db1.corp", tags={}),
        hybrid("mi-00000000000000002", "gce-1", tags={}, source_id="1234567890", source_type="compute.googleapis.com/Instance"),
    ]))

    assert {f["fleet_id"]: f["fleet_cloud"] for f in facts} == {
        "mi-00000000000000001": "onprem", "mi-00000000000000002": "gcp"}


def test_the_patch_group_is_the_managed_nodes_and_a_different_one_on_the_vm_is_drift():
    registered = hybrid("mi-00000000000000001", "app", tags={"Patch Group": "nonprod"}, source_id=VM_ID, source_type=AZURE)
    notes = []
    machines = merge(sources([], [registered], [vm("app", VM_ID, tags={"PatchGroup": "prod-sensitive"})]),
                     MATCH_RULES, (), notes.append)

    facts = machine_facts(machines[0], {})
    assert facts["fleet_patch_group"] == "nonprod"  # Patch Manager reads the node's tag
    assert patch_group_drift(machines[0]) == ("prod-sensitive", "nonprod")


def test_patchgroup_wins_over_patch_group_when_a_machine_has_both():
    facts = merged(sources([ec2("i-0a", {"Patch Group": "nonprod", "PatchGroup": "prod-auto"})]))

    assert facts[0]["fleet_patch_group"] == "prod-auto"


def test_an_azure_vm_not_registered_is_an_unmanaged_azure_host():
    facts = merged(sources([], [], [vm("az-web-001", VM_ID, tags={"PatchGroup": "prod-auto"}, power="deallocated")]))

    host = facts[0]
    assert (host["fleet_id"], host["fleet_cloud"], host["fleet_managed"], host["fleet_patch_group"]) == (
        VM_ID, "azure", False, "prod-auto")
    assert host["fleet_azure"]["power_state"] == "deallocated"
    assert (host["fleet_subscription_id"], host["fleet_azure"]["resource_group"]) == (
        "1f6b2c8e-3a4d-4e5f-8a9b-0c1d2e3f4a5b", "rg-app")
