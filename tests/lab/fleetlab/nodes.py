"""Managed nodes, hybrid activations, instance information, resource tags and service settings.

AWS rules followed (SSM API reference and user guide; each function cites the one it implements):
* Hybrid activations (CreateActivation): ActivationId + ActivationCode are returned once; the code works like a
  password, so the lab keeps only a salted hash of it. RegistrationLimit defaults to 1; ExpirationDate may be up
  to 30 days ahead and defaults to 24 hours (lab time). Activation tags are copied to every node registered with
  it; they cannot be changed afterwards (the ResourceType enum of AddTagsToResource has no Activation).
* Registration (`register_with_activation`) stands in for the agent's private registration API (`amazon-ssm-agent
  -register -code C -id I -region R`): it creates an `mi-` + 17 hex node. The standard-instances tier allows 1,000
  hybrid nodes per account and Region (user guide, "Configuring instance tiers").
* DescribeInstanceInformation lists EC2 and hybrid nodes; it "does not return information for nodes that are
  either Stopped or Terminated" (API reference; confirmed by AWS in aws/amazon-ssm-agent#407: ConnectionLost is
  a *running* node that fails the health check).
* Tags on ManagedInstance (hybrid `mi-` nodes only), PatchBaseline and MaintenanceWindow are kept by the lab;
  other resource types go to stock moto. Most resources take at most 50 tags; `aws:` keys are reserved.

For other lab modules: `register_with_activation`, `ping_status`, `Page` (NextToken paging), `tag_resource` /
`resource_tags` / `forget_resource_tags` (Create*/Delete* handlers with Tags), `hybrid_node_count`.
"""
from __future__ import annotations

import datetime
import functools
import hashlib
import hmac
import random
import re
import secrets
import string
import uuid
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

from moto.ec2 import ec2_backends
from moto.ssm.models import ssm_backends
from moto.sts.models import sts_backends
from moto.utilities.utils import get_partition

from . import catalog, model, paging, targets
from .api import Context, moto_original, operation
from .control import ControlError, route
from .errors import (
    InvalidActivation,
    InvalidActivationId,
    InvalidFilter,
    InvalidFilterKey,
    InvalidInstanceId,
    InvalidInstanceInformationFilterValue,
    InvalidParameters,
    InvalidResourceId,
    LabError,
    ResourceLimitExceededException,
    ServiceSettingNotFound,
    TooManyTagsError,
    ValidationException,
)
from .platforms import platform
from .state import LAB, Lab, Node, RegionState

UTC = datetime.timezone.utc


# ---------------------------------------------------------------------------------------------------------------
# Tags
# ---------------------------------------------------------------------------------------------------------------

MAX_TAGS_PER_RESOURCE = 50  # AddTagsToResource: "Most resources can have a maximum of 50 tags."
RESERVED_TAG_PREFIX = "aws:"  # AWS tagging rules: the aws: prefix is reserved for AWS use
LAB_TAGGED_TYPES = ("ManagedInstance", "PatchBaseline", "MaintenanceWindow")
_MANAGED_INSTANCE_ID = re.compile(r"^mi-[0-9a-f]{17}$")


def _tag_dict(tags: list[dict] | None) -> dict[str, str]:
    """An AWS Tag list as a dict. A key given twice in one request is rejected (AWS does not document this case;
    the lab refuses rather than silently keep one of the values)."""
    result: dict[str, str] = {}
    for tag in tags or []:
        if tag["Key"] in result:
            raise ValidationException(f"Duplicate tag key {tag['Key']!r} in the request.")
        result[tag["Key"]] = tag["Value"]
    return result


def _check_not_reserved(keys: Iterable[str]) -> None:
    reserved = sorted(k for k in keys if k.lower().startswith(RESERVED_TAG_PREFIX))
    if reserved:
        # The error code for this case is not documented for SSM; ValidationException is AWS's generic answer.
        raise ValidationException(f"Tag keys starting with '{RESERVED_TAG_PREFIX}' are reserved for AWS use: "
                                  f"{', '.join(reserved)}")


def merged_tags(existing: dict[str, str], new: list[dict] | None, resource_id: str) -> dict[str, str]:
    """`existing` with `new` added or overwritten, after AWS's checks (reserved prefix, 50 tags per resource)."""
    additions = _tag_dict(new)
    _check_not_reserved(additions)
    merged = {**existing, **additions}
    if len(merged) > MAX_TAGS_PER_RESOURCE:
        raise TooManyTagsError(f"The resource {resource_id} can have at most {MAX_TAGS_PER_RESOURCE} tags; "
                               f"this request would give it {len(merged)}.")
    return merged


