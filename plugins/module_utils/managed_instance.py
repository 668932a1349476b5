# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetpatch.ssm project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Hybrid managed nodes (mi-): their information, tags, deregistration, and which of them are stale.

Used by managed_instance and managed_instance_info. A hybrid node is what a machine outside AWS becomes when its
SSM agent registers with an activation: `mi-` + 17 hex digits, ResourceType ManagedInstance. Its tags live in SSM
(ResourceType ManagedInstance of AddTagsToResource & co., for mi- IDs only); EC2 instances are tagged and ended
through EC2, never here.

DescribeInstanceInformation lists registered hybrid nodes whether their agent is Online or ConnectionLost; a node
whose machine is gone stays ConnectionLost until it is deregistered, and it still counts against the activation
tier's 1,000 hybrid nodes. "Stale" here is ConnectionLost with a last ping older than N days.
"""

from __future__ import annotations

import datetime

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code

from .ssm import SSMErrorHandler
from .ssm import iso_dates
from .ssm import paginated_items
from .validation import check_pattern
from .validation import reject

RESOURCE_TYPE = "ManagedInstance"
MANAGED_INSTANCE_ID = (r"mi-[0-9a-f]{17}", "a hybrid node ID, mi- followed by 17 hexadecimal digits")
PING_STATUSES = ("Online", "ConnectionLost")  # Inactive is deprecated: AWS no longer reports it
MAX_FILTER_VALUES = 100  # [model] InstanceInformationFilterValueSet

UTC = datetime.timezone.utc

# InstanceInformation member -> the user's name.
_FIELDS = {
    "InstanceId": "instance_id",
    "Name": "name",
    "ComputerName": "computer_name",
    "IPAddress": "ip_address",
    "PingStatus": "ping_status",
    "LastPingDateTime": "last_ping_date_time",
    "AgentVersion": "agent_version",
    "IsLatestVersion": "is_latest_version",
    "PlatformType": "platform_type",
    "PlatformName": "platform_name",
    "PlatformVersion": "platform_version",
    "ActivationId": "activation_id",
    "IamRole": "iam_role",
    "RegistrationDate": "registration_date",
    "ResourceType": "resource_type",
    "SourceId": "source_id",
    "SourceType": "source_type",
}


def check_instance_id(value: str, state: str = "present") -> None:
    """Only hybrid nodes are managed here; an EC2 instance ID gets an error saying where it belongs."""
    if value.startswith("i-"):
        action = "deregistered" if state == "absent" else "tagged"
        reject("instance_id", value, f"is an EC2 instance, which is not {action} by this module; allowed: "
                                     f"{MANAGED_INSTANCE_ID[1]} (EC2 instances: amazon.aws.ec2_instance, ec2_tag)")
    check_pattern("instance_id", value, *MANAGED_INSTANCE_ID)


def node_state(info: dict, now: datetime.datetime) -> dict:
    """An InstanceInformation record in the user's terms, with the age of its last ping in days."""
    state = {name: info.get(member) for member, name in _FIELDS.items()}
    last_ping = info.get("LastPingDateTime")
    state["last_ping_age_days"] = round(max(0.0, (now - last_ping).total_seconds() / 86400), 2) if last_ping else None
    return iso_dates(state, "last_ping_date_time", "registration_date")


def is_stale(node: dict, days) -> bool:
    """ConnectionLost, last ping `days` or more ago."""
    age = node["last_ping_age_days"]
    return node["ping_status"] == "ConnectionLost" and age is not None and age >= days


# ---------------------------------------------------------------------------------------------- reads

@SSMErrorHandler.common_error_handler("describe managed nodes")
def describe_nodes(client, filters: list) -> list:
    """DescribeInstanceInformation with `Filters`, every page. AWS refuses the whole request (InvalidInstanceId) when
    one of the InstanceIds is not a node of this account: then read without that filter; callers apply matches()."""
    try:
        return paginated_items(client, "describe_instance_information", "InstanceInformationList", Filters=filters)
    except is_boto3_error_code("InvalidInstanceId"):
        others = [item for item in filters if item["Key"] != "InstanceIds"]
        return paginated_items(client, "describe_instance_information", "InstanceInformationList", Filters=others)


class ManagedNodeErrorHandler(SSMErrorHandler):
    """SSM answers InvalidInstanceId for an id that is not a node of this account: deregistered, or another
    account's node. For this account, that node is not there."""

    @classmethod
    def _is_missing(cls):
        return is_boto3_error_code("InvalidInstanceId")


@ManagedNodeErrorHandler.list_error_handler("describe managed node", default_value=())
def _describe_node(client, instance_id: str) -> list:
    return paginated_items(client, "describe_instance_information", "InstanceInformationList",
                           Filters=[{"Key": "InstanceIds", "Values": [instance_id]}])


def get_node(client, instance_id: str, now: datetime.datetime):
    """The hybrid node `instance_id` of this account-region, or None."""
    nodes = [node_state(info, now) for info in _describe_node(client, instance_id)
             if info.get("ResourceType") == RESOURCE_TYPE]
    return nodes[0] if nodes else None


def node_filters(instance_ids=None, source_ids=None, ping_status=None, tags=None) -> list:
    """DescribeInstanceInformation filters for hybrid nodes. Tag filters go alone (the lab, like the examples in the
    API reference, does not combine them with other keys), and lists longer than a filter takes are left out: the
    caller applies `matches()` to what comes back either way."""
    if tags:
        return [{"Key": f"tag:{key}", "Values": [str(value)]} for key, value in sorted(tags.items())]
    filters = [{"Key": "ResourceType", "Values": [RESOURCE_TYPE]}]
    for key, values in (("InstanceIds", instance_ids), ("SourceIds", source_ids), ("PingStatus", ping_status)):
        if values and len(values) <= MAX_FILTER_VALUES:
            filters.append({"Key": key, "Values": sorted(set(values))})
    return filters


def matches(node: dict, instance_ids=None, source_ids=None, ping_status=None) -> bool:
    """The checks of node_filters() on a node, for what the request could not filter."""
    return (node["resource_type"] == RESOURCE_TYPE
            and (not instance_ids or node["instance_id"] in instance_ids)
            and (not source_ids or node["source_id"] in source_ids)
            and (not ping_status or node["ping_status"] in ping_status))


# ---------------------------------------------------------------------------------------------- writes

@ManagedNodeErrorHandler.deletion_error_handler("deregister managed node")
def deregister(client, instance_id: str) -> None:
    """Deregister the node; one deregistered meanwhile is what was asked for."""
    client.deregister_managed_instance(InstanceId=instance_id, aws_retry=True)
