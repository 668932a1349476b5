"""GetResources of the Resource Groups Tagging API: what moto answers, plus the SSM resources the lab keeps.

moto serves GetResources from the resources its own services tag (EC2 and others), not from the lab's SSM tag store
(`RegionState.tags`: hybrid nodes, patch baselines, maintenance windows). `install()` replaces moto's handler with
one that serves both, the way AWS documents the operation (botocore's resourcegroupstaggingapi model):
* "GetResources does not return untagged resources"; it supports all resource types. A lab-kept SSM resource's ARN
  is arn:<partition>:ssm:<region>:<account>:<type>/<id>, type `managed-instance` (hybrid mi- nodes),
  `patchbaseline` or `maintenancewindow`. ResourceTypeFilters name `service[:resourceType]` as the ARN spells
  them (`ssm`, `ssm:managed-instance`), at most 100.
* TagFilters: a resource must match every filter; a filter's Values are alternatives; a filter without Values
  matches any value of its key.
* ResourcesPerPage 1-100, TagsPerPage 100-500 (documented, not in the model); a resource is never split from its
  tags across pages and one without tags counts as one tag.
* ResourceARNList (1-100 ARNs) cannot be combined with ResourceTypeFilters, TagFilters or the paging parameters;
  an ARN that names no resource is left out, not an error. ExcludeCompliantResources needs
  IncludeComplianceDetails.
* Errors: InvalidParameterException (a missing, malformed or out-of-range parameter; also the lab's answer for the
  model's constraints, as AWS documents no other code for them), ThrottledException (the lab's throttle,
  fleetlab.throttle, under this service's error code), and AccessDeniedException for the accounts named by the
  control route `POST /tagging/deny` {"accounts": [...]}: a caller whose policies do not allow tag:GetResources.
Lab choices: pages hold 50 resources unless asked otherwise (AWS documents no default); every resource is served
in ARN order with the lab's paging (fleetlab.paging: a token names the last ARN served) and tokens do not expire
(AWS's last 15 minutes); the lab has no tag policies, so it returns no ComplianceDetails. Calls are counted with
the SSM ones (`GET /calls`).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

from moto.core.resource_tagging import make_tag_matcher, match_resource_type
from moto.core.responses import ActionResult
from moto.resourcegroupstaggingapi.exceptions import ResourceGroupsTaggingAPIError
from moto.resourcegroupstaggingapi.responses import ResourceGroupsTaggingAPIResponse
from moto.utilities.utils import get_partition

from . import api, model, paging
from .control import accounts_route
from .errors import ThrottlingException
from .state import LAB, RegionState
from .throttle import THROTTLE

SERVICE = "resourcegroupstaggingapi"
OPERATION = "GetResources"
# Lab-kept tag types (nodes.LAB_TAGGED_TYPES) -> the resource type of their ARN.
ARN_TYPES = {"ManagedInstance": "managed-instance", "PatchBaseline": "patchbaseline",
             "MaintenanceWindow": "maintenancewindow"}
RESOURCES_PER_PAGE = (1, 100)
TAGS_PER_PAGE = (100, 500)
MAX_TYPE_FILTERS = 100
DEFAULT_PAGE_SIZE = 50
_PAGING_PARAMETERS = ("ResourcesPerPage", "TagsPerPage", "PaginationToken")
_EVERYTHING = sys.maxsize  # as moto's page limits: its whole answer at once

DENIED_ACCOUNTS: set[str] = accounts_route("/tagging/deny")


class InvalidParameterException(ResourceGroupsTaggingAPIError):
    def __init__(self, message: str) -> None:
        super().__init__("InvalidParameterException", message)


@dataclass(frozen=True)
class Tagged:
    arn: str
    tags: dict


# ---------------------------------------------------------------------------------------------------------------
# The request
# ---------------------------------------------------------------------------------------------------------------

def _check_request(params: dict) -> None:
    model.validate_input(OPERATION, params, SERVICE, InvalidParameterException)
    if params.get("ResourceARNList"):
        combined = [name for name in ("ResourceTypeFilters", "TagFilters", *_PAGING_PARAMETERS) if name in params]
        if combined:
            raise InvalidParameterException(f"ResourceARNList cannot be combined with {', '.join(combined)}.")
    for name, (low, high) in (("ResourcesPerPage", RESOURCES_PER_PAGE), ("TagsPerPage", TAGS_PER_PAGE)):
        if name in params and not low <= params[name] <= high:
            raise InvalidParameterException(f"{name} must be between {low} and {high}.")
    if len(params.get("ResourceTypeFilters") or []) > MAX_TYPE_FILTERS:
        raise InvalidParameterException(f"ResourceTypeFilters can include up to {MAX_TYPE_FILTERS} items.")
    if params.get("ExcludeCompliantResources") and not params.get("IncludeComplianceDetails"):
        raise InvalidParameterException("ExcludeCompliantResources can be used only with IncludeComplianceDetails.")


# ---------------------------------------------------------------------------------------------------------------
# The resources
# ---------------------------------------------------------------------------------------------------------------

def lab_resources(state: RegionState) -> list[tuple[str, Tagged]]:
    """(resource type, resource) of every tagged SSM resource the lab keeps in `state`'s account-region."""
    prefix = f"arn:{get_partition(state.region)}:ssm:{state.region}:{state.account}"
    return [(f"ssm:{ARN_TYPES[kind]}", Tagged(f"{prefix}:{ARN_TYPES[kind]}/{resource_id}", dict(tags)))
            for (kind, resource_id), tags in state.tags.items() if tags and kind in ARN_TYPES]