def tag_resource(state: RegionState, resource_type: str, resource_id: str, tags: list[dict] | None) -> None:
    """Add or overwrite tags of a lab-kept resource; for Create* handlers that take `Tags` (baselines, windows)."""
    key = (resource_type, resource_id)
    state.tags[key] = merged_tags(state.tags.get(key, {}), tags, resource_id)


def resource_tags(state: RegionState, resource_type: str, resource_id: str) -> dict[str, str]:
    return dict(state.tags.get((resource_type, resource_id), {}))


def forget_resource_tags(state: RegionState, resource_type: str, resource_id: str) -> None:
    """Drop a deleted resource's tags (a later resource never inherits them)."""
    state.tags.pop((resource_type, resource_id), None)


def _lab_resource_exists(state: RegionState, resource_type: str, resource_id: str) -> bool:
    if resource_type == "ManagedInstance":
        # "The ManagedInstance type for this API operation is only for on-premises managed nodes ... mi-ID_number";
        # AWS answers an i- id with this ValidationException (observed, boto/boto3#4265).
        if not _MANAGED_INSTANCE_ID.match(resource_id):
            raise ValidationException(
                "resourceId should be in format mi-[0-9a-f]{17} for resource type ManagedInstance")
        node = state.nodes.get(resource_id)
        return node is not None and node.is_hybrid
    if resource_type == "PatchBaseline":
        return resource_id in state.baselines
    return resource_id in state.windows


def _checked_lab_resource(ctx: Context, params: dict) -> tuple[str, str]:
    resource_type, resource_id = params["ResourceType"], params["ResourceId"]
    if not _lab_resource_exists(ctx.state, resource_type, resource_id):
        raise InvalidResourceId("The resource ID isn't valid. Verify that you entered the correct ID and try again.")
    return resource_type, resource_id


def _moto_delegate(ctx: Context, name: str) -> dict:
    """Stock moto's implementation (Document, Parameter, ...): it re-reads the request from the HTTP response."""
    original = moto_original(name)
    if original is None or ctx.response is None:
        raise RuntimeError(f"{name} for this resource type is served by moto and needs an HTTP request")
    return original(ctx.response).result or {}


def _moto_tags(ctx: Context, resource_type: str, resource_id: str) -> dict[str, str]:
    return dict(ssm_backends[ctx.account][ctx.region].list_tags_for_resource(resource_type, resource_id))


@operation("AddTagsToResource")
def add_tags_to_resource(ctx: Context, params: dict) -> dict:
    """Adds or overwrites tags (API reference, AddTagsToResource); limits apply to every resource type."""
    resource_type = params["ResourceType"]
    if resource_type not in LAB_TAGGED_TYPES:
        merged_tags(_moto_tags(ctx, resource_type, params["ResourceId"]), params["Tags"], params["ResourceId"])
        return _moto_delegate(ctx, "AddTagsToResource")
    resource_type, resource_id = _checked_lab_resource(ctx, params)
    tag_resource(ctx.state, resource_type, resource_id, params["Tags"])
    return {}


@operation("RemoveTagsFromResource")
def remove_tags_from_resource(ctx: Context, params: dict) -> dict:
    """Removes tag keys; keys the resource does not have are ignored. aws: keys can't be deleted by users."""
    _check_not_reserved(params["TagKeys"])
    if params["ResourceType"] not in LAB_TAGGED_TYPES:
        return _moto_delegate(ctx, "RemoveTagsFromResource")
    key = _checked_lab_resource(ctx, params)
    tags = ctx.state.tags.get(key, {})
    for tag_key in params["TagKeys"]:
        tags.pop(tag_key, None)
    return {}


@operation("ListTagsForResource")
def list_tags_for_resource(ctx: Context, params: dict) -> dict:
    if params["ResourceType"] not in LAB_TAGGED_TYPES:
        return _moto_delegate(ctx, "ListTagsForResource")
    resource_type, resource_id = _checked_lab_resource(ctx, params)
    tags = resource_tags(ctx.state, resource_type, resource_id)
    return {"TagList": [{"Key": k, "Value": v} for k, v in tags.items()]}


# ---------------------------------------------------------------------------------------------------------------
# Service settings
# ---------------------------------------------------------------------------------------------------------------

