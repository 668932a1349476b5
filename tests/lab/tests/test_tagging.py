"""GetResources of the Resource Groups Tagging API over the lab's SSM tags and moto's other resources
(fleetlab.tagging)."""
from __future__ import annotations

import botocore.config
import botocore.exceptions
import pytest

from fleetlab import nodes

MANAGED_INSTANCE = "ssm:managed-instance"


def _fails(code: str, call, **kwargs) -> str:
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        call(**kwargs)
    assert excinfo.value.response["Error"]["Code"] == code, excinfo.value
    return excinfo.value.response["Error"]["Message"]


def _hybrid_nodes(aws, *patch_groups) -> list[str]:
    """One registered hybrid node per entry; an entry's PatchGroup tag comes from its activation (None: untagged)."""
    node_ids = []
    for index, group in enumerate(patch_groups):
        tags = [{"Key": "PatchGroup", "Value": group}] if group else []
        activation = aws.ssm.create_activation(IamRole="SSMServiceRole", Tags=tags)
        node_ids.append(nodes.register_with_activation(
            activation["ActivationId"], activation["ActivationCode"], aws.region, computer_name=f"dc-{index:02d}",
            platform_key="ubuntu-22.04").node_id)
    return node_ids


def _arn(aws, node_id: str) -> str:
    return f"arn:aws:ssm:{aws.region}:{aws.account}:managed-instance/{node_id}"


def _all(tagging, **kwargs) -> dict:
    """{ARN: tags} over every page."""
    pages = tagging.get_paginator("get_resources").paginate(**kwargs)
    return {m["ResourceARN"]: {t["Key"]: t["Value"] for t in m["Tags"]}
            for page in pages for m in page["ResourceTagMappingList"]}


def test_managed_nodes_come_with_their_tags_untagged_ones_do_not(aws):
    tagged, other, untagged = _hybrid_nodes(aws, "prod-sensitive", "nonprod", None)
    aws.ssm.add_tags_to_resource(ResourceType="ManagedInstance", ResourceId=other, Tags=[{"Key": "Name", "Value": "x"}])
    tagging = aws.client("resourcegroupstaggingapi")

    found = _all(tagging, ResourceTypeFilters=[MANAGED_INSTANCE])

    assert found == {_arn(aws, tagged): {"PatchGroup": "prod-sensitive"},
                     _arn(aws, other): {"PatchGroup": "nonprod", "Name": "x"}}
    assert _arn(aws, untagged) not in _all(tagging)
    aws.ssm.deregister_managed_instance(InstanceId=tagged)
    assert _all(tagging, ResourceTypeFilters=["ssm"]) == {_arn(aws, other): {"PatchGroup": "nonprod", "Name": "x"}}


def test_pages_follow_the_token_and_resources_per_page(aws):
    node_ids = _hybrid_nodes(aws, *["prod-auto"] * 5)
    tagging = aws.client("resourcegroupstaggingapi")

    first = tagging.get_resources(ResourceTypeFilters=[MANAGED_INSTANCE], ResourcesPerPage=2)
    pages = list(tagging.get_paginator("get_resources").paginate(
        ResourceTypeFilters=[MANAGED_INSTANCE], PaginationConfig={"PageSize": 2}))

    assert len(first["ResourceTagMappingList"]) == 2 and first["PaginationToken"]
    assert [len(p["ResourceTagMappingList"]) for p in pages] == [2, 2, 1]
    assert sorted(m["ResourceARN"] for p in pages for m in p["ResourceTagMappingList"]) == sorted(
        _arn(aws, n) for n in node_ids)
    assert not pages[-1].get("PaginationToken")


def test_tags_per_page_never_splits_a_resource_from_its_tags(aws):
    node_ids = _hybrid_nodes(aws, "a", "b", "c")
    for node_id in node_ids:
        aws.ssm.add_tags_to_resource(ResourceType="ManagedInstance", ResourceId=node_id,
                                     Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(44)])  # 45 tags each
    pages = list(aws.client("resourcegroupstaggingapi").get_paginator("get_resources").paginate(
        ResourceTypeFilters=[MANAGED_INSTANCE], TagsPerPage=100))

    assert [len(p["ResourceTagMappingList"]) for p in pages] == [2, 1]
    assert all(len(m["Tags"]) == 45 for p in pages for m in p["ResourceTagMappingList"])


