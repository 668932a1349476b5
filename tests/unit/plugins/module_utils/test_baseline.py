# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Baselines in the user's terms: normalisation both ways, requests without unset fields, and the SSM calls
(every one checked against botocore's model by Stubber)."""
from __future__ import annotations

import pytest
from botocore.stub import ANY

from ansible_collections.fleetpatch.ssm.plugins.module_utils import baseline as api
from ansible_collections.fleetpatch.ssm.plugins.module_utils.validation import ParameterError
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import aws_baseline_arn
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import baseline_params as params
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import baseline_id
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import expect_find
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import get_response
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import identity
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import record_params
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import stubbed

SECURITY_RULE = {"filters": [{"key": "CLASSIFICATION", "values": ["Security"]},
                             {"key": "SEVERITY", "values": ["Critical", "Important"]}], "approve_after_days": 7}
BUGFIX_RULE = {"filters": [{"key": "CLASSIFICATION", "values": ["Bugfix"]}], "approve_after_days": 14}


def desired(**options):
    return api.desired_baseline(params(**options))


# ------------------------------------------------------------------------------------------------ normalisation

def test_order_case_and_duplicates_that_aws_ignores_do_not_change_the_desired_state():
    written_once = desired(operating_system="AMAZON_LINUX_2", approval_rules=[SECURITY_RULE, BUGFIX_RULE],
                           global_filters=[{"key": "PRODUCT", "values": ["AmazonLinux2", "AmazonLinux2.0"]}],
                           rejected_patches=["kernel*", "docker"])
    written_again = desired(
        operating_system="AMAZON_LINUX_2",
        approval_rules=[
            BUGFIX_RULE,
            {"filters": [{"key": "severity", "values": ["important", "Critical", "Critical"]},
                         {"key": "Classification", "values": ["SECURITY"]}], "approve_after_days": 7},
        ],
        global_filters=[{"key": "product", "values": ["AmazonLinux2.0", "AmazonLinux2"]}],
        rejected_patches=["docker", "kernel*", "docker"],
    )
    assert written_again == written_once


def test_unset_options_are_aws_defaults_and_nothing_else():
    state = desired(operating_system="UBUNTU")
    assert state == {
        "name": "baseline-1", "operating_system": "UBUNTU", "description": None, "global_filters": [],
        "approval_rules": [], "approved_patches": [], "approved_patches_compliance_level": "UNSPECIFIED",
        "approved_patches_enable_non_security": False, "rejected_patches": [],
        "rejected_patches_action": "ALLOW_AS_DEPENDENCY", "sources": [],
        "available_security_updates_compliance_status": None,
    }


def test_a_baseline_read_from_aws_compares_equal_to_the_task_that_made_it():
    task = desired(operating_system="AMAZON_LINUX_2", approval_rules=[SECURITY_RULE, BUGFIX_RULE],
                   approved_patches=["openssl"], sources=[{"name": "mirror", "products": ["AmazonLinux2", "*"],
                                                           "configuration": "[mirror]"}])
    response = get_response(
        "baseline-1", "AMAZON_LINUX_2",
        ApprovalRules={"PatchRules": [
            # AWS echoes the rule defaults and may list rules, filters and values in another order.
            {"PatchFilterGroup": {"PatchFilters": [{"Key": "CLASSIFICATION", "Values": ["Bugfix"]}]},
             "ComplianceLevel": "UNSPECIFIED", "ApproveAfterDays": 14, "EnableNonSecurity": False},
            {"PatchFilterGroup": {"PatchFilters": [{"Key": "SEVERITY", "Values": ["Important", "Critical"]},
                                                   {"Key": "CLASSIFICATION", "Values": ["Security"]}]},
             "ApproveAfterDays": 7},
        ]},
        ApprovedPatches=["openssl"],
        Sources=[{"Name": "mirror", "Products": ["*", "AmazonLinux2"], "Configuration": "[mirror]"}],
    )
    current = api.baseline_state(response, {"default": False})
    assert {key: current[key] for key in task} == task
    assert current["default"] is False
    assert current["created_date"] == "2026-01-05T12:00:00+00:00"


def test_an_approval_delay_echoed_for_ubuntu_carries_no_meaning():
    response = get_response("baseline-1", "UBUNTU", ApprovalRules={"PatchRules": [
        {"PatchFilterGroup": {"PatchFilters": [{"Key": "PRIORITY", "Values": ["Required"]}]}, "ApproveAfterDays": 0}]})
    (rule,) = api.baseline_state(response)["approval_rules"]
    assert rule["approve_after_days"] is None


# ------------------------------------------------------------------------------------------------ requests

def test_a_request_carries_only_what_is_set_and_differs_from_aws_defaults():
    request = api.baseline_request(desired(operating_system="UBUNTU", approved_patches_compliance_level="UNSPECIFIED"))
    assert request == {"Name": "baseline-1"}


def test_zero_days_is_a_delay_and_is_sent():
    request = api.baseline_request(desired(operating_system="WINDOWS", approval_rules=[
        {"filters": [{"key": "CLASSIFICATION", "values": ["SecurityUpdates"]}], "approve_after_days": 0}]))
    (rule,) = request["ApprovalRules"]["PatchRules"]
    assert rule == {"PatchFilterGroup": {"PatchFilters": [{"Key": "CLASSIFICATION", "Values": ["SecurityUpdates"]}]},
                    "ApproveAfterDays": 0}


def test_a_full_request():
    state = desired(
        operating_system="AMAZON_LINUX_2023", description="prod", approval_rules=[
            {"filters": [{"key": "CLASSIFICATION", "values": ["Security"]}], "approve_until_date": "2026-12-31",
             "compliance_level": "HIGH", "enable_non_security": True}],
        approved_patches=["curl"], approved_patches_compliance_level="LOW",
        approved_patches_enable_non_security=True, rejected_patches=["kernel*"], rejected_patches_action="BLOCK",
        sources=[{"name": "mirror", "products": ["AmazonLinux2023"], "configuration": "[mirror]"}],
    )
    assert api.baseline_request(state) == {
        "Name": "baseline-1",
        "Description": "prod",
        "ApprovalRules": {"PatchRules": [{
            "PatchFilterGroup": {"PatchFilters": [{"Key": "CLASSIFICATION", "Values": ["Security"]}]},
            "ComplianceLevel": "HIGH", "ApproveUntilDate": "2026-12-31", "EnableNonSecurity": True}]},
        "ApprovedPatches": ["curl"],
        "ApprovedPatchesComplianceLevel": "LOW",
        "ApprovedPatchesEnableNonSecurity": True,
        "RejectedPatches": ["kernel*"],
        "RejectedPatchesAction": "BLOCK",
        "Sources": [{"Name": "mirror", "Products": ["AmazonLinux2023"], "Configuration": "[mirror]"}],
    }


def test_create_always_sends_the_operating_system_and_one_client_token_for_its_retries():
    state = desired(operating_system="UBUNTU")
    expected = {"Name": "baseline-1", "OperatingSystem": "UBUNTU", "ClientToken": ANY,
                "Tags": [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}]}
    with stubbed() as (client, stubber):
        sent = record_params(client, "CreatePatchBaseline")
        stubber.add_client_error("create_patch_baseline", "ThrottlingException", expected_params=expected)
        stubber.add_response("create_patch_baseline", {"BaselineId": baseline_id(1)}, expected)
        assert api.create_baseline(client, state, {"b": "2", "a": "1"}) == baseline_id(1)
    assert len(sent) == 2 and sent[0]["ClientToken"] == sent[1]["ClientToken"]