ACTIVATION_TIER = "/ssm/managed-instance/activation-tier"
STANDARD_TIER_HYBRID_LIMIT = 1000  # user guide, "Configuring instance tiers": per account per Region
# Setting id -> (AWS's default value, accepted values). UpdateServiceSetting documents "standard or advanced".
# Other documented settings change nothing the lab simulates; they answer ServiceSettingNotFound and say so.
SERVICE_SETTINGS = {ACTIVATION_TIER: ("standard", ("standard", "advanced"))}
_SETTING_ARN = re.compile(r"^arn:aws[\w-]*:ssm:[^:]*:[^:]*:servicesetting(/.+)$")


@dataclass
class ServiceSettingRecord:
    value: str
    modified: datetime.datetime
    user: str


def _setting_id(raw: str) -> str:
    """The setting path; Update/ResetServiceSetting document the ARN form, GetServiceSetting the path."""
    match = _SETTING_ARN.match(raw)
    setting_id = match.group(1) if match else raw
    if setting_id not in SERVICE_SETTINGS:
        raise ServiceSettingNotFound(f"The service setting {raw} wasn't found (the lab simulates only "
                                     f"{', '.join(SERVICE_SETTINGS)}).")
    return setting_id


def service_setting_value(state: RegionState, setting_id: str) -> str:
    record = state.service_settings.get(setting_id)
    return record.value if record else SERVICE_SETTINGS[setting_id][0]


def _service_setting(ctx: Context, setting_id: str) -> dict:
    record = ctx.state.service_settings.get(setting_id)
    result = {
        "SettingId": setting_id,
        "SettingValue": service_setting_value(ctx.state, setting_id),
        "ARN": f"arn:aws:ssm:{ctx.region}:{ctx.account}:servicesetting{setting_id}",
        "Status": "Customized" if record else "Default",
    }
    if record:  # "LastModifiedUser ... is populated only if the setting value was overwritten"
        result.update(LastModifiedDate=record.modified, LastModifiedUser=record.user)
    return result


def _caller_arn(ctx: Context) -> str:
    """The ARN of the IAM identity that signed the request (what AWS records as LastModifiedUser); in-process
    calls (api.call, no request) are attributed to the account's root."""
    if ctx.response is None:
        return f"arn:aws:iam::{ctx.account}:root"
    sts = sts_backends[ctx.account][get_partition(ctx.region)]
    return sts.get_caller_identity(ctx.response.get_access_key(), ctx.region)[1]


def _check_setting_change(state: RegionState, setting_id: str, value: str) -> None:
    """A value the setting accepts (UpdateServiceSetting's list) that AWS would let the account switch to."""
    accepted = SERVICE_SETTINGS[setting_id][1]
    if value not in accepted:
        raise ValidationException(f"Invalid value {value!r} for {setting_id}; valid values: {', '.join(accepted)}")
    hybrid = hybrid_node_count(state)
    if setting_id == ACTIVATION_TIER and value == "standard" and hybrid > STANDARD_TIER_HYBRID_LIMIT:
        # User guide, "Reverting from the advanced-instances tier": not possible with more than 1,000 hybrid nodes.
        # The error code is not documented; the lab answers ValidationException.
        raise ValidationException(f"Can't revert to the standard-instances tier with {hybrid} hybrid-activated "
                                  f"nodes registered; deregister nodes until {STANDARD_TIER_HYBRID_LIMIT} or fewer "
                                  "remain.")


@operation("GetServiceSetting")
def get_service_setting(ctx: Context, params: dict) -> dict:
    return {"ServiceSetting": _service_setting(ctx, _setting_id(params["SettingId"]))}


@operation("UpdateServiceSetting")
def update_service_setting(ctx: Context, params: dict) -> dict:
    setting_id = _setting_id(params["SettingId"])
    _check_setting_change(ctx.state, setting_id, params["SettingValue"])
    ctx.state.service_settings[setting_id] = ServiceSettingRecord(params["SettingValue"], ctx.now, _caller_arn(ctx))
    return {}


@operation("ResetServiceSetting")
def reset_service_setting(ctx: Context, params: dict) -> dict:
    """Back to AWS's default value. The revert takes "30 minutes or more" on AWS; the lab applies it at once."""
    setting_id = _setting_id(params["SettingId"])
    _check_setting_change(ctx.state, setting_id, SERVICE_SETTINGS[setting_id][0])
    ctx.state.service_settings.pop(setting_id, None)
    return {"ServiceSetting": _service_setting(ctx, setting_id)}


