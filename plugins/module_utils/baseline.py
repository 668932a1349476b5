# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetpatch.ssm project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Patch baselines and patch groups: the SSM calls and the user's (snake_case) view of them.

Used by patch_baseline, patch_baseline_info and patch_group. A baseline in the user's terms has the option names
of fleetpatch.ssm.patch_baseline, normalised so that what AWS treats as a set compares as a set (filters by key,
filter values, rules, patch lists, sources, all sorted) and so that AWS's documented defaults are filled in
(UNSPECIFIED compliance, ALLOW_AS_DEPENDENCY, non-security false): a task that leaves them unset and a baseline
that holds them compare equal, and requests never carry them.
"""

from __future__ import annotations

import json
import re
import uuid

from . import patch_rules
from .ssm import SSMErrorHandler
from .ssm import iso_dates
from .ssm import paginated_items
from .tags import tag_list
from .validation import ParameterError
from .validation import field_path

OWNER_SELF = "Self"
OWNER_AWS = "AWS"
RESOURCE_TYPE = "PatchBaseline"  # ListTagsForResource & co.

# AWS's defaults (API reference, CreatePatchBaseline and PatchRule): what a baseline holds when a field is unset.
BASELINE_DEFAULTS = {
    "approved_patches_compliance_level": "UNSPECIFIED",
    "approved_patches_enable_non_security": False,
    "rejected_patches_action": "ALLOW_AS_DEPENDENCY",
}
RULE_DEFAULTS = {"compliance_level": "UNSPECIFIED", "enable_non_security": False}

# The fields UpdatePatchBaseline sets (everything but the OS, the default flag and tags).
BASELINE_FIELDS = (
    "name", "description", "global_filters", "approval_rules", "approved_patches",
    "approved_patches_compliance_level", "approved_patches_enable_non_security", "rejected_patches",
    "rejected_patches_action", "sources", "available_security_updates_compliance_status",
)

# IDs are pb- + hex digits; AWS-owned baselines are named by their ARN (API reference, PatchBaselineIdentity).
_BASELINE_ID = re.compile(r"(arn:aws[a-z-]*:ssm:[a-z0-9-]+:\d{12}:patchbaseline/)?pb-[0-9a-fA-F]{17}")


def is_baseline_id(value: str) -> bool:
    return bool(_BASELINE_ID.fullmatch(value))


# ---------------------------------------------------------------------------------------------- user's terms

def _filters_from_api(group, operating_system: str) -> list:
    filters = [{"key": f["Key"], "values": f["Values"]} for f in (group or {}).get("PatchFilters") or ()]
    return patch_rules.normalize_filters(filters, operating_system)


def _filters_to_api(filters) -> dict:
    return {"PatchFilters": [{"Key": f["key"], "Values": list(f["values"])} for f in filters]}


def _rule_key(rule: dict) -> str:
    return json.dumps(rule, sort_keys=True)


def _rule_from_api(rule: dict, operating_system: str) -> dict:
    # Where the OS has no approval delay (Ubuntu, Debian) a value AWS may echo back carries no meaning.
    delays = patch_rules.has_approval_delay(operating_system)
    return {
        "filters": _filters_from_api(rule.get("PatchFilterGroup"), operating_system),
        "compliance_level": rule.get("ComplianceLevel") or RULE_DEFAULTS["compliance_level"],
        "approve_after_days": rule.get("ApproveAfterDays") if delays else None,
        "approve_until_date": rule.get("ApproveUntilDate") if delays else None,
        "enable_non_security": bool(rule.get("EnableNonSecurity")),
    }


def _rule_to_api(rule: dict) -> dict:
    api = {"PatchFilterGroup": _filters_to_api(rule["filters"])}
    if rule["compliance_level"] != RULE_DEFAULTS["compliance_level"]:
        api["ComplianceLevel"] = rule["compliance_level"]
    if rule["approve_after_days"] is not None:  # 0 is a delay like any other: sent when set, never when unset
        api["ApproveAfterDays"] = rule["approve_after_days"]
    if rule["approve_until_date"] is not None:
        api["ApproveUntilDate"] = rule["approve_until_date"]
    if rule["enable_non_security"]:
        api["EnableNonSecurity"] = True
    return api


def _sources(sources) -> list:
    normalised = [
        {"name": s["name"], "products": sorted(set(s["products"])), "configuration": s["configuration"]}
        for s in sources or ()
    ]
    return sorted(normalised, key=lambda source: source["name"])


def baseline_state(response: dict, identity=None) -> dict:
    """GetPatchBaseline's answer in the user's terms; `identity` (DescribePatchBaselines) adds `default`."""
    operating_system = response.get("OperatingSystem", "WINDOWS")  # AWS's default OS when none was sent
    rules = (response.get("ApprovalRules") or {}).get("PatchRules") or ()
    state = {
        "baseline_id": response["BaselineId"],
        "name": response.get("Name"),
        "operating_system": operating_system,
        "description": response.get("Description"),
        "global_filters": _filters_from_api(response.get("GlobalFilters"), operating_system),
        "approval_rules": sorted((_rule_from_api(rule, operating_system) for rule in rules), key=_rule_key),
        "approved_patches": sorted(set(response.get("ApprovedPatches") or ())),
        "approved_patches_compliance_level": response.get("ApprovedPatchesComplianceLevel")
        or BASELINE_DEFAULTS["approved_patches_compliance_level"],
        "approved_patches_enable_non_security": bool(response.get("ApprovedPatchesEnableNonSecurity")),
        "rejected_patches": sorted(set(response.get("RejectedPatches") or ())),
        "rejected_patches_action": response.get("RejectedPatchesAction")
        or BASELINE_DEFAULTS["rejected_patches_action"],
        "sources": _sources(
            {"name": s["Name"], "products": s["Products"], "configuration": s["Configuration"]}
            for s in response.get("Sources") or ()
        ),
        "available_security_updates_compliance_status": response.get("AvailableSecurityUpdatesComplianceStatus"),
        "patch_groups": sorted(response.get("PatchGroups") or ()),
        "created_date": response.get("CreatedDate"),
        "modified_date": response.get("ModifiedDate"),
    }
    if identity is not None:
        state["default"] = bool(identity.get("default"))
    return iso_dates(state, "created_date", "modified_date")


def desired_baseline(params: dict) -> dict:
    """The baseline a patch_baseline task asks for, validated against the OS's rules (patch_rules).

    Raises ParameterError naming the field; makes no AWS call.
    """
    operating_system = params["operating_system"]
    patch_rules.check_baseline_scalars(params)
    patch_rules.check_os_features(params)
    patch_rules.check_sources(params.get("sources"))
    return {
        "name": params["name"],
        "operating_system": operating_system,
        "description": params.get("description"),
        "global_filters": patch_rules.canonical_filters("global_filters", params.get("global_filters"),
                                                        operating_system),
        "approval_rules": sorted(
            (_desired_rule(index, rule, operating_system) for index, rule in
             enumerate(params.get("approval_rules") or ())),
            key=_rule_key,
        ),
        "approved_patches": patch_rules.canonical_patch_names("approved_patches", params.get("approved_patches"),
                                                              operating_system),
        "approved_patches_compliance_level": params.get("approved_patches_compliance_level")
        or BASELINE_DEFAULTS["approved_patches_compliance_level"],
        "approved_patches_enable_non_security": bool(params.get("approved_patches_enable_non_security")),
        "rejected_patches": patch_rules.canonical_patch_names("rejected_patches", params.get("rejected_patches"),
                                                              operating_system),
        "rejected_patches_action": params.get("rejected_patches_action")
        or BASELINE_DEFAULTS["rejected_patches_action"],
        "sources": _sources(params.get("sources")),
        "available_security_updates_compliance_status": params.get("available_security_updates_compliance_status"),
    }


def _desired_rule(index: int, rule: dict, operating_system: str) -> dict:
    field = field_path("approval_rules", index)
    patch_rules.check_approval_delay(field, rule, operating_system)
    return {
        "filters": patch_rules.canonical_filters(field_path(field, "filters"), rule.get("filters"), operating_system),
        "compliance_level": rule.get("compliance_level") or RULE_DEFAULTS["compliance_level"],
        "approve_after_days": rule.get("approve_after_days"),
        "approve_until_date": rule.get("approve_until_date"),
        "enable_non_security": bool(rule.get("enable_non_security")),
    }


def baseline_request(state: dict) -> dict:
    """CreatePatchBaseline/UpdatePatchBaseline members for `state`: only what is set and differs from AWS's
    defaults, so an unset field is never sent as zero or empty (Update sends it with Replace=true, which nulls
    what is not sent: the request is the complete desired baseline)."""
    request = {"Name": state["name"]}
    if state["description"] is not None:
        request["Description"] = state["description"]
    if state["global_filters"]:
        request["GlobalFilters"] = _filters_to_api(state["global_filters"])
    if state["approval_rules"]:
        request["ApprovalRules"] = {"PatchRules": [_rule_to_api(rule) for rule in state["approval_rules"]]}
    if state["approved_patches"]:
        request["ApprovedPatches"] = list(state["approved_patches"])
    if state["approved_patches_compliance_level"] != BASELINE_DEFAULTS["approved_patches_compliance_level"]:
        request["ApprovedPatchesComplianceLevel"] = state["approved_patches_compliance_level"]
    if state["approved_patches_enable_non_security"]:
        request["ApprovedPatchesEnableNonSecurity"] = True
    if state["rejected_patches"]:
        request["RejectedPatches"] = list(state["rejected_patches"])
    if state["rejected_patches_action"] != BASELINE_DEFAULTS["rejected_patches_action"]:
        request["RejectedPatchesAction"] = state["rejected_patches_action"]
    if state["sources"]:
        request["Sources"] = [
            {"Name": s["name"], "Products": list(s["products"]), "Configuration": s["configuration"]}
            for s in state["sources"]
        ]
    if state["available_security_updates_compliance_status"] is not None:
        request["AvailableSecurityUpdatesComplianceStatus"] = state["available_security_updates_compliance_status"]
    return request


def _identity(api: dict) -> dict:
    """A PatchBaselineIdentity in the user's terms."""
    return {
        "baseline_id": api["BaselineId"],
        "name": api.get("BaselineName"),
        "operating_system": api.get("OperatingSystem"),
        "description": api.get("BaselineDescription"),
        "default": bool(api.get("DefaultBaseline")),
    }


