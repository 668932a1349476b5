"""Patch baselines, patch groups, default baselines and patch properties, through boto3 like a client sees them."""
from __future__ import annotations

import botocore.exceptions
import pytest

from conftest import REGION, make_session
from fleetlab import baselines

# Accounts of their own for tests that share one or need a second one (the `aws` fixture numbers its accounts
# from 200000000001).
READ_ONLY_ACCOUNT = "277700000001"
OTHER_ACCOUNT = "277700000002"

AL2_SECURITY_RULES = {"PatchRules": [{
    "PatchFilterGroup": {"PatchFilters": [
        {"Key": "CLASSIFICATION", "Values": ["Security"]},
        {"Key": "SEVERITY", "Values": ["Critical", "Important"]},
    ]},
    "ApproveAfterDays": 7,
}]}
UBUNTU_SECURITY_RULES = {"PatchRules": [{
    "PatchFilterGroup": {"PatchFilters": [
        {"Key": "PRODUCT", "Values": ["Ubuntu22.04"]},
        {"Key": "PRIORITY", "Values": ["Required", "Important"]},
    ]},
}]}


def _error(call, **kwargs) -> dict:
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        call(**kwargs)
    return excinfo.value.response["Error"]


def _own_baselines(ssm) -> list[dict]:
    pages = ssm.get_paginator("describe_patch_baselines").paginate(Filters=[{"Key": "OWNER", "Values": ["Self"]}])
    return [identity for page in pages for identity in page["BaselineIdentities"]]


def _create(ssm, name="al2-prod", operating_system="AMAZON_LINUX_2", rules=AL2_SECURITY_RULES, **extra) -> str:
    return ssm.create_patch_baseline(Name=name, OperatingSystem=operating_system, ApprovalRules=rules,
                                     **extra)["BaselineId"]


def _aws_default_arn(operating_system: str) -> str:
    return baselines.aws_owned_baseline(REGION, operating_system)["BaselineId"]


@pytest.fixture(scope="module")
def readonly_ssm(lab_server):
    """One account shared by the tests that must create nothing (each asserts so where it matters)."""
    endpoint = lab_server.env["AWS_ENDPOINT_URL"]
    return make_session(endpoint, READ_ONLY_ACCOUNT).client("ssm", endpoint_url=endpoint)


# ---------------------------------------------------------------------------------------------- create / get


def test_create_and_get_return_the_full_record_with_aws_defaults(aws, lab):
    baseline_id = _create(aws.ssm, Description="security after 7 days", RejectedPatches=["kernel*"],
                          Tags=[{"Key": "team", "Value": "ops"}])

    got = aws.ssm.get_patch_baseline(BaselineId=baseline_id)

    assert baseline_id.startswith("pb-") and len(baseline_id) == 20
    assert got["Name"] == "al2-prod" and got["OperatingSystem"] == "AMAZON_LINUX_2"
    assert got["Description"] == "security after 7 days"
    rule = got["ApprovalRules"]["PatchRules"][0]
    assert rule["ApproveAfterDays"] == 7
    assert rule["ComplianceLevel"] == "UNSPECIFIED" and rule["EnableNonSecurity"] is False
    assert got["GlobalFilters"] == {"PatchFilters": []}
    assert got["RejectedPatches"] == ["kernel*"] and got["ApprovedPatches"] == []
    assert got["RejectedPatchesAction"] == "ALLOW_AS_DEPENDENCY"
    assert got["ApprovedPatchesComplianceLevel"] == "UNSPECIFIED"
    assert got["PatchGroups"] == [] and got["Sources"] == []
    assert got["CreatedDate"] == got["ModifiedDate"]
    assert lab.region(aws.account, aws.region).tags[("PatchBaseline", baseline_id)] == {"team": "ops"}


def test_operating_system_defaults_to_windows(aws):
    baseline_id = aws.ssm.create_patch_baseline(Name="no-os", ApprovedPatches=["KB4565511"])["BaselineId"]

    assert aws.ssm.get_patch_baseline(BaselineId=baseline_id)["OperatingSystem"] == "WINDOWS"


def test_names_need_not_be_unique(aws):
    first, second = _create(aws.ssm, name="same"), _create(aws.ssm, name="same")

    assert first != second
    assert sorted(b["BaselineId"] for b in _own_baselines(aws.ssm)) == sorted([first, second])


def test_client_token_makes_a_retry_idempotent(aws):
    first = _create(aws.ssm, ClientToken="token-1")
    again = _create(aws.ssm, ClientToken="token-1")
    error = _error(aws.ssm.create_patch_baseline, Name="other", OperatingSystem="AMAZON_LINUX_2",
                   ApprovalRules=AL2_SECURITY_RULES, ClientToken="token-1")

    assert again == first
    assert error["Code"] == "IdempotentParameterMismatch"
    assert [b["BaselineId"] for b in _own_baselines(aws.ssm)] == [first]