# ---------------------------------------------------------------------------------------------------------------
# Hybrid activations
# ---------------------------------------------------------------------------------------------------------------

MAX_ACTIVATION_LIFETIME = datetime.timedelta(days=30)
DEFAULT_ACTIVATION_LIFETIME = datetime.timedelta(hours=24)
# AWS's codes are 20 characters of the base64 alphabet (API reference examples: "dRmgnYaFv567vEXAMPLE").
_CODE_ALPHABET = string.ascii_letters + string.digits + "+/"
_CODE_LENGTH = 20
_INVALID_ACTIVATION = ("The activation isn't valid. The activation might have been deleted, or the ActivationId "
                       "and the ActivationCode don't match.")


@dataclass
class Activation:
    activation_id: str
    code_salt: bytes
    code_hash: str  # never the code itself: it is a credential
    iam_role: str
    registration_limit: int
    expiration: datetime.datetime
    created: datetime.datetime
    description: str = ""
    default_instance_name: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    registrations: int = 0

    def expired(self, now: datetime.datetime) -> bool:
        return now >= self.expiration

    def code_matches(self, code: str) -> bool:
        return hmac.compare_digest(self.code_hash, _hash_code(code, self.code_salt))


def _hash_code(code: str, salt: bytes) -> str:
    # A fast salted hash is enough here: the code is 20 random characters (~120 bits), not a user password.
    return hashlib.sha256(salt + code.encode()).hexdigest()


def _timestamp(value) -> datetime.datetime:
    """A request timestamp: botocore sends epoch seconds in the JSON protocol; ISO 8601 strings are accepted too."""
    if isinstance(value, (int, float)):
        return datetime.datetime.fromtimestamp(value, UTC)
    parsed = datetime.datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _expiration(params: dict, now: datetime.datetime) -> datetime.datetime:
    """CreateActivation: "You can specify a date up to 30 days in advance. If you don't provide an expiration date,
    the activation code expires in 24 hours." The error code for a date out of range is not documented; the lab
    answers InvalidParameters, the operation's documented client error."""
    if params.get("ExpirationDate") is None:
        return now + DEFAULT_ACTIVATION_LIFETIME
    expiration = _timestamp(params["ExpirationDate"])
    if expiration <= now:
        raise InvalidParameters(f"ExpirationDate {expiration.isoformat()} is in the past.")
    if expiration > now + MAX_ACTIVATION_LIFETIME:
        raise InvalidParameters(f"ExpirationDate {expiration.isoformat()} is more than 30 days in the future.")
    return expiration


def _new_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


@operation("CreateActivation")
def create_activation(ctx: Context, params: dict) -> dict:
    now = ctx.now
    expiration = _expiration(params, now)
    code = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(_CODE_LENGTH))
    salt = secrets.token_bytes(16)
    activation = Activation(
        activation_id=_new_uuid(ctx.lab.random),
        code_salt=salt,
        code_hash=_hash_code(code, salt),
        iam_role=params["IamRole"],
        registration_limit=params.get("RegistrationLimit") or 1,  # "The default value is 1."
        expiration=expiration,
        created=now,
        description=params.get("Description", ""),
        default_instance_name=params.get("DefaultInstanceName", ""),
        tags=merged_tags({}, params.get("Tags"), "the activation"),
        metadata={item["Key"]: item["Value"] for item in params.get("RegistrationMetadata") or []},
    )
    ctx.state.activations[activation.activation_id] = activation
    return {"ActivationId": activation.activation_id, "ActivationCode": code}


_ACTIVATION_FILTERS: dict[str, Callable[[Activation], str]] = {
    "ActivationIds": lambda a: a.activation_id,
    "DefaultInstanceName": lambda a: a.default_instance_name,
    "IamRole": lambda a: a.iam_role,
}


def _activation_matches(activation: Activation, filters: list[dict]) -> bool:
    """Values of one filter are ORed, filters are ANDed; matching is exact (AWS documents no wildcard here)."""
    for item in filters:
        if not item.get("FilterKey") or not item.get("FilterValues"):
            raise InvalidFilter("A filter needs a FilterKey and at least one FilterValue.")
        if _ACTIVATION_FILTERS[item["FilterKey"]](activation) not in item["FilterValues"]:
            return False
    return True