# ---------------------------------------------------------------------------------------------- reads

@SSMErrorHandler.common_error_handler("list patch baselines")
def list_baselines(client, owner=None, name_prefix=None, operating_system=None) -> list:
    """DescribePatchBaselines with its documented filters (NAME_PREFIX, OWNER, OPERATING_SYSTEM)."""
    filters = [
        {"Key": key, "Values": [value]}
        for key, value in (("NAME_PREFIX", name_prefix), ("OWNER", owner), ("OPERATING_SYSTEM", operating_system))
        if value
    ]
    identities = paginated_items(client, "describe_patch_baselines", "BaselineIdentities", Filters=filters)
    return [_identity(identity) for identity in identities]


@SSMErrorHandler.list_error_handler("get patch baseline")
def get_baseline(client, baseline_id: str):
    """GetPatchBaseline's answer, or None when the baseline does not exist."""
    return client.get_patch_baseline(BaselineId=baseline_id, aws_retry=True)


def find_baseline(client, name: str, owner=None):
    """The identity of the baseline named exactly `name`, or None. Names are not unique in AWS; the modules key
    baselines by name, so several baselines of one name is an error the user must resolve."""
    matches = [identity for identity in list_baselines(client, owner=owner, name_prefix=name)
               if identity["name"] == name]
    if len(matches) > 1:
        raise ParameterError(
            f"name: {name!r} names {len(matches)} patch baselines ({', '.join(m['baseline_id'] for m in matches)}); "
            "baselines are identified by name here, so keep one of them (or refer to the baseline by ID)"
        )
    return matches[0] if matches else None