def test_tag_filters_and_ec2_resources_from_moto(aws):
    prod, nonprod = _hybrid_nodes(aws, "prod-auto", "nonprod")
    instance = aws.ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1, TagSpecifications=[
        {"ResourceType": "instance", "Tags": [{"Key": "PatchGroup", "Value": "prod-auto"}]}])["Instances"][0]
    instance_arn = f"arn:aws:ec2:{aws.region}:{aws.account}:instance/{instance['InstanceId']}"
    tagging = aws.client("resourcegroupstaggingapi")

    by_group = _all(tagging, TagFilters=[{"Key": "PatchGroup", "Values": ["prod-auto", "jump-log"]}])
    any_value = _all(tagging, TagFilters=[{"Key": "PatchGroup"}], ResourceTypeFilters=["ec2:instance", "ssm"])
    listed = tagging.get_resources(ResourceARNList=[_arn(aws, nonprod), instance_arn, _arn(aws, "mi-0123456789abcdef0")])

    assert set(by_group) == {_arn(aws, prod), instance_arn}
    assert set(any_value) == {_arn(aws, prod), _arn(aws, nonprod), instance_arn}
    assert sorted(m["ResourceARN"] for m in listed["ResourceTagMappingList"]) == sorted(
        [_arn(aws, nonprod), instance_arn])  # an ARN of no resource is left out


def test_what_aws_refuses(aws):
    _hybrid_nodes(aws, "prod-auto")
    arn = _arn(aws, "mi-0123456789abcdef0")
    tagging = aws.session.client("resourcegroupstaggingapi", endpoint_url=aws.endpoint,
                                 config=botocore.config.Config(parameter_validation=False))

    for bad in ({"ResourcesPerPage": 0}, {"ResourcesPerPage": 101}, {"TagsPerPage": 99},
                {"ResourceARNList": [arn], "ResourceTypeFilters": ["ssm"]},
                {"ResourceARNList": [arn], "TagFilters": [{"Key": "PatchGroup"}]},
                {"ResourceARNList": [arn], "ResourcesPerPage": 10},
                {"ResourceTypeFilters": ["ssm"] * 101}, {"ResourceARNList": [arn] * 101},
                {"ExcludeCompliantResources": True}, {"PaginationToken": "not-a-lab-token"}):
        _fails("InvalidParameterException", tagging.get_resources, **bad)
    assert "ResourcesPerPage must be between 1 and 100" in _fails(
        "InvalidParameterException", tagging.get_resources, ResourcesPerPage=500)


def test_throttled_and_denied_like_aws(aws, control):
    _hybrid_nodes(aws, "prod-auto")
    tagging = aws.session.client("resourcegroupstaggingapi", endpoint_url=aws.endpoint,
                                 config=botocore.config.Config(retries={"total_max_attempts": 1}))
    control.post("/calls/reset")
    control.post("/throttle", {"ratio": 1.0, "operations": ["GetResources"]})
    try:
        _fails("ThrottledException", tagging.get_resources)
    finally:
        control.post("/throttle", {})
    control.post("/tagging/deny", {"accounts": [aws.account]})
    try:
        message = _fails("AccessDeniedException", tagging.get_resources, ResourceTypeFilters=[MANAGED_INSTANCE])
    finally:
        control.post("/tagging/deny", {"accounts": []})

    assert "tag:GetResources" in message
    assert len(tagging.get_resources(ResourceTypeFilters=[MANAGED_INSTANCE])["ResourceTagMappingList"]) == 1
    assert {(c["account"], c["operation"]): c["count"] for c in control.get("/calls")["calls"]} == {
        (aws.account, "GetResources"): 3}
