# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The per-OS table: what each operating system accepts in a baseline, checked before anything is written.

Parameters go through the module's real argument spec (ArgumentSpecValidator), so the tests see what the module
sees, sub-option defaults included.
"""
from __future__ import annotations

import pytest

from ansible_collections.fleetpatch.ssm.plugins.module_utils import patch_rules
from ansible_collections.fleetpatch.ssm.plugins.module_utils.baseline import desired_baseline
from ansible_collections.fleetpatch.ssm.plugins.module_utils.validation import ParameterError
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import baseline_params as params


def rule(*filters, **delay) -> dict:
    return {"filters": [{"key": key, "values": values} for key, values in filters], **delay}


def fails(message: str, **options) -> None:
    with pytest.raises(ParameterError) as error:
        desired_baseline(params(**options))
    assert message in str(error.value)


def test_every_operating_system_of_the_model_has_rules():
    import botocore.session

    enum = botocore.session.get_session().get_service_model("ssm").shape_for("OperatingSystem").enum
    assert sorted(enum) == list(patch_rules.OPERATING_SYSTEMS)


@pytest.mark.parametrize("operating_system, key, allowed", [
    ("AMAZON_LINUX_2", "PRIORITY", "PRODUCT, CLASSIFICATION, SEVERITY"),
    ("AMAZON_LINUX_2023", "MSRC_SEVERITY", "PRODUCT, CLASSIFICATION, SEVERITY"),
    ("UBUNTU", "CLASSIFICATION", "PRODUCT, PRIORITY, SECTION"),
    ("WINDOWS", "SEVERITY", "PATCH_SET, PRODUCT, PRODUCT_FAMILY, CLASSIFICATION, MSRC_SEVERITY"),
    ("MACOS", "SEVERITY", "PRODUCT, CLASSIFICATION"),
])
def test_filter_keys_are_those_of_the_operating_system(operating_system, key, allowed):
    fails(f"global_filters[0].key: {key!r} is not a filter key for ", operating_system=operating_system,
          global_filters=[{"key": key, "values": ["*"]}])
    fails(f"allowed: {allowed}", operating_system=operating_system, global_filters=[{"key": key, "values": ["*"]}])


@pytest.mark.parametrize("operating_system, key, value", [
    ("AMAZON_LINUX_2", "CLASSIFICATION", "Critical"),
    ("AMAZON_LINUX_2", "SEVERITY", "None"),  # Amazon Linux 2023 only
    ("UBUNTU", "PRIORITY", "High"),
    ("UBUNTU", "SECTION", "games"),
    ("WINDOWS", "MSRC_SEVERITY", "Medium"),
    ("WINDOWS", "CLASSIFICATION", "Security"),
    ("WINDOWS", "PATCH_SET", "DRIVERS"),
])
def test_documented_values_are_enforced(operating_system, key, value):
    fails(f"global_filters[0].values[0]: {value!r} is not valid; allowed: ", operating_system=operating_system,
          global_filters=[{"key": key, "values": [value]}])


def test_amazon_linux_2023_severity_none_is_valid():
    desired = desired_baseline(params(operating_system="AMAZON_LINUX_2023",
                                      global_filters=[{"key": "SEVERITY", "values": ["none", "Low"]}]))
    assert desired["global_filters"] == [{"key": "SEVERITY", "values": ["Low", "None"]}]


def test_the_consoles_all_is_refused_with_the_wildcard_as_the_answer():
    fails("global_filters[0].values[0]: 'All' is the console's label, not an API value; allowed: '*'",
          operating_system="UBUNTU", global_filters=[{"key": "PRODUCT", "values": ["All"]}])


def test_a_key_given_twice_in_a_group_is_ambiguous():
    fails("approval_rules[0].filters.key: 'CLASSIFICATION' is given more than once",
          operating_system="AMAZON_LINUX_2",
          approval_rules=[rule(("CLASSIFICATION", ["Security"]), ("classification", ["Bugfix"]), approve_after_days=0)])


@pytest.mark.parametrize("operating_system", ["UBUNTU", "DEBIAN", "RASPBIAN"])
@pytest.mark.parametrize("delay", [{"approve_after_days": 0}, {"approve_until_date": "2026-12-31"}])
def test_apt_systems_take_no_approval_delay(operating_system, delay):
    (field,) = delay
    fails(f"approval_rules[0].{field}: {delay[field]!r} is not supported for ", operating_system=operating_system,
          approval_rules=[rule(("PRODUCT", ["*"]), **delay)])


@pytest.mark.parametrize("delay, given", [({}, "neither"), (
    {"approve_after_days": 7, "approve_until_date": "2026-12-31"}, "approve_after_days, approve_until_date")])
def test_other_systems_need_exactly_one_delay_per_rule(delay, given):
    fails(f"approval_rules[0]: Amazon Linux 2 needs exactly one of approve_after_days (0 to 360) or "
          f"approve_until_date (YYYY-MM-DD) per rule; given: {given}",
          operating_system="AMAZON_LINUX_2", approval_rules=[rule(("CLASSIFICATION", ["Security"]), **delay)])


@pytest.mark.parametrize("delay, message", [
    ({"approve_after_days": 361}, "approval_rules[0].approve_after_days: 361 is out of range; allowed: 0 to 360"),
    ({"approve_after_days": -1}, "approval_rules[0].approve_after_days: -1 is out of range"),
    ({"approve_until_date": "2026-13-01"}, "approval_rules[0].approve_until_date: '2026-13-01' is not a date"),
])
def test_delay_ranges(delay, message):
    fails(message, operating_system="WINDOWS", approval_rules=[rule(("CLASSIFICATION", ["Updates"]), **delay)])


@pytest.mark.parametrize("options, message", [
    ({"global_filters": [{"key": k, "values": ["*"]} for k in ("PATCH_SET", "PRODUCT", "PRODUCT_FAMILY",
                                                               "CLASSIFICATION", "MSRC_SEVERITY")]},
     "global_filters: 5 entries; allowed: at most 4"),
    ({"approval_rules": [rule(("PRODUCT", ["*"]), approve_after_days=d) for d in range(11)]},
     "approval_rules: 11 entries; allowed: at most 10"),
    ({"global_filters": [{"key": "PRODUCT", "values": [f"P{n}" for n in range(21)]}]},
     "global_filters[0].values: 21 entries; allowed: at most 20"),
    ({"global_filters": [{"key": "PRODUCT", "values": ["x" * 65]}]},
     "global_filters[0].values[0]: '" + "x" * 65 + "' has 65 characters; allowed: 1 to 64"),
    ({"approved_patches": [f"KB{n}" for n in range(51)]}, "approved_patches: 51 entries; allowed: at most 50"),
    ({"rejected_patches": [f"KB{n}" for n in range(51)]}, "rejected_patches: 51 entries; allowed: at most 50"),
    ({"description": "d" * 1025}, "description: '" + "d" * 1025 + "' has 1025 characters"),
    ({"name": "ab"}, "name: 'ab' is not valid; allowed: 3 to 128 letters"),
])
def test_counts_lengths_and_names(options, message):
    fails(message, operating_system="WINDOWS", **options)


def test_duplicate_values_count_once():
    desired = desired_baseline(params(operating_system="WINDOWS",
                                      approved_patches=["KB1"] * 50 + [f"KB{n}" for n in range(2, 51)]))
    assert len(desired["approved_patches"]) == 50


@pytest.mark.parametrize("operating_system, patch, allowed", [
    ("UBUNTU", "openssl=3.0.2-0ubuntu1", "package names only"),
    ("UBUNTU", "openssl:amd64", "package names only"),
    ("UBUNTU", "linux-image*", "without version, architecture or wildcard"),
    ("DEBIAN", "libc6_2.36_amd64", "package names only"),
    ("WINDOWS", "2024-01 Cumulative Update", "KB IDs (KB2032276) or MSRC bulletin IDs (MS10-012)"),
    ("WINDOWS", "KB-123", "KB IDs"),
    ("AMAZON_LINUX_2", "kernel*-*", "one '*' at most"),
    ("AMAZON_LINUX_2023", "open ssl", "package names"),
])
def test_patch_name_formats_per_operating_system(operating_system, patch, allowed):
    fails(f"rejected_patches[0]: {patch!r}", operating_system=operating_system, rejected_patches=[patch])
    fails(allowed, operating_system=operating_system, rejected_patches=[patch])


@pytest.mark.parametrize("operating_system, patches, expected", [
    ("WINDOWS", ["kb5034439", "ms17-010", "KB5034439"], ["KB5034439", "MS17-010"]),
    ("UBUNTU", ["openssl", "libssl3", "python3.12"], ["libssl3", "openssl", "python3.12"]),
    ("AMAZON_LINUX_2023", ["kernel*", "dbus-1:1.12.28-1.amzn2023.0.1.x86_64", "CVE-2024-1234", "ALAS-2023-123"],
     ["ALAS-2023-123", "CVE-2024-1234", "dbus-1:1.12.28-1.amzn2023.0.1.x86_64", "kernel*"]),
])
def test_valid_patch_names_become_a_sorted_set(operating_system, patches, expected):
    desired = desired_baseline(params(operating_system=operating_system, approved_patches=patches))
    assert desired["approved_patches"] == expected


@pytest.mark.parametrize("options, message", [
    ({"sources": [{"name": "repo", "products": ["WindowsServer2022"], "configuration": "[repo]"}]},
     "sources: ['repo'] applies to Linux only, not Windows Server"),
    ({"approved_patches_enable_non_security": True},
     "approved_patches_enable_non_security: True applies to Linux only"),
    ({"approval_rules": [rule(("PRODUCT", ["*"]), approve_after_days=7, enable_non_security=True)]},
     "approval_rules[0].enable_non_security: True applies to Linux only"),
])
def test_linux_only_features_on_windows(options, message):
    fails(message, operating_system="WINDOWS", **options)


def test_security_updates_status_is_windows_only():
    fails("available_security_updates_compliance_status: 'NON_COMPLIANT' applies to Windows Server only, not Ubuntu",
          operating_system="UBUNTU", available_security_updates_compliance_status="NON_COMPLIANT")


@pytest.mark.parametrize("source, message", [
    ({"name": "ab", "products": ["AmazonLinux2023"], "configuration": "[x]"}, "sources[0].name: 'ab' is not valid"),
    ({"name": "repo", "products": [], "configuration": "[x]"}, "sources[0].products: 0 entries; allowed: at least 1"),
    ({"name": "repo", "products": ["AmazonLinux2023"], "configuration": "x" * 1025},
     "sources[0].configuration: 1025 characters; allowed: 1 to 1024"),
])
def test_sources(source, message):
    fails(message, operating_system="AMAZON_LINUX_2023", sources=[source])


def test_a_source_configuration_is_never_echoed_in_a_message():
    with pytest.raises(ParameterError) as error:
        desired_baseline(params(operating_system="AMAZON_LINUX_2023", sources=[
            {"name": "repo", "products": ["AmazonLinux2023"], "configuration": "password=" + "s" * 1020}]))
    assert "password" not in str(error.value)