def test_get_unknown_and_malformed_ids(readonly_ssm):
    missing = _error(readonly_ssm.get_patch_baseline, BaselineId="pb-0123456789abcdef0")
    malformed = _error(readonly_ssm.get_patch_baseline, BaselineId="not-a-baseline-id-at-all")

    assert missing == {"Code": "DoesNotExistException", "Message": "Patch Baseline to be retrieved does not exist."}
    assert malformed["Code"] == "InvalidResourceId"


# ---------------------------------------------------------------------------------------------- validation

_UBUNTU_DAYS = {"PatchRules": [{**UBUNTU_SECURITY_RULES["PatchRules"][0], "ApproveAfterDays": 7}]}
_UBUNTU_UNTIL = {"PatchRules": [{**UBUNTU_SECURITY_RULES["PatchRules"][0], "ApproveUntilDate": "2026-01-31"}]}
_AL2_NO_DELAY = {"PatchRules": [{"PatchFilterGroup": AL2_SECURITY_RULES["PatchRules"][0]["PatchFilterGroup"]}]}
_AL2_BOTH = {"PatchRules": [{**AL2_SECURITY_RULES["PatchRules"][0], "ApproveUntilDate": "2026-01-31"}]}


def _al2_until(date: str) -> dict:
    return {"PatchRules": [{"PatchFilterGroup": AL2_SECURITY_RULES["PatchRules"][0]["PatchFilterGroup"],
                            "ApproveUntilDate": date}]}


def _al2_filters(*filters) -> dict:
    return {"PatchRules": [{"PatchFilterGroup": {"PatchFilters": list(filters)}, "ApproveAfterDays": 7}]}


@pytest.mark.parametrize("request_, expected", [
    pytest.param({"OperatingSystem": "UBUNTU", "ApprovalRules": _UBUNTU_DAYS}, "ApproveAfterDays is not supported",
                 id="ubuntu-approve-after-days"),
    pytest.param({"OperatingSystem": "UBUNTU", "ApprovalRules": _UBUNTU_UNTIL}, "ApproveUntilDate is not supported",
                 id="ubuntu-approve-until-date"),
    pytest.param({"OperatingSystem": "DEBIAN", "ApprovalRules": {"PatchRules": [
        {"PatchFilterGroup": {"PatchFilters": [{"Key": "PRIORITY", "Values": ["Required"]}]},
         "ApproveAfterDays": 3}]}}, "ApproveAfterDays is not supported", id="debian-approve-after-days"),
    pytest.param({"ApprovalRules": _AL2_NO_DELAY}, "exactly one of ApproveAfterDays or ApproveUntilDate",
                 id="al2-neither-delay"),
    pytest.param({"ApprovalRules": _AL2_BOTH}, "exactly one of ApproveAfterDays or ApproveUntilDate",
                 id="al2-both-delays"),
    pytest.param({"ApprovalRules": _al2_until("2026/01/31")}, "YYYY-MM-DD", id="date-format"),
    pytest.param({"ApprovalRules": _al2_until("2026-02-30")}, "YYYY-MM-DD", id="date-not-in-calendar"),
    pytest.param({"ApprovalRules": _al2_filters({"Key": "MSRC_SEVERITY", "Values": ["Critical"]})},
                 "Key MSRC_SEVERITY is not valid for operating system AMAZON_LINUX_2", id="key-of-another-os"),
    pytest.param({"ApprovalRules": _al2_filters({"Key": "CLASSIFICATION", "Values": ["SecurityUpdates"]})},
                 "valid values: *, Security, Bugfix", id="value-of-another-os"),
    pytest.param({"ApprovalRules": _al2_filters({"Key": "SEVERITY", "Values": ["None"]})},
                 "Value 'None'", id="al2023-only-severity-on-al2"),
    pytest.param({"ApprovalRules": _al2_filters({"Key": "CLASSIFICATION", "Values": ["Security"]},
                                                {"Key": "CLASSIFICATION", "Values": ["Bugfix"]})},
                 "may appear only once", id="repeated-key"),
    pytest.param({"GlobalFilters": {"PatchFilters": [{"Key": "PRIORITY", "Values": ["Required"]}]}},
                 "globalFilters.patchFilters.1.member.key", id="global-filter-key"),
    pytest.param({"OperatingSystem": "UBUNTU", "ApprovalRules": UBUNTU_SECURITY_RULES,
                  "ApprovedPatches": ["openssl=3.0.2-0ubuntu1.15"]}, "package names only", id="ubuntu-version"),
    pytest.param({"OperatingSystem": "UBUNTU", "ApprovalRules": UBUNTU_SECURITY_RULES,
                  "RejectedPatches": ["linux-image-*"]}, "package names only", id="ubuntu-wildcard"),
    pytest.param({"RejectedPatches": ["kernel-*-*.x86_64"]}, "at most one '*' wildcard", id="al2-two-wildcards"),
    pytest.param({"OperatingSystem": "WINDOWS", "ApprovalRules": None, "ApprovedPatches": ["openssl"]},
                 "Knowledge Base", id="windows-not-a-kb"),
    pytest.param({"Sources": [{"Name": "internal", "Products": ["*"], "Configuration": "[main]"}],
                  "OperatingSystem": "WINDOWS", "ApprovalRules": None}, "Linux managed nodes only",
                 id="sources-on-windows"),
    pytest.param({"AvailableSecurityUpdatesComplianceStatus": "NON_COMPLIANT"}, "Windows Server only",
                 id="available-security-updates-on-linux"),
])
def test_create_rejects_what_aws_rejects_and_creates_nothing(readonly_ssm, request_, expected):
    params = {"Name": "rejected", "OperatingSystem": "AMAZON_LINUX_2", "ApprovalRules": AL2_SECURITY_RULES,
              **request_}
    params = {key: value for key, value in params.items() if value is not None}

    error = _error(readonly_ssm.create_patch_baseline, **params)

    assert error["Code"] == "ValidationException"
    assert expected in error["Message"]
    assert _own_baselines(readonly_ssm) == []