def _activation_record(activation: Activation, now: datetime.datetime) -> dict:
    record = {
        "ActivationId": activation.activation_id,
        "IamRole": activation.iam_role,
        "RegistrationLimit": activation.registration_limit,
        "RegistrationsCount": activation.registrations,
        "ExpirationDate": activation.expiration,
        "Expired": activation.expired(now),
        "CreatedDate": activation.created,
        "Tags": [{"Key": k, "Value": v} for k, v in activation.tags.items()],
    }
    if activation.description:
        record["Description"] = activation.description
    if activation.default_instance_name:
        record["DefaultInstanceName"] = activation.default_instance_name
    return record


@operation("DescribeActivations")
def describe_activations(ctx: Context, params: dict) -> dict:
    """Paged by ActivationId; AWS documents no default page size, the lab uses the model's maximum (50)."""
    filters = params.get("Filters") or []
    wanted = paging.Page.of(params, "DescribeActivations", default_size=50)
    activations = (a for _, a in sorted(ctx.state.activations.items())
                   if wanted.wants(a.activation_id) and _activation_matches(a, filters))
    chunk, token = wanted.take(activations, lambda a: a.activation_id)
    result = {"ActivationList": [_activation_record(a, ctx.now) for a in chunk]}
    if token:
        result["NextToken"] = token
    return result


@operation("DeleteActivation")
def delete_activation(ctx: Context, params: dict) -> dict:
    """Registered nodes stay: "Deleting an activation doesn't de-register managed nodes"."""
    if ctx.state.activations.pop(params["ActivationId"], None) is None:
        raise InvalidActivationId("The activation ID isn't valid. Verify that you entered the correct ActivationId "
                                  "or ActivationCode and try again.")
    return {}


# ---------------------------------------------------------------------------------------------------------------
# Registration (the lab's stand-in for the agent's private registration API)
# ---------------------------------------------------------------------------------------------------------------

def hybrid_node_count(state: RegionState) -> int:
    return sum(1 for node in state.nodes.values() if node.is_hybrid)


def _find_activation(lab: Lab, activation_id: str, region: str) -> tuple[RegionState, Activation]:
    """Activation ids are unique across AWS; the agent only names the region, the service knows the account."""
    for state in lab.regions():
        if state.region == region and activation_id in state.activations:
            return state, state.activations[activation_id]
    raise InvalidActivation(_INVALID_ACTIVATION)


def _check_can_register(state: RegionState, activation: Activation, code: str, now: datetime.datetime) -> None:
    if not activation.code_matches(code):
        raise InvalidActivation(_INVALID_ACTIVATION)
    if activation.expired(now):
        raise InvalidActivation(f"Activation {activation.activation_id} expired at "
                                f"{activation.expiration.isoformat()}.")
    if activation.registrations >= activation.registration_limit:
        raise InvalidActivation(f"Activation {activation.activation_id} has reached its registration limit of "
                                f"{activation.registration_limit}.")
    if (service_setting_value(state, ACTIVATION_TIER) == "standard"
            and hybrid_node_count(state) >= STANDARD_TIER_HYBRID_LIMIT):
        # The code AWS answers here is not documented; ResourceLimitExceededException is SSM's quota error.
        raise ResourceLimitExceededException(
            f"The standard-instances tier allows {STANDARD_TIER_HYBRID_LIMIT} hybrid-activated nodes per account "
            f"and Region; set {ACTIVATION_TIER} to advanced to register more.")


def _new_managed_instance_id(state: RegionState, rng: random.Random) -> str:
    while True:
        node_id = f"mi-{rng.getrandbits(68):017x}"  # mi- + 17 hex characters
        if node_id not in state.nodes:
            return node_id


