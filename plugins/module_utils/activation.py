# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetpatch.ssm project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Hybrid activations and the activation tier: the SSM calls and the user's (snake_case) view of them.

Used by hybrid_activation. AWS activations have no name and cannot be changed once created (there is no
UpdateActivation, and AddTagsToResource has no Activation resource type), so:

* the module's `name` is kept in the activation tag NAME_TAG, and an activation is found by listing the
  account-region's activations (DescribeActivations filters only by id, IAM role and default instance name);
* a different setting means a new activation (replace) or a refusal, never an update.

The activation code is a one-time secret: CreateActivation is the only call that returns it. It is kept out of the
activation's state (which goes to the diff) and handed back separately by the resource.
"""

from __future__ import annotations

import datetime
import re

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code

from .ssm import SSMErrorHandler
from .ssm import iso_dates
from .ssm import paginated_items
from .tags import tag_list
from .validation import ParameterError
from .validation import check_length
from .validation import check_range
from .validation import check_tag_characters
from .validation import reject

NAME_TAG = "fleetpatch:activation"
NAME_LENGTH = (1, 256)  # the name is a tag value ([model] TagValue), and must not be empty to be a key
ACTIVATION_TIER = "/ssm/managed-instance/activation-tier"
STANDARD_TIER = "standard"
STANDARD_TIER_HYBRID_NODES = 1000  # user guide, "Configuring instance tiers": per account and Region
REGISTRATION_LIMIT = (1, 1000)  # [model] RegistrationLimit
MAX_LIFETIME_HOURS = 30 * 24  # CreateActivation: "You can specify a date up to 30 days in advance"
IAM_ROLE_LENGTH = (1, 64)  # [model] IamRole (a role name, with its path if it has one)
TEXT_LENGTH = (0, 256)  # [model] ActivationDescription, DefaultInstanceName
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/(?P<name>.+)")

UTC = datetime.timezone.utc


# ---------------------------------------------------------------------------------------------- user's terms

def role_name(value: str) -> str:
    """CreateActivation takes the role's name (with its path, e.g. service-role/Name); an ARN is reduced to it."""
    match = _ROLE_ARN.fullmatch(value)
    return match.group("name") if match else value


def parse_expiration(value: str, now: datetime.datetime) -> datetime.datetime:
    """An expiration given as an ISO 8601 date or date and time (UTC unless it says otherwise), in AWS's range."""
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        reject("expiration", value, "is not a date; allowed: YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS[+HH:MM], e.g. "
                                    "2026-12-31T18:00:00Z")
    parsed = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC).replace(microsecond=0)
    if not now < parsed <= now + datetime.timedelta(hours=MAX_LIFETIME_HOURS):
        reject("expiration", value, "is out of range; allowed: a time in the next 30 days (AWS's limit)")
    return parsed


def expiration_text(value: datetime.datetime) -> str:
    return value.astimezone(UTC).replace(microsecond=0).isoformat()


def check_activation_options(params: dict) -> None:
    """The model's limits for the options CreateActivation takes; raises ParameterError naming the field."""
    check_length("iam_role", role_name(params["iam_role"] or ""), *IAM_ROLE_LENGTH)
    check_range("expires_in_hours", params["expires_in_hours"], 1, MAX_LIFETIME_HOURS)
    check_length("description", params["description"], *TEXT_LENGTH)
    check_length("default_instance_name", params["default_instance_name"], *TEXT_LENGTH)
    if params["default_instance_name"]:
        check_tag_characters("default_instance_name", params["default_instance_name"])
    if NAME_TAG in (params["tags"] or {}):
        reject("tags", NAME_TAG, "is the tag that holds the activation's name; allowed: any other key (set name)")


def desired_activation(params: dict, limit: int, now: datetime.datetime) -> dict:
    """The activation a task asks for, in activation_state()'s terms; only the fields the task sets.

    With expires_in_hours (or neither option) the expiry is not compared: a rerun would always ask for a later
    one. An explicit `expiration` is a setting like the others.
    """
    desired = {
        "iam_role": role_name(params["iam_role"]),
        "registration_limit": limit,
    }
    if params["description"] is not None:
        desired["description"] = params["description"] or None
    if params["default_instance_name"] is not None:
        desired["default_instance_name"] = params["default_instance_name"] or None
    if params["tags"] is not None:
        desired["tags"] = {key: str(value) for key, value in params["tags"].items()}
    if params["expiration"]:
        desired["expiration_date"] = expiration_text(parse_expiration(params["expiration"], now))
    return desired


def activation_state(record: dict) -> dict:
    """A DescribeActivations record in the user's terms; its name comes from NAME_TAG (the tag is not in `tags`)."""
    tags = {tag["Key"]: tag["Value"] for tag in record.get("Tags") or ()}
    remaining = max(0, record["RegistrationLimit"] - record.get("RegistrationsCount", 0))
    expired = bool(record.get("Expired"))
    state = {
        "activation_id": record["ActivationId"],
        "name": tags.pop(NAME_TAG, None),
        "description": record.get("Description") or None,
        "iam_role": record.get("IamRole"),
        "default_instance_name": record.get("DefaultInstanceName") or None,
        "registration_limit": record["RegistrationLimit"],
        "registrations_count": record.get("RegistrationsCount", 0),
        "registrations_remaining": remaining,
        "expired": expired,
        "usable": not expired and remaining > 0,
        "expiration_date": record.get("ExpirationDate"),
        "created_date": record.get("CreatedDate"),
        "tags": tags,
    }
    if state["expiration_date"] is not None:
        state["expiration_date"] = expiration_text(state["expiration_date"])
    return iso_dates(state, "created_date")


def unusable_reason(state: dict) -> str:
    if state["expired"]:
        return f"expired at {state['expiration_date']}"
    return f"has used all {state['registration_limit']} of its registrations"