def test_update_replaces_the_whole_baseline():
    state = desired(operating_system="UBUNTU", description="new")
    with stubbed() as (client, stubber):
        stubber.add_response("update_patch_baseline", {"BaselineId": baseline_id(1)},
                             {"BaselineId": baseline_id(1), "Replace": True, "Name": "baseline-1",
                              "Description": "new"})
        api.update_baseline(client, baseline_id(1), state)


# ------------------------------------------------------------------------------------------------ lookups

def test_list_baselines_follows_every_page_with_the_documented_filters():
    filters = [{"Key": "OWNER", "Values": ["AWS"]}, {"Key": "OPERATING_SYSTEM", "Values": ["WINDOWS"]}]
    with stubbed() as (client, stubber):
        stubber.add_response("describe_patch_baselines",
                             {"BaselineIdentities": [identity("AWS-DefaultPatchBaseline", "WINDOWS", 1, arn=True)],
                              "NextToken": "page-2"},
                             {"Filters": filters, "MaxResults": 50})
        stubber.add_response("describe_patch_baselines",
                             {"BaselineIdentities": [identity("AWS-WindowsPredefinedPatchBaseline-OS", "WINDOWS", 2,
                                                              arn=True)]},
                             {"Filters": filters, "MaxResults": 50, "NextToken": "page-2"})
        names = [b["name"] for b in api.list_baselines(client, owner="AWS", operating_system="WINDOWS")]
    assert names == ["AWS-DefaultPatchBaseline", "AWS-WindowsPredefinedPatchBaseline-OS"]


