# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleetpatch.ssm.patch_policy role through playbooks/policy.yml against the lab.

The policy is applied in fresh accounts reached by assumed roles (the lab's STS accepts any
`arn:aws:iam::<account>:role/<name>` and its credentials land in that account, as with AWS), and what it made is
read back with boto3 in each account and region. The reference policy (playbooks/vars/reference_policy.yml) runs
across 2 accounts x 2 regions; the other scenarios use a small policy in one account-region to stay fast.
"""
from __future__ import annotations

import copy
import itertools
from pathlib import Path

import pytest
import yaml

from accounts import Account
from accounts import open_account

PLAYBOOK = "playbooks/policy.yml"
REFERENCE = yaml.safe_load((Path(__file__).resolve().parents[2] / "playbooks/vars/reference_policy.yml").read_text())
REGIONS = ["eu-west-1", "us-east-1"]
OWNER_TAG = "fleetpatch:policy"
BASELINE_TASK = "Baselines, one per operating system and patch group"
NOTES_TASK = "Say what the policy cannot express on some operating systems"

# Account ids of this module's tests (other modules count from 310000000001): every test has accounts of its own.
_account_ids = itertools.count(520000000001)

# A small policy: two groups (one auto-approved, one explicit) on Amazon Linux 2023 and Ubuntu, two windows.
SMALL = {
    "patch_policy_name": "small",
    "patch_policy_operating_systems": ["AMAZON_LINUX_2023", "UBUNTU"],
    "patch_policy_groups": [
        {"name": "app", "auto_approve": True, "classifications": ["security"], "severities": ["critical"],
         "approve_after_days": 7, "compliance_level": "HIGH", "reject_kernel": True},
        {"name": "db", "auto_approve": False, "approved_patches": {"UBUNTU": ["openssl"]}},
    ],
    "patch_policy_windows": [
        {"name": "mw-scan", "operation": "Scan", "groups": ["app", "db"], "schedule": "cron(0 1 ? * SUN *)",
         "duration": 2, "cutoff": 1},
        {"name": "mw-install", "operation": "Install", "groups": ["app"], "schedule": "cron(0 2 ? * SUN *)",
         "duration": 3, "cutoff": 1, "max_concurrency": "2", "max_errors": "1",
         "output_s3_bucket": "patch-logs-{account_id}", "output_s3_key_prefix": "{region}/{window}/{group}"},
    ],
}
SMALL_BASELINES = {"al2023-app", "al2023-db", "ubuntu-app", "ubuntu-db"}


def role_arn(account_id: str) -> str:
    return f"arn:aws:iam::{account_id}:role/fleetpatch-policy"


def policy(base: dict, accounts: list, **changes) -> dict:
    """`base` applied to `accounts` ([(name, account_id, regions)]), with top-level variables replaced."""
    variables = copy.deepcopy(base)
    variables["patch_policy_accounts"] = [{"name": name, "role_arn": role_arn(account_id), "regions": regions}
                                          for name, account_id, regions in accounts]
    variables.update(changes)
    return variables


def fresh(count: int = 1) -> list:
    return [str(account_id) for account_id in itertools.islice(_account_ids, count)]


def windows(ssm) -> dict:
    """{name: {"window": GetMaintenanceWindow, "tags", "targets": {name: row}, "tasks": {name: GetMaintenanceWindowTask}}}."""
    found = {}
    for identity in ssm.describe_maintenance_windows()["WindowIdentities"]:
        window_id = identity["WindowId"]
        rows = ssm.describe_maintenance_window_tasks(WindowId=window_id)["Tasks"]
        found[identity["Name"]] = {
            "window": ssm.get_maintenance_window(WindowId=window_id),
            "tags": {t["Key"]: t["Value"] for t in ssm.list_tags_for_resource(
                ResourceType="MaintenanceWindow", ResourceId=window_id)["TagList"]},
            "targets": {row["Name"]: row for row in ssm.describe_maintenance_window_targets(WindowId=window_id)["Targets"]},
            "tasks": {row["Name"]: ssm.get_maintenance_window_task(WindowId=window_id, WindowTaskId=row["WindowTaskId"])
                      for row in rows},
        }
    return found


def rules(baseline: dict) -> list:
    """The approval rules of GetPatchBaseline as (filters {key: values}, rest of the rule), sorted by filters."""
    found = []
    for rule in baseline["ApprovalRules"]["PatchRules"]:
        filters = {f["Key"]: sorted(f["Values"]) for f in rule["PatchFilterGroup"]["PatchFilters"]}
        found.append((filters, {k: v for k, v in rule.items() if k != "PatchFilterGroup"}))
    return sorted(found, key=repr)


def run_parameters(task: dict) -> dict:
    return task["TaskInvocationParameters"]["RunCommand"]["Parameters"]


def changed_items(result, task: str) -> list:
    """The loop items of `task` that changed, over every account-region, by their label."""
    return sorted(item["_ansible_item_label"] for entry in result.tasks if entry.task == task
                  for item in entry.result.get("results", []) if item.get("changed"))


# ------------------------------------------------------------------------------------------ reference policy

def check_reference_scope(account: Account) -> None:
    """What the reference policy makes in one account-region."""
    groups = ["prod-sensitive", "prod-auto", "jump-log", "nonprod"]
    systems = {"al2": "AMAZON_LINUX_2", "al2023": "AMAZON_LINUX_2023", "ubuntu": "UBUNTU", "windows": "WINDOWS"}
    names = {f"{slug}-{group}" for slug in systems for group in groups}
    assert {b["BaselineName"] for b in account.own_baselines()} == names
    # One baseline per group and OS, registered for its group.
    assert account.groups() == {(group, os): f"{slug}-{group}" for slug, os in systems.items() for group in groups}

    al2023_auto = account.baseline("al2023-prod-auto")
    assert rules(al2023_auto) == [({"CLASSIFICATION": ["Security"], "SEVERITY": ["Critical", "Important"]},
                                   {"ApproveAfterDays": 7, "ComplianceLevel": "CRITICAL", "EnableNonSecurity": False})]
    assert account.tags(al2023_auto["BaselineId"]) == {OWNER_TAG: "reference", "fleetpatch:patch-group": "prod-auto"}
    assert rules(account.baseline("windows-prod-auto")) == [
        ({"CLASSIFICATION": ["CriticalUpdates", "SecurityUpdates"], "MSRC_SEVERITY": ["Critical", "Important"]},
         {"ApproveAfterDays": 7, "ComplianceLevel": "CRITICAL", "EnableNonSecurity": False})]
    # Ubuntu: no delay is sent (AWS has none), severities have no filter there, security = the security pocket.
    assert rules(account.baseline("ubuntu-prod-auto")) == [
        ({"PRODUCT": ["*"]}, {"ComplianceLevel": "CRITICAL", "EnableNonSecurity": False})]
    # nonprod: security and bug fixes, shorter delay; on Ubuntu one rule with every update.
    assert rules(account.baseline("al2-nonprod")) == [
        ({"CLASSIFICATION": ["Bugfix"]}, {"ApproveAfterDays": 3, "ComplianceLevel": "MEDIUM", "EnableNonSecurity": False}),
        ({"CLASSIFICATION": ["Security"]}, {"ApproveAfterDays": 3, "ComplianceLevel": "MEDIUM", "EnableNonSecurity": False})]
    assert rules(account.baseline("ubuntu-nonprod")) == [
        ({"PRODUCT": ["*"]}, {"ComplianceLevel": "MEDIUM", "EnableNonSecurity": True})]
    assert rules(account.baseline("al2023-jump-log"))[0][1]["ApproveAfterDays"] == 0
    # prod-sensitive: no rule at all (explicit approvals only), and the fail-safe default of every OS.
    for slug, os in systems.items():
        sensitive = account.baseline(f"{slug}-prod-sensitive")
        assert sensitive["ApprovalRules"]["PatchRules"] == []
        assert account.default_baseline(os) == sensitive["BaselineId"]

    found = windows(account.ssm)
    assert set(found) == {"mw-scan-all", "mw-install-nonprod", "mw-install-auto"}
    assert all(window["tags"] == {OWNER_TAG: "reference"} for window in found.values())
    scan, nonprod, auto = found["mw-scan-all"], found["mw-install-nonprod"], found["mw-install-auto"]
    assert scan["window"]["Schedule"] == "cron(0 1 ? * SUN *)"
    # One target per group and tag key (the reference fleet uses PatchGroup and Patch Group).
    assert {name: row["Targets"] for name, row in scan["targets"].items()} == {
        f"{group}.{key.replace(' ', '_')}": [{"Key": f"tag:{key}", "Values": [group]}]
        for group in groups for key in ("PatchGroup", "Patch Group")}
    assert {name: run_parameters(task) for name, task in scan["tasks"].items()} == {
        f"scan-{group}": {"Operation": ["Scan"], "RebootOption": ["NoReboot"]} for group in groups}
    # Installs: auto groups only, RebootIfNeeded, the group's own concurrency and error threshold; nonprod earlier.
    assert set(auto["tasks"]) == {"install-prod-auto", "install-jump-log"}
    assert set(nonprod["tasks"]) == {"install-nonprod"}
    install = auto["tasks"]["install-jump-log"]
    assert run_parameters(install) == {"Operation": ["Install"], "RebootOption": ["RebootIfNeeded"]}
    assert (install["MaxConcurrency"], install["MaxErrors"], install["CutoffBehavior"]) == ("25%", "1", "CANCEL_TASK")
    assert auto["tasks"]["install-prod-auto"]["MaxConcurrency"] == "10%"
    assert nonprod["window"]["Schedule"] == "cron(0 2 ? * TUE *)" and auto["window"]["Schedule"] == "cron(0 2 ? * THU *)"


def test_reference_policy_in_two_accounts_and_two_regions_then_a_second_run_changes_nothing(lab, run_playbook):
    production, staging = fresh(2)
    variables = policy(REFERENCE, [("production", production, REGIONS), ("staging", staging, REGIONS)])

    result = run_playbook(PLAYBOOK, extra_vars=variables)
    assert result.rc == 0, result.summary
    for account_id, region in itertools.product((production, staging), REGIONS):
        check_reference_scope(open_account(lab, account_id, region))
    # The role says what it did not send to Ubuntu, and why.
    notes = result.task(NOTES_TASK).result["msg"]
    # (jump-log approves on release everywhere: nothing is lost on Ubuntu.)
    assert any(note.startswith("UBUNTU baselines of prod-auto, nonprod: no approval delay") for note in notes)

    again = run_playbook(PLAYBOOK, extra_vars=variables)
    assert (again.rc, again.changed) == (0, 0), again.summary


# ------------------------------------------------------------------------------------------ small policy

def test_check_mode_on_a_fresh_account_reports_every_change_and_writes_nothing(lab, run_playbook):
    (account_id,) = fresh()
    account = open_account(lab, account_id, REGIONS[0])

    result = run_playbook(PLAYBOOK, extra_vars=policy(SMALL, [("fresh", account_id, REGIONS[:1])]),
                          check=True, diff=True)
    assert result.rc == 0, result.summary
    assert changed_items(result, BASELINE_TASK) == sorted(SMALL_BASELINES)
    assert changed_items(result, "Window tasks, one AWS-RunPatchBaseline task per patch group") == [
        "mw-install/install-app", "mw-scan/scan-app", "mw-scan/scan-db"]
    # Patch groups wait for their baselines, which check mode only predicts: said, not failed.
    assert result.task("Patch groups use their baselines").status == "skipped"
    assert "al2023-app" in result.task("Say which patch groups a real run would also register").result["msg"]
    diff = result.task(BASELINE_TASK).result["results"][0]["diff"]
    assert diff["before"] == {} and diff["after"]["name"] == "al2023-app"
    assert account.own_baselines() == [] and windows(account.ssm) == {}


def test_the_small_policy_is_applied_with_its_options(lab, run_playbook):
    (account_id,) = fresh()
    result = run_playbook(PLAYBOOK, extra_vars=policy(SMALL, [("small", account_id, REGIONS[:1])]))
    assert result.rc == 0, result.summary
    account = open_account(lab, account_id, REGIONS[0])

    app = account.baseline("al2023-app")
    assert rules(app) == [({"CLASSIFICATION": ["Security"], "SEVERITY": ["Critical"]},
                           {"ApproveAfterDays": 7, "ComplianceLevel": "HIGH", "EnableNonSecurity": False})]
    # Kernel updates are rejected because the group asks for it: Amazon Linux by wildcard, Ubuntu by metapackage.
    assert app["RejectedPatches"] == ["kernel*"]
    assert "linux-image-generic" in account.baseline("ubuntu-app")["RejectedPatches"]
    db = account.baseline("ubuntu-db")
    assert (db["ApprovalRules"]["PatchRules"], db["ApprovedPatches"], db["RejectedPatches"]) == ([], ["openssl"], [])
    # No default group: AWS's own baselines (full ARNs) stay the defaults.
    assert account.default_baseline("UBUNTU").startswith("arn:aws:ssm:")

    install = windows(account.ssm)["mw-install"]["tasks"]["install-app"]
    assert (install["MaxConcurrency"], install["MaxErrors"]) == ("2", "1")
    run_command = install["TaskInvocationParameters"]["RunCommand"]
    assert run_command["OutputS3BucketName"] == f"patch-logs-{account_id}"
    assert run_command["OutputS3KeyPrefix"] == f"{REGIONS[0]}/mw-install/app"
    assert run_command["Comment"] == "fleetpatch policy small: Install app"


def as_strings(value):
    """The policy as an AWX survey or a string-typed inventory gives it: every scalar a string."""
    if isinstance(value, dict):
        return {key: as_strings(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_strings(item) for item in value]
    return str(value).lower() if isinstance(value, bool) else str(value)


def test_the_same_policy_with_string_values_is_no_change_and_a_changed_delay_changes_exactly_that(lab, run_playbook):
    (account_id,) = fresh()
    variables = policy(SMALL, [("small", account_id, REGIONS[:1])], patch_policy_purge=False)
    assert run_playbook(PLAYBOOK, extra_vars=variables).rc == 0
    # "false" must not read as true (auto_approve: "false" is the sensitive-group guard), nor "7" differ from 7.
    again = run_playbook(PLAYBOOK, extra_vars=as_strings(variables))
    assert (again.rc, again.changed) == (0, 0), again.summary

    variables["patch_policy_groups"][0]["approve_after_days"] = 5
    result = run_playbook(PLAYBOOK, extra_vars=variables, diff=True)
    assert result.rc == 0, result.summary
    # Ubuntu's baseline has no delay to change; nothing else in the account changes.
    assert result.changed == 1
    assert changed_items(result, BASELINE_TASK) == ["al2023-app"]
    account = open_account(lab, account_id, REGIONS[0])
    assert rules(account.baseline("al2023-app"))[0][1]["ApproveAfterDays"] == 5


def test_windows_keep_only_the_targets_and_tasks_the_policy_declares(lab, run_playbook):
    (account_id,) = fresh()
    variables = policy(SMALL, [("small", account_id, REGIONS[:1])])
    assert run_playbook(PLAYBOOK, extra_vars=variables).rc == 0
    account = open_account(lab, account_id, REGIONS[0])
    scan_id = windows(account.ssm)["mw-scan"]["window"]["WindowId"]
    # A task added in the console to a window of the policy.
    target_id = account.ssm.register_target_with_maintenance_window(
        WindowId=scan_id, ResourceType="INSTANCE", Name="extra", Targets=[{"Key": "tag:Role", "Values": ["web"]}]
    )["WindowTargetId"]
    account.ssm.register_task_with_maintenance_window(
        WindowId=scan_id, Name="extra-scan", TaskType="RUN_COMMAND", TaskArn="AWS-RunPatchBaseline",
        Targets=[{"Key": "WindowTargetIds", "Values": [target_id]}], MaxConcurrency="1", MaxErrors="0",
        TaskInvocationParameters={"RunCommand": {"Parameters": {"Operation": ["Install"]}}})

    # db no longer scanned: its target and task go too.
    variables["patch_policy_windows"][0]["groups"] = ["app"]
    result = run_playbook(PLAYBOOK, extra_vars=variables)
    assert result.rc == 0, result.summary
    scan = windows(account.ssm)["mw-scan"]
    assert (set(scan["targets"]), set(scan["tasks"])) == ({"app.PatchGroup"}, {"scan-app"})


def test_purge_deletes_what_the_policy_owned_and_no_longer_declares_and_nothing_else(lab, run_playbook):
    (account_id,) = fresh()
    variables = policy(SMALL, [("small", account_id, REGIONS[:1])])
    assert run_playbook(PLAYBOOK, extra_vars=variables).rc == 0
    account = open_account(lab, account_id, REGIONS[0])
    unowned = account.create("al2023-manual", "AMAZON_LINUX_2023")
    account.ssm.register_patch_baseline_for_patch_group(BaselineId=unowned, PatchGroup="manual")
    account.ssm.create_maintenance_window(Name="mw-manual", Schedule="cron(0 4 ? * SUN *)", Duration=2, Cutoff=1,
                                          AllowUnassociatedTargets=False)

    # The policy drops Ubuntu (and db's Ubuntu patch) and the install window: without purge they stay.
    smaller = dict(variables, patch_policy_operating_systems=["AMAZON_LINUX_2023"],
                   patch_policy_windows=variables["patch_policy_windows"][:1])
    smaller["patch_policy_groups"] = [dict(group, approved_patches={}) for group in variables["patch_policy_groups"]]
    result = run_playbook(PLAYBOOK, extra_vars=smaller)
    assert (result.rc, result.changed) == (0, 0), result.summary
    assert "ubuntu-app" in {b["BaselineName"] for b in account.own_baselines()}
    assert "mw-install" in windows(account.ssm)

    result = run_playbook(PLAYBOOK, extra_vars=dict(smaller, patch_policy_purge=True))
    assert result.rc == 0, result.summary
    assert {b["BaselineName"] for b in account.own_baselines()} == {"al2023-app", "al2023-db", "al2023-manual"}
    assert set(windows(account.ssm)) == {"mw-scan", "mw-manual"}
    # The Ubuntu baselines' groups were deregistered first; the unowned baseline keeps its group.
    assert account.groups() == {("app", "AMAZON_LINUX_2023"): "al2023-app", ("db", "AMAZON_LINUX_2023"): "al2023-db",
                                ("manual", "AMAZON_LINUX_2023"): "al2023-manual"}

    again = run_playbook(PLAYBOOK, extra_vars=dict(smaller, patch_policy_purge=True))
    assert (again.rc, again.changed) == (0, 0), again.summary


def test_an_account_or_region_that_fails_is_named_and_the_others_are_applied(lab, run_playbook):
    healthy, crowded = fresh(2)
    # us-east-1 of `crowded` already has AWS's quota of 50 custom baselines: creating the policy's fails there.
    full = open_account(lab, crowded, "us-east-1")
    for index in range(50):
        full.create(f"existing-{index:02d}", "AMAZON_LINUX_2023")
    variables = policy(SMALL, [("healthy", healthy, REGIONS[:1]), ("crowded", crowded, REGIONS)])
    # An entry without a role must be the current credentials' account (the lab's default one is not this).
    variables["patch_policy_accounts"].insert(0, {"name": "wrong-credentials", "account_id": "999999999999",
                                                  "regions": REGIONS[:1]})

    result = run_playbook(PLAYBOOK, extra_vars=variables)
    assert result.rc != 0
    message = result.task("Fail naming the accounts and regions where the policy could not be applied").result["msg"]
    assert "wrong-credentials (999999999999) (Check that the current credentials are the account's:" in message
    # The loop's first failed item and AWS's error, not "One or more items failed".
    assert f"crowded ({crowded}) us-east-1 (Baselines, one per operating system and patch group: al2023-app: " in message
    assert "ResourceLimitExceededException" in message
    assert "healthy" not in message and f"crowded ({crowded}) eu-west-1" not in message
    for account_id, region in ((healthy, "eu-west-1"), (crowded, "eu-west-1")):
        account = open_account(lab, account_id, region)
        assert {b["BaselineName"] for b in account.own_baselines()} == SMALL_BASELINES
        assert set(windows(account.ssm)) == {"mw-scan", "mw-install"}


# ------------------------------------------------------------------------------------------ validation

def invalid_policy(account_id: str) -> dict:
    """SMALL with a mistake in every part of the policy (the whole policy is checked at once)."""
    variables = policy(SMALL, [("invalid", account_id, REGIONS[:1])])
    app, db = variables["patch_policy_groups"]
    scan, install = variables["patch_policy_windows"]
    app.update(approve_after_days=400, classifications=[], max_errors="101%")
    db.update(approve_after_days=3, approved_patches={"UBUNTU": ["openssl*"]}, rejected_patches={"WINDOWS": ["KB1"]})
    scan.update(groups=["app", "web"], cutoff=2, schedule="cron(0 1 * * SUN)")
    install.update(groups=["app", "db"], max_concurrency="0", schedule_offset=9)
    variables.update(patch_policy_default_group="web", patch_policy_tags={"fleetpatch:owner": "me"})
    variables["patch_policy_accounts"].append(
        {"role_arn": role_arn(account_id), "account_id": "123456789012", "regions": ["eu_west_1"]})
    return variables


INVALID_POLICY_PROBLEMS = [
    "patch_policy_groups[app].approve_after_days: 400 is out of range; allowed: 0 to 360",
    "patch_policy_groups[app].classifications: required when auto_approve is true; allowed: security, bugfix",
    "patch_policy_groups[app].max_errors: \"101%\" is not allowed; allowed: a number from 0 or a percentage 0% to 100%",
    "patch_policy_groups[db].approve_after_days: not allowed when auto_approve is false",
    "patch_policy_groups[db].approved_patches.UBUNTU: \"openssl*\" is not a Ubuntu Server patch; allowed: package names "
    "only, without version, architecture or wildcard",
    "patch_policy_groups[db].rejected_patches: \"WINDOWS\" is not an operating system of the policy; allowed: "
    "AMAZON_LINUX_2023, UBUNTU",
    "patch_policy_windows[mw-scan].groups: \"web\" is not a group of the policy; allowed: app, db",
    "patch_policy_windows[mw-scan].schedule: \"cron(0 1 * * SUN)\" is not a schedule; allowed: cron(minutes hours",
    "patch_policy_windows[mw-scan].cutoff: 2 is not allowed; allowed: 0 to 23 hours and below the duration (2)",
    "patch_policy_windows[mw-install].groups: \"db\" is not auto-approved (auto_approve: false): no window may install "
    "it, it is installed on demand after review and approval; allowed: app",
    "patch_policy_windows[mw-install].max_concurrency: \"0\" is not allowed; allowed: a number from 1 or a percentage",
    "patch_policy_windows[mw-install].schedule_offset: 9 is not allowed; allowed: 1 to 6 days",
    "patch_policy_default_group: \"web\" is not a group of the policy; allowed: app, db",
    "patch_policy_tags: \"fleetpatch:owner\" is reserved",
    "patch_policy_accounts[1].role_arn: the role is in account ",
    "patch_policy_accounts[1].regions: \"eu_west_1\" is not a region name; allowed: names such as eu-west-1",
]


def test_an_invalid_policy_fails_naming_every_field_and_writes_nothing(lab, run_playbook):
    (account_id,) = fresh()
    result = run_playbook(PLAYBOOK, extra_vars=invalid_policy(account_id))

    assert result.rc != 0
    message = result.task("Check the policy's cross-field rules").result["msg"]
    missing = [problem for problem in INVALID_POLICY_PROBLEMS if f"\n{problem}" not in message]
    assert not missing, f"not reported: {missing}\nmessage:\n{message}"
    account = open_account(lab, account_id, REGIONS[0])
    assert account.own_baselines() == [] and windows(account.ssm) == {}


@pytest.mark.parametrize("variable, value, expected", [
    ("patch_policy_operating_systems", ["AMAZON_LINUX_2023", "SUSE"], "patch_policy_operating_systems"),
    ("patch_policy_windows", [{"name": "mw-x", "operation": "Patch", "groups": ["app"], "schedule": "rate(7 days)",
                               "duration": 2, "cutoff": 1}], "operation"),
])
def test_the_argument_specification_refuses_wrong_types_and_choices(lab, run_playbook, variable, value, expected):
    (account_id,) = fresh()
    variables = policy(SMALL, [("spec", account_id, REGIONS[:1])], **{variable: value})
    result = run_playbook(PLAYBOOK, extra_vars=variables)
    assert result.rc != 0
    message = result.task("Validating arguments against arg spec 'main' - The whole patch policy as code, in every "
                          "listed AWS account and region").result["msg"]
    assert expected in message
    assert open_account(lab, account_id, REGIONS[0]).own_baselines() == []