def test_valid_requests_of_each_os_are_accepted(aws):
    _create(aws.ssm, ApprovedPatches=["ALAS-2023-123", "CVE-2024-3094", "1234567", "dbus-1:1.12.28-1.amzn2.x86_64"],
            RejectedPatches=["kernel*"], Sources=[{"Name": "internal", "Products": ["AmazonLinux2"],
                                                   "Configuration": "[internal]\nbaseurl=https://repo.example"}])
    _create(aws.ssm, operating_system="AMAZON_LINUX_2023", rules={"PatchRules": [{
        "PatchFilterGroup": {"PatchFilters": [{"Key": "SEVERITY", "Values": ["Critical", "None"]}]},
        "ApproveUntilDate": "2026-01-31"}]})
    _create(aws.ssm, operating_system="UBUNTU", rules=UBUNTU_SECURITY_RULES, ApprovedPatches=["libssl3"],
            RejectedPatches=["linux-image-generic"])
    _create(aws.ssm, operating_system="WINDOWS", rules={"PatchRules": [{
        "PatchFilterGroup": {"PatchFilters": [
            {"Key": "PATCH_SET", "Values": ["APPLICATION"]}, {"Key": "PRODUCT_FAMILY", "Values": ["Office"]},
            {"Key": "PRODUCT", "Values": ["Office 2016"]}, {"Key": "MSRC_SEVERITY", "Values": ["Critical"]}]},
        "ApproveAfterDays": 0}]}, ApprovedPatches=["KB4565511", "MS17-010"],
        AvailableSecurityUpdatesComplianceStatus="NON_COMPLIANT")

    assert len(_own_baselines(aws.ssm)) == 4


def test_wildcard_and_every_documented_value_are_accepted(aws):
    properties = baselines.PATCH_PROPERTIES["UBUNTU"]
    rules = {"PatchRules": [{"PatchFilterGroup": {"PatchFilters": [
        {"Key": "PRODUCT", "Values": ["*"]},
        {"Key": "PRIORITY", "Values": list(properties["PRIORITY"])},
        {"Key": "SECTION", "Values": list(properties["SECTION"])[:20]},
    ]}}]}

    baseline_id = _create(aws.ssm, operating_system="UBUNTU", rules=rules)

    assert aws.ssm.get_patch_baseline(BaselineId=baseline_id)["ApprovalRules"]["PatchRules"][0][
        "PatchFilterGroup"]["PatchFilters"][0] == {"Key": "PRODUCT", "Values": ["*"]}


def test_quota_of_50_baselines_per_account_and_region(aws):
    for index in range(baselines.MAX_BASELINES):
        aws.ssm.create_patch_baseline(Name=f"b{index:02d}", OperatingSystem="WINDOWS")

    error = _error(aws.ssm.create_patch_baseline, Name="one-too-many", OperatingSystem="WINDOWS")

    assert error["Code"] == "ResourceLimitExceededException"
    assert len(_own_baselines(aws.ssm)) == baselines.MAX_BASELINES
    other_region = aws.client("ssm", region="eu-central-1")
    assert other_region.create_patch_baseline(Name="elsewhere", OperatingSystem="WINDOWS")["BaselineId"]


# ---------------------------------------------------------------------------------------------- update


def test_update_changes_only_the_members_sent(aws):
    baseline_id = _create(aws.ssm, Description="before", RejectedPatches=["kernel*"])

    updated = aws.ssm.update_patch_baseline(BaselineId=baseline_id, Description="after")

    assert updated["Description"] == "after"
    assert updated["RejectedPatches"] == ["kernel*"]
    assert updated["ApprovalRules"]["PatchRules"][0]["ApproveAfterDays"] == 7
    assert updated["OperatingSystem"] == "AMAZON_LINUX_2" and updated["Name"] == "al2-prod"
    assert updated["ModifiedDate"] >= updated["CreatedDate"]
    assert aws.ssm.get_patch_baseline(BaselineId=baseline_id)["Description"] == "after"


def test_update_with_replace_resets_members_not_sent(aws):
    baseline_id = _create(aws.ssm, Description="before", RejectedPatches=["kernel*"], ApprovedPatches=["vim*"])

    updated = aws.ssm.update_patch_baseline(BaselineId=baseline_id, Name="renamed", Replace=True,
                                            ApprovalRules=AL2_SECURITY_RULES)

    assert updated["Name"] == "renamed"
    assert "Description" not in updated
    assert updated["RejectedPatches"] == [] and updated["ApprovedPatches"] == []
    assert updated["OperatingSystem"] == "AMAZON_LINUX_2"