def register_with_activation(activation_id: str, activation_code: str, region: str, *, computer_name: str,
                             platform_key: str, ip_address: str = "", source_vm_id: str | None = None,
                             fingerprint: str = "", lab: Lab = LAB) -> Node:
    """Register a machine with a hybrid activation, as `amazon-ssm-agent -register` does, and return its node.

    Raises InvalidActivation for an unknown, deleted, expired or exhausted activation or a wrong code, and
    ResourceLimitExceededException beyond the standard tier's 1,000 hybrid nodes.
    """
    plat = platform(platform_key)
    with lab.lock:
        now = lab.clock.now()
        state, activation = _find_activation(lab, activation_id, region)
        _check_can_register(state, activation, activation_code, now)
        node_id = _new_managed_instance_id(state, lab.random)
        node = Node(
            node_id=node_id,
            account=state.account,
            region=region,
            platform=plat,
            computer_name=computer_name,
            ip_address=ip_address,
            installed=catalog.initial_installed(plat, random.Random(f"{state.account}/{region}/{node_id}")),
            resource_type="ManagedInstance",
            registration_date=now,
            activation_id=activation_id,
            iam_role=activation.iam_role,
            name=activation.default_instance_name or None,
            last_ping=now,
            last_boot=now,
            source_vm_id=source_vm_id,
            fingerprint=fingerprint,
        )
        state.nodes[node_id] = node
        if activation.tags:  # "tags assigned to the activation are automatically applied to the ... VMs"
            state.tags[("ManagedInstance", node_id)] = dict(activation.tags)
        activation.registrations += 1
        return node


@operation("DeregisterManagedInstance")
def deregister_managed_instance(ctx: Context, params: dict) -> dict:
    """The node leaves the managed-node list with its tags. The activation's RegistrationsCount is not given back:
    "If you want to reregister ... you must use a different Activation Code and Activation ID"."""
    node = ctx.state.nodes.get(params["InstanceId"])
    if node is None or not node.is_hybrid:
        raise InvalidInstanceId(f"Instance {params['InstanceId']} is not a registered managed instance.")
    del ctx.state.nodes[node.node_id]
    forget_resource_tags(ctx.state, "ManagedInstance", node.node_id)
    return {}


# ---------------------------------------------------------------------------------------------------------------
# DescribeInstanceInformation
# ---------------------------------------------------------------------------------------------------------------

LATEST_AGENT_VERSION = Node.agent_version  # state.Node's default: the version a freshly installed lab agent runs
# EC2 states in which the node is not listed ("does not return information for nodes that are either Stopped or
# Terminated"); stopping and shutting-down lead there. A pending instance has not pinged yet: ConnectionLost.
_UNLISTED_EC2_STATES = ("stopping", "stopped", "shutting-down", "terminated")
_DEFAULT_PAGE_SIZE = 10  # "The default value is 10 items."
_INSTANCE_ID = re.compile(model.service_model().shape_for("InstanceId").metadata["pattern"])


def _ping_status(node: Node, instance_state: str | None) -> str | None:
    """Online / ConnectionLost, or None when DescribeInstanceInformation does not list the node. AWS deprecated
    Inactive ("no longer in use"): the lab never reports it, although filters accept it."""
    if not node.is_hybrid and (instance_state is None or instance_state in _UNLISTED_EC2_STATES):
        return None
    if not node.online or (not node.is_hybrid and instance_state != "running"):
        return "ConnectionLost"
    return "Online"


def ping_status(node: Node) -> str | None:
    """A node's PingStatus as DescribeInstanceInformation shows it (None: not listed), for other lab modules."""
    return _ping_status(node, targets.ec2_state(node))


def _ec2_states(account: str, region: str) -> dict[str, str]:
    """Instance id -> EC2 state name for a whole region in one pass (targets.ec2_state scans the region's
    reservations for one node: per node over a fleet, that is quadratic)."""
    reservations = ec2_backends[account][region].reservations.values()
    return {instance.id: instance.state for reservation in reservations for instance in reservation.instances}


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def _source(node: Node) -> tuple[str, str]:
    """SourceId/SourceType. EC2: the instance (AWS::EC2::Instance). Hybrid: the node itself
    (AWS::SSM::ManagedInstance); for an Azure VM, "SourceType is Microsoft.Compute/virtualMachines" and the lab
    uses the VM id as SourceId (AWS does not document which Azure id it reports; the VM id fits the pattern)."""
    if not node.is_hybrid:
        return node.node_id, "AWS::EC2::Instance"
    if node.source_vm_id:
        return node.source_vm_id, "Microsoft.Compute/virtualMachines"
    return node.node_id, "AWS::SSM::ManagedInstance"


