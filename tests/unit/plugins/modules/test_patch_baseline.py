# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleetpatch.ssm.patch_baseline end to end on a stubbed SSM client: the exact calls of each kind of run.

Stubber fails a test on any call that is not queued, so each test also proves that nothing else was called.
"""
from __future__ import annotations

import pytest
from botocore.stub import ANY

from ansible_collections.fleetpatch.ssm.plugins.modules import patch_baseline
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import aws_baseline_arn
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import baseline_id
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import expect_find
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import get_response
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import identity
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import run_module
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import stubbed

NAME = "al2-prod-auto"
OS = "AMAZON_LINUX_2"
ID = baseline_id(7)
RULE = {"filters": [{"key": "CLASSIFICATION", "values": ["Security"]}], "approve_after_days": 7}
API_RULE = {"PatchFilterGroup": {"PatchFilters": [{"Key": "CLASSIFICATION", "Values": ["Security"]}]},
            "ComplianceLevel": "UNSPECIFIED", "ApproveAfterDays": 7, "EnableNonSecurity": False}
# What the module sends for RULE: the defaults AWS echoes (UNSPECIFIED, false) are not sent.
SENT_RULES = {"PatchRules": [{"PatchFilterGroup": API_RULE["PatchFilterGroup"], "ApproveAfterDays": 7}]}
ARGS = {"name": NAME, "operating_system": OS, "approval_rules": [RULE]}


def stored(**members):
    """GetPatchBaseline of the baseline ARGS describe, with `members` changed."""
    return get_response(NAME, OS, 7, **dict({"ApprovalRules": {"PatchRules": [API_RULE]}}, **members))


def updated():
    """UpdatePatchBaseline's answer (GetPatchBaseline's without PatchGroups)."""
    return {key: value for key, value in stored().items() if key != "PatchGroups"}


def expect_read(stubber, response=None, default=False, tags=None):
    """The read of a run: find by name, GetPatchBaseline, ListTagsForResource when the task sets tags."""
    if response is None:
        expect_find(stubber, NAME, [])
        return
    expect_find(stubber, NAME, [identity(NAME, response["OperatingSystem"], 7, default=default)])
    stubber.add_response("get_patch_baseline", response, {"BaselineId": ID})
    if tags is not None:
        stubber.add_response("list_tags_for_resource", {"TagList": [{"Key": k, "Value": v} for k, v in tags.items()]},
                             {"ResourceType": "PatchBaseline", "ResourceId": ID})


def run(args, check_mode=False, calls=()):
    """Run the module after queueing `calls` (functions of the stubber)."""
    with stubbed() as (client, stubber):
        for queue in calls:
            queue(stubber)
        return run_module(patch_baseline.main, args, client, check_mode=check_mode)


def test_create_sends_the_baseline_then_reads_it_back():
    def create(stubber):
        stubber.add_response("create_patch_baseline", {"BaselineId": ID}, {
            "Name": NAME, "OperatingSystem": OS, "ClientToken": ANY, "Tags": [{"Key": "Owner", "Value": "ops"}],
            "ApprovalRules": SENT_RULES,
        })
        stubber.add_response("register_default_patch_baseline", {"BaselineId": ID}, {"BaselineId": ID})

    result = run(dict(ARGS, tags={"Owner": "ops"}, default=True), calls=[
        expect_read, create, lambda s: expect_read(s, stored(), default=True, tags={"Owner": "ops"})])

    assert result["changed"] is True
    assert result["patch_baseline"]["baseline_id"] == ID
    assert result["patch_baseline"]["default"] is True
    assert result["diff"]["before"] == {}


def test_check_mode_create_only_reads():
    result = run(ARGS, check_mode=True, calls=[expect_read])
    assert result["changed"] is True
    assert result["patch_baseline"]["baseline_id"] is None
    assert result["patch_baseline"]["approval_rules"][0]["approve_after_days"] == 7


def test_a_run_that_changes_nothing_reads_once():
    result = run(ARGS, calls=[lambda s: expect_read(s, stored())])
    assert result == {"changed": False, "patch_baseline": result["patch_baseline"]}
    assert result["patch_baseline"]["name"] == NAME


@pytest.mark.parametrize("change, request_members", [
    ({"description": "Security after 7 days"}, {"Description": "Security after 7 days"}),
    ({"global_filters": [{"key": "PRODUCT", "values": ["AmazonLinux2"]}]},
     {"GlobalFilters": {"PatchFilters": [{"Key": "PRODUCT", "Values": ["AmazonLinux2"]}]}}),
    ({"approval_rules": [dict(RULE, approve_after_days=3, compliance_level="HIGH")]},
     {"ApprovalRules": {"PatchRules": [{"PatchFilterGroup": API_RULE["PatchFilterGroup"], "ApproveAfterDays": 3,
                                        "ComplianceLevel": "HIGH"}]}}),
    ({"approved_patches": ["curl"], "approved_patches_compliance_level": "LOW",
      "approved_patches_enable_non_security": True},
     {"ApprovedPatches": ["curl"], "ApprovedPatchesComplianceLevel": "LOW", "ApprovedPatchesEnableNonSecurity": True}),
    ({"rejected_patches": ["kernel*"], "rejected_patches_action": "BLOCK"},
     {"RejectedPatches": ["kernel*"], "RejectedPatchesAction": "BLOCK"}),
    ({"sources": [{"name": "mirror", "products": ["AmazonLinux2"], "configuration": "[mirror]"}]},
     {"Sources": [{"Name": "mirror", "Products": ["AmazonLinux2"], "Configuration": "[mirror]"}]}),
])
def test_each_field_group_is_updated_with_the_whole_desired_baseline(change, request_members):
    update = {"BaselineId": ID, "Replace": True, "Name": NAME,
              "ApprovalRules": SENT_RULES}
    update.update(request_members)
    result = run(dict(ARGS, **change), calls=[
        lambda s: expect_read(s, stored()),
        lambda s: s.add_response("update_patch_baseline", updated(), update),
        lambda s: expect_read(s, stored()),
    ])
    assert result["changed"] is True
    assert set(change) <= set(result["diff"]["after"])


def test_fields_no_longer_set_are_cleared_by_the_replacing_update():
    current = stored(Description="old", ApprovedPatches=["curl"], RejectedPatchesAction="BLOCK")
    result = run(ARGS, calls=[
        lambda s: expect_read(s, current),
        lambda s: s.add_response("update_patch_baseline", updated(), {
            "BaselineId": ID, "Replace": True, "Name": NAME,
            "ApprovalRules": SENT_RULES}),
        lambda s: expect_read(s, stored()),
    ])
    assert result["diff"]["before"]["description"] == "old"
    assert result["diff"]["after"]["description"] is None


def test_a_tag_change_touches_tags_only():
    result = run(dict(ARGS, tags={"Owner": "platform"}), calls=[
        lambda s: expect_read(s, stored(), tags={"Owner": "ops", "Team": "db"}),
        lambda s: s.add_response("remove_tags_from_resource", {}, {
            "ResourceType": "PatchBaseline", "ResourceId": ID, "TagKeys": ["Team"]}),
        lambda s: s.add_response("add_tags_to_resource", {}, {
            "ResourceType": "PatchBaseline", "ResourceId": ID, "Tags": [{"Key": "Owner", "Value": "platform"}]}),
        lambda s: expect_read(s, stored(), tags={"Owner": "platform"}),
    ])
    assert result["diff"] == {"before": dict(result["diff"]["before"], tags={"Owner": "ops", "Team": "db"}),
                              "after": dict(result["diff"]["before"], tags={"Owner": "platform"})}


def test_tags_without_purge_are_added():
    result = run(dict(ARGS, tags={"Owner": "ops"}, purge_tags=False), calls=[
        lambda s: expect_read(s, stored(), tags={"Team": "db"}),
        lambda s: s.add_response("add_tags_to_resource", {}, {
            "ResourceType": "PatchBaseline", "ResourceId": ID, "Tags": [{"Key": "Owner", "Value": "ops"}]}),
        lambda s: expect_read(s, stored(), tags={"Owner": "ops", "Team": "db"}),
    ])
    assert result["patch_baseline"]["tags"] == {"Owner": "ops", "Team": "db"}


def test_becoming_the_default():
    result = run(dict(ARGS, default=True), calls=[
        lambda s: expect_read(s, stored()),
        lambda s: s.add_response("register_default_patch_baseline", {"BaselineId": ID}, {"BaselineId": ID}),
        lambda s: expect_read(s, stored(), default=True),
    ])
    assert result["changed"] is True and result["patch_baseline"]["default"] is True


def test_no_longer_the_default_gives_it_back_to_the_aws_baseline_by_arn():
    def restore(stubber):
        stubber.add_response("describe_patch_baselines", {"BaselineIdentities": [
            identity("AWS-AmazonLinux2DefaultPatchBaseline", OS, 1, arn=True)]}, {
            "Filters": [{"Key": "OWNER", "Values": ["AWS"]}, {"Key": "OPERATING_SYSTEM", "Values": [OS]}],
            "MaxResults": 50})
        stubber.add_response("register_default_patch_baseline", {"BaselineId": aws_baseline_arn(1)},
                             {"BaselineId": aws_baseline_arn(1)})

    result = run(ARGS, calls=[lambda s: expect_read(s, stored(), default=True), restore,
                              lambda s: expect_read(s, stored())])
    assert (result["diff"]["before"]["default"], result["diff"]["after"]["default"]) == (True, False)


def test_when_the_aws_default_cannot_be_told_nothing_is_written():
    result = run(dict(ARGS, description="changed"), calls=[
        lambda s: expect_read(s, stored(), default=True),
        lambda s: s.add_response("describe_patch_baselines", {"BaselineIdentities": []}),
    ])
    assert result["failed"] is True
    assert result["msg"].startswith("default: cannot tell which AWS-owned baseline is the default for AMAZON_LINUX_2")


def test_another_baselines_default_is_left_alone():
    result = run(dict(ARGS, default=False), calls=[lambda s: expect_read(s, stored(), default=False)])
    assert result["changed"] is False


def test_changing_the_operating_system_is_refused_without_replace():
    result = run(dict(ARGS, operating_system="AMAZON_LINUX_2023"), calls=[lambda s: expect_read(s, stored())])
    assert result["failed"] is True
    assert result["msg"].startswith(
        f"operating_system: 'AMAZON_LINUX_2023' differs from 'AMAZON_LINUX_2', the operating system of the existing "
        f"baseline '{NAME}' ({ID}), and AWS cannot change it; allowed: the existing operating system, or "
        "replace_on_os_change=true")


def test_replace_on_os_change_deletes_and_creates():
    new_id = baseline_id(8)

    def replace(stubber):
        stubber.add_response("delete_patch_baseline", {"BaselineId": ID}, {"BaselineId": ID})
        stubber.add_response("create_patch_baseline", {"BaselineId": new_id}, {
            "Name": NAME, "OperatingSystem": "AMAZON_LINUX_2023", "ClientToken": ANY,
            "ApprovalRules": SENT_RULES,
        })

    result = run(dict(ARGS, operating_system="AMAZON_LINUX_2023", replace_on_os_change=True), calls=[
        lambda s: expect_read(s, stored()), replace,
        lambda s: expect_read(s, dict(stored(OperatingSystem="AMAZON_LINUX_2023"), BaselineId=new_id)),
    ])
    assert result["changed"] is True
    assert result["patch_baseline"]["baseline_id"] == new_id


@pytest.mark.parametrize("check_mode", [True, False])
def test_deleting_a_baseline_used_by_patch_groups_is_refused_naming_them(check_mode):
    result = run({"name": NAME, "state": "absent"}, check_mode=check_mode, calls=[
        lambda s: expect_read(s, stored(PatchGroups=["web", "db"]))])
    assert result["failed"] is True
    assert result["msg"] == (
        f"state: the baseline '{NAME}' ({ID}) cannot be deleted: patch groups db, web use it; deregister them "
        "first (fleetpatch.ssm.patch_group state=absent) or set deregister_patch_groups=true")


def test_delete_deregisters_groups_and_restores_the_default_when_asked():
    def delete(stubber):
        stubber.add_response("describe_patch_baselines", {"BaselineIdentities": [
            identity("AWS-AmazonLinux2DefaultPatchBaseline", OS, 1, arn=True)]})
        stubber.add_response("register_default_patch_baseline", {"BaselineId": aws_baseline_arn(1)},
                             {"BaselineId": aws_baseline_arn(1)})
        for group in ("db", "web"):
            stubber.add_response("deregister_patch_baseline_for_patch_group", {"BaselineId": ID, "PatchGroup": group},
                                 {"BaselineId": ID, "PatchGroup": group})
        stubber.add_response("delete_patch_baseline", {"BaselineId": ID}, {"BaselineId": ID})

    result = run({"name": NAME, "state": "absent", "deregister_patch_groups": True}, calls=[
        lambda s: expect_read(s, stored(PatchGroups=["web", "db"]), default=True), delete])
    assert result["changed"] is True and result["patch_baseline"] is None
    assert result["diff"]["before"]["baseline_id"] == ID and result["diff"]["after"] == {}


def test_deleting_what_is_not_there_changes_nothing():
    assert run({"name": NAME, "state": "absent"}, calls=[expect_read]) == {
        "changed": False, "patch_baseline": None}


def test_invalid_input_fails_before_any_call():
    result = run(dict(ARGS, approval_rules=[dict(RULE, approve_after_days=400)]))
    assert result["failed"] is True
    assert result["msg"] == "approval_rules[0].approve_after_days: 400 is out of range; allowed: 0 to 360"


def test_operating_system_is_required_to_create():
    result = run({"name": NAME})
    assert result["failed"] is True and "operating_system" in result["msg"]
