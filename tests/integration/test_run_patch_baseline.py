# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""run_patch_baseline and patch_command_info through ansible-playbook against the lab.

Each test works in an AWS account of its own (the `account` fixture of accounts.py: STS AssumeRole into a fresh
account id) and registers its managed nodes there the way on-premises servers join: a hybrid activation carrying
the patch group tag, then the agent's registration (the lab's control API stands in for `amazon-ssm-agent
-register`). What the modules report is compared with what the lab's simulated agents did (control API
`/install-log`) and with the SSM API read by boto3.
"""
from __future__ import annotations

import uuid

import pytest
from accounts import Fleet
from accounts import run_steps as run_step_tasks
from accounts import step

# The `account` fixture (a fresh AWS account per test) comes from conftest.py (tests/integration/accounts.py).

STEPS = "tests/integration/playbooks/run_patch_baseline/steps.yml"
FOLLOW = "tests/integration/playbooks/run_patch_baseline/follow.yml"


@pytest.fixture
def fleet(account) -> Fleet:
    return Fleet(account)


def run_steps(run_playbook, fleet: Fleet, steps: list) -> dict:
    """[(step name, module options, check mode)] in one ansible-playbook run -> {step name: task result}, whose
    `failed` says whether the task failed (the recorded result does not keep Ansible's own flag). The lab's agents
    finish in milliseconds, so runs are polled every second rather than every 15 s (the module's default)."""
    specs = [step(name, dict({"poll_interval": 1}, **spec), check) for name, spec, check in steps]
    tasks = run_step_tasks(run_playbook, fleet.account, STEPS, specs)
    return {name: dict(task.result, failed=task.status == "failed") for name, task in tasks.items()}


def node(result: dict, instance_id: str) -> dict:
    (found,) = [n for n in result["nodes"] if n["instance_id"] == instance_id]
    return found


def kb_ids(patches: list) -> set:
    """KBIds of the module's patch rows (kb_id) or of DescribeInstancePatches rows (KBId)."""
    return {patch["kb_id"] if "kb_id" in patch else patch["KBId"] for patch in patches}


def package_names(rows: list) -> set:
    """Linux KBIds are name.arch; the install log names packages."""
    return {row["kb_id"].rsplit(".", 1)[0] for row in rows}


# ---------------------------------------------------------------------------------------------- scans

def test_check_mode_then_a_scan_of_a_patch_group_under_both_tag_keys(fleet, run_playbook):
    tagged = fleet.register("ubuntu-22.04", 2, {"PatchGroup": "web"})
    spaced = fleet.register("amzn-2023", 1, {"Patch Group": "web"})
    fleet.register("ubuntu-22.04", 1, {"PatchGroup": "db"})  # another group: never targeted
    results = run_steps(run_playbook, fleet, [
        ("scan: check mode", {"operation": "Scan", "patch_group": "web"}, True),
        ("scan", {"operation": "Scan", "patch_group": "web"}, False),
    ])

    planned, scan = results["scan: check mode"], results["scan"]
    assert (planned["changed"], planned["command_ids"]) == (False, [])
    assert sorted(target["instance_id"] for target in planned["targets"]) == sorted(tagged + spaced)

    assert (scan["failed"], scan["changed"], scan["clean"], scan["status"]) == (False, False, True, "Success")
    assert len(scan["command_ids"]) == 2  # one per tag key: Targets entries are ANDed
    assert sorted(n["instance_id"] for n in scan["nodes"]) == sorted(tagged + spaced)
    for instance_id in tagged + spaced:
        state = node(scan, instance_id)["patch_state"]
        assert (state["operation"], state["patch_group"], state["snapshot_id"]) == ("Scan", "web", scan["snapshot_id"])
        assert state["missing_count"] == len(fleet.patches(instance_id, "Missing")) > 0
    sent = fleet.account.ssm.list_commands()["Commands"]
    assert len(sent) == 2  # the scan's: check mode sent nothing
    assert {command["Parameters"]["RebootOption"][0] for command in sent} == {"NoReboot"}  # always sent


# ---------------------------------------------------------------------------------------------- installs

def test_install_installs_exactly_what_the_scan_of_the_same_snapshot_found(fleet, run_playbook):
    nodes = fleet.register("ubuntu-22.04", 2, {"PatchGroup": "app"}) + fleet.register("amzn-2023", 1,
                                                                                      {"PatchGroup": "app"})
    snapshot = str(uuid.uuid4())
    group = {"patch_group": "app", "snapshot_id": snapshot}
    scan = run_steps(run_playbook, fleet, [("scan", dict(group, operation="Scan"), False)])["scan"]
    missing = {n: fleet.patches(n, "Missing") for n in nodes}

    results = run_steps(run_playbook, fleet, [
        ("install: check mode", dict(group, operation="Install"), True),
        ("install", dict(group, operation="Install"), False),
        ("install again", dict(group, operation="Install"), False),
        ("install with reboot", dict(group, operation="Install", reboot_option="RebootIfNeeded"), False),
    ])

    assert scan["clean"] and results["install: check mode"]["changed"] is True
    install = results["install"]
    assert (install["failed"], install["changed"], install["clean"]) == (False, True, True)
    assert install["snapshot_id"] == snapshot
    logged = fleet.installed_by(install["command_id"])
    for instance_id in nodes:
        reported = node(install, instance_id)
        assert kb_ids(reported["installed_patches"]) == kb_ids(missing[instance_id])  # the approved set, no more
        assert package_names(reported["installed_patches"]) == set(logged[instance_id])
        assert {p["state"] for p in reported["installed_patches"]} == {"INSTALLED_PENDING_REBOOT"}  # NoReboot
        assert reported["patch_state"]["installed_pending_reboot_count"] == len(missing[instance_id])
        assert reported["reboot_pending"] is True and reported["failed_patches"] == []
    assert install["reboot_pending_nodes"] == sorted(nodes)

    again = results["install again"]
    assert again["changed"] is False and again["clean"] is True
    assert fleet.installed_by(again["command_id"]) == {}

    rebooted = results["install with reboot"]
    assert rebooted["changed"] is True  # nothing to install, but the nodes pending a reboot were rebooted
    assert rebooted["reboot_pending_nodes"] == []
    assert all(n["patch_state"]["installed_pending_reboot_count"] == 0 for n in rebooted["nodes"])


def test_an_offline_and_a_failing_node_are_named_while_the_others_complete(fleet, run_playbook):
    nodes = fleet.register("ubuntu-22.04", 4, {"PatchGroup": "batch"})
    offline, failing, healthy = nodes[0], nodes[1], nodes[2:]
    fleet.node_control("/nodes/online", offline, online=False)
    fleet.node_control("/nodes/fail", failing, message="E: Could not get lock /var/lib/dpkg/lock-frontend")

    result = run_steps(run_playbook, fleet, [
        ("install", {"operation": "Install", "patch_group": "batch", "max_errors": "1"}, False),
    ])["install"]

    assert result["failed"] is True and result["changed"] is True
    assert result["failed_nodes"] == [failing] and result["undeliverable_nodes"] == [offline]
    assert f"1 failed ({failing})" in result["msg"] and f"1 undeliverable ({offline})" in result["msg"]
    assert "dpkg/lock-frontend" in node(result, failing)["output"]
    assert node(result, failing)["failed_patches"] and node(result, failing)["installed_patches"] == []
    assert node(result, offline)["patch_state"] is None
    for instance_id in healthy:
        assert node(result, instance_id)["outcome"] == "succeeded"
        assert node(result, instance_id)["installed_patches"]
    assert sorted(fleet.installed_by(result["command_id"])) == healthy
    assert any(offline in warning for warning in result["warnings"])  # named before the run too


def test_an_install_override_list_in_s3_installs_exactly_the_listed_patches(fleet, run_playbook):
    (target,) = fleet.register("ubuntu-22.04", 1, {"PatchGroup": "db"})
    scan = run_steps(run_playbook, fleet, [("scan", {"operation": "Scan", "instance_ids": [target]}, False)])["scan"]
    missing = fleet.patches(target, "Missing")
    listed = missing[0]
    bucket = f"approvals-{fleet.account_id}"
    s3 = fleet.client("s3")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": fleet.region})
    s3.put_object(Bucket=bucket, Key="run-1/ubuntu.yaml",
                  Body=f"patches:\n  - id: '{listed['KBId']}'\n    title: '{listed['Title']}'\n".encode())

    result = run_steps(run_playbook, fleet, [("install", {
        "operation": "Install", "instance_ids": [target], "reboot_option": "RebootIfNeeded",
        "install_override_list": f"s3://{bucket}/run-1/ubuntu.yaml"}, False)])["install"]

    assert scan["clean"] and result["clean"] and result["changed"]
    installed = node(result, target)["installed_patches"]
    logged = fleet.installed_by(result["command_id"])[target]
    assert listed["KBId"] in kb_ids(installed) and package_names(installed) == set(logged)
    assert len(installed) < len(missing)  # not the baseline's approved set
    listed_version = listed["Title"].split(":", 1)[1]
    assert logged[listed["KBId"].rsplit(".", 1)[0]] == listed_version
    assert {p["state"] for p in installed} == {"INSTALLED_OTHER"}  # how AWS reports override installs


# ---------------------------------------------------------------------------------------------- long runs

def test_wait_false_then_follow_the_run_with_patch_command_info(fleet, run_playbook):
    nodes = fleet.register("ubuntu-24.04", 3, {"PatchGroup": "nonprod"})

    result = run_playbook(FOLLOW, extra_vars={"operation": "Install", "patch_group": "nonprod"}, env=fleet.env)

    assert result.rc == 0, result.summary
    started = result.task("Start the run").result
    assert started["changed"] is True and "nodes" not in started and len(started["command_ids"]) == 1
    progress = result.task("Follow the run").result
    assert progress["done"] is True and progress["target_count"] == 3 and progress["percent_complete"] == 100
    assert progress["summary"] == "Success: 3/3 nodes done, 0 error(s)" and progress["attempts"] >= 1
    outcome = result.task("Every node's result").result
    assert outcome["clean"] is True and sorted(n["instance_id"] for n in outcome["nodes"]) == nodes
    assert outcome["snapshot_id"] == started["snapshot_id"]
    assert set(fleet.installed_by(started["command_id"])) == set(nodes)


# ---------------------------------------------------------------------------------------------- throttling

def test_a_throttled_run_completes(fleet, run_playbook):
    """A third of the run's SSM calls answer ThrottlingException (AWS publishes no rate limits); each is retried."""
    nodes = fleet.register("amzn-2023", 2, {"PatchGroup": "tools"})
    operations = ["DescribeInstanceInformation", "SendCommand", "ListCommands", "ListCommandInvocations",
                  "DescribeInstancePatchStates", "DescribeInstancePatches"]
    fleet.control("/throttle", {"ratio": 0.33, "seed": 7, "operations": operations})
    try:
        result = run_steps(run_playbook, fleet, [
            ("install", {"operation": "Install", "patch_group": "tools"}, False)])["install"]
        throttled = fleet.control("/throttle")["counts"]["throttled"]
    finally:
        fleet.control("/throttle", {"ratio": 0})

    assert throttled > 0
    assert (result["failed"], result["clean"], len(result["command_ids"])) == (False, True, 1)  # sent once
    assert sorted(fleet.installed_by(result["command_id"])) == nodes
