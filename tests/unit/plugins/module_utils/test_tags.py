# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tags of SSM resources: the desired set, the calls that reach it, the checks before them."""
from __future__ import annotations

import pytest

from ansible_collections.fleetpatch.ssm.plugins.module_utils import tags
from ansible_collections.fleetpatch.ssm.plugins.module_utils.validation import ParameterError
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import stubbed

CURRENT = {"Owner": "ops", "Team": "db", "aws:cloudformation:stack-name": "s"}


def test_purge_keeps_only_the_given_tags_and_awss_own():
    assert tags.desired_tags(CURRENT, {"Owner": "platform", "Tier": 1}, purge=True) == {
        "Owner": "platform", "Tier": "1", "aws:cloudformation:stack-name": "s"}


def test_without_purge_the_given_tags_are_added_to_the_current_ones():
    assert tags.desired_tags(CURRENT, {"Owner": "platform"}, purge=False) == dict(CURRENT, Owner="platform")


def test_a_new_resource_gets_the_given_tags():
    assert tags.desired_tags(None, {"Owner": "ops"}, purge=True) == {"Owner": "ops"}


def test_apply_removes_then_sets_exactly_the_difference():
    with stubbed() as (client, stubber):
        stubber.add_response("remove_tags_from_resource", {}, {
            "ResourceType": "PatchBaseline", "ResourceId": "pb-00000000000000001", "TagKeys": ["Team"]})
        stubber.add_response("add_tags_to_resource", {}, {
            "ResourceType": "PatchBaseline", "ResourceId": "pb-00000000000000001",
            "Tags": [{"Key": "Owner", "Value": "platform"}, {"Key": "Tier", "Value": "1"}]})
        tags.apply_tags(client, "PatchBaseline", "pb-00000000000000001", CURRENT,
                        {"Owner": "platform", "Tier": "1", "aws:cloudformation:stack-name": "s"})


def test_read_tags_as_a_dict():
    with stubbed() as (client, stubber):
        stubber.add_response("list_tags_for_resource", {"TagList": [{"Key": "Owner", "Value": "ops"}]},
                             {"ResourceType": "PatchBaseline", "ResourceId": "pb-00000000000000001"})
        assert tags.resource_tags(client, "PatchBaseline", "pb-00000000000000001") == {"Owner": "ops"}


@pytest.mark.parametrize("given, message", [
    ({"aws:owner": "me"}, "tags: 'aws:owner' uses the prefix 'aws:', reserved by AWS"),
    ({"k" * 129: "v"}, "tags.key: '" + "k" * 129 + "' has 129 characters; allowed: 1 to 128"),
    ({"Owner": "v" * 257}, "tags.Owner: '" + "v" * 257 + "' has 257 characters; allowed: 0 to 256"),
    ({"Owner": "ops;dev"}, "tags.Owner: 'ops;dev' contains ';'"),
])
def test_invalid_tags(given, message):
    with pytest.raises(ParameterError) as error:
        tags.check_tags(given)
    assert str(error.value).startswith(message)