def test_update_with_replace_requires_the_name(aws):
    baseline_id = _create(aws.ssm, Description="kept")

    error = _error(aws.ssm.update_patch_baseline, BaselineId=baseline_id, Replace=True, Description="lost")

    assert error["Code"] == "ValidationException" and "Name is required" in error["Message"]
    assert aws.ssm.get_patch_baseline(BaselineId=baseline_id)["Description"] == "kept"


def test_update_that_breaks_an_os_rule_is_rejected_and_changes_nothing(aws):
    baseline_id = _create(aws.ssm, name="ubuntu", operating_system="UBUNTU", rules=UBUNTU_SECURITY_RULES)

    error = _error(aws.ssm.update_patch_baseline, BaselineId=baseline_id, ApprovalRules=_UBUNTU_DAYS,
                   Description="never stored")

    assert error["Code"] == "ValidationException"
    got = aws.ssm.get_patch_baseline(BaselineId=baseline_id)
    assert "ApproveAfterDays" not in got["ApprovalRules"]["PatchRules"][0] and "Description" not in got


def test_update_unknown_and_aws_owned_baselines(readonly_ssm):
    missing = _error(readonly_ssm.update_patch_baseline, BaselineId="pb-0123456789abcdef0", Description="x")
    aws_owned = _error(readonly_ssm.update_patch_baseline, BaselineId=_aws_default_arn("UBUNTU"), Description="x")

    assert missing == {"Code": "DoesNotExistException", "Message": "Patch Baseline to be updated does not exist."}
    assert aws_owned["Code"] == "ValidationException" and "owned by AWS" in aws_owned["Message"]


# ---------------------------------------------------------------------------------------------- delete


def test_delete_removes_the_baseline_and_its_tags(aws, lab):
    baseline_id = _create(aws.ssm, Tags=[{"Key": "team", "Value": "ops"}])

    assert aws.ssm.delete_patch_baseline(BaselineId=baseline_id)["BaselineId"] == baseline_id

    assert _error(aws.ssm.get_patch_baseline, BaselineId=baseline_id)["Code"] == "DoesNotExistException"
    assert ("PatchBaseline", baseline_id) not in lab.region(aws.account, aws.region).tags
    # Deleting again succeeds: AWS documents no DoesNotExistException for DeletePatchBaseline.
    assert aws.ssm.delete_patch_baseline(BaselineId=baseline_id)["BaselineId"] == baseline_id


def test_delete_refuses_a_baseline_with_patch_groups_until_they_are_deregistered(aws):
    baseline_id = _create(aws.ssm)
    for group in ("prod-auto", "nonprod"):
        aws.ssm.register_patch_baseline_for_patch_group(BaselineId=baseline_id, PatchGroup=group)

    error = _error(aws.ssm.delete_patch_baseline, BaselineId=baseline_id)

    assert error["Code"] == "ResourceInUseException"
    assert error["Message"] == "PatchBaseline to be deleted is used for Patch Group: nonprod, prod-auto"
    for group in ("prod-auto", "nonprod"):
        aws.ssm.deregister_patch_baseline_for_patch_group(BaselineId=baseline_id, PatchGroup=group)
    aws.ssm.delete_patch_baseline(BaselineId=baseline_id)
    assert _own_baselines(aws.ssm) == []


def test_delete_refuses_the_registered_default_and_aws_owned_baselines(aws):
    baseline_id = _create(aws.ssm)
    aws.ssm.register_default_patch_baseline(BaselineId=baseline_id)

    in_use = _error(aws.ssm.delete_patch_baseline, BaselineId=baseline_id)
    aws_owned = _error(aws.ssm.delete_patch_baseline, BaselineId=_aws_default_arn("AMAZON_LINUX_2"))

    assert in_use["Code"] == "ResourceInUseException" and "default patch baseline" in in_use["Message"]
    assert aws_owned["Code"] == "ValidationException"
    aws.ssm.register_default_patch_baseline(BaselineId=_aws_default_arn("AMAZON_LINUX_2"))
    aws.ssm.delete_patch_baseline(BaselineId=baseline_id)
    assert _own_baselines(aws.ssm) == []


# ---------------------------------------------------------------------------------------------- describe


def _names(ssm, *filters, **kwargs) -> list[str]:
    pages = ssm.get_paginator("describe_patch_baselines").paginate(Filters=list(filters), **kwargs)
    return [i["BaselineName"] for page in pages for i in page["BaselineIdentities"]]