def _only_ssm(type_filters: list) -> bool:
    """moto 5.2 tags no SSM resource: a request for SSM types alone is the lab's (and need not walk every EC2
    resource of the region)."""
    return bool(type_filters) and all(f.split(":", 1)[0] == "ssm" for f in type_filters)


def matching(params: dict, state: RegionState, moto_backend) -> list[Tagged]:
    """Every resource of the account-region that the request's filters select, in ARN order."""
    type_filters, tag_filters = params.get("ResourceTypeFilters") or [], params.get("TagFilters") or []
    arns = set(params.get("ResourceARNList") or [])
    tags_match = make_tag_matcher(tag_filters)
    found = [resource for kind, resource in lab_resources(state)
             if match_resource_type(kind, type_filters) and tags_match(resource.tags)
             and (not arns or resource.arn in arns)]
    if not _only_ssm(type_filters):
        _token, answered = moto_backend.get_resources(
            resources_per_page=_EVERYTHING, tags_per_page=_EVERYTHING, tag_filters=tag_filters,
            resource_type_filters=type_filters, resource_arn_list=list(arns))
        found += [Tagged(resource.arn, dict(resource.tags)) for resource in answered]
    return sorted(found, key=lambda resource: resource.arn)


def _page_size(params: dict, remaining: list[Tagged]) -> int:
    """How many of the `remaining` resources the page holds: all of a ResourceARNList (at most 100), else
    ResourcesPerPage and no more tags than TagsPerPage (a resource without tags counts as one; a first resource
    with more tags than that is served alone, never split from its tags)."""
    if params.get("ResourceARNList"):
        return max(len(remaining), 1)
    size, budget = params.get("ResourcesPerPage") or DEFAULT_PAGE_SIZE, params.get("TagsPerPage")
    if budget is None:
        return size
    count = used = 0
    for resource in remaining[:size]:
        used += max(1, len(resource.tags))
        if count and used > budget:
            break
        count += 1
    return max(count, 1)


def get_resources(params: dict, state: RegionState, moto_backend) -> dict:
    _check_request(params)
    token = params.get("PaginationToken")
    after = paging.token_key(token, InvalidParameterException) if token else None
    start = paging.Page(0, after)  # where the token left off
    remaining = [r for r in matching(params, state, moto_backend) if start.wants(r.arn)]
    chunk, next_token = paging.Page(_page_size(params, remaining), None).take(remaining, lambda r: r.arn)
    mappings = [{"ResourceARN": r.arn, "Tags": [{"Key": k, "Value": v} for k, v in r.tags.items()]} for r in chunk]
    return {"ResourceTagMappingList": mappings, **({"PaginationToken": next_token} if next_token else {})}


# ---------------------------------------------------------------------------------------------------------------
# moto's handler, replaced
# ---------------------------------------------------------------------------------------------------------------

def _served(response: ResourceGroupsTaggingAPIResponse) -> ActionResult:
    """fleetlab: GetResources (see the module docstring)."""
    account, region = response.current_account, response.region
    api.CALLS.add(account, region, OPERATION)
    try:
        THROTTLE.check(account, region, OPERATION)
    except ThrottlingException:
        raise ResourceGroupsTaggingAPIError("ThrottledException", "Rate exceeded") from None
    if account in DENIED_ACCOUNTS:
        raise ResourceGroupsTaggingAPIError(
            "AccessDeniedException", f"User: arn:aws:iam::{account}:user/fleetlab is not authorized to perform: "
            "tag:GetResources because no identity-based policy allows the tag:GetResources action")
    with LAB.lock:
        result = get_resources(dict(response.params or {}), LAB.region(account, region), response.backend)
    api.VALIDATOR.check(OPERATION, result, SERVICE)
    return ActionResult(result)


def install() -> None:
    ResourceGroupsTaggingAPIResponse.get_resources = _served
