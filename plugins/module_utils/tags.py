# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetpatch.ssm project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Tags of SSM resources (PatchBaseline, MaintenanceWindow, ...): read, desired set, apply the difference.

`tags`/`purge_tags` follow amazon.aws's convention (doc fragment amazon.aws.tags): tags=None leaves tags alone
(and costs no call); purge_tags removes the keys the task does not list, except AWS-reserved `aws:` keys, which
cannot be changed. Tags are a dict, so their order never matters.
"""

from __future__ import annotations

from ansible_collections.amazon.aws.plugins.module_utils.tagging import ansible_dict_to_boto3_tag_list
from ansible_collections.amazon.aws.plugins.module_utils.tagging import boto3_tag_list_to_ansible_dict
from ansible_collections.amazon.aws.plugins.module_utils.tagging import compare_aws_tags

from .ssm import SSMErrorHandler
from .validation import check_length
from .validation import check_tag_characters
from .validation import field_path
from .validation import reject

RESERVED_PREFIX = "aws:"
KEY_LENGTH = (1, 128)  # [model] TagKey
VALUE_LENGTH = (0, 256)  # [model] TagValue


def check_tags(tags) -> None:
    """The model's TagKey/TagValue lengths and characters; `aws:` keys are AWS's own."""
    for key, value in (tags or {}).items():
        check_length(field_path("tags", "key"), key, *KEY_LENGTH)
        check_tag_characters(field_path("tags", "key"), key)
        check_length(field_path("tags", key), str(value), *VALUE_LENGTH)
        check_tag_characters(field_path("tags", key), str(value))
        if key.lower().startswith(RESERVED_PREFIX):
            reject("tags", key, "uses the prefix 'aws:', reserved by AWS; allowed: any other key")


def desired_tags(current, tags: dict, purge: bool) -> dict:
    """The tag set the task asks for, given the current one (None when the resource does not exist yet)."""
    current = current or {}
    kept = {key: value for key, value in current.items() if key.startswith(RESERVED_PREFIX) or not purge}
    return dict(kept, **{key: str(value) for key, value in tags.items()})


@SSMErrorHandler.list_error_handler("list tags", default_value={})
def resource_tags(client, resource_type: str, resource_id: str) -> dict:
    response = client.list_tags_for_resource(ResourceType=resource_type, ResourceId=resource_id, aws_retry=True)
    return boto3_tag_list_to_ansible_dict(response.get("TagList") or [])


@SSMErrorHandler.common_error_handler("update tags")
def apply_tags(client, resource_type: str, resource_id: str, current: dict, desired: dict) -> None:
    to_set, to_remove = compare_aws_tags(current or {}, desired, purge_tags=True)
    if to_remove:
        client.remove_tags_from_resource(
            ResourceType=resource_type, ResourceId=resource_id, TagKeys=sorted(to_remove), aws_retry=True
        )
    if to_set:
        client.add_tags_to_resource(
            ResourceType=resource_type, ResourceId=resource_id, Tags=tag_list(to_set), aws_retry=True
        )


def tag_list(tags: dict) -> list:
    """Tags in the API's [{Key, Value}] form, in key order (stable requests)."""
    return sorted(ansible_dict_to_boto3_tag_list(tags), key=lambda tag: tag["Key"])