def resolve_baseline(client, name_or_id: str, field: str = "baseline") -> dict:
    """The identity of the baseline a task names by name or ID (IDs: pb-... or an AWS-owned baseline's ARN)."""
    if is_baseline_id(name_or_id):
        response = get_baseline(client, name_or_id)
        if response is None:
            raise ParameterError(f"{field}: {name_or_id!r} is not a patch baseline ID in this account and region")
        return {"baseline_id": response["BaselineId"], "name": response.get("Name"),
                "operating_system": response.get("OperatingSystem", "WINDOWS")}
    identity = find_baseline(client, name_or_id)
    if identity is None:
        raise ParameterError(
            f"{field}: {name_or_id!r} is not the name of a patch baseline in this account and region; allowed: the "
            "name or ID of an existing baseline (create it first with fleetpatch.ssm.patch_baseline)"
        )
    return identity


def aws_default_baseline(client, operating_system: str) -> dict:
    """The AWS-owned default baseline of an OS, whose ID is the full ARN that RegisterDefaultPatchBaseline needs
    to restore it (user guide, "Predefined baselines"; API reference, RegisterDefaultPatchBaseline).

    AWS has no call that names its own default once another baseline is the default. Every OS has one AWS-owned
    baseline except Windows, where AWS-DefaultPatchBaseline is the default and the two
    AWS-WindowsPredefinedPatchBaseline-* ones are alternatives: the one whose name says Default is taken.
    """
    candidates = list_baselines(client, owner=OWNER_AWS, operating_system=operating_system)
    if len(candidates) > 1:
        candidates = [c for c in candidates if "Default" in (c["name"] or "")]
    if len(candidates) != 1:
        raise ParameterError(
            f"default: cannot tell which AWS-owned baseline is the default for {operating_system} (candidates: "
            f"{', '.join(c['name'] for c in candidates) or 'none'}); register the default baseline yourself"
        )
    return candidates[0]


