# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleetpatch.ssm.fleet through ansible-inventory against the lab's reference fleet.

The module starts its own lab with tests/lab/fleets/reference.yml (3 accounts x 2 regions, 1,168 EC2 instances, 32
hybrid nodes, 150 Azure VMs in 2 subscriptions) and registers a few Azure VMs as hybrid nodes, each found by
another merge rule. Expectations come from the fleet spec and the lab's own summary, never from the plugin.

Failures are injected the realistic ways the lab offers: a role that refuses AssumeRole (control API /sts/deny:
AccessDenied), throttling beyond the retries (/throttle), a subscription the service principal cannot see, a wrong
Azure secret, AWS endpoints that refuse connections, and a region whose endpoint answers HTTP 500 (the lab serves no
unknown region; AWS's answer for a disabled region, AuthFailure / UnrecognizedClientException, is unit-tested with
Stubber).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
import yaml

import harness

sys.path.insert(0, str(harness.LAB_DIR))

from fleetlab import fleet as fleet_spec  # noqa: E402  pylint: disable=wrong-import-position
from fleetlab.client import LabClient  # noqa: E402  pylint: disable=wrong-import-position

BASE = Path(__file__).resolve().parent / "inventory" / "reference.fleet.yml"
ANSIBLE_INVENTORY = Path(sys.executable).parent / "ansible-inventory"
MANAGEMENT, PRODUCTION, NONPRODUCTION = "123456789012", "234567890123", "345678901234"
DEAD = "127.0.0.1:9"  # nothing listens on the discard port: connections are refused


