# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetpatch.ssm project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Host names, default groups and connection variables of merged machines (from their `fleet_*` facts).

Names: the first preference that has a value (`hostnames`), else the machine id. When several machines want one
name, the one that appeared first (EC2 launch, hybrid registration, Azure creation; then the machine id) keeps it
and each other one becomes `<name>_<machine id>`: the same inventory gives the same names every time, and a new
machine never renames an existing one.

Groups: one per patch group (its name, made a valid group name, optionally prefixed), under the parent
`patch_groups` with `no_patch_group` for the rest; os_<family>, os_<family>_<version>, os_<platform> under
`operating_systems`; cloud_<cloud> under `clouds`; account_<AWS account id> and subscription_<Azure subscription
id> under `accounts`; region_<AWS region> and location_<Azure location> under `regions`; ssm_managed or
ssm_unmanaged and ssm_<ping status> under `ssm`.
"""

from __future__ import annotations

import re
from typing import Callable
from typing import Optional

from .fleet_facts import short_name

GROUP_CATEGORIES = ("patch_group", "os", "cloud", "account", "region", "ssm")
_PARENTS = {"patch_group": "patch_groups", "os": "operating_systems", "cloud": "clouds", "account": "accounts",
            "region": "regions", "ssm": "ssm"}
_INVALID_GROUP_CHARACTERS = re.compile(r"[^A-Za-z0-9_]")


def _ec2(facts: dict, key: str) -> Optional[str]:
    return (facts.get("fleet_ec2") or {}).get(key)


def _computer_name(facts: dict) -> Optional[str]:
    return (facts.get("fleet_ssm") or {}).get("computer_name") or (facts.get("fleet_azure") or {}).get("computer_name")


# Preference -> value. "tag:<key>" is handled apart (any tag).
HOSTNAME_PREFERENCES: dict[str, Callable[[dict], Optional[str]]] = {
    "name": lambda facts: facts.get("fleet_name"),
    "instance_id": lambda facts: _ec2(facts, "instance_id") or (facts.get("fleet_ssm") or {}).get("instance_id"),
    "vm_id": lambda facts: (facts.get("fleet_azure") or {}).get("vm_id"),
    "azure_name": lambda facts: (facts.get("fleet_azure") or {}).get("name"),
    "computer_name": _computer_name,
    "short_computer_name": lambda facts: short_name(_computer_name(facts)),
    "private_ip_address": lambda facts: facts.get("fleet_private_ip_address"),
    "private_dns_name": lambda facts: _ec2(facts, "private_dns_name"),
    "public_ip_address": lambda facts: _ec2(facts, "public_ip_address"),
    "public_dns_name": lambda facts: _ec2(facts, "public_dns_name"),
}


def check_preferences(option: str, preferences: list) -> list:
    """`preferences` if each is known (or tag:<key>); ValueError naming the bad one otherwise."""
    for preference in preferences:
        if not (isinstance(preference, str) and (preference in HOSTNAME_PREFERENCES
                                                 or (preference.startswith("tag:") and len(preference) > 4))):
            raise ValueError(f"{option}: {preference!r} is not one of {', '.join(HOSTNAME_PREFERENCES)} or "
                             "tag:<key>")
    return preferences


def preferred_value(facts: dict, preferences: list) -> Optional[str]:
    for preference in preferences:
        if preference.startswith("tag:"):
            value = facts["fleet_tags"].get(preference[4:])
        else:
            value = HOSTNAME_PREFERENCES[preference](facts)
        if value:
            return str(value)
    return None


def assign_hostnames(all_facts: list[dict], preferences: list) -> list[tuple[str, dict]]:
    """(host name, facts) for every machine, names unique (see the module docstring), sorted by name."""
    wanted = sorted(((preferred_value(facts, preferences) or facts["fleet_id"], facts["fleet_created"] or "~",
                      facts["fleet_id"], facts) for facts in all_facts), key=lambda entry: entry[:3])
    named: dict[str, dict] = {}
    for name, _created, machine_id, facts in wanted:
        host = name if name not in named else f"{name}_{machine_id}"
        while host in named:  # only if a machine is literally called "<name>_<other machine id>"
            host += "_"
        named[host] = facts
    return sorted(named.items())


# ---------------------------------------------------------------------------------------------------------------
# Groups
# ---------------------------------------------------------------------------------------------------------------

def group_name(*parts: str, lower: bool = True) -> str:
    text = "_".join(parts)
    return _INVALID_GROUP_CHARACTERS.sub("_", text.lower() if lower else text)


def _category_groups(category: str, facts: dict, patch_group_prefix: str) -> list[str]:
    if category == "patch_group":
        value = facts["fleet_patch_group"]
        return [patch_group_prefix + group_name(value, lower=False) if value else "no_patch_group"]
    if category == "os":
        family, version, platform = facts["fleet_os_family"], facts["fleet_os_version"], facts["fleet_platform"]
        groups = [group_name("os", family)] if family else []
        if family and version:
            groups.append(group_name("os", family, version))
        platform_group = group_name("os", platform) if platform else None
        return groups + ([platform_group] if platform_group and platform_group not in groups else [])
    if category == "cloud":
        return [group_name("cloud", facts["fleet_cloud"])]
    if category == "account":
        return ([group_name("account", facts["fleet_account_id"])] if facts["fleet_account_id"] else []) + \
            ([group_name("subscription", facts["fleet_subscription_id"])] if facts["fleet_subscription_id"] else [])
    if category == "region":
        return ([group_name("region", facts["fleet_region"])] if facts["fleet_region"] else []) + \
            ([group_name("location", facts["fleet_location"])] if facts["fleet_location"] else [])
    status = facts["fleet_ping_status"]
    return [("ssm_managed" if facts["fleet_managed"] else "ssm_unmanaged")] + \
        ([group_name("ssm", status)] if status else [])


def default_groups(facts: dict, categories: list, patch_group_prefix: str = "") -> list[tuple[str, str]]:
    """(group, parent group) pairs of the machine for the enabled `categories` (GROUP_CATEGORIES)."""
    return [(group, _PARENTS[category]) for category in categories
            for group in _category_groups(category, facts, patch_group_prefix)]


# ---------------------------------------------------------------------------------------------------------------
# Connection variables
# ---------------------------------------------------------------------------------------------------------------

def connection_vars(facts: dict, host_preferences: list, ssm_connection: bool, ssm_bucket: Optional[str]) -> dict:
    """ansible_host from `host_preferences`; with `ssm_connection`, amazon.aws.aws_ssm for managed nodes (node id,
    region, bucket), so that roles reach them without SSH. Credentials per account belong in group_vars of the
    account_<id> groups (ansible_aws_ssm_profile), never in an inventory that may be cached."""
    variables = {}
    host = preferred_value(facts, host_preferences)
    if host:
        variables["ansible_host"] = host
    ssm = facts.get("fleet_ssm")
    if ssm_connection and ssm:
        variables.update(ansible_connection="amazon.aws.aws_ssm", ansible_aws_ssm_instance_id=ssm["instance_id"],
                         ansible_aws_ssm_region=ssm["region"])
        if ssm_bucket:
            variables["ansible_aws_ssm_bucket_name"] = ssm_bucket
    return variables