def test_describe_filters_by_name_prefix_owner_and_os(aws):
    _create(aws.ssm, name="prod-al2")
    _create(aws.ssm, name="dev-al2")
    aws.ssm.create_patch_baseline(Name="prod-win", OperatingSystem="WINDOWS")

    prefix = {"Key": "NAME_PREFIX", "Values": ["prod-"]}
    assert _names(aws.ssm, prefix) == ["prod-al2", "prod-win"]
    assert _names(aws.ssm, prefix, {"Key": "OPERATING_SYSTEM", "Values": ["AMAZON_LINUX_2"]}) == ["prod-al2"]
    assert _names(aws.ssm, {"Key": "OWNER", "Values": ["Self"]}) == ["dev-al2", "prod-al2", "prod-win"]
    aws_owned = _names(aws.ssm, {"Key": "OWNER", "Values": ["AWS"]})
    assert "AWS-UbuntuDefaultPatchBaseline" in aws_owned and "prod-al2" not in aws_owned
    assert set(_names(aws.ssm)) == set(aws_owned) | {"dev-al2", "prod-al2", "prod-win"}
    assert _names(aws.ssm, {"Key": "NAME_PREFIX", "Values": ["AWS-AmazonLinux2"]}) == [
        "AWS-AmazonLinux2022DefaultPatchBaseline", "AWS-AmazonLinux2023DefaultPatchBaseline",
        "AWS-AmazonLinux2DefaultPatchBaseline"]


def test_describe_marks_the_default_baseline_of_each_os(aws):
    custom = _create(aws.ssm)
    aws.ssm.register_default_patch_baseline(BaselineId=custom)

    identities = {i["BaselineName"]: i for page in aws.ssm.get_paginator("describe_patch_baselines").paginate()
                  for i in page["BaselineIdentities"]}

    assert identities["al2-prod"]["DefaultBaseline"] is True
    assert identities["AWS-AmazonLinux2DefaultPatchBaseline"]["DefaultBaseline"] is False
    assert identities["AWS-UbuntuDefaultPatchBaseline"]["DefaultBaseline"] is True
    assert identities["AWS-DefaultPatchBaseline"]["DefaultBaseline"] is True
    assert identities["AWS-WindowsPredefinedPatchBaseline-OS"]["DefaultBaseline"] is False
    assert identities["AWS-UbuntuDefaultPatchBaseline"]["BaselineDescription"].endswith("Provided by AWS.")


def test_describe_pages_with_next_token(aws):
    for index in range(5):
        aws.ssm.create_patch_baseline(Name=f"page-{index}", OperatingSystem="WINDOWS")

    first = aws.ssm.describe_patch_baselines(Filters=[{"Key": "OWNER", "Values": ["Self"]}], MaxResults=2)
    every = _names(aws.ssm, {"Key": "OWNER", "Values": ["Self"]}, PaginationConfig={"PageSize": 2})

    assert len(first["BaselineIdentities"]) == 2 and "NextToken" in first
    assert every == [f"page-{index}" for index in range(5)]


def test_describe_rejects_unknown_filters_and_tokens(readonly_ssm):
    bad_key = _error(readonly_ssm.describe_patch_baselines, Filters=[{"Key": "NAME", "Values": ["x"]}])
    bad_owner = _error(readonly_ssm.describe_patch_baselines, Filters=[{"Key": "OWNER", "Values": ["Me"]}])
    bad_token = _error(readonly_ssm.describe_patch_baselines, NextToken="garbage")

    assert bad_key["Code"] == "ValidationException" and "NAME_PREFIX" in bad_key["Message"]
    assert bad_owner["Code"] == "ValidationException"
    # DescribePatchBaselines documents no InvalidNextToken: the lab answers ValidationException (fleetlab.paging).
    assert bad_token["Code"] == "ValidationException"


# ---------------------------------------------------------------------------------------------- aws-owned


def test_aws_owned_baselines_are_reached_by_arn_only(readonly_ssm):
    arn = _aws_default_arn("AMAZON_LINUX_2")

    got = readonly_ssm.get_patch_baseline(BaselineId=arn)
    bare = _error(readonly_ssm.get_patch_baseline, BaselineId=arn.rsplit("/", 1)[1])

    assert got["Name"] == "AWS-AmazonLinux2DefaultPatchBaseline" and got["BaselineId"] == arn
    security, bugfix = got["ApprovalRules"]["PatchRules"]
    assert {"Key": "CLASSIFICATION", "Values": ["Security"]} in security["PatchFilterGroup"]["PatchFilters"]
    assert {"Key": "SEVERITY", "Values": ["Critical", "Important"]} in security["PatchFilterGroup"]["PatchFilters"]
    assert security["ApproveAfterDays"] == 7 and bugfix["ApproveAfterDays"] == 7
    assert bare["Code"] == "DoesNotExistException"


def test_aws_owned_baselines_follow_the_documented_rules():
    ubuntu = baselines.aws_owned_baseline("eu-west-1", "UBUNTU")
    windows = baselines.aws_owned_baseline("eu-west-1", "WINDOWS")

    (ubuntu_rule,) = ubuntu["ApprovalRules"]["PatchRules"]
    assert "ApproveAfterDays" not in ubuntu_rule and "ApproveUntilDate" not in ubuntu_rule
    assert {"Key": "PRIORITY", "Values": ["Required", "Important", "Standard", "Optional", "Extra"]} in \
        ubuntu_rule["PatchFilterGroup"]["PatchFilters"]
    (windows_rule,) = windows["ApprovalRules"]["PatchRules"]
    assert windows["Name"] == "AWS-DefaultPatchBaseline" and windows_rule["ApproveAfterDays"] == 7
    assert {"Key": "MSRC_SEVERITY", "Values": ["Critical", "Important"]} in \
        windows_rule["PatchFilterGroup"]["PatchFilters"]


