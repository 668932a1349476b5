# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleetpatch.ssm.managed_instance and managed_instance_info through ansible-playbook against the lab.

Each test works in an account of its own with hybrid nodes registered through the lab's stand-in for the agent's
registration (test_run_patch_baseline.Fleet). playbooks/hybrid/steps.yml runs one module task per step; what the
modules did is read back with boto3.
"""
from __future__ import annotations

from accounts import changes
from accounts import converge
from accounts import failure
from accounts import run_steps
from accounts import step as plain_step
from accounts import Fleet

STEPS = "tests/integration/playbooks/hybrid/steps.yml"
STALE_CLEANUP = "tests/integration/playbooks/hybrid/stale_cleanup.yml"


def step(label: str, module: str, spec: dict, check: bool = False) -> dict:
    return dict(plain_step(label, spec, check), module=module)


def converge_steps(label: str, spec: dict) -> list:
    return [dict(s, module="instance") for s in converge(label, spec)]


def node_tags(ssm, node: str) -> dict:
    tags = ssm.list_tags_for_resource(ResourceType="ManagedInstance", ResourceId=node)["TagList"]
    return {tag["Key"]: tag["Value"] for tag in tags}


def hybrid_nodes(ssm) -> list:
    info = ssm.describe_instance_information(Filters=[{"Key": "ResourceType", "Values": ["ManagedInstance"]}])
    return sorted(row["InstanceId"] for row in info["InstanceInformationList"])


def test_tags_of_a_registered_node_converge_and_keep_other_tags(run_playbook, account):
    (node,) = Fleet(account).register("ubuntu-22.04", 1, {"Owner": "activation"})  # copied from the activation
    tags = {"PatchGroup": "prod-auto", "AzureVmId": "6b1d2c54-93a4-4c4e-9a0f-1f7c2b3d4e5f"}
    steps = converge_steps("tag", {"instance_id": node, "tags": tags}) + converge_steps(
        "purge", {"instance_id": node, "tags": {"PatchGroup": "nonprod"}, "purge_tags": True})
    results = run_steps(run_playbook, account, STEPS, steps)

    assert changes(results) == [
        ("tag: check mode", True), ("tag: apply", True), ("tag: check mode again", False), ("tag: apply again", False),
        ("purge: check mode", True), ("purge: apply", True), ("purge: check mode again", False),
        ("purge: apply again", False)]
    applied = results["tag: apply"].result
    assert applied["diff"] == {"before": {"tags": {"Owner": "activation"}},
                               "after": {"tags": dict(tags, Owner="activation")}}
    assert applied["managed_instance"]["instance_id"] == node
    assert applied["managed_instance"]["ping_status"] == "Online"
    assert results["tag: check mode"].result["managed_instance"]["tags"] == dict(tags, Owner="activation")
    assert node_tags(account.ssm, node) == {"PatchGroup": "nonprod"}


def test_deregistration_is_idempotent_and_refuses_ec2_instances(run_playbook, account):
    fleet = Fleet(account)
    node, kept = fleet.register("ubuntu-22.04", 2, {})
    steps = [step(label, "instance", {"instance_id": node, "state": "absent"}, check) for label, check in
             (("check mode", True), ("deregister", False), ("deregister again", False))]
    steps += [
        step("ec2", "instance", {"instance_id": "i-0123456789abcdef0", "state": "absent"}),
        step("tag a node that is gone", "instance", {"instance_id": node, "tags": {"PatchGroup": "x"}}),
    ]
    results = run_steps(run_playbook, account, STEPS, steps)

    assert changes(results)[:3] == [("check mode", True), ("deregister", True), ("deregister again", False)]
    assert hybrid_nodes(account.ssm) == [kept]
    assert failure(results, "ec2").startswith("instance_id: 'i-0123456789abcdef0' is an EC2 instance, which is not "
                                              "deregistered by this module")
    assert failure(results, "tag a node that is gone").startswith(
        f"instance_id: '{node}' is not a hybrid node registered in this account and region")


def test_info_lists_hybrid_nodes_by_tag_and_source_and_finds_stale_ones(run_playbook, account):
    fleet = Fleet(account)
    stale, quiet, online = fleet.register("ubuntu-22.04", 3, {"PatchGroup": "nonprod"})
    lose_connection(fleet, stale, days_ago=40)
    lose_connection(fleet, quiet, days_ago=2)
    steps = [
        step("all", "info", {}),
        step("by tag", "info", {"tags": {"PatchGroup": "nonprod"}, "ping_status": ["Online"]}),
        step("stale", "info", {"connection_lost_days": 30, "include_tags": False}),
    ]
    results = run_steps(run_playbook, account, STEPS, steps)

    listed = results["all"].result["managed_instances"]
    assert [n["instance_id"] for n in listed] == sorted([stale, quiet, online])
    assert all(n["tags"] == {"PatchGroup": "nonprod"} and n["resource_type"] == "ManagedInstance" for n in listed)
    assert [n["instance_id"] for n in results["by tag"].result["managed_instances"]] == [online]
    (found,) = results["stale"].result["managed_instances"]
    assert found["instance_id"] == stale and found["ping_status"] == "ConnectionLost"
    assert 39.9 < found["last_ping_age_days"] < 40.1 and "tags" not in found

    cleanup = run_playbook(STALE_CLEANUP, env=account.env)
    assert cleanup.rc == 0, cleanup.summary
    assert hybrid_nodes(account.ssm) == sorted([quiet, online])


def lose_connection(fleet: Fleet, node: str, days_ago: float) -> None:
    """The node's agent last pinged `days_ago` days before now (wall clock): the lab clock goes back, the node goes
    offline (its last ping is the lab's now), and the clock returns to where it was."""
    offset = fleet.control("/clock")["offset_days"]
    fleet.control("/clock/advance", {"days": -(offset + days_ago)})
    fleet.node_control("/nodes/online", node, online=False)
    fleet.control("/clock/advance", {"days": offset + days_ago})