def predicted_activation(desired: dict, name: str) -> dict:
    """What a new activation will look like, for check mode (AWS picks its id and, by default, its expiry)."""
    return dict(
        {"activation_id": None, "name": name, "description": None, "default_instance_name": None, "tags": {},
         "expiration_date": None, "created_date": None, "expired": False, "usable": True},
        registrations_count=0, registrations_remaining=desired["registration_limit"], **desired,
    )


def create_request(name: str, desired: dict, now: datetime.datetime, expires_in_hours) -> dict:
    """CreateActivation's parameters; without an expiry the activation lasts AWS's default 24 hours."""
    request = {
        "IamRole": desired["iam_role"],
        "RegistrationLimit": desired["registration_limit"],
        "Tags": tag_list(dict(desired.get("tags") or {}, **{NAME_TAG: name})),
    }
    if desired.get("description"):
        request["Description"] = desired["description"]
    if desired.get("default_instance_name"):
        request["DefaultInstanceName"] = desired["default_instance_name"]
    if desired.get("expiration_date"):
        request["ExpirationDate"] = datetime.datetime.fromisoformat(desired["expiration_date"])
    elif expires_in_hours:
        request["ExpirationDate"] = now.replace(microsecond=0) + datetime.timedelta(hours=expires_in_hours)
    return request


# ---------------------------------------------------------------------------------------------- activations

@SSMErrorHandler.common_error_handler("list activations")
def list_activations(client, activation_id=None) -> list:
    """DescribeActivations (every activation of the account-region, or the one with `activation_id`)."""
    filters = [{"FilterKey": "ActivationIds", "FilterValues": [activation_id]}] if activation_id else []
    return paginated_items(client, "describe_activations", "ActivationList", Filters=filters)


def find_activations(client, name: str) -> list:
    """The activations named `name` (tag NAME_TAG), newest first."""
    found = [activation_state(record) for record in list_activations(client)]
    named = [state for state in found if state["name"] == name]
    return sorted(named, key=lambda state: (state["created_date"] or "", state["activation_id"]), reverse=True)


@SSMErrorHandler.common_error_handler("create activation")
def create_activation(client, request: dict) -> dict:
    """{ActivationId, ActivationCode}. CreateActivation takes no client token, so a retried call may leave a
    second activation of the name; the module reports duplicates and deletes them with the name."""
    return client.create_activation(aws_retry=True, **request)


class ActivationErrorHandler(SSMErrorHandler):
    """DeleteActivation answers InvalidActivationId for an activation that is not there (any more)."""

    @classmethod
    def _is_missing(cls):
        return is_boto3_error_code("InvalidActivationId")


@ActivationErrorHandler.deletion_error_handler("delete activation")
def delete_activation(client, activation_id: str) -> None:
    """Delete the activation; one deleted meanwhile is what was asked for."""
    client.delete_activation(ActivationId=activation_id, aws_retry=True)


# ---------------------------------------------------------------------------------------------- the tier

@SSMErrorHandler.common_error_handler("read the activation tier")
def activation_tier(client) -> str:
    """The account-region's instance tier for hybrid nodes: standard or advanced (GetServiceSetting)."""
    return client.get_service_setting(SettingId=ACTIVATION_TIER, aws_retry=True)["ServiceSetting"]["SettingValue"]


@SSMErrorHandler.common_error_handler("count hybrid nodes")
def hybrid_node_count(client) -> int:
    """Registered hybrid (mi-) nodes of the account-region, online or not."""
    nodes = paginated_items(client, "describe_instance_information", "InstanceInformationList",
                            Filters=[{"Key": "ResourceType", "Values": ["ManagedInstance"]}])
    return len(nodes)


def tier_capacity(client) -> dict:
    """{tier, hybrid_nodes, limit, available}; the advanced tier has no per-Region node limit (limit None)."""
    tier = activation_tier(client)
    nodes = hybrid_node_count(client)
    limit = STANDARD_TIER_HYBRID_NODES if tier == STANDARD_TIER else None
    return {"tier": tier, "hybrid_nodes": nodes, "limit": limit,
            "available": None if limit is None else max(0, limit - nodes)}


def capacity_problem(capacity: dict, planned_nodes: int):
    """A sentence saying why `planned_nodes` more hybrid nodes will not fit, or None when they do."""
    if capacity["available"] is None or planned_nodes <= capacity["available"]:
        return None
    return (f"planned_nodes: {planned_nodes} more hybrid nodes do not fit the {capacity['tier']} instance tier: "
            f"{capacity['hybrid_nodes']} of its {capacity['limit']} hybrid nodes per account and Region are "
            f"registered, {capacity['available']} can be added; deregister stale nodes "
            f"(fleetpatch.ssm.managed_instance_info + managed_instance state=absent) or switch the account-region to "
            f"the advanced tier (setting {ACTIVATION_TIER})")


def registration_limit(params: dict) -> int:
    """registration_limit as set, else sized to planned_nodes, else AWS's default of 1; checked against both."""
    planned, limit = params["planned_nodes"], params["registration_limit"]
    if planned is not None and planned < 1:
        reject("planned_nodes", planned, "is out of range; allowed: 1 or more")
    if limit is None:
        limit = planned or 1
        check_range("planned_nodes", limit, *REGISTRATION_LIMIT)  # it sizes the activation
    check_range("registration_limit", limit, *REGISTRATION_LIMIT)
    if planned and limit < planned:
        raise ParameterError(
            f"planned_nodes: {planned} is more than registration_limit ({limit}), the number of nodes the activation "
            "can register; allowed: at most registration_limit, or leave registration_limit unset to size the "
            "activation to planned_nodes"
        )
    return limit