def test_find_takes_the_exact_name_only():
    with stubbed() as (client, stubber):
        expect_find(stubber, "web", [identity("web-old", "UBUNTU", 1), identity("web", "UBUNTU", 2)])
        assert api.find_baseline(client, "web", owner="Self")["baseline_id"] == baseline_id(2)


def test_find_refuses_a_name_that_several_baselines_have():
    with stubbed() as (client, stubber):
        expect_find(stubber, "web", [identity("web", "UBUNTU", 1), identity("web", "UBUNTU", 2)])
        with pytest.raises(ParameterError, match=r"^name: 'web' names 2 patch baselines \(pb-0+1, pb-0+2\)"):
            api.find_baseline(client, "web", owner="Self")


def test_resolve_a_baseline_by_id_reads_it_and_by_name_lists():
    with stubbed() as (client, stubber):
        stubber.add_response("get_patch_baseline", get_response("web", "UBUNTU", 3), {"BaselineId": baseline_id(3)})
        assert api.resolve_baseline(client, baseline_id(3)) == {
            "baseline_id": baseline_id(3), "name": "web", "operating_system": "UBUNTU"}
        expect_find(stubber, "web", [identity("web", "UBUNTU", 3)], owner=None)
        assert api.resolve_baseline(client, "web")["baseline_id"] == baseline_id(3)


def test_resolve_an_unknown_baseline_names_the_field():
    with stubbed() as (client, stubber):
        stubber.add_client_error("get_patch_baseline", "DoesNotExistException")
        with pytest.raises(ParameterError, match=r"^baseline: 'pb-0+9' is not a patch baseline ID"):
            api.resolve_baseline(client, baseline_id(9))
        expect_find(stubber, "nope", [], owner=None)
        with pytest.raises(ParameterError, match=r"^baseline: 'nope' is not the name of a patch baseline"):
            api.resolve_baseline(client, "nope")


@pytest.mark.parametrize("names, expected", [
    (["AWS-UbuntuDefaultPatchBaseline"], "AWS-UbuntuDefaultPatchBaseline"),
    (["AWS-DefaultPatchBaseline", "AWS-WindowsPredefinedPatchBaseline-OS",
      "AWS-WindowsPredefinedPatchBaseline-OS-Applications"], "AWS-DefaultPatchBaseline"),
])
def test_the_aws_owned_default_is_found_with_its_arn(names, expected):
    with stubbed() as (client, stubber):
        stubber.add_response("describe_patch_baselines", {"BaselineIdentities": [
            identity(name, "WINDOWS", n, arn=True) for n, name in enumerate(names, start=1)]})
        found = api.aws_default_baseline(client, "WINDOWS")
    assert found["name"] == expected
    assert found["baseline_id"] == aws_baseline_arn(names.index(expected) + 1)


def test_patch_groups_in_the_users_terms():
    with stubbed() as (client, stubber):
        stubber.add_response("describe_patch_groups", {"Mappings": [
            {"PatchGroup": "web", "BaselineIdentity": identity("ubuntu", "UBUNTU", 1)},
            {"PatchGroup": "db", "BaselineIdentity": identity("al2", "AMAZON_LINUX_2", 2)},
        ]}, {"Filters": [{"Key": "OPERATING_SYSTEM", "Values": ["UBUNTU"]}], "MaxResults": 50})
        groups = api.list_patch_groups(client, operating_system="UBUNTU")
    assert groups == [
        {"patch_group": "db", "baseline_id": baseline_id(2), "baseline_name": "al2",
         "operating_system": "AMAZON_LINUX_2"},
        {"patch_group": "web", "baseline_id": baseline_id(1), "baseline_name": "ubuntu", "operating_system": "UBUNTU"},
    ]