def _instance_information(node: Node, ping: str, now: datetime.datetime) -> dict:
    """One InstanceInformation record. Name, ActivationId and RegistrationDate belong to hybrid nodes; IamRole is
    shown for hybrid nodes and for EC2 nodes that have one (Quick Setup host management)."""
    source_id, source_type = _source(node)
    info = {
        "InstanceId": node.node_id,
        "PingStatus": ping,
        "LastPingDateTime": now if ping == "Online" else (node.last_ping or now),  # an online agent pings on
        "AgentVersion": node.agent_version,
        "IsLatestVersion": _version_tuple(node.agent_version) >= _version_tuple(LATEST_AGENT_VERSION),
        "PlatformType": node.platform.platform_type,
        "PlatformName": node.platform.platform_name,
        "PlatformVersion": node.platform.version,
        "ResourceType": node.resource_type,
        "SourceId": source_id,
        "SourceType": source_type,
    }
    optional = {
        "IPAddress": node.ip_address,
        "ComputerName": node.computer_name,
        "IamRole": node.iam_role,
        "ActivationId": node.activation_id if node.is_hybrid else None,
        "RegistrationDate": node.registration_date if node.is_hybrid else None,
        "Name": node.name if node.is_hybrid else None,
    }
    info.update({k: v for k, v in optional.items() if v})
    return info


# Filter key -> (InstanceInformation member it tests, accepted values or None for any): the keys documented for
# `Filters` (InstanceInformationStringFilter) besides tag:<key> and tag-key. The legacy list's keys are a subset,
# enforced by the model's InstanceInformationFilterKey enum before a handler runs.
_FIELD_FILTERS: dict[str, tuple[str, tuple[str, ...] | None]] = {
    "InstanceIds": ("InstanceId", None),
    "AgentVersion": ("AgentVersion", None),
    "PingStatus": ("PingStatus", ("Online", "ConnectionLost", "Inactive")),
    "PlatformTypes": ("PlatformType", ("Windows", "Linux", "MacOS")),
    "ActivationIds": ("ActivationId", None),
    "IamRole": ("IamRole", None),
    "ResourceType": ("ResourceType", ("EC2Instance", "ManagedInstance")),
    "AssociationStatus": ("AssociationStatus", ("Success", "Pending", "Failed")),
    "SourceIds": ("SourceId", None),
    "SourceTypes": ("SourceType", tuple(model.service_model().shape_for("SourceType").enum)),
}


@dataclass(frozen=True)
class _Filter:
    key: str
    values: tuple[str, ...]

    @property
    def is_tag(self) -> bool:
        return self.key == "tag-key" or self.key.startswith("tag:")


def _filters(ctx: Context, params: dict) -> list[_Filter]:
    """The request's filters, checked like AWS: one of the two lists only; tag filters alone; known keys; values
    from the documented sets. (The error code for the two combinations is not documented: ValidationException.)"""
    legacy, current = params.get("InstanceInformationFilterList"), params.get("Filters")
    if legacy and current:
        raise ValidationException("InstanceInformationFilterList and Filters can't be used together; use Filters.")
    if legacy:
        filters = [_Filter(f["key"], tuple(f["valueSet"])) for f in legacy]
    else:
        filters = [_Filter(f["Key"], tuple(f["Values"])) for f in current or []]
    for item in filters:
        _check_filter(ctx, item)
    if any(f.is_tag for f in filters) and not all(f.is_tag for f in filters):
        raise ValidationException("Tag filters can't be combined with other filter types.")
    return filters


def _check_filter(ctx: Context, item: _Filter) -> None:
    if item.is_tag:
        if item.key == "tag:":
            raise InvalidFilterKey("The specified key isn't valid: tag: needs a tag key.")
        return
    if item.key not in _FIELD_FILTERS:
        raise InvalidFilterKey(f"The specified key isn't valid: {item.key}")
    accepted = _FIELD_FILTERS[item.key][1]
    if accepted and any(v not in accepted for v in item.values):
        # Wording observed from AWS (aws/aws-sdk#130).
        raise InvalidInstanceInformationFilterValue(
            f"{item.key} filter is invalid, valid values are {', '.join(accepted)}")
    if item.key == "ResourceType" and len(item.values) > 1:
        raise InvalidInstanceInformationFilterValue("ResourceType filter may contain only one value.")
    if item.key == "InstanceIds":
        _check_instance_ids(ctx, item.values)


def _check_instance_ids(ctx: Context, instance_ids: Iterable[str]) -> None:
    """AWS: "If you specify a node ID that isn't valid or a node that you don't own, you receive an error." A
    well-formed id of no managed node in this account is simply not listed."""
    for instance_id in instance_ids:
        owner = ctx.lab.find_node(instance_id)
        if not _INSTANCE_ID.match(instance_id) or (owner is not None and owner.account != ctx.account):
            raise InvalidInstanceId(f"Instance id {instance_id} is not valid.")


