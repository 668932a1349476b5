# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleetpatch.ssm.fleet plugin end to end on read results: hosts, groups, variables, constructed features,
filters, the cache (a hit reads nothing) and what a failed part of the fleet does (warning, error when strict)."""
from __future__ import annotations

import botocore.exceptions
import pytest
import yaml
from ansible.errors import AnsibleOptionsError
from ansible.errors import AnsibleParserError
from ansible.inventory.data import InventoryData
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar
from ansible.template import trust_as_template

from ansible_collections.fleetpatch.ssm.plugins.inventory.fleet import Read
from ansible_collections.fleetpatch.ssm.plugins.plugin_utils.fleet_jobs import JobFailure
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.inventory.fleet_records import ec2
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.inventory.fleet_records import hybrid
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.inventory.fleet_records import node
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.inventory.fleet_records import sources
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.inventory.fleet_records import vm

VM_ID = "e0ed29a8-b1f4-4079-86d0-989085dc6ef6"


def fleet():
    return sources(
        [ec2("i-0a", {"Name": "pg-1", "PatchGroup": "prod-sensitive"}), ec2("i-0b", {"Name": "web-1", "Patch Group": "prod-auto"})],
        [node("i-0a"), node("i-0b", ping="ConnectionLost"),
         hybrid("mi-00000000000000001", "az-app-001", tags={"PatchGroup": "prod-auto"}, source_id=VM_ID,
                source_type="Microsoft.Compute/virtualMachines"),
         hybrid("mi-00000000000000002", "erp-1.dc1.corp", tags={"PatchGroup": "prod-sensitive"},
                platform=("Windows", "Microsoft Windows Server 2016 Datacenter", "10.0.14393"))],
        [vm("az-app-001", VM_ID, tags={"PatchGroup": "prod-auto"}),
         vm("az-dev-001", "0d6f7b1a-0000-4000-8000-000000000002", tags={"PatchGroup": "nonprod"})])


class Run:
    """Parses a configuration with the plugin, each read answered by `reads` (a fake of _read_fleet)."""

    def __init__(self, inventory_plugins, tmp_path, monkeypatch):
        self.plugins, self.tmp_path, self.monkeypatch = inventory_plugins, tmp_path, monkeypatch
        self.reads, self.warnings, self.answer, self.tagging_denied = 0, [], (fleet(), []), []

    def __call__(self, use_cache=True, **config):
        path = self.tmp_path / "test.fleet.yml"
        path.write_text(yaml.safe_dump({"plugin": "fleetpatch.ssm.fleet", **config}))
        plugin = self.plugins.get("fleetpatch.ssm.fleet")
        module = type(plugin)

        def read_fleet(_plugin):
            self.reads += 1
            srcs, failures = self.answer
            return Read(srcs, {"123456789012": "shared"}, failures, self.tagging_denied)

        self.monkeypatch.setattr(module, "_read_fleet", read_fleet)
        self.monkeypatch.setattr(module, "warn", lambda _plugin, message: self.warnings.append(message))
        inventory = InventoryData()
        plugin.parse(inventory, DataLoader(), str(path), cache=use_cache)
        plugin.update_cache_if_changed() if config.get("cache") else None
        return inventory

    def through_ansible(self, **config):
        """The same read through ansible-core's InventoryManager, as ansible-inventory and ansible-playbook do it
        (ansible-core 2.19 hands the plugin a proxy of the inventory data)."""
        self(**config)  # writes the file and fakes the read
        return InventoryManager(DataLoader(), [str(self.tmp_path / "test.fleet.yml")])


@pytest.fixture
def run(inventory_plugins, tmp_path, monkeypatch):
    return Run(inventory_plugins, tmp_path, monkeypatch)


def members(inventory, group):
    return sorted(host.name for host in inventory.groups[group].get_hosts())


def test_one_host_per_machine_in_the_patch_group_os_cloud_and_ssm_groups(run):
    inventory = run()

    assert sorted(inventory.hosts) == ["az-app-001", "az-dev-001", "erp-1", "pg-1", "web-1"]
    assert members(inventory, "prod_sensitive") == ["erp-1", "pg-1"]
    assert members(inventory, "prod_auto") == ["az-app-001", "web-1"]
    assert members(inventory, "cloud_azure") == ["az-app-001", "az-dev-001"]
    assert members(inventory, "cloud_onprem") == ["erp-1"]
    assert members(inventory, "os_windows_2016") == ["erp-1"]
    assert members(inventory, "ssm_unmanaged") == ["az-dev-001"]
    assert members(inventory, "ssm_connectionlost") == ["web-1"]
    assert sorted(g.name for g in inventory.groups["patch_groups"].child_groups) == [
        "nonprod", "prod_auto", "prod_sensitive"]
    assert inventory.groups["ungrouped"].get_hosts() == []


def test_hosts_carry_the_fleet_summary_and_source_records_only_when_asked(run):
    lean = run().get_host("az-app-001").get_vars()
    full = run(source_hostvars=["ssm", "azure"]).get_host("az-app-001").get_vars()

    assert (lean["fleet_id"], lean["fleet_cloud"], lean["fleet_patch_group"]) == (
        "mi-00000000000000001", "azure", "prod-auto")
    assert lean["ansible_host"] == "192.168.1.5"  # the node's address: the VM listing has none
    assert not {"fleet_ec2", "fleet_ssm", "fleet_azure"} & set(lean)
    assert full["fleet_azure"]["vm_id"] == VM_ID and full["fleet_ssm"]["instance_id"] == "mi-00000000000000001"
    assert "fleet_ec2" not in full


def test_constructed_features_see_the_source_records_even_unstored(run):
    inventory = run(keyed_groups=[{"key": "fleet_ec2.instance_type", "prefix": "type"}],
                    groups={"db": "'Tier' in fleet_tags or fleet_name.startswith('pg')"},
                    compose={"power": "fleet_azure.power_state if fleet_azure else 'n/a'"})

    assert members(inventory, "type_t3_medium") == ["pg-1", "web-1"]
    assert members(inventory, "db") == ["pg-1"]
    assert inventory.get_host("az-dev-001").get_vars()["power"] == "running"


def test_host_filters(run):
    kept = run(exclude_host_filters=["fleet_cloud == 'azure'"], include_host_filters=["fleet_managed", "fleet_cloud == 'azure'"])

    assert sorted(kept.hosts) == ["erp-1", "pg-1", "web-1"]


def test_a_filter_that_fails_on_a_host_skips_it_unless_strict(run):
    kept = run(exclude_host_filters=["fleet_ec2.instance_type == 't3.medium'"])  # no fleet_ec2 on Azure VMs

    assert sorted(kept.hosts) == ["az-app-001", "az-dev-001", "erp-1"]
    with pytest.raises(AnsibleParserError, match="host filter"):
        run(exclude_host_filters=["fleet_ec2.instance_type == 't3.medium'"], strict=True)


def test_through_ansible_the_variables_are_data_never_templates(run):
    """Host variables are set on the inventory data behind ansible-core's proxy, which would otherwise copy and tag
    every value: they must stay untrusted, so a tag holding Jinja2 is never rendered when a play reads it."""
    with_template = sources([ec2("i-0a", {"Name": "pg-1", "PatchGroup": "prod-sensitive", "Owner": "{{ 6 * 7 }}"})],
                            [node("i-0a")], [])
    run.answer = (with_template, [])

    host = run.through_ansible().get_host("pg-1")
    play = Templar(loader=DataLoader(), variables=host.get_vars())

    assert play.template(trust_as_template("{{ fleet_patch_group }}")) == "prod-sensitive"
    assert play.template(trust_as_template("{{ fleet_tags.Owner }}")) == "{{ 6 * 7 }}"
    assert [group.name for group in host.get_groups() if group.name.startswith("prod")] == ["prod_sensitive"]


def test_session_manager_connection_variables(run):
    host = run(ssm_connection=True, ssm_bucket_name="transfer").get_host("erp-1").get_vars()

    assert (host["ansible_connection"], host["ansible_aws_ssm_instance_id"], host["ansible_aws_ssm_bucket_name"]) == (
        "amazon.aws.aws_ssm", "mi-00000000000000002", "transfer")


def cache_config(tmp_path, **extra):
    return dict(cache=True, cache_plugin="ansible.builtin.jsonfile", cache_connection=str(tmp_path / "cache"), **extra)


def test_a_cache_hit_reads_nothing_and_gives_the_same_inventory(run, tmp_path):
    first = run(**cache_config(tmp_path))
    second = run(**cache_config(tmp_path))

    assert run.reads == 1
    assert sorted(second.hosts) == sorted(first.hosts)
    assert members(second, "prod_sensitive") == ["erp-1", "pg-1"]


def test_the_cache_is_refreshed_on_request_and_ignored_for_another_query(run, tmp_path):
    run(**cache_config(tmp_path))
    run(use_cache=False, **cache_config(tmp_path))  # --flush-cache / meta: refresh_inventory
    run(**cache_config(tmp_path, regions=["us-east-1"]))
    run(**cache_config(tmp_path, regions=["us-east-1"], hostnames=["instance_id"]))  # presentation only: still fits

    assert run.reads == 3


def failure():
    error = botocore.exceptions.ClientError(
        {"Error": {"Code": "AccessDenied", "Message": "not authorized"}}, "AssumeRole")
    return JobFailure("account 234567890123 (production) assume role arn:aws:iam::234567890123:role/x", error)


def test_a_failed_part_is_a_warning_the_rest_is_returned_and_nothing_is_cached(run, tmp_path):
    run.answer = (fleet(), [failure()])
    inventory = run(**cache_config(tmp_path))
    run(**cache_config(tmp_path))

    assert len(inventory.hosts) == 5
    assert run.reads == 2  # the incomplete result was not cached
    assert run.warnings[0].startswith("fleetpatch.ssm.fleet: 1 part(s) of the fleet could not be read")
    assert "account 234567890123 (production) assume role" in run.warnings[0]
    assert "(AccessDenied)" in run.warnings[0]


def test_strict_makes_a_failed_part_an_error(run):
    run.answer = (fleet(), [failure()])

    with pytest.raises(AnsibleParserError, match=r"account 234567890123 \(production\) assume role"):
        run(strict=True)


def test_where_get_resources_was_denied_the_complete_inventory_comes_with_a_warning_naming_it(run, tmp_path):
    run.tagging_denied = ["account 234567890123 (production) eu-west-1", "account 234567890123 (production) us-east-1"]

    inventory = run(**cache_config(tmp_path))
    run(**cache_config(tmp_path))

    assert len(inventory.hosts) == 5
    assert run.reads == 1  # complete: cached
    assert run.warnings == [
        "fleetpatch.ssm.fleet: tag:GetResources was denied in 2 account-region(s) (account 234567890123 (production) "
        "eu-west-1, account 234567890123 (production) us-east-1); their hybrid nodes' tags were read one node at a "
        "time (ssm:ListTagsForResource). Allow tag:GetResources to the inventory's role, or set "
        "hybrid_tags_source: per_node."]


@pytest.mark.parametrize("config, message", [
    ({"hostnames": ["dns-name"]}, "hostnames: 'dns-name' is not one of"),
    ({"accounts": ["arn:aws:iam::1:role/x"]}, "is not an IAM role ARN"),
    ({"organization": {"exclude_accounts": ["1"]}}, "organization: needs role_name"),
    ({"max_workers": 0}, "max_workers must be 1 or more"),
])
def test_bad_options_are_refused_before_any_call(run, config, message):
    with pytest.raises(AnsibleParserError, match=message):
        run(**config)
    assert run.reads == 0


def test_an_unknown_hybrid_tags_source_is_refused_before_any_call(run):
    # ansible-core's own check of the documented choices; its help text lists them
    with pytest.raises(AnsibleOptionsError, match="Invalid value 'tags' for config 'hybrid_tags_source'"):
        run(hybrid_tags_source="tags")
    assert run.reads == 0


def test_the_configuration_file_name_must_say_fleet(inventory_plugins, tmp_path):
    plugin = inventory_plugins.get("fleetpatch.ssm.fleet")
    for name, expected in (("prod.fleet.yml", True), ("fleet.yaml", True), ("prod.aws_ec2.yml", False)):
        path = tmp_path / name
        path.write_text("plugin: fleetpatch.ssm.fleet\n")
        assert plugin.verify_file(str(path)) is expected