def test_aws_owned_ids_are_stable_per_region_and_differ_between_regions():
    first = baselines.aws_owned_baseline("eu-west-1", "UBUNTU")["BaselineId"]

    assert baselines.aws_owned_baseline("eu-west-1", "UBUNTU")["BaselineId"] == first
    assert baselines.aws_owned_baseline("us-east-1", "UBUNTU")["BaselineId"] != first
    assert first.startswith("arn:aws:ssm:eu-west-1:") and ":patchbaseline/pb-" in first


def test_every_operating_system_of_the_model_has_a_predefined_default_and_filter_keys():
    for operating_system in baselines.OPERATING_SYSTEMS:
        record = baselines.aws_owned_baseline("eu-west-1", operating_system)
        assert record["OperatingSystem"] == operating_system and record["Name"].startswith("AWS-")
        assert "PRODUCT" in baselines.PATCH_PROPERTIES[operating_system]


# ---------------------------------------------------------------------------------------------- patch groups


def test_patch_group_lifecycle(aws):
    al2, ubuntu = _create(aws.ssm), _create(aws.ssm, name="ubuntu", operating_system="UBUNTU",
                                            rules=UBUNTU_SECURITY_RULES)
    aws.ssm.register_patch_baseline_for_patch_group(BaselineId=al2, PatchGroup="prod-auto")
    aws.ssm.register_patch_baseline_for_patch_group(BaselineId=ubuntu, PatchGroup="prod-auto")

    assert aws.ssm.get_patch_baseline_for_patch_group(PatchGroup="prod-auto", OperatingSystem="UBUNTU")[
        "BaselineId"] == ubuntu
    assert aws.ssm.get_patch_baseline(BaselineId=al2)["PatchGroups"] == ["prod-auto"]
    mappings = aws.ssm.describe_patch_groups()["Mappings"]
    assert sorted((m["PatchGroup"], m["BaselineIdentity"]["BaselineId"]) for m in mappings) == sorted(
        [("prod-auto", al2), ("prod-auto", ubuntu)])

    aws.ssm.deregister_patch_baseline_for_patch_group(BaselineId=ubuntu, PatchGroup="prod-auto")

    assert aws.ssm.get_patch_baseline(BaselineId=ubuntu)["PatchGroups"] == []
    assert [m["BaselineIdentity"]["BaselineId"] for m in aws.ssm.describe_patch_groups()["Mappings"]] == [al2]
    assert aws.ssm.get_patch_baseline_for_patch_group(PatchGroup="prod-auto", OperatingSystem="UBUNTU")[
        "BaselineId"] == _aws_default_arn("UBUNTU")


def test_one_baseline_per_patch_group_and_os(aws):
    first, second = _create(aws.ssm, name="first"), _create(aws.ssm, name="second")
    aws.ssm.register_patch_baseline_for_patch_group(BaselineId=first, PatchGroup="prod-auto")

    error = _error(aws.ssm.register_patch_baseline_for_patch_group, BaselineId=second, PatchGroup="prod-auto")
    aws.ssm.register_patch_baseline_for_patch_group(BaselineId=first, PatchGroup="prod-auto")  # same pair again

    assert error["Code"] == "AlreadyExistsException" and first in error["Message"]
    assert aws.ssm.get_patch_baseline(BaselineId=first)["PatchGroups"] == ["prod-auto"]
    assert aws.ssm.get_patch_baseline_for_patch_group(PatchGroup="prod-auto", OperatingSystem="AMAZON_LINUX_2")[
        "BaselineId"] == first


def test_deregister_of_a_group_the_baseline_does_not_serve_changes_nothing(aws):
    first, second = _create(aws.ssm, name="first"), _create(aws.ssm, name="second")
    aws.ssm.register_patch_baseline_for_patch_group(BaselineId=first, PatchGroup="prod-auto")

    error = _error(aws.ssm.deregister_patch_baseline_for_patch_group, BaselineId=second, PatchGroup="prod-auto")

    assert error["Code"] == "DoesNotExistException"
    assert aws.ssm.get_patch_baseline(BaselineId=first)["PatchGroups"] == ["prod-auto"]


def test_register_with_unknown_baseline(readonly_ssm):
    error = _error(readonly_ssm.register_patch_baseline_for_patch_group, BaselineId="pb-0123456789abcdef0",
                   PatchGroup="prod-auto")

    assert error["Code"] == "DoesNotExistException"
    assert readonly_ssm.describe_patch_groups()["Mappings"] == []


def test_quota_of_25_patch_groups_per_baseline(aws):
    baseline_id = _create(aws.ssm)
    for index in range(baselines.MAX_PATCH_GROUPS_PER_BASELINE):
        aws.ssm.register_patch_baseline_for_patch_group(BaselineId=baseline_id, PatchGroup=f"group-{index:02d}")

    error = _error(aws.ssm.register_patch_baseline_for_patch_group, BaselineId=baseline_id, PatchGroup="group-25")

    assert error["Code"] == "ResourceLimitExceededException"
    assert len(aws.ssm.get_patch_baseline(BaselineId=baseline_id)["PatchGroups"]) == 25


