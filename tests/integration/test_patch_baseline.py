# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""patch_baseline, patch_group and patch_baseline_info through ansible-playbook against the lab.

Each test works in an account of its own (STS AssumeRole into a fresh account id, as with AWS), so baselines,
patch groups and default baselines of one test never meet another's. The playbooks under targets/ run one module
task per step; what the modules did is read back with boto3, and the lab's call counter (control API /calls)
shows which SSM calls they made.
"""
from __future__ import annotations

from collections import Counter

from accounts import changes, converge, failure, run_steps, step

BASELINE_STEPS = "tests/integration/targets/patch_baseline/steps.yml"
GROUP_STEPS = "tests/integration/targets/patch_group/steps.yml"
BASELINE_INFO = "tests/integration/targets/patch_baseline_info/gather.yml"

# ------------------------------------------------------------------------------------------------ baselines

AL2023 = {
    "name": "al2023-prod-auto",
    "operating_system": "AMAZON_LINUX_2023",
    "description": "Security after 0 days, bugfixes until the end of the year",
    "global_filters": [{"key": "PRODUCT", "values": ["AmazonLinux2023"]}],
    "approval_rules": [
        {"filters": [{"key": "CLASSIFICATION", "values": ["Security"]},
                     {"key": "SEVERITY", "values": ["Critical", "Important"]}],
         "approve_after_days": 0, "compliance_level": "CRITICAL"},
        {"filters": [{"key": "CLASSIFICATION", "values": ["Bugfix"]}], "approve_until_date": "2026-12-31"},
    ],
    "approved_patches": ["openssl-3.0.8"],
    "approved_patches_compliance_level": "HIGH",
    "approved_patches_enable_non_security": True,
    "rejected_patches": ["kernel*"],
    "rejected_patches_action": "BLOCK",
    "sources": [{"name": "internal-mirror", "products": ["AmazonLinux2023"],
                 "configuration": "[internal]\nname=Internal\nbaseurl=https://mirror.example/al2023\nenabled=1"}],
    "tags": {"Owner": "platform", "PatchPolicy": "prod-auto"},
}

# Every field group of AL2023 changed (and the tag PatchPolicy purged).
AL2023_CHANGED = {
    "name": "al2023-prod-auto",
    "operating_system": "AMAZON_LINUX_2023",
    "description": "Security after 3 days",
    "global_filters": [{"key": "PRODUCT", "values": ["*"]}],
    "approval_rules": [{"filters": [{"key": "CLASSIFICATION", "values": ["Security"]}], "approve_after_days": 3}],
    "approved_patches": ["openssl-3.0.9", "curl"],
    "tags": {"Owner": "security"},
}

# AL2023_CHANGED as a user might write it another day: other order, other case, a duplicate.
AL2023_CHANGED_REORDERED = dict(
    AL2023_CHANGED,
    approval_rules=[{"filters": [{"key": "classification", "values": ["security", "Security"]}],
                     "approve_after_days": 3}],
    approved_patches=["curl", "openssl-3.0.9", "curl"],
)


def test_create_check_mode_then_repeat_changes_nothing(account, run_playbook):
    results = run_steps(run_playbook, account, BASELINE_STEPS, converge("create", AL2023))

    assert changes(results) == [("create: check mode", True), ("create: apply", True),
                                ("create: check mode again", False), ("create: apply again", False)]
    predicted = results["create: check mode"].result["patch_baseline"]
    assert predicted["baseline_id"] is None and predicted["name"] == "al2023-prod-auto"
    assert account.calls()["CreatePatchBaseline"] == 1  # the check-mode run created nothing

    stored = account.baseline("al2023-prod-auto")
    assert results["create: apply"].result["patch_baseline"]["baseline_id"] == stored["BaselineId"]
    assert stored["OperatingSystem"] == "AMAZON_LINUX_2023"
    assert stored["Description"] == AL2023["description"]
    assert stored["GlobalFilters"] == {"PatchFilters": [{"Key": "PRODUCT", "Values": ["AmazonLinux2023"]}]}
    rules = {rule["PatchFilterGroup"]["PatchFilters"][0]["Values"][0]: rule
             for rule in stored["ApprovalRules"]["PatchRules"]}
    assert rules["Security"]["ApproveAfterDays"] == 0  # 0 is sent when set...
    assert rules["Security"]["ComplianceLevel"] == "CRITICAL"
    assert rules["Bugfix"]["ApproveUntilDate"] == "2026-12-31"
    assert "ApproveAfterDays" not in rules["Bugfix"]  # ...and nothing when unset
    assert stored["ApprovedPatches"] == ["openssl-3.0.8"]
    assert stored["ApprovedPatchesComplianceLevel"] == "HIGH"
    assert stored["ApprovedPatchesEnableNonSecurity"] is True
    assert (stored["RejectedPatches"], stored["RejectedPatchesAction"]) == (["kernel*"], "BLOCK")
    assert [source["Name"] for source in stored["Sources"]] == ["internal-mirror"]
    assert account.tags(stored["BaselineId"]) == {"Owner": "platform", "PatchPolicy": "prod-auto"}


def test_update_of_every_field_group_then_reorder_and_case_are_no_change(account, run_playbook):
    steps = [step("start", AL2023)] + converge("update", AL2023_CHANGED) + [
        step("reordered: check mode", AL2023_CHANGED_REORDERED, check=True),
        step("reordered: apply", AL2023_CHANGED_REORDERED),
    ]
    results = run_steps(run_playbook, account, BASELINE_STEPS, steps)

    assert changes(results)[1:] == [("update: check mode", True), ("update: apply", True),
                                    ("update: check mode again", False), ("update: apply again", False),
                                    ("reordered: check mode", False), ("reordered: apply", False)]
    stored = account.baseline("al2023-prod-auto")
    assert stored["Description"] == "Security after 3 days"
    assert stored["GlobalFilters"] == {"PatchFilters": [{"Key": "PRODUCT", "Values": ["*"]}]}
    (rule,) = stored["ApprovalRules"]["PatchRules"]
    assert rule["PatchFilterGroup"] == {"PatchFilters": [{"Key": "CLASSIFICATION", "Values": ["Security"]}]}
    assert (rule["ApproveAfterDays"], rule["ComplianceLevel"]) == (3, "UNSPECIFIED")
    assert sorted(stored["ApprovedPatches"]) == ["curl", "openssl-3.0.9"]
    # What the task no longer sets is back to AWS's default, not left over from before.
    assert stored["ApprovedPatchesComplianceLevel"] == "UNSPECIFIED"
    assert stored["ApprovedPatchesEnableNonSecurity"] is False
    assert (stored["RejectedPatches"], stored["RejectedPatchesAction"]) == ([], "ALLOW_AS_DEPENDENCY")
    assert stored["Sources"] == []
    assert account.tags(stored["BaselineId"]) == {"Owner": "security"}
    diff = results["update: apply"].result["diff"]
    assert diff["before"]["description"] == AL2023["description"]
    assert diff["after"]["description"] == "Security after 3 days"
    assert diff["after"]["tags"] == {"Owner": "security"}


def test_console_drift_is_corrected_and_a_no_op_run_reads_once(account, run_playbook):
    baseline_id = account.create("ubuntu-jump-log", "UBUNTU", Description="edited in the console",
                                 ApprovedPatches=["zlib1g"], Tags=[{"Key": "Owner", "Value": "ops"}])
    spec = {"name": "ubuntu-jump-log", "operating_system": "UBUNTU", "tags": {"Owner": "ops"},
            "approval_rules": [{"filters": [{"key": "PRIORITY", "values": ["Required", "Important"]}]}]}
    results = run_steps(run_playbook, account, BASELINE_STEPS, [step("drift", spec)])
    assert changes(results) == [("drift", True)]
    stored = account.baseline("ubuntu-jump-log")
    assert (stored["BaselineId"], stored.get("Description"), stored["ApprovedPatches"]) == (baseline_id, None, [])

    before = account.calls()
    without_tags = {key: value for key, value in spec.items() if key != "tags"}
    results = run_steps(run_playbook, account, BASELINE_STEPS, [step("no-op", spec), step("no-op, tags unmanaged",
                                                                                          without_tags)])
    assert changes(results) == [("no-op", False), ("no-op, tags unmanaged", False)]
    # Per no-op run: one DescribePatchBaselines page (find by name) and one GetPatchBaseline; ListTagsForResource
    # only when the task manages tags.
    assert account.calls() - before == Counter(DescribePatchBaselines=2, GetPatchBaseline=2, ListTagsForResource=1)


def test_windows_and_ubuntu_rules_are_sent_in_aws_terms(account, run_playbook):
    windows = {
        "name": "windows-prod-sensitive", "operating_system": "WINDOWS",
        "global_filters": [{"key": "patch_set", "values": ["os"]}],
        "approval_rules": [{"filters": [{"key": "CLASSIFICATION", "values": ["securityupdates", "CriticalUpdates"]},
                                        {"key": "MSRC_SEVERITY", "values": ["critical"]}],
                            "approve_after_days": 7}],
        "approved_patches": ["kb5034439"],
        "available_security_updates_compliance_status": "NON_COMPLIANT",
    }
    ubuntu = {
        "name": "ubuntu-prod-auto", "operating_system": "UBUNTU",
        "approval_rules": [{"filters": [{"key": "PRODUCT", "values": ["Ubuntu22.04", "Ubuntu24.04"]},
                                        {"key": "PRIORITY", "values": ["required", "Important"]},
                                        {"key": "section", "values": ["libs"]}]}],
        "rejected_patches": ["snapd"],
    }
    steps = [step("windows", windows), step("ubuntu", ubuntu),
             step("windows: check mode again", windows, True), step("windows again", windows),
             step("ubuntu: check mode again", ubuntu, True), step("ubuntu again", ubuntu)]
    results = run_steps(run_playbook, account, BASELINE_STEPS, steps)

    assert [changed for _name, changed in changes(results)] == [True, True, False, False, False, False]
    stored = account.baseline("windows-prod-sensitive")
    assert stored["GlobalFilters"]["PatchFilters"] == [{"Key": "PATCH_SET", "Values": ["OS"]}]
    (rule,) = stored["ApprovalRules"]["PatchRules"]
    filters = {f["Key"]: f["Values"] for f in rule["PatchFilterGroup"]["PatchFilters"]}
    assert filters == {"CLASSIFICATION": ["CriticalUpdates", "SecurityUpdates"], "MSRC_SEVERITY": ["Critical"]}
    assert stored["ApprovedPatches"] == ["KB5034439"]
    assert stored["AvailableSecurityUpdatesComplianceStatus"] == "NON_COMPLIANT"
    stored = account.baseline("ubuntu-prod-auto")
    (rule,) = stored["ApprovalRules"]["PatchRules"]
    assert "ApproveAfterDays" not in rule and "ApproveUntilDate" not in rule
    filters = {f["Key"]: f["Values"] for f in rule["PatchFilterGroup"]["PatchFilters"]}
    assert filters == {"PRIORITY": ["Important", "Required"], "PRODUCT": ["Ubuntu22.04", "Ubuntu24.04"],
                       "SECTION": ["Libs"]}


def test_default_baseline_is_registered_and_the_aws_default_restored(account, run_playbook):
    spec = {"name": "al2-nonprod", "operating_system": "AMAZON_LINUX_2",
            "approval_rules": [{"filters": [{"key": "CLASSIFICATION", "values": ["Security", "Bugfix"]}],
                                "approve_after_days": 3}]}
    aws_default = account.default_baseline("AMAZON_LINUX_2")
    steps = converge("default", dict(spec, default=True)) + [step("not default", spec), step("not default again", spec)]
    results = run_steps(run_playbook, account, BASELINE_STEPS, steps)

    assert [changed for _name, changed in changes(results)] == [True, True, False, False, True, False]
    assert results["default: apply"].result["patch_baseline"]["default"] is True
    diff = results["not default"].result["diff"]
    assert (diff["before"]["default"], diff["after"]["default"]) == (True, False)
    # Restored by its full ARN: the AWS-owned baseline that was the default before.
    assert aws_default.startswith("arn:aws:ssm:")
    assert account.default_baseline("AMAZON_LINUX_2") == aws_default


def test_os_change_and_deleting_a_used_baseline_are_refused_unless_asked(account, run_playbook):
    baseline_id = account.create("shared", "AMAZON_LINUX_2", ApprovalRules={"PatchRules": [{
        "PatchFilterGroup": {"PatchFilters": [{"Key": "CLASSIFICATION", "Values": ["Security"]}]},
        "ApproveAfterDays": 7}]})
    account.ssm.register_patch_baseline_for_patch_group(BaselineId=baseline_id, PatchGroup="db")
    ubuntu = {"name": "shared", "operating_system": "UBUNTU"}
    steps = [step("os change", ubuntu), step("os change, replace", dict(ubuntu, replace_on_os_change=True)),
             step("delete", {"name": "shared", "state": "absent"})]
    results = run_steps(run_playbook, account, BASELINE_STEPS, steps)

    assert "operating_system: 'UBUNTU' differs from 'AMAZON_LINUX_2'" in failure(results, "os change")
    assert "replace_on_os_change=true" in failure(results, "os change")
    assert "patch groups db use it" in failure(results, "os change, replace")
    assert "patch groups db use it" in failure(results, "delete")
    assert account.baseline("shared")["BaselineId"] == baseline_id
    assert account.groups() == {("db", "AMAZON_LINUX_2"): "shared"}

    replace = dict(ubuntu, replace_on_os_change=True, deregister_patch_groups=True)
    steps = [step("replace", replace), step("replace again", replace)]
    results = run_steps(run_playbook, account, BASELINE_STEPS, steps)
    assert changes(results) == [("replace", True), ("replace again", False)]
    replaced = account.baseline("shared")
    assert replaced["OperatingSystem"] == "UBUNTU" and replaced["BaselineId"] != baseline_id
    assert account.groups() == {}


def test_delete_deregisters_groups_and_gives_the_default_back(account, run_playbook):
    aws_default = account.default_baseline("UBUNTU")
    baseline_id = account.create("legacy", "UBUNTU")
    account.ssm.register_patch_baseline_for_patch_group(BaselineId=baseline_id, PatchGroup="legacy-apps")
    account.ssm.register_default_patch_baseline(BaselineId=baseline_id)

    spec = {"name": "legacy", "state": "absent", "deregister_patch_groups": True}
    results = run_steps(run_playbook, account, BASELINE_STEPS, converge("delete", spec))

    assert [changed for _name, changed in changes(results)] == [True, True, False, False]
    assert results["delete: apply"].result["patch_baseline"] is None
    assert results["delete: apply"].result["diff"]["before"]["patch_groups"] == ["legacy-apps"]
    assert account.own_baselines() == []
    assert account.groups() == {}
    assert account.default_baseline("UBUNTU") == aws_default


INVALID = [
    # (case, options, text the message must contain: the field, and what is wrong)
    ("AL2 key", {"operating_system": "AMAZON_LINUX_2", "approval_rules": [
        {"filters": [{"key": "PRIORITY", "values": ["Required"]}], "approve_after_days": 7}]},
     "approval_rules[0].filters[0].key: 'PRIORITY' is not a filter key for Amazon Linux 2"),
    ("Ubuntu key", {"operating_system": "UBUNTU", "global_filters": [{"key": "CLASSIFICATION", "values": ["*"]}]},
     "global_filters[0].key: 'CLASSIFICATION' is not a filter key for Ubuntu Server"),
    ("Windows key", {"operating_system": "WINDOWS", "global_filters": [{"key": "SEVERITY", "values": ["*"]}]},
     "global_filters[0].key: 'SEVERITY'"),
    ("AL2 value", {"operating_system": "AMAZON_LINUX_2", "global_filters": [
        {"key": "CLASSIFICATION", "values": ["Critical"]}]}, "global_filters[0].values[0]: 'Critical' is not valid"),
    ("Windows value", {"operating_system": "WINDOWS", "global_filters": [
        {"key": "MSRC_SEVERITY", "values": ["Medium"]}]}, "global_filters[0].values[0]: 'Medium'"),
    ("console All", {"operating_system": "UBUNTU", "global_filters": [{"key": "PRODUCT", "values": ["All"]}]},
     "global_filters[0].values[0]: 'All' is the console's label"),
    ("Ubuntu delay", {"operating_system": "UBUNTU", "approval_rules": [
        {"filters": [{"key": "PRIORITY", "values": ["Required"]}], "approve_after_days": 7}]},
     "approval_rules[0].approve_after_days: 7 is not supported for Ubuntu Server"),
    ("Ubuntu date", {"operating_system": "UBUNTU", "approval_rules": [
        {"filters": [{"key": "PRIORITY", "values": ["Required"]}], "approve_until_date": "2026-12-31"}]},
     "approval_rules[0].approve_until_date"),
    ("no delay", {"operating_system": "AMAZON_LINUX_2023", "approval_rules": [
        {"filters": [{"key": "CLASSIFICATION", "values": ["Security"]}]}]},
     "approval_rules[0]: Amazon Linux 2023 needs exactly one of approve_after_days"),
    ("both delays", {"operating_system": "AMAZON_LINUX_2", "approval_rules": [
        {"filters": [{"key": "CLASSIFICATION", "values": ["Security"]}], "approve_after_days": 7,
         "approve_until_date": "2026-12-31"}]}, "given: approve_after_days, approve_until_date"),
    ("days range", {"operating_system": "AMAZON_LINUX_2", "approval_rules": [
        {"filters": [{"key": "CLASSIFICATION", "values": ["Security"]}], "approve_after_days": 361}]},
     "approval_rules[0].approve_after_days: 361 is out of range; allowed: 0 to 360"),
    ("date format", {"operating_system": "WINDOWS", "approval_rules": [
        {"filters": [{"key": "CLASSIFICATION", "values": ["Updates"]}], "approve_until_date": "31/12/2026"}]},
     "approval_rules[0].approve_until_date: '31/12/2026' is not a date"),
    ("11 rules", {"operating_system": "AMAZON_LINUX_2", "approval_rules": [
        {"filters": [{"key": "CLASSIFICATION", "values": ["Security"]}], "approve_after_days": day}
        for day in range(11)]}, "approval_rules: 11 entries; allowed: at most 10"),
    ("5 filters", {"operating_system": "WINDOWS", "approval_rules": [{"filters": [
        {"key": key, "values": ["*"]} for key in ("PATCH_SET", "PRODUCT", "PRODUCT_FAMILY", "CLASSIFICATION",
                                                  "MSRC_SEVERITY")], "approve_after_days": 7}]},
     "approval_rules[0].filters: 5 entries; allowed: at most 4"),
    ("21 values", {"operating_system": "UBUNTU", "global_filters": [
        {"key": "PRODUCT", "values": [f"Ubuntu{n}.04" for n in range(21)]}]},
     "global_filters[0].values: 21 entries; allowed: at most 20"),
    ("51 patches", {"operating_system": "AMAZON_LINUX_2", "approved_patches": [f"pkg{n}" for n in range(51)]},
     "approved_patches: 51 entries; allowed: at most 50"),
    ("Ubuntu version", {"operating_system": "UBUNTU", "approved_patches": ["openssl=3.0.2-0ubuntu1.15"]},
     "approved_patches[0]: 'openssl=3.0.2-0ubuntu1.15' is not valid; allowed: package names only"),
    ("Windows title", {"operating_system": "WINDOWS", "rejected_patches": ["2024-01 Cumulative Update"]},
     "rejected_patches[0]: '2024-01 Cumulative Update' is not valid; allowed: KB IDs"),
    ("Windows sources", {"operating_system": "WINDOWS", "sources": [
        {"name": "repo", "products": ["WindowsServer2022"], "configuration": "[repo]\nbaseurl=https://repo.example"}]},
     "sources: ['repo'] applies to Linux only"),
    ("Linux status",
     {"operating_system": "AMAZON_LINUX_2", "available_security_updates_compliance_status": "COMPLIANT"},
     "available_security_updates_compliance_status: 'COMPLIANT' applies to Windows Server only"),
    ("Windows non-security", {"operating_system": "WINDOWS", "approved_patches_enable_non_security": True},
     "approved_patches_enable_non_security: True applies to Linux only"),
    ("name", {"name": "prod baseline!", "operating_system": "UBUNTU"}, "name: 'prod baseline!' is not valid"),
    ("aws tag", {"operating_system": "UBUNTU", "tags": {"aws:owner": "me"}}, "tags: 'aws:owner' uses the prefix"),
]


def test_invalid_inputs_fail_naming_the_field_and_write_nothing(account, run_playbook):
    steps = [step(case, dict({"name": "invalid"}, **options)) for case, options, _message in INVALID]
    results = run_steps(run_playbook, account, BASELINE_STEPS, steps)

    for case, _options, expected in INVALID:
        assert expected in failure(results, case), case
    # Validation runs before any SSM call: the account saw none, so nothing can have been written.
    assert account.calls() == Counter()
    assert account.own_baselines() == []


# ------------------------------------------------------------------------------------------------ patch groups

def test_patch_group_register_move_and_deregister(account, run_playbook):
    rule = {"PatchRules": [{"PatchFilterGroup": {"PatchFilters": [{"Key": "CLASSIFICATION", "Values": ["Security"]}]},
                            "ApproveAfterDays": 7}]}
    account.create("al2-a", "AMAZON_LINUX_2", ApprovalRules=rule)
    b_id = account.create("al2-b", "AMAZON_LINUX_2", ApprovalRules=rule)
    account.create("ubuntu-a", "UBUNTU")
    group = {"patch_group": "prod-auto"}
    steps = converge("register", dict(group, baseline="al2-a")) + [
        step("move: check mode", dict(group, baseline=b_id), check=True),
        step("move", dict(group, baseline=b_id)),
        step("move again", dict(group, baseline="al2-b")),
        step("other os", dict(group, baseline="ubuntu-a")),
        step("absent, not registered with that baseline", dict(group, baseline="al2-a", state="absent")),
        step("absent by os", dict(group, operating_system="AMAZON_LINUX_2", state="absent")),
        step("absent by os again", dict(group, operating_system="AMAZON_LINUX_2", state="absent")),
        step("unknown baseline", dict(group, baseline="no-such-baseline")),
    ]
    results = run_steps(run_playbook, account, GROUP_STEPS, steps)

    assert [changed for _name, changed in changes(results)] == [
        True, True, False, False, True, True, False, True, False, True, False, "failed"]
    assert results["move"].result["diff"] == {
        "before": {"patch_group": "prod-auto", "operating_system": "AMAZON_LINUX_2",
                   "baseline_id": results["register: apply"].result["patch_group"]["baseline_id"],
                   "baseline_name": "al2-a"},
        "after": {"patch_group": "prod-auto", "operating_system": "AMAZON_LINUX_2", "baseline_id": b_id,
                  "baseline_name": "al2-b"},
    }
    assert "now use the default patch baseline" in results["absent by os"].result["warnings"][0]
    assert failure(results, "unknown baseline").startswith("baseline: 'no-such-baseline' is not the name of a patch")
    assert account.groups() == {("prod-auto", "UBUNTU"): "ubuntu-a"}
    calls = account.calls()
    # register a, move to b (deregister a + register b), register ubuntu-a, deregister b by OS.
    assert (calls["RegisterPatchBaselineForPatchGroup"], calls["DeregisterPatchBaselineForPatchGroup"]) == (3, 2)


# ------------------------------------------------------------------------------------------------ info

def test_info_lists_custom_and_aws_baselines_groups_and_defaults(account, run_playbook):
    baseline_id = account.create("al2-info", "AMAZON_LINUX_2", Description="info test", ApprovalRules={"PatchRules": [
        {"PatchFilterGroup": {"PatchFilters": [{"Key": "CLASSIFICATION", "Values": ["Security"]}]},
         "ApproveAfterDays": 7}]})
    account.ssm.register_patch_baseline_for_patch_group(BaselineId=baseline_id, PatchGroup="nonprod")
    account.ssm.register_default_patch_baseline(BaselineId=baseline_id)
    queries = [{}, {"owner": "Self", "operating_system": "AMAZON_LINUX_2"},
               {"owner": "AWS", "operating_system": "WINDOWS", "include_rules": False}]

    result = run_playbook(BASELINE_INFO, extra_vars={"queries": queries}, env=account.env)

    assert result.rc == 0, result.summary
    every, own, windows = result.task("Patch baseline info").result["results"]
    assert {b["owner"] for b in every["patch_baselines"]} == {"Self", "AWS"}
    assert every["default_baselines"]["AMAZON_LINUX_2"] == {"baseline_id": baseline_id, "name": "al2-info"}
    assert every["default_baselines"]["UBUNTU"]["name"] == "AWS-UbuntuDefaultPatchBaseline"
    assert every["patch_groups"] == [{"patch_group": "nonprod", "operating_system": "AMAZON_LINUX_2",
                                      "baseline_id": baseline_id, "baseline_name": "al2-info"}]
    (mine,) = own["patch_baselines"]
    assert (mine["name"], mine["owner"], mine["default"]) == ("al2-info", "Self", True)
    assert mine["patch_groups"] == ["nonprod"]
    assert mine["approval_rules"] == [{"filters": [{"key": "CLASSIFICATION", "values": ["Security"]}],
                                       "compliance_level": "UNSPECIFIED", "approve_after_days": 7,
                                       "approve_until_date": None, "enable_non_security": False}]
    assert {b["name"] for b in windows["patch_baselines"]} >= {"AWS-DefaultPatchBaseline"}
    assert all("approval_rules" not in b and b["baseline_id"].startswith("arn:") for b in windows["patch_baselines"])
