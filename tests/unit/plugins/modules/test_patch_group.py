# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleetpatch.ssm.patch_group on a stubbed SSM client: keyed on (group, OS of the baseline), one change per move."""
from __future__ import annotations

import pytest

from ansible_collections.fleetpatch.ssm.plugins.modules import patch_group
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import baseline_id
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import expect_find
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import get_response
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import identity
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import run_module
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import stubbed

GROUP = "prod-auto"
OS = "AMAZON_LINUX_2"
A, B = baseline_id(1), baseline_id(2)


def expect_baseline(stubber, name, n):
    expect_find(stubber, name, [identity(name, OS, n)], owner=None)


def expect_mapping(stubber, registered=None):
    """DescribePatchGroups for the group and OS; `registered` = (baseline name, n) or None."""
    mappings = [{"PatchGroup": GROUP, "BaselineIdentity": identity(registered[0], OS, registered[1])}] \
        if registered else []
    stubber.add_response("describe_patch_groups", {"Mappings": mappings}, {
        "Filters": [{"Key": "NAME_PREFIX", "Values": [GROUP]}, {"Key": "OPERATING_SYSTEM", "Values": [OS]}],
        "MaxResults": 50})


def register(stubber, baseline):
    stubber.add_response("register_patch_baseline_for_patch_group", {"BaselineId": baseline, "PatchGroup": GROUP},
                         {"BaselineId": baseline, "PatchGroup": GROUP})


def deregister(stubber, baseline):
    stubber.add_response("deregister_patch_baseline_for_patch_group", {"BaselineId": baseline, "PatchGroup": GROUP},
                         {"BaselineId": baseline, "PatchGroup": GROUP})


def run(args, calls, check_mode=False):
    with stubbed() as (client, stubber):
        for queue in calls:
            queue(stubber)
        return run_module(patch_group.main, dict({"patch_group": GROUP}, **args), client, check_mode=check_mode)


def test_register():
    result = run({"baseline": "al2-a"}, [lambda s: expect_baseline(s, "al2-a", 1), expect_mapping,
                                         lambda s: register(s, A), lambda s: expect_baseline(s, "al2-a", 1),
                                         lambda s: expect_mapping(s, ("al2-a", 1))])
    assert result["changed"] is True
    assert result["patch_group"] == {"patch_group": GROUP, "operating_system": OS, "baseline_id": A,
                                     "baseline_name": "al2-a"}


def test_check_mode_registers_nothing():
    result = run({"baseline": "al2-a"}, [lambda s: expect_baseline(s, "al2-a", 1), expect_mapping], check_mode=True)
    assert result["changed"] is True and result["patch_group"]["baseline_id"] == A


def test_registered_already_is_no_change():
    result = run({"baseline": "al2-a"}, [lambda s: expect_baseline(s, "al2-a", 1),
                                         lambda s: expect_mapping(s, ("al2-a", 1))])
    assert result["changed"] is False


def test_moving_to_another_baseline_of_the_os_is_one_change():
    result = run({"baseline": B}, [
        lambda s: s.add_response("get_patch_baseline", get_response("al2-b", OS, 2), {"BaselineId": B}),
        lambda s: expect_mapping(s, ("al2-a", 1)),
        lambda s: deregister(s, A), lambda s: register(s, B),
        lambda s: s.add_response("get_patch_baseline", get_response("al2-b", OS, 2), {"BaselineId": B}),
        lambda s: expect_mapping(s, ("al2-b", 2)),
    ])
    assert result["changed"] is True
    assert (result["diff"]["before"]["baseline_name"], result["diff"]["after"]["baseline_name"]) == ("al2-a", "al2-b")


def test_absent_with_a_baseline_leaves_another_baselines_registration_alone():
    result = run({"baseline": "al2-b", "state": "absent"}, [lambda s: expect_baseline(s, "al2-b", 2),
                                                            lambda s: expect_mapping(s, ("al2-a", 1))])
    assert result == {"changed": False, "patch_group": None}


def test_absent_by_operating_system_deregisters_and_warns_about_the_default_baseline():
    result = run({"operating_system": OS, "state": "absent"}, [lambda s: expect_mapping(s, ("al2-a", 1)),
                                                               lambda s: deregister(s, A)])
    assert result["changed"] is True and result["patch_group"] is None
    assert result["warnings"] == [
        f"Nodes of patch group '{GROUP}' running {OS} now use the default patch baseline of that operating system."]


def test_an_unknown_baseline_fails_naming_the_field():
    result = run({"baseline": "no-such"}, [lambda s: expect_find(s, "no-such", [], owner=None)])
    assert result["failed"] is True
    assert result["msg"].startswith("baseline: 'no-such' is not the name of a patch baseline in this account")


@pytest.mark.parametrize("name, message", [
    ("prod;auto", "patch_group: 'prod;auto' contains ';'"),
    ("g" * 257, "patch_group: '" + "g" * 257 + "' has 257 characters; allowed: 1 to 256"),
])
def test_invalid_group_names_fail_before_any_call(name, message):
    result = run({"patch_group": name, "baseline": "al2-a"}, [])
    assert result["failed"] is True and result["msg"].startswith(message)


def test_present_needs_a_baseline():
    result = run({"operating_system": OS}, [])
    assert result["failed"] is True and "baseline" in result["msg"]