class Inventory:
    """ansible-inventory --list, read back: hosts with their variables, groups with their members."""

    def __init__(self, listing: dict, stderr: str) -> None:
        self.hostvars = listing.get("_meta", {}).get("hostvars", {})
        self.stderr = stderr
        self._groups = {name: body for name, body in listing.items() if name != "_meta"}

    def members(self, group: str) -> set:
        """Every host of `group` and of its children."""
        body = self._groups.get(group, {})
        hosts = set(body.get("hosts", []))
        for child in body.get("children", []):
            hosts |= self.members(child)
        return hosts

    def count(self, group: str) -> int:
        return len(self.members(group))

    @property
    def warnings(self) -> str:
        return " ".join(self.stderr.split())


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A lab of this module's own with the reference fleet (the session's lab has an empty one)."""
    with harness.running_lab("lab-inventory-", "reference", tmp_path_factory.mktemp("lab")) as started:
        yield started


@pytest.fixture(scope="module")
def reference():
    return fleet_spec.load(harness.LAB_DIR / "fleets" / "reference.yml")


@pytest.fixture(scope="module")
def registered(lab, reference):
    """Azure VMs registered as hybrid nodes the way the SSM agent does (the lab's registration endpoint), in
    123456789012/eu-west-1, one per merge rule: SourceId (the agent reports the VM), a node tagged with the VM id
    (no SourceId), a node whose computer name is the VM's (neither)."""
    control = LabClient(lab.env["FLEETLAB_CONTROL_URL"])
    ssm = boto3.client("ssm", region_name="eu-west-1", endpoint_url=lab.env["AWS_URL"],
                       aws_access_key_id=lab.env["AWS_ACCESS_KEY_ID"],
                       aws_secret_access_key=lab.env["AWS_SECRET_ACCESS_KEY"])
    vms = {vm["name"]: vm for sub in reference["azure"]["subscriptions"] for vm in sub["vms"]}
    plans = {"az-app-weu-001": "source_id", "az-pg-weu-001": "tag", "az-qa-neu-001": "computer_name"}
    nodes = {}
    for name, rule in plans.items():
        vm = vms[name]
        activation = ssm.create_activation(
            IamRole="SSMServiceRole", Tags=[{"Key": "PatchGroup", "Value": vm["tags"]["PatchGroup"]}])
        registration = control.post("/agent/register", {
            "activation_id": activation["ActivationId"], "activation_code": activation["ActivationCode"],
            "region": "eu-west-1", "platform_key": vm["platform"], "ip_address": "10.200.0.10",
            "computer_name": vm["name"] if rule != "tag" else f"{vm['name']}-renamed.internal",
            "source_vm_id": vm["vm_id"] if rule == "source_id" else None})
        if rule == "tag":
            ssm.add_tags_to_resource(ResourceType="ManagedInstance", ResourceId=registration["instance_id"],
                                     Tags=[{"Key": "AzureVmId", "Value": vm["vm_id"]}])
        nodes[name] = (registration["instance_id"], rule)
    return nodes


def inventory_env(lab, extra=None) -> dict:
    """The playbook environment of the harness without a developer's own Azure settings (the harness drops AWS's)."""
    env = {k: v for k, v in harness.playbook_env(lab.env, Path(os.devnull)).items()
           if not k.startswith("AZURE_") or k in lab.env}
    env["AZURE_SUBSCRIPTION_ID"] = ",".join(lab.env["AZURE_SUBSCRIPTION_IDS"].split())
    env.pop("ANSIBLE_CALLBACKS_ENABLED", None)
    env.update(extra or {})
    return env


def write_config(directory: Path, **overrides) -> Path:
    config = yaml.safe_load(BASE.read_text())
    config.update(overrides)
    path = directory / f"{uuid.uuid4().hex[:8]}.fleet.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def run_inventory(lab, config: Path, *args, env=None, expect_rc=0) -> Inventory:
    proc = subprocess.run([str(ANSIBLE_INVENTORY), "-i", str(config), "--list", *args], env=inventory_env(lab, env),
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == expect_rc, proc.stderr[-3000:]
    return Inventory(harness.inventory_listing(proc.stdout) if proc.returncode == 0 else {}, proc.stderr)


@pytest.fixture(scope="module")
def full(lab, registered, tmp_path_factory):
    """The whole reference fleet, read once (cached in a jsonfile cache the cache test reuses)."""
    cache_dir = tmp_path_factory.mktemp("inventory-cache")
    config = write_config(tmp_path_factory.mktemp("inventory"), cache=True, cache_plugin="ansible.builtin.jsonfile",
                          cache_connection=str(cache_dir))
    return SimpleNamespace(config=config, inventory=run_inventory(lab, config))


class Spec:
    """The reference fleet as its spec describes it: machine groups (with account and region) and Azure VMs."""

    def __init__(self, reference: dict) -> None:
        self.groups = {kind: [dict(group, account=account, region=region)
                              for account, regions in reference["fleet"].items()
                              for region, layout in regions.items() for group in layout[kind]]
                       for kind in ("ec2", "hybrid")}
        self.vms = [dict(vm, subscription=sub["id"]) for sub in reference["azure"]["subscriptions"] for vm in sub["vms"]]

    def count(self, kinds=("ec2", "hybrid"), **match) -> int:
        """AWS machines of `kinds` whose group matches every key of `match` (platform, account, region...)."""
        return sum(g["count"] for kind in kinds for g in self.groups[kind] if all(g[k] == v for k, v in match.items()))

    def vm_count(self, **match) -> int:
        return sum(1 for vm in self.vms if all(vm[k] == v for k, v in match.items()))


# ----------------------------------------------------------------------------------------------- the fleet

def test_every_machine_once_in_its_patch_group_os_cloud_account_and_region(full, reference, registered):
    inventory, spec = full.inventory, Spec(reference)

    assert len(inventory.hostvars) == spec.count() + len(spec.vms)  # the registered VMs are not counted twice
    assert inventory.count("cloud_aws") == spec.count(["ec2"])
    assert inventory.count("cloud_onprem") == spec.count(["hybrid"])
    assert inventory.count("cloud_azure") == len(spec.vms)  # every page of the lab's 10-VM pages
    patch_groups = Counter()
    for group in spec.groups["ec2"] + spec.groups["hybrid"]:
        patch_groups[group["patch_group"]] += group["count"]
    patch_groups.update(vm["tags"].get("PatchGroup") for vm in spec.vms)
    assert {pg: inventory.count(pg.replace("-", "_") if pg else "no_patch_group") for pg in patch_groups} == patch_groups
    for account in (MANAGEMENT, PRODUCTION, NONPRODUCTION):
        on_top = len(registered) if account == MANAGEMENT else 0  # the registered VMs' nodes are there
        assert inventory.count(f"account_{account}") == spec.count(account=account) + on_top
    for subscription in reference["azure"]["subscriptions"]:
        assert inventory.count("subscription_" + subscription["id"].replace("-", "_")) == len(subscription["vms"])
    for platform, group in (("windows-2016", "os_windows_2016"), ("windows-2022", "os_windows_2022"),
                            ("ubuntu-22.04", "os_ubuntu_22_04"), ("amzn-2", "os_amazon_linux_2")):
        assert inventory.count(group) == spec.count(platform=platform) + spec.vm_count(platform=platform)
    assert inventory.count("region_us_east_1") == spec.count(region="us-east-1")
    assert inventory.count("location_northeurope") == spec.vm_count(location="northeurope")


def test_ping_status_groups_match_the_lab(full, lab, registered):
    summary = json.loads((lab.state_dir / "fleet-summary.json").read_text())["totals"]

    assert full.inventory.count("ssm_connectionlost") == summary["offline"]
    assert full.inventory.count("ssm_managed") == summary["nodes"] + len(registered)
    assert full.inventory.count("ssm_unmanaged") == summary["azure_vms"] - len(registered)


def test_each_registered_azure_vm_is_one_host_with_both_clouds_facts(full, registered, reference):
    hostvars = full.inventory.hostvars
    vm_ids = {vm["name"]: vm["vm_id"] for vm in Spec(reference).vms}

    for name, (node_id, rule) in registered.items():
        host = hostvars[name]
        assert (host["fleet_id"], host["fleet_matched_by"], host["fleet_cloud"]) == (node_id, rule, "azure")
        assert host["fleet_sources"] == ["ssm", "azure"]
        assert (host["fleet_account_id"], host["fleet_region"]) == (MANAGEMENT, "eu-west-1")
        assert host["ansible_host"] == "10.200.0.10"
        assert not any(h["fleet_id"] in (node_id, vm_ids[name]) for n, h in hostvars.items() if n != name)


def test_a_play_targets_a_patch_group_of_the_inventory(full, lab, tmp_path):
    playbook = tmp_path / "prod_sensitive.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "Hosts of one patch group", "hosts": "prod_sensitive", "gather_facts": False,
        "tasks": [{"name": "In its patch group",
                   "ansible.builtin.assert": {"that": ["fleet_patch_group == 'prod-sensitive'"], "quiet": True}}]}]))

    result = harness.run_playbook(lab.env, playbook, inventory=full.config,
                                  env={"AZURE_SUBSCRIPTION_ID": ",".join(lab.env["AZURE_SUBSCRIPTION_IDS"].split())})

    assert result.rc == 0, result.summary
    assert set(result.stats) == full.inventory.members("prod_sensitive")
    assert all(stats["ok"] == 1 for stats in result.stats.values())