@SSMErrorHandler.common_error_handler("list patch groups")
def list_patch_groups(client, name_prefix=None, operating_system=None) -> list:
    """DescribePatchGroups (filters NAME_PREFIX, OPERATING_SYSTEM) as [{patch_group, baseline_id, ...}]."""
    filters = [
        {"Key": key, "Values": [value]}
        for key, value in (("NAME_PREFIX", name_prefix), ("OPERATING_SYSTEM", operating_system))
        if value
    ]
    mappings = paginated_items(client, "describe_patch_groups", "Mappings", Filters=filters)
    groups = []
    for mapping in mappings:
        identity = _identity(mapping["BaselineIdentity"])
        groups.append({
            "patch_group": mapping["PatchGroup"],
            "baseline_id": identity["baseline_id"],
            "baseline_name": identity["name"],
            "operating_system": identity["operating_system"],
        })
    return sorted(groups, key=lambda group: (group["patch_group"], group["operating_system"] or ""))


# ---------------------------------------------------------------------------------------------- writes

@SSMErrorHandler.common_error_handler("create patch baseline")
def create_baseline(client, state: dict, tags=None) -> str:
    """CreatePatchBaseline; OperatingSystem is always sent (AWS would default it to WINDOWS)."""
    request = dict(baseline_request(state), OperatingSystem=state["operating_system"],
                   ClientToken=str(uuid.uuid4()))  # one token for all retries: a retried create creates once
    if tags:
        request["Tags"] = tag_list(tags)
    return client.create_patch_baseline(aws_retry=True, **request)["BaselineId"]


@SSMErrorHandler.common_error_handler("update patch baseline")
def update_baseline(client, baseline_id: str, state: dict) -> None:
    """UpdatePatchBaseline with Replace=true: the request is the whole desired baseline; what it omits is nulled."""
    client.update_patch_baseline(BaselineId=baseline_id, Replace=True, aws_retry=True, **baseline_request(state))


@SSMErrorHandler.deletion_error_handler("delete patch baseline")
def delete_baseline(client, baseline_id: str) -> None:
    client.delete_patch_baseline(BaselineId=baseline_id, aws_retry=True)


@SSMErrorHandler.common_error_handler("register the default patch baseline")
def register_default(client, baseline_id: str) -> None:
    client.register_default_patch_baseline(BaselineId=baseline_id, aws_retry=True)


@SSMErrorHandler.common_error_handler("register patch group")
def register_patch_group(client, baseline_id: str, patch_group: str) -> None:
    client.register_patch_baseline_for_patch_group(BaselineId=baseline_id, PatchGroup=patch_group, aws_retry=True)


@SSMErrorHandler.deletion_error_handler("deregister patch group")
def deregister_patch_group(client, baseline_id: str, patch_group: str) -> None:
    client.deregister_patch_baseline_for_patch_group(BaselineId=baseline_id, PatchGroup=patch_group,
                                                     aws_retry=True)
