# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleetpatch.ssm.patch_baseline_info on a stubbed SSM client."""
from __future__ import annotations

from ansible_collections.fleetpatch.ssm.plugins.modules import patch_baseline_info
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import aws_baseline_arn
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import baseline_id
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import get_response
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import identity
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import run_module
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import stubbed

OWN = identity("ubuntu-prod", "UBUNTU", 1, default=True)
AWS_UBUNTU = identity("AWS-UbuntuDefaultPatchBaseline", "UBUNTU", 2, arn=True)


def list_owner(stubber, owner, identities, name_prefix=None, operating_system=None):
    expected = [{"Key": key, "Values": [value]} for key, value in (
        ("NAME_PREFIX", name_prefix), ("OWNER", owner), ("OPERATING_SYSTEM", operating_system)) if value]
    stubber.add_response("describe_patch_baselines", {"BaselineIdentities": identities},
                         {"Filters": expected, "MaxResults": 50})


def test_every_baseline_with_rules_groups_and_the_default_per_os():
    with stubbed() as (client, stubber):
        list_owner(stubber, "Self", [OWN])
        list_owner(stubber, "AWS", [AWS_UBUNTU])
        stubber.add_response("get_patch_baseline", get_response("ubuntu-prod", "UBUNTU", 1, PatchGroups=["web"]),
                             {"BaselineId": baseline_id(1)})
        stubber.add_response("get_patch_baseline", dict(get_response("AWS-UbuntuDefaultPatchBaseline", "UBUNTU"),
                                                        BaselineId=aws_baseline_arn(2)),
                             {"BaselineId": aws_baseline_arn(2)})
        stubber.add_response("describe_patch_groups", {"Mappings": [{"PatchGroup": "web", "BaselineIdentity": OWN}]},
                             {"Filters": [], "MaxResults": 50})
        result = run_module(patch_baseline_info.main, {}, client)

    assert result["changed"] is False
    assert [(b["owner"], b["name"], b["default"]) for b in result["patch_baselines"]] == [
        ("AWS", "AWS-UbuntuDefaultPatchBaseline", False), ("Self", "ubuntu-prod", True)]
    assert result["patch_baselines"][1]["patch_groups"] == ["web"]
    assert result["default_baselines"] == {"UBUNTU": {"baseline_id": baseline_id(1), "name": "ubuntu-prod"}}
    assert result["patch_groups"] == [{"patch_group": "web", "baseline_id": baseline_id(1),
                                       "baseline_name": "ubuntu-prod", "operating_system": "UBUNTU"}]


def test_identities_only_and_filtered_by_exact_name():
    with stubbed() as (client, stubber):
        list_owner(stubber, "Self", [OWN, identity("ubuntu-prod-2", "UBUNTU", 3)],
                   name_prefix="ubuntu-prod", operating_system="UBUNTU")
        stubber.add_response("describe_patch_groups", {"Mappings": []},
                             {"Filters": [{"Key": "OPERATING_SYSTEM", "Values": ["UBUNTU"]}], "MaxResults": 50})
        result = run_module(patch_baseline_info.main, {"name": "ubuntu-prod", "owner": "Self",
                                                       "operating_system": "UBUNTU", "include_rules": False}, client)

    assert result["patch_baselines"] == [{"baseline_id": baseline_id(1), "name": "ubuntu-prod", "owner": "Self",
                                          "operating_system": "UBUNTU", "description": None, "default": True}]