def test_describe_patch_groups_filters_and_pages(aws):
    al2, ubuntu = _create(aws.ssm), _create(aws.ssm, name="ubuntu", operating_system="UBUNTU",
                                            rules=UBUNTU_SECURITY_RULES)
    for group in ("prod-auto", "prod-sensitive", "nonprod"):
        aws.ssm.register_patch_baseline_for_patch_group(BaselineId=al2, PatchGroup=group)
    aws.ssm.register_patch_baseline_for_patch_group(BaselineId=ubuntu, PatchGroup="prod-auto")

    def groups(*filters, **kwargs):
        pages = aws.ssm.get_paginator("describe_patch_groups").paginate(Filters=list(filters), **kwargs)
        return [(m["PatchGroup"], m["BaselineIdentity"]["OperatingSystem"]) for p in pages for m in p["Mappings"]]

    assert groups({"Key": "NAME_PREFIX", "Values": ["prod-"]}) == [
        ("prod-auto", "AMAZON_LINUX_2"), ("prod-auto", "UBUNTU"), ("prod-sensitive", "AMAZON_LINUX_2")]
    assert groups({"Key": "OPERATING_SYSTEM", "Values": ["UBUNTU"]}) == [("prod-auto", "UBUNTU")]
    assert len(groups(PaginationConfig={"PageSize": 1})) == 4


# ---------------------------------------------------------------------------------------------- default baseline


def test_default_baseline_register_and_reset_with_the_full_arn(aws):
    aws_default = _aws_default_arn("AMAZON_LINUX_2")
    custom = _create(aws.ssm)

    assert aws.ssm.get_default_patch_baseline()["BaselineId"] == _aws_default_arn("WINDOWS")
    assert aws.ssm.get_default_patch_baseline(OperatingSystem="AMAZON_LINUX_2")["BaselineId"] == aws_default

    aws.ssm.register_default_patch_baseline(BaselineId=custom)
    assert aws.ssm.get_default_patch_baseline(OperatingSystem="AMAZON_LINUX_2")["BaselineId"] == custom

    bare = _error(aws.ssm.register_default_patch_baseline, BaselineId=aws_default.rsplit("/", 1)[1])
    assert bare["Code"] == "DoesNotExistException"
    assert aws.ssm.get_default_patch_baseline(OperatingSystem="AMAZON_LINUX_2")["BaselineId"] == custom

    assert aws.ssm.register_default_patch_baseline(BaselineId=aws_default)["BaselineId"] == aws_default
    reset = aws.ssm.get_default_patch_baseline(OperatingSystem="AMAZON_LINUX_2")
    assert (reset["BaselineId"], reset["OperatingSystem"]) == (aws_default, "AMAZON_LINUX_2")


def test_default_baselines_are_per_account(aws):
    custom = _create(aws.ssm)
    aws.ssm.register_default_patch_baseline(BaselineId=custom)
    other = make_session(aws.endpoint, OTHER_ACCOUNT).client("ssm", endpoint_url=aws.endpoint)

    assert other.get_default_patch_baseline(OperatingSystem="AMAZON_LINUX_2")["BaselineId"] == _aws_default_arn(
        "AMAZON_LINUX_2")


# ---------------------------------------------------------------------------------------------- patch properties


def _properties(ssm, **kwargs) -> list[dict]:
    pages = ssm.get_paginator("describe_patch_properties").paginate(**kwargs)
    return [entry for page in pages for entry in page["Properties"]]


def test_describe_patch_properties_lists_the_values_filters_accept(readonly_ssm):
    classifications = _properties(readonly_ssm, OperatingSystem="AMAZON_LINUX_2", Property="CLASSIFICATION")
    al2023 = _properties(readonly_ssm, OperatingSystem="AMAZON_LINUX_2023", Property="SEVERITY")
    priorities = _properties(readonly_ssm, OperatingSystem="UBUNTU", Property="PRIORITY")

    assert [p["Name"] for p in classifications] == [
        "Security", "Bugfix", "Enhancement", "Recommended", "Newpackage"]
    assert {"Name": "None"} in al2023
    assert [p["Name"] for p in priorities] == ["Required", "Important", "Standard", "Optional", "Extra"]


def test_describe_patch_properties_for_windows_patch_sets(readonly_ssm):
    os_products = _properties(readonly_ssm, OperatingSystem="WINDOWS", Property="PRODUCT")
    applications = _properties(readonly_ssm, OperatingSystem="WINDOWS", Property="PRODUCT", PatchSet="APPLICATION")

    assert {"Name": "WindowsServer2022", "ProductFamily": "Windows"} in os_products
    assert {"Name": "Office 2016", "ProductFamily": "Office"} in applications
    assert not {p["Name"] for p in os_products} & {p["Name"] for p in applications}