def test_graph_shows_the_group_tree(full, lab):
    proc = subprocess.run([str(ANSIBLE_INVENTORY), "-i", str(full.config), "--graph", "patch_groups"],
                          env=inventory_env(lab), capture_output=True, text=True, timeout=300, check=True)

    children = {line.strip() for line in proc.stdout.splitlines() if line.startswith("  |--@")}
    assert children == {"|--@jump_log:", "|--@no_patch_group:", "|--@nonprod:", "|--@prod_auto:",
                        "|--@prod_sensitive:"}


# ------------------------------------------------------------------------------------------------ the cache

def test_a_cache_hit_makes_no_call_at_all(full, lab):
    control = LabClient(lab.env["FLEETLAB_CONTROL_URL"])
    control.post("/calls/reset")
    # Every HTTP(S) request of the second run would go to a proxy that refuses connections.
    dead_network = {"HTTP_PROXY": f"http://{DEAD}", "HTTPS_PROXY": f"http://{DEAD}", "NO_PROXY": "",
                    "http_proxy": f"http://{DEAD}", "https_proxy": f"http://{DEAD}", "no_proxy": ""}

    cached = run_inventory(lab, full.config, env=dead_network)

    assert cached.hostvars == full.inventory.hostvars
    assert control.get("/calls")["calls"] == []
    assert "could not be read" not in cached.warnings


# --------------------------------------------------------------------------------------------- failures

