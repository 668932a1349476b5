# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host names (preferences, collisions), default groups and connection variables of merged machines."""
from __future__ import annotations

import random

import pytest

from ansible_collections.fleetpatch.ssm.plugins.plugin_utils import fleet_hosts
from ansible_collections.fleetpatch.ssm.plugins.plugin_utils.fleet_facts import machine_facts
from ansible_collections.fleetpatch.ssm.plugins.plugin_utils.fleet_merge import MATCH_RULES
from ansible_collections.fleetpatch.ssm.plugins.plugin_utils.fleet_merge import merge
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.inventory.fleet_records import ec2
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.inventory.fleet_records import hybrid
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.inventory.fleet_records import node
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.inventory.fleet_records import sources
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.inventory.fleet_records import vm

DEFAULT_NAMES = ("name", "instance_id", "vm_id")
VM_ID = "e0ed29a8-b1f4-4079-86d0-989085dc6ef6"


def facts_of(srcs):
    return [machine_facts(m, {}) for m in merge(srcs, MATCH_RULES, ("AzureVmId",), lambda note: None)]


def names(srcs, preferences=DEFAULT_NAMES):
    return {facts["fleet_id"]: host for host, facts in fleet_hosts.assign_hostnames(facts_of(srcs), list(preferences))}


def test_default_names_are_what_each_machine_is_called_where_it_lives():
    hosts = names(sources(
        [ec2("i-0a", {"Name": "web-1"}), ec2("i-0b")],
        [hybrid("mi-00000000000000001", "db1.dc1.corp", tags={}),
         hybrid("mi-00000000000000002", "x", tags={"Name": "erp-1"})],
        [vm("az-app-001", VM_ID)]))

    assert hosts == {"i-0a": "web-1", "i-0b": "i-0b", "mi-00000000000000001": "db1",
                     "mi-00000000000000002": "erp-1", VM_ID: "az-app-001"}


def test_preferences_apply_in_order_and_tags_can_name_hosts():
    srcs = sources([ec2("i-0a", {"Name": "web-1", "Fqdn": "web-1.example.com"}, ip="10.1.2.3")], [node("i-0a")])

    assert names(srcs, ["tag:Fqdn", "name"]) == {"i-0a": "web-1.example.com"}
    assert names(srcs, ["tag:Missing", "private_ip_address"]) == {"i-0a": "10.1.2.3"}
    assert names(srcs, ["private_dns_name"]) == {"i-0a": "ip-10-1-2-3.eu-west-1.compute.internal"}
    assert names(srcs, ["vm_id"]) == {"i-0a": "i-0a"}  # no preference has a value: the machine id


def test_a_name_wanted_twice_stays_with_the_machine_that_appeared_first():
    srcs = sources([ec2("i-0b", {"Name": "worker"}, launched=1), ec2("i-0a", {"Name": "worker"}, launched=5),
                    ec2("i-0c", {"Name": "worker"}, launched=3)])

    assert names(srcs) == {"i-0b": "worker", "i-0c": "worker_i-0c", "i-0a": "worker_i-0a"}


def test_names_do_not_depend_on_the_order_the_sources_answered_in():
    records = [ec2(f"i-{n:02x}", {"Name": f"app-{n % 3}"}, launched=n % 4) for n in range(12)]
    expected = names(sources(records))

    for seed in range(5):
        random.Random(seed).shuffle(records)
        assert names(sources(records)) == expected


def test_a_new_machine_never_renames_an_existing_one():
    old = ec2("i-0f", {"Name": "db"}, launched=0)
    before = names(sources([old]))
    after = names(sources([old, ec2("i-00", {"Name": "db"}, launched=9)]))

    assert before["i-0f"] == after["i-0f"] == "db"
    assert after["i-00"] == "db_i-00"