def test_describe_patch_properties_pages_and_rejects_properties_of_other_systems(readonly_ssm):
    first = readonly_ssm.describe_patch_properties(OperatingSystem="WINDOWS", Property="CLASSIFICATION",
                                                   MaxResults=3)
    every = _properties(readonly_ssm, OperatingSystem="WINDOWS", Property="CLASSIFICATION",
                        PaginationConfig={"PageSize": 3})
    error = _error(readonly_ssm.describe_patch_properties, OperatingSystem="UBUNTU", Property="SEVERITY")

    assert len(first["Properties"]) == 3 and "NextToken" in first
    assert [p["Name"] for p in every] == list(baselines.PATCH_PROPERTIES["WINDOWS"]["CLASSIFICATION"])
    assert error["Code"] == "ValidationException" and "PRIORITY" in error["Message"]


# ---------------------------------------------------------------------------------------------- patch group state


def test_describe_patch_group_state_counts_nodes_of_the_group(aws, lab):
    group_nodes = aws.launch("ubuntu-22.04", 3, {"PatchGroup": "prod-auto"})
    (outsider,) = aws.launch("ubuntu-22.04", 1, {"PatchGroup": "nonprod"})
    with lab.lock:
        group_nodes[0].patch_state = {"InstalledCount": 10, "MissingCount": 2, "SecurityNonCompliantCount": 2}
        group_nodes[1].patch_state = {"InstalledCount": 12, "InstalledPendingRebootCount": 1, "FailedCount": 0}
        outsider.patch_state = {"InstalledCount": 5, "MissingCount": 9}

    state = aws.ssm.describe_patch_group_state(PatchGroup="prod-auto")

    assert state["Instances"] == 3
    assert state["InstancesWithInstalledPatches"] == 2
    assert state["InstancesWithMissingPatches"] == 1
    assert state["InstancesWithInstalledPendingRebootPatches"] == 1
    assert state["InstancesWithSecurityNonCompliantPatches"] == 1
    assert state["InstancesWithFailedPatches"] == 0
    assert aws.ssm.describe_patch_group_state(PatchGroup="unknown")["Instances"] == 0


# ---------------------------------------------------------------------------------------------- effective baseline


def test_effective_baseline_follows_patch_group_then_defaults(aws, lab):
    (tagged,) = aws.launch("ubuntu-22.04", 1, {"PatchGroup": "prod-auto"})
    (untagged,) = aws.launch("ubuntu-22.04", 1)
    state = lab.region(aws.account, aws.region)

    record, group = baselines.effective_baseline(state, tagged)
    assert (record["Name"], group) == ("AWS-UbuntuDefaultPatchBaseline", "prod-auto")

    al2_only = _create(aws.ssm)
    aws.ssm.register_patch_baseline_for_patch_group(BaselineId=al2_only, PatchGroup="prod-auto")
    record, group = baselines.effective_baseline(state, tagged)
    assert (record["Name"], group) == ("AWS-UbuntuDefaultPatchBaseline", "prod-auto")  # no Ubuntu baseline there

    ubuntu = _create(aws.ssm, name="ubuntu-prod", operating_system="UBUNTU", rules=UBUNTU_SECURITY_RULES)
    aws.ssm.register_patch_baseline_for_patch_group(BaselineId=ubuntu, PatchGroup="prod-auto")
    custom_default = _create(aws.ssm, name="ubuntu-default", operating_system="UBUNTU", rules=UBUNTU_SECURITY_RULES)
    aws.ssm.register_default_patch_baseline(BaselineId=custom_default)

    record, group = baselines.effective_baseline(state, tagged)
    assert (record["BaselineId"], group) == (ubuntu, "prod-auto")
    assert record["ApprovalRules"] == aws.ssm.get_patch_baseline(BaselineId=ubuntu)["ApprovalRules"]
    assert baselines.effective_baseline(state, untagged)[0]["BaselineId"] == custom_default
    assert baselines.effective_baseline(state, untagged)[1] is None


def test_effective_baseline_reads_the_patch_group_tag_with_a_space(aws, lab):
    (node,) = aws.launch("amzn-2023", 1, {"Patch Group": "jump-log"})
    baseline_id = _create(aws.ssm, name="al2023", operating_system="AMAZON_LINUX_2023")
    aws.ssm.register_patch_baseline_for_patch_group(BaselineId=baseline_id, PatchGroup="jump-log")

    record, group = baselines.effective_baseline(lab.region(aws.account, aws.region), node)

    assert (record["BaselineId"], group) == (baseline_id, "jump-log")


def test_effective_baseline_returns_a_copy(aws, lab):
    (node,) = aws.launch("ubuntu-22.04", 1, {"PatchGroup": "prod-auto"})
    ubuntu = _create(aws.ssm, name="ubuntu-prod", operating_system="UBUNTU", rules=UBUNTU_SECURITY_RULES)
    aws.ssm.register_patch_baseline_for_patch_group(BaselineId=ubuntu, PatchGroup="prod-auto")

    record, _ = baselines.effective_baseline(lab.region(aws.account, aws.region), node)
    record["ApprovedPatches"].append("changed-by-caller")

    assert aws.ssm.get_patch_baseline(BaselineId=ubuntu)["ApprovedPatches"] == []