@pytest.fixture
def throttle(lab):
    control = LabClient(lab.env["FLEETLAB_CONTROL_URL"])
    yield lambda **config: control.post("/throttle", config)
    control.post("/throttle", {})


def test_throttling_within_the_retries_loses_nothing(lab, tmp_path, throttle):
    config = write_config(tmp_path, accounts=[], sources=["ec2", "ssm"], max_attempts=10)
    expected = run_inventory(lab, config)
    throttle(ratio=0.15, operations=["DescribeInstanceInformation", "GetResources"], seed=7)

    inventory = run_inventory(lab, config)

    assert inventory.hostvars == expected.hostvars
    assert inventory.count("cloud_onprem") >= 32  # every hybrid node, whose tags came from GetResources
    assert "could not be read" not in inventory.warnings


def test_throttling_beyond_the_retries_is_a_warning_naming_each_part(lab, tmp_path, throttle):
    throttle(ratio=1.0, operations=["DescribeInstanceInformation"])
    config = write_config(tmp_path, accounts=[], regions=["eu-west-1", "us-east-1"], max_attempts=2)

    inventory = run_inventory(lab, config)
    # strict fails the source; ansible-inventory then fails when unparsed sources are errors (AWX's setting)
    strict = run_inventory(lab, write_config(tmp_path, accounts=[], regions=["us-east-1"], max_attempts=1,
                                             strict=True),
                           env={"ANSIBLE_INVENTORY_UNPARSED_FAILED": "true"}, expect_rc=1)

    for region in ("eu-west-1", "us-east-1"):
        assert f"account {MANAGEMENT} {region} ssm: An error occurred (ThrottlingException)" in inventory.warnings
    assert inventory.count("cloud_aws") == 55  # EC2 still listed: the management account's instances
    assert inventory.count("cloud_onprem") == 0  # hybrid nodes come from SSM only
    assert inventory.count("ssm_managed") == 0
    assert inventory.count("cloud_azure") == 150
    assert f"account {MANAGEMENT} us-east-1 ssm: An error occurred (ThrottlingException)" in strict.warnings


def test_an_account_whose_role_cannot_be_assumed_fails_alone(lab, tmp_path):
    control = LabClient(lab.env["FLEETLAB_CONTROL_URL"])
    control.post("/sts/deny", {"accounts": [PRODUCTION]})  # AccessDenied, as AWS answers a role that refuses us
    try:
        inventory = run_inventory(lab, write_config(tmp_path, regions=["us-east-1"], sources=["ec2", "ssm"]))
    finally:
        control.post("/sts/deny", {"accounts": []})

    assert (f"account {PRODUCTION} (production) assume role arn:aws:iam::{PRODUCTION}:role/FleetpatchInventory: "
            "An error occurred (AccessDenied) when calling the AssumeRole operation") in inventory.warnings
    assert inventory.count(f"account_{PRODUCTION}") == 0
    assert inventory.count(f"account_{MANAGEMENT}") == 12 and inventory.count(f"account_{NONPRODUCTION}") == 115


def test_a_subscription_that_cannot_be_read_fails_alone(lab, tmp_path):
    subscriptions = lab.env["AZURE_SUBSCRIPTION_IDS"].split()
    unknown = str(uuid.UUID(int=7, version=4))
    config = write_config(tmp_path, sources=["azure"], azure_subscriptions=[subscriptions[0], unknown])

    inventory = run_inventory(lab, config)

    assert f"azure subscription {unknown}: (SubscriptionNotFound)" in inventory.warnings
    assert inventory.count("subscription_" + subscriptions[0].replace("-", "_")) == len(inventory.hostvars) > 0


def test_a_wrong_azure_secret_fails_azure_and_keeps_aws(lab, tmp_path):
    config = write_config(tmp_path, accounts=[], regions=["us-east-1"])

    inventory = run_inventory(lab, config, env={"AZURE_CLIENT_SECRET": "not-the-secret"})

    assert inventory.count("cloud_azure") == 0
    assert inventory.count("cloud_aws") == 12
    for subscription in lab.env["AZURE_SUBSCRIPTION_IDS"].split():
        assert f"azure subscription {subscription}" in inventory.warnings
    assert "AADSTS7000215" in inventory.warnings  # Entra ID's "invalid client secret"