def _matches(info: dict, tags: Callable[[], dict[str, str]], filters: list[_Filter]) -> bool:
    """Filters are ANDed, the values of one filter ORed (tag:<key> by value, tag-key by key)."""
    for item in filters:
        if item.key == "tag-key":
            ok = any(key in item.values for key in tags())
        elif item.key.startswith("tag:"):
            ok = tags().get(item.key[4:]) in item.values
        else:
            ok = info.get(_FIELD_FILTERS[item.key][0]) in item.values
        if not ok:
            return False
    return True


def _listed_information(ctx: Context, filters: list[_Filter], wanted: paging.Page) -> Iterator[dict]:
    """InstanceInformation of this account-region's listed nodes matching `filters`, in id order from the page
    start, built lazily: a call costs the nodes it looks at, not the whole fleet."""
    state, now = ctx.state, ctx.now
    ec2_states = _ec2_states(ctx.account, ctx.region)
    for node_id in sorted(state.nodes):
        if not wanted.wants(node_id):
            continue
        node = state.nodes[node_id]
        ping = _ping_status(node, ec2_states.get(node_id))
        if ping is None:
            continue
        info = _instance_information(node, ping, now)
        if _matches(info, functools.partial(targets.node_tags, state, node), filters):
            yield info


@operation("DescribeInstanceInformation")
def describe_instance_information(ctx: Context, params: dict) -> dict:
    """Listed managed nodes in id order, filtered, paged (MaxResults 5-50 is the model's range; default 10)."""
    filters = _filters(ctx, params)
    wanted = paging.Page.of(params, "DescribeInstanceInformation", _DEFAULT_PAGE_SIZE)
    chunk, token = wanted.take(_listed_information(ctx, filters, wanted), lambda info: info["InstanceId"])
    result = {"InstanceInformationList": chunk}
    if token:
        result["NextToken"] = token
    return result


# ---------------------------------------------------------------------------------------------------------------
# Control API routes (what AWS gives no public API for)
# ---------------------------------------------------------------------------------------------------------------

def _required(body: dict, *names: str) -> list:
    missing = [name for name in names if body.get(name) in (None, "")]
    if missing:
        raise ControlError(f"missing field(s): {', '.join(missing)}")
    return [body[name] for name in names]


def _control_node(body: dict) -> Node:
    account, region, node_id = _required(body, "account", "region", "node_id")
    node = LAB.region(str(account), region).nodes.get(node_id)
    if node is None:
        raise ControlError(f"no managed node {node_id} in {account}/{region}")
    return node


@route("POST", "/agent/register")
def _agent_register(body: dict, query: dict) -> dict:
    """The lab's stand-in for the SSM agent's private registration API (`amazon-ssm-agent -register`), used by the
    Azure endpoint's run command and the test agent package. The code is checked, never echoed or logged."""
    activation_id, code, region, computer_name, platform_key = _required(
        body, "activation_id", "activation_code", "region", "computer_name", "platform_key")
    try:
        node = register_with_activation(
            activation_id, code, region, computer_name=computer_name, platform_key=platform_key,
            ip_address=body.get("ip_address") or "", source_vm_id=body.get("source_vm_id"),
            fingerprint=body.get("fingerprint") or "",
        )
    except LabError as err:
        raise ControlError(f"{err.code}: {err.message}") from None
    except ValueError as err:  # unknown platform key
        raise ControlError(str(err)) from None
    return {"instance_id": node.node_id, "account": node.account, "region": node.region}


@route("POST", "/nodes/online")
def _set_online(body: dict, query: dict) -> dict:
    """The agent loses or regains its connection (PingStatus ConnectionLost / Online)."""
    online = body.get("online")
    if not isinstance(online, bool):
        raise ControlError("field 'online' must be true or false")
    with LAB.lock:
        node = _control_node(body)
        if node.online and not online:
            node.last_ping = LAB.clock.now()  # the last ping AWS saw
        node.online = online
    return {"node_id": node.node_id, "online": node.online}


@route("POST", "/nodes/fail")
def _set_failure(body: dict, query: dict) -> dict:
    """The next Install on this node fails with `message` (null clears it); read by the simulated agent."""
    message = body.get("message")
    if message is not None and not isinstance(message, str):
        raise ControlError("field 'message' must be a string or null")
    with LAB.lock:
        node = _control_node(body)
        node.fail_install = message
    return {"node_id": node.node_id, "fail_install": node.fail_install}
