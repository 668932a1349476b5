# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleetpatch.ssm.managed_instance and managed_instance_info on a stubbed SSM client: hybrid nodes only, tags
merged unless purged, deregistration idempotent, stale nodes by the age of their last ping."""
from __future__ import annotations

import datetime

import pytest

from ansible_collections.fleetpatch.ssm.plugins.modules import managed_instance
from ansible_collections.fleetpatch.ssm.plugins.modules import managed_instance_info
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import run_module
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import stubbed

NODE = "mi-0123456789abcdef0"
OTHER = "mi-0fedcba9876543210"
NOW = datetime.datetime.now(datetime.timezone.utc)


def info(node=NODE, ping="Online", days_ago=0.0) -> dict:
    return {"InstanceId": node, "PingStatus": ping, "LastPingDateTime": NOW - datetime.timedelta(days=days_ago),
            "ResourceType": "ManagedInstance", "ComputerName": f"vm-{node[-4:]}", "SourceId": node,
            "SourceType": "AWS::SSM::ManagedInstance"}


def expect_node(stubber, rows):
    stubber.add_response("describe_instance_information", {"InstanceInformationList": rows},
                         {"Filters": [{"Key": "InstanceIds", "Values": [NODE]}], "MaxResults": 50})


def expect_tags(stubber, tags, node=NODE):
    stubber.add_response("list_tags_for_resource", {"TagList": [{"Key": k, "Value": v} for k, v in tags.items()]},
                         {"ResourceType": "ManagedInstance", "ResourceId": node})


def run(main, args, calls=(), check_mode=False):
    with stubbed() as (client, stubber):
        for queue in calls:
            queue(stubber)
        return run_module(main, args, client, check_mode=check_mode)


def run_instance(args, calls=(), check_mode=False):
    return run(managed_instance.main, dict({"instance_id": NODE}, **args), calls, check_mode)


def test_tags_are_added_to_the_nodes_other_tags():
    calls = [lambda s: expect_node(s, [info()]), lambda s: expect_tags(s, {"Owner": "activation"}),
             lambda s: s.add_response("add_tags_to_resource", {}, {
                 "ResourceType": "ManagedInstance", "ResourceId": NODE,
                 "Tags": [{"Key": "PatchGroup", "Value": "prod-auto"}]}),
             lambda s: expect_node(s, [info()]),
             lambda s: expect_tags(s, {"Owner": "activation", "PatchGroup": "prod-auto"})]
    result = run_instance({"tags": {"PatchGroup": "prod-auto"}}, calls)
    assert result["changed"] is True
    assert result["diff"]["after"] == {"tags": {"Owner": "activation", "PatchGroup": "prod-auto"}}


def test_purge_removes_the_tags_not_listed():
    calls = [lambda s: expect_node(s, [info()]), lambda s: expect_tags(s, {"Owner": "x", "PatchGroup": "a"}),
             lambda s: s.add_response("remove_tags_from_resource", {}, {
                 "ResourceType": "ManagedInstance", "ResourceId": NODE, "TagKeys": ["Owner"]}),
             lambda s: expect_node(s, [info()]), lambda s: expect_tags(s, {"PatchGroup": "a"})]
    result = run_instance({"tags": {"PatchGroup": "a"}, "purge_tags": True}, calls)
    assert result["changed"] is True and result["managed_instance"]["tags"] == {"PatchGroup": "a"}


def test_tags_already_there_are_no_change():
    calls = [lambda s: expect_node(s, [info()]), lambda s: expect_tags(s, {"Owner": "x", "PatchGroup": "a"})]
    result = run_instance({"tags": {"PatchGroup": "a"}}, calls)
    assert result["changed"] is False and result["managed_instance"]["ping_status"] == "Online"


def test_tagging_a_node_that_is_not_registered_fails():
    result = run_instance({"tags": {"PatchGroup": "a"}}, [lambda s: expect_node(s, [])])
    assert result["failed"] is True
    assert result["msg"].startswith(f"instance_id: '{NODE}' is not a hybrid node registered in this account")


def test_deregister_and_again():
    calls = [lambda s: expect_node(s, [info(ping="ConnectionLost", days_ago=3)]), lambda s: expect_tags(s, {}),
             lambda s: s.add_response("deregister_managed_instance", {}, {"InstanceId": NODE})]
    result = run_instance({"state": "absent"}, calls)
    assert result["changed"] is True and result["managed_instance"] is None
    assert result["diff"]["before"]["ping_status"] == "ConnectionLost"
    assert run_instance({"state": "absent"}, [lambda s: expect_node(s, [])]) == {
        "changed": False, "managed_instance": None}


@pytest.mark.parametrize("error, failed", [("InvalidInstanceId", False), ("AccessDeniedException", True)])
def test_a_node_deregistered_meanwhile_is_what_absent_asked_for_and_other_errors_fail(error, failed):
    calls = [lambda s: expect_node(s, [info(ping="ConnectionLost", days_ago=3)]), lambda s: expect_tags(s, {}),
             lambda s: s.add_client_error("deregister_managed_instance", error, expected_params={"InstanceId": NODE})]
    result = run_instance({"state": "absent"}, calls)
    assert result.get("failed", False) is failed
    if failed:
        assert result["msg"].startswith("Failed to deregister managed node")
    else:
        assert result["changed"] is True and result["managed_instance"] is None


def test_a_node_of_another_account_is_not_there_for_this_one():
    """AWS answers InvalidInstanceId for a node the caller does not own."""
    calls = [lambda s: s.add_client_error("describe_instance_information", "InvalidInstanceId", expected_params={
        "Filters": [{"Key": "InstanceIds", "Values": [NODE]}], "MaxResults": 50})]
    assert run_instance({"state": "absent"}, calls) == {"changed": False, "managed_instance": None}


@pytest.mark.parametrize("state, instance_id, message", [
    ("absent", "i-0123456789abcdef0", "instance_id: 'i-0123456789abcdef0' is an EC2 instance, which is not "
                                      "deregistered by this module"),
    ("present", "i-0123456789abcdef0", "instance_id: 'i-0123456789abcdef0' is an EC2 instance, which is not tagged"),
    ("absent", "mi-123", "instance_id: 'mi-123' is not valid; allowed: a hybrid node ID, mi- followed by 17"),
])
def test_only_hybrid_node_ids_are_accepted_before_any_call(state, instance_id, message):
    result = run_instance({"instance_id": instance_id, "state": state})
    assert result["failed"] is True and result["msg"].startswith(message)


def test_aws_reserved_tags_are_refused():
    result = run_instance({"tags": {"aws:cloudformation:stack-name": "x"}})
    assert result["failed"] is True and result["msg"].startswith("tags: 'aws:cloudformation:stack-name' uses the prefix")


# ---------------------------------------------------------------------------------------------- info

def expect_list(stubber, rows, filters):
    stubber.add_response("describe_instance_information", {"InstanceInformationList": rows},
                         {"Filters": filters, "MaxResults": 50})


HYBRID = {"Key": "ResourceType", "Values": ["ManagedInstance"]}


def test_info_finds_nodes_connection_lost_for_the_given_days():
    rows = [info(NODE, "ConnectionLost", days_ago=31), info(OTHER, "ConnectionLost", days_ago=29)]
    calls = [lambda s: expect_list(s, rows, [HYBRID, {"Key": "PingStatus", "Values": ["ConnectionLost"]}])]
    result = run(managed_instance_info.main, {"connection_lost_days": 30, "include_tags": False}, calls)
    (stale,) = result["managed_instances"]
    assert stale["instance_id"] == NODE and 30.9 < stale["last_ping_age_days"] < 31.1


def test_info_sends_tag_filters_alone_and_applies_the_others_to_the_answer():
    rows = [info(NODE), info(OTHER, "ConnectionLost"), dict(info("i-0123456789abcdef0"), ResourceType="EC2Instance")]
    calls = [lambda s: expect_list(s, rows, [{"Key": "tag:PatchGroup", "Values": ["nonprod"]}]),
             lambda s: expect_tags(s, {"PatchGroup": "nonprod"})]
    result = run(managed_instance_info.main, {"tags": {"PatchGroup": "nonprod"}, "ping_status": ["Online"]}, calls)
    assert [(n["instance_id"], n["tags"]) for n in result["managed_instances"]] == [(NODE, {"PatchGroup": "nonprod"})]


def test_info_filters_by_source_id():
    vm_id = "6b1d2c54-93a4-4c4e-9a0f-1f7c2b3d4e5f"
    rows = [dict(info(NODE), SourceId=vm_id, SourceType="Microsoft.Compute/virtualMachines")]
    calls = [lambda s: expect_list(s, rows, [HYBRID, {"Key": "SourceIds", "Values": [vm_id]}])]
    result = run(managed_instance_info.main, {"source_ids": [vm_id], "include_tags": False}, calls)
    assert [n["source_id"] for n in result["managed_instances"]] == [vm_id]


def test_info_lists_nothing_for_an_id_another_account_owns():
    """AWS refuses the InstanceIds filter with InvalidInstanceId when an ID is not a node of the account: the
    question "is this registration alive here?" then has the answer "no", not an error."""
    by_id = [HYBRID, {"Key": "InstanceIds", "Values": [OTHER]}]
    calls = [lambda s: s.add_client_error("describe_instance_information", "InvalidInstanceId",
                                          expected_params={"Filters": by_id, "MaxResults": 50}),
             lambda s: expect_list(s, [info(NODE)], [HYBRID])]
    result = run(managed_instance_info.main, {"instance_ids": [OTHER], "include_tags": False}, calls)
    assert not result.get("failed"), result.get("msg")
    assert result["managed_instances"] == []