def test_a_failing_region_and_refused_aws_endpoints(lab, tmp_path):
    failing_region = run_inventory(lab, write_config(tmp_path, accounts=[], regions=["us-east-1", "xx-outage-1"],
                                                     sources=["ec2", "ssm"], max_attempts=1))
    refused = run_inventory(lab, write_config(tmp_path, max_attempts=1),
                            env={"AWS_URL": f"http://{DEAD}", "AWS_ENDPOINT_URL": f"http://{DEAD}"})

    assert f"account {MANAGEMENT} xx-outage-1 ec2" in failing_region.warnings
    assert f"account {MANAGEMENT} xx-outage-1 ssm" in failing_region.warnings
    assert failing_region.count("region_us_east_1") == 12 == len(failing_region.hostvars)
    assert "current credentials (GetCallerIdentity)" in refused.warnings
    assert "Could not connect to the endpoint URL" in refused.warnings
    assert len(refused.hostvars) == refused.count("cloud_azure") == 150


# ------------------------------------------------------------------------------------- hybrid nodes' tags

def tag_calls(control: LabClient) -> Counter:
    calls = Counter()
    for call in control.get("/calls")["calls"]:
        if call["operation"] in ("GetResources", "ListTagsForResource"):
            calls[(call["account"], call["region"], call["operation"])] += call["count"]
    return calls


def test_hybrid_tags_take_one_call_per_region_and_a_denied_one_falls_back_to_each_node(
        lab, tmp_path, registered, reference):
    control = LabClient(lab.env["FLEETLAB_CONTROL_URL"])
    config = write_config(tmp_path, accounts=[], sources=["ssm"])
    spec = Spec(reference)
    hybrid_nodes = spec.count(["hybrid"]) + len(registered)  # all in the management account's eu-west-1
    registered_groups = Counter(vm["tags"].get("PatchGroup") for vm in spec.vms if vm["name"] in registered)

    control.post("/calls/reset")
    bulk = run_inventory(lab, config)
    bulk_calls = tag_calls(control)
    control.post("/calls/reset")
    control.post("/tagging/deny", {"accounts": [MANAGEMENT]})  # a role whose policy lacks tag:GetResources
    try:
        per_node = run_inventory(lab, config)
    finally:
        control.post("/tagging/deny", {"accounts": []})

    assert bulk_calls == {(MANAGEMENT, "eu-west-1", "GetResources"): 1}  # none where there is no hybrid node
    assert tag_calls(control) == {(MANAGEMENT, "eu-west-1", "GetResources"): 1,
                                  (MANAGEMENT, "eu-west-1", "ListTagsForResource"): hybrid_nodes}
    assert per_node.hostvars == bulk.hostvars
    assert bulk.count("cloud_onprem") + bulk.count("cloud_azure") == hybrid_nodes  # every hybrid node, none left out
    for group in ("prod-sensitive", "prod-auto"):  # with sources: [ssm], only hybrid nodes have tags
        assert bulk.count(group.replace("-", "_")) == spec.count(["hybrid"], patch_group=group) + registered_groups[group]
    assert "denied" not in bulk.warnings
    assert (f"tag:GetResources was denied in 1 account-region(s) (account {MANAGEMENT} eu-west-1); their hybrid "
            "nodes' tags were read one node at a time") in per_node.warnings
    assert "could not be read" not in per_node.warnings


# ------------------------------------------------------------------------------------------------ filters

def test_ec2_filters_keep_managed_nodes_of_filtered_instances_out(lab, tmp_path, registered):
    config = write_config(tmp_path, accounts=[], regions=["eu-west-1"], sources=["ec2", "ssm"],
                          ec2_filters={"tag:PatchGroup": "jump-log"})

    inventory = run_inventory(lab, config)

    assert inventory.count("jump_log") == 12  # bastion-euw1 (4) + syslog-euw1 (8)
    assert inventory.count("cloud_aws") == 12  # SSM's other EC2 nodes do not come back
    # hybrid nodes are not EC2's to filter (the registered Azure VMs among them, without the azure source)
    assert inventory.count("cloud_onprem") + inventory.count("cloud_azure") == 32 + len(registered)
