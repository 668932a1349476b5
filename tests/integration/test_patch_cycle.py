# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The weekly cycle on demand (role fleetpatch.ssm.patch_cycle) through playbooks/weekly_scan.yml and
playbooks/weekly_install.yml against the lab.

The playbooks get the reference policy's variables (playbooks/vars/reference_policy.yml, as `-e @` gives them)
with its accounts replaced by fresh ones reached by assumed roles (the lab's STS accepts any
`arn:aws:iam::<account>:role/<name>` and its credentials land in that account, as with AWS). Servers join as hybrid
nodes carrying their patch group tag (accounts.Fleet). No baseline is registered for the groups, so
every node, the sensitive ones included, has its operating system's default baseline and updates it approves:
what the cycle did not install, it left out on purpose. What the playbooks report is compared with what the lab's
simulated agents really did (control API `/install-log`) and with the SSM API read by boto3.
"""
from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path

import yaml

from accounts import Fleet
from accounts import open_account

SCAN = "playbooks/weekly_scan.yml"
INSTALL = "playbooks/weekly_install.yml"
REFERENCE = yaml.safe_load((Path(__file__).resolve().parents[2] / "playbooks/vars/reference_policy.yml").read_text())
GROUPS = ["prod-sensitive", "prod-auto", "jump-log", "nonprod"]
SENSITIVE = "prod-sensitive"
SENSITIVE_PLAYBOOKS = "playbooks/sensitive_review.yml, playbooks/sensitive_approve.yml, playbooks/sensitive_install.yml"
WAIT_TASK = "Wait for each group's run"
PRINT_TASK = "Print the results"
FAIL_TASK = "Fail naming everything that did not go right"

# Account ids of this module's tests (accounts.py counts from 310000000001, test_patch_policy from 520000000001).
_account_ids = itertools.count(530000000001)


def fleet_in(lab, account_id: str, region: str = "eu-west-1") -> Fleet:
    """Nodes and SSM reads in one region of an account, through an assumed role."""
    return Fleet(open_account(lab, account_id, region))


def fresh() -> str:
    return str(next(_account_ids))


def register(fleet: Fleet, platforms: list, tags: dict) -> list:
    """One hybrid node of each platform, all with `tags`."""
    return sorted(node for platform in platforms for node in fleet.register(platform, 1, tags))


def cycle_vars(accounts: list, results_dir: Path, **changes) -> dict:
    """The reference policy's variables for `accounts` ([(name, account_id, regions)]), results in `results_dir`,
    runs polled every second (the lab's agents finish in milliseconds), top-level variables replaced."""
    variables = copy.deepcopy(REFERENCE)
    variables["patch_policy_accounts"] = [
        {"name": name, "role_arn": f"arn:aws:iam::{account_id}:role/fleetpatch-cycle", "regions": regions}
        for name, account_id, regions in accounts]
    variables.update(patch_cycle_results_dir=str(results_dir), patch_cycle_poll_interval=1, **changes)
    return variables


def policy_group(variables: dict, name: str) -> dict:
    (group,) = [group for group in variables["patch_policy_groups"] if group["name"] == name]
    return group


def run_results(results_dir: Path, operation: str) -> list:
    """Every results file of `operation` in the directory, oldest first (run ids start with the UTC time)."""
    return [json.loads(path.read_text()) for path in sorted(results_dir.glob(f"*-{operation}.json"))]


def rows(results: dict) -> dict:
    """{(account name, region, group): result row}."""
    return {(row["account"].split(" (")[0], row["region"], row["group"]): row for row in results["results"]}


def installs(fleet: Fleet) -> dict:
    """{node: {package: version}} of everything the lab's agents installed in the fleet's account, any region."""
    installed: dict = {}
    for row in fleet.control(f"/install-log?account={fleet.account_id}")["installs"]:
        installed.setdefault(row["node_id"], {})[row["package"]] = row["to_version"]
    return installed


def patch_states(fleet: Fleet, nodes: list) -> dict:
    states = fleet.account.ssm.describe_instance_patch_states(InstanceIds=nodes)["InstancePatchStates"]
    return {state["InstanceId"]: state for state in states}


def commands_by_group(fleet: Fleet) -> dict:
    """{patch group: [the commands that targeted it]} in the fleet's region."""
    found: dict = {}
    for command in fleet.account.ssm.list_commands()["Commands"]:
        if command["Targets"]:
            found.setdefault(command["Targets"][0]["Values"][0], []).append(command)
    return found


def missing_after_own_scan(fleet: Fleet, node: str) -> list:
    """The updates the node's baseline approves and it lacks, read by a scan of the test's own."""
    fleet.account.ssm.send_command(DocumentName="AWS-RunPatchBaseline", InstanceIds=[node],
                                   Parameters={"Operation": ["Scan"]})
    waited = fleet.control("/commands/wait", {"account": fleet.account_id, "region": fleet.region, "timeout": 60})
    assert waited["done"]
    return fleet.patches(node, "Missing")


# ---------------------------------------------------------------------------------------------- scan

def test_the_weekly_scan_covers_every_group_of_the_policy_with_one_snapshot(lab, run_playbook, tmp_path):
    account = fresh()
    fleet = fleet_in(lab, account)
    nodes = {SENSITIVE: fleet.register("ubuntu-22.04", 1, {"PatchGroup": SENSITIVE}),
             "prod-auto": register(fleet, ["amzn-2023", "ubuntu-22.04"], {"PatchGroup": "prod-auto"}),
             "jump-log": fleet.register("ubuntu-24.04", 1, {"PatchGroup": "jump-log"}),
             "nonprod": fleet.register("ubuntu-20.04", 1, {"Patch Group": "nonprod"})}  # the other tag key

    result = run_playbook(SCAN, extra_vars=cycle_vars([("shared", account, ["eu-west-1"])], tmp_path))

    assert result.rc == 0, result.summary
    (run,) = run_results(tmp_path, "scan")
    assert (run["operation"], run["clean"], run["failures"]) == ("Scan", True, [])
    assert run["run_id"].endswith(run["snapshot_id"][:8])
    assert sorted(rows(run)) == sorted(("shared", "eu-west-1", group) for group in GROUPS)
    for group, ids in nodes.items():
        row = rows(run)[("shared", "eu-west-1", group)]
        assert (row["status"], row["targeted"], row["succeeded"]) == ("Success", len(ids), len(ids))
        for state in patch_states(fleet, ids).values():
            assert (state["Operation"], state["SnapshotId"]) == ("Scan", run["snapshot_id"])  # one snapshot per run
    assert installs(fleet) == {}  # a scan installs nothing
    assert not any(task.changed for task in result.tasks if task.task == WAIT_TASK)
    printed = result.task(PRINT_TASK).result["msg"]
    assert f"shared ({account}) eu-west-1 prod-auto: Success, 2 targeted, 2 succeeded" in printed


# ---------------------------------------------------------------------------------------------- install

def test_the_weekly_install_changes_only_the_auto_groups_with_the_policys_reboot_options(lab, run_playbook, tmp_path):
    account = fresh()
    fleet = fleet_in(lab, account)
    sensitive = fleet.register("ubuntu-22.04", 1, {"PatchGroup": SENSITIVE})
    auto = {"prod-auto": register(fleet, ["amzn-2023", "ubuntu-22.04"], {"PatchGroup": "prod-auto"}),
            "jump-log": fleet.register("ubuntu-22.04", 1, {"PatchGroup": "jump-log"}),
            "nonprod": fleet.register("ubuntu-24.04", 1, {"Patch Group": "nonprod"})}
    variables = cycle_vars([("production", account, ["eu-west-1"])], tmp_path)
    # The policy decides the reboot: this run's nonprod must not reboot. And a mistaken policy that marks the
    # sensitive group auto-approved still does not get it installed: it is in patch_cycle_sensitive_groups.
    policy_group(variables, "nonprod")["reboot_option"] = "NoReboot"
    policy_group(variables, SENSITIVE)["auto_approve"] = True

    planned = run_playbook(INSTALL, extra_vars=variables, check=True)
    assert planned.rc == 0, planned.summary  # check mode: the targets, nothing sent, no results file
    assert commands_by_group(fleet) == {} and installs(fleet) == {} and not list(tmp_path.iterdir())
    targets = ", ".join(sorted(auto["prod-auto"]))
    assert f"production ({account}) eu-west-1 prod-auto: would install 2 node(s) ({targets})" in planned.task(
        PRINT_TASK).result["msg"]

    first = run_playbook(INSTALL, extra_vars=variables)
    again = run_playbook(INSTALL, extra_vars=variables)

    assert first.rc == 0, first.summary
    run, rerun = run_results(tmp_path, "install")
    assert sorted(key[-1] for key in rows(run)) == ["jump-log", "nonprod", "prod-auto"]
    notes = first.task("Say what the run leaves out").result["msg"]
    assert any(note.startswith(f"Not installed: {SENSITIVE} (auto-approved in the policy") for note in notes)
    installed = installs(fleet)
    assert sorted(installed) == sorted(node for ids in auto.values() for node in ids)  # every auto node, no other
    assert missing_after_own_scan(fleet, sensitive[0])  # the sensitive server had approved updates: left alone

    sent = commands_by_group(fleet)
    assert sorted(sent) == ["jump-log", "nonprod", "prod-auto"] and all(len(c) == 2 for c in sent.values())
    ours = {group: command for group, commands in sent.items() for command in commands
            if command["Comment"] == f"fleetpatch cycle {run['run_id']}: Install {group}"}
    assert {group: c["Parameters"]["RebootOption"] for group, c in ours.items()} == {
        "prod-auto": ["RebootIfNeeded"], "jump-log": ["RebootIfNeeded"], "nonprod": ["NoReboot"]}
    assert {group: (c["MaxConcurrency"], c["MaxErrors"]) for group, c in ours.items()} == {
        "prod-auto": ("10%", "5%"), "jump-log": ("25%", "1"), "nonprod": ("50%", "25%")}
    assert {c["Parameters"]["SnapshotId"][0] for c in ours.values()} == {run["snapshot_id"]}

    states = patch_states(fleet, [node for ids in auto.values() for node in ids])
    for group, ids in auto.items():
        row = rows(run)[("production", "eu-west-1", group)]
        packages = sum(len(installed[node]) for node in ids)
        assert (row["targeted"], row["succeeded"], row["installed_packages"]) == (len(ids), len(ids), packages)
        rebooted = group != "nonprod"
        for node in ids:
            assert states[node]["RebootOption"] == ("RebootIfNeeded" if rebooted else "NoReboot")
            assert (states[node]["InstalledPendingRebootCount"] == 0) is rebooted
        assert row["reboot_pending_nodes"] == ([] if rebooted else ids)

    assert again.rc == 0, again.summary  # nothing missing any more: the second install changes nothing
    assert [task.changed for task in again.tasks if task.task == WAIT_TASK] == [False]
    assert installs(fleet) == installed
    assert sum(row["installed_packages"] for row in rerun["results"]) == 0
    assert run["run_id"] != rerun["run_id"] and run["snapshot_id"] != rerun["snapshot_id"]


# ---------------------------------------------------------------------------------------------- the guard

def test_the_guard_refuses_a_sensitive_group_before_any_call(lab, run_playbook, tmp_path):
    account = fresh()
    fleet = fleet_in(lab, account)
    fleet.register("ubuntu-22.04", 1, {"PatchGroup": SENSITIVE})
    base = cycle_vars([("production", account, ["eu-west-1"])], tmp_path)
    mistaken_policy = copy.deepcopy(base)
    policy_group(mistaken_policy, SENSITIVE)["auto_approve"] = True
    before = fleet.account.calls()

    cases = {
        "sensitive group asked for": (dict(base, patch_cycle_install_groups=[SENSITIVE, "prod-auto"]),
                                      f'"{SENSITIVE}" is a sensitive patch group'),
        "sensitive group auto-approved by mistake": (dict(mistaken_policy, patch_cycle_install_groups=[SENSITIVE]),
                                                     f'"{SENSITIVE}" is a sensitive patch group'),
        "sensitive list emptied": (dict(base, patch_cycle_install_groups=[SENSITIVE], patch_cycle_sensitive_groups=[]),
                                   f'"{SENSITIVE}" is not auto-approved'),
    }
    for case, (variables, reason) in cases.items():
        result = run_playbook(INSTALL, extra_vars=variables)
        assert result.rc != 0, case
        message = result.task("Check the run before anything is sent").result["msg"]
        assert reason in message and SENSITIVE_PLAYBOOKS in message and "nothing was sent" in message, message

    assert fleet.account.calls() == before  # not even a listing
    assert installs(fleet) == {} and not list(tmp_path.iterdir())


# ---------------------------------------------------------------------------------------------- failures

def test_an_unreachable_account_and_unsafe_nodes_are_named_while_the_rest_completes(lab, run_playbook, tmp_path):
    healthy, denied = fresh(), fresh()
    europe, america = fleet_in(lab, healthy, "eu-west-1"), fleet_in(lab, healthy, "us-east-1")
    online, offline = europe.register("ubuntu-22.04", 2, {"PatchGroup": "prod-auto"})
    europe.register("ubuntu-22.04", 1, {"PatchGroup": "jump-log"})
    # A bastion that also carries the sensitive group under the other tag key: jump-log is not installed there.
    (mistagged,) = europe.register("ubuntu-22.04", 1, {"PatchGroup": "jump-log", "Patch Group": SENSITIVE})
    europe.node_control("/nodes/online", offline, online=False)
    (elsewhere,) = america.register("amzn-2023", 1, {"PatchGroup": "jump-log"})
    variables = cycle_vars([("production", healthy, ["eu-west-1", "us-east-1"]), ("staging", denied, ["eu-west-1"])],
                           tmp_path, patch_cycle_install_groups=["prod-auto", "jump-log"])

    europe.control("/sts/deny", {"accounts": [denied]})
    try:
        result = run_playbook(INSTALL, extra_vars=variables)
    finally:
        europe.control("/sts/deny", {"accounts": []})

    assert result.rc != 0
    message = result.task(FAIL_TASK).result["msg"]
    assert f"staging ({denied}) (Assume the account's role: " in message and "not authorized" in message, message
    # run_patch_baseline's own guard (protected_patch_groups) refused jump-log there before sending anything.
    assert (f"production ({healthy}) eu-west-1 jump-log (protected_patch_groups: Install refused, nothing was sent: "
            f"{mistagged} belong to the protected patch group(s) {SENSITIVE}.") in message, message
    assert f"production ({healthy}) eu-west-1 prod-auto (1 undeliverable ({offline}))" in message, message
    assert sorted(installs(europe)) == sorted([online, elsewhere])  # the rest completed; no bastion of eu-west-1

    (run,) = run_results(tmp_path, "install")
    assert run["clean"] is False
    assert [(f["account"], f["region"], f["group"]) for f in run["failures"]] == [(f"staging ({denied})", None, None)]
    assert sorted(rows(run)) == [("production", "eu-west-1", "jump-log"), ("production", "eu-west-1", "prod-auto"),
                                 ("production", "us-east-1", "jump-log"), ("production", "us-east-1", "prod-auto")]
    refused = rows(run)[("production", "eu-west-1", "jump-log")]
    assert (refused["command_ids"], refused["clean"]) == ([], False) and "Install refused" in refused["error"]
    row = rows(run)[("production", "eu-west-1", "prod-auto")]
    assert (row["targeted"], row["succeeded"], row["undeliverable_nodes"]) == (2, 1, [offline])
    assert rows(run)[("production", "us-east-1", "jump-log")]["succeeded"] == 1