def test_unknown_preferences_are_refused_with_the_allowed_ones():
    with pytest.raises(ValueError, match=r"hostnames: 'dns-name' is not one of name, instance_id, .*tag:<key>"):
        fleet_hosts.check_preferences("hostnames", ["name", "dns-name"])
    with pytest.raises(ValueError):
        fleet_hosts.check_preferences("hostnames", ["tag:"])


def groups_of(srcs, categories=fleet_hosts.GROUP_CATEGORIES, prefix=""):
    return {facts["fleet_id"]: fleet_hosts.default_groups(facts, list(categories), prefix) for facts in facts_of(srcs)}


def test_an_ec2_node_is_grouped_by_patch_group_os_cloud_account_region_and_ping():
    groups = groups_of(sources([ec2("i-0a", {"PatchGroup": "prod-sensitive"})],
                               [node("i-0a", platform=("Windows", "Microsoft Windows Server 2022 Datacenter",
                                                       "10.0.20348"), ping="ConnectionLost")]))

    assert groups["i-0a"] == [
        ("prod_sensitive", "patch_groups"), ("os_windows", "operating_systems"),
        ("os_windows_2022", "operating_systems"), ("cloud_aws", "clouds"),
        ("account_123456789012", "accounts"), ("region_eu_west_1", "regions"), ("ssm_managed", "ssm"),
        ("ssm_connectionlost", "ssm")]


def test_a_registered_azure_vm_is_in_both_clouds_groups_by_place():
    registered = hybrid("mi-00000000000000001", "app", tags={"Patch Group": "nonprod"}, source_id=VM_ID,
                        source_type="Microsoft.Compute/virtualMachines")
    groups = groups_of(sources([], [registered], [vm("app", VM_ID, location="northeurope")]),
                       categories=["patch_group", "cloud", "account", "region"])

    assert groups["mi-00000000000000001"] == [
        ("nonprod", "patch_groups"), ("cloud_azure", "clouds"), ("account_123456789012", "accounts"),
        ("subscription_1f6b2c8e_3a4d_4e5f_8a9b_0c1d2e3f4a5b", "accounts"), ("region_eu_west_1", "regions"),
        ("location_northeurope", "regions")]


def test_patch_group_groups_keep_case_take_the_prefix_and_the_rest_is_no_patch_group():
    groups = groups_of(sources([ec2("i-0a", {"PatchGroup": "Prod.DB-1"}), ec2("i-0b")]), ["patch_group"], "pg_")

    assert groups == {"i-0a": [("pg_Prod_DB_1", "patch_groups")], "i-0b": [("no_patch_group", "patch_groups")]}


def test_an_unregistered_vm_is_ssm_unmanaged():
    groups = groups_of(sources([], [], [vm("az-1", VM_ID)]), ["ssm", "os"])

    assert groups[VM_ID] == [("ssm_unmanaged", "ssm"), ("os_ubuntu", "operating_systems"),
                             ("os_ubuntu_22_04", "operating_systems"), ("os_linux", "operating_systems")]


def test_connection_variables_for_session_manager_on_managed_nodes_only():
    facts = {f["fleet_id"]: f for f in facts_of(sources([ec2("i-0a", ip="10.9.8.7")], [node("i-0a")],
                                                        [vm("az-1", VM_ID)]))}

    managed = fleet_hosts.connection_vars(facts["i-0a"], ["private_ip_address"], True, "transfer-bucket")
    unmanaged = fleet_hosts.connection_vars(facts[VM_ID], ["private_ip_address"], True, "transfer-bucket")
    plain = fleet_hosts.connection_vars(facts["i-0a"], ["private_ip_address"], False, None)

    assert managed == {"ansible_host": "10.9.8.7", "ansible_connection": "amazon.aws.aws_ssm",
                       "ansible_aws_ssm_instance_id": "i-0a", "ansible_aws_ssm_region": "eu-west-1",
                       "ansible_aws_ssm_bucket_name": "transfer-bucket"}
    assert unmanaged == {}  # no address known, no SSM record
    assert plain == {"ansible_host": "10.9.8.7"}
