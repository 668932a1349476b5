# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The AWS collector under botocore's Stubber: accounts, roles, regions, sources and what a failure leaves.

Stubber checks every request against the service models, and `expected_params` pins what is sent. One worker makes
the call order (and so each stub's queue) deterministic.
"""
from __future__ import annotations

import datetime

import boto3
import botocore.exceptions
import pytest
from botocore.stub import Stubber

from ansible_collections.fleetpatch.ssm.plugins.plugin_utils import fleet_aws
from ansible_collections.fleetpatch.ssm.plugins.plugin_utils.fleet_aws import Account
from ansible_collections.fleetpatch.ssm.plugins.plugin_utils.fleet_aws import AwsCollector
from ansible_collections.fleetpatch.ssm.plugins.plugin_utils.fleet_jobs import run_jobs

HOME = "eu-west-1"
ERRORS = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)
NOW = datetime.datetime(2026, 1, 5, 12, 0, tzinfo=datetime.timezone.utc)
STATES = {"Name": "instance-state-name", "Values": ["running", "pending", "stopping", "stopped"]}


class StubbedClients:
    """fleet_aws.AwsClients stand-in: one stubbed client per (service, region, access key). A call on a client the
    test did not prepare is a KeyError, which run_jobs lets through: the test fails."""

    def __init__(self):
        self.clients, self.stubbers = {}, {}

    def stub(self, service, region=HOME, access_key="base"):
        key = (service, region, access_key)
        if key not in self.clients:
            client = boto3.client(service, region_name=region, aws_access_key_id=access_key,
                                  aws_secret_access_key="secret")
            self.clients[key], self.stubbers[key] = client, Stubber(client)
            self.stubbers[key].activate()
        return self.stubbers[key]

    def client(self, service, region, credentials=None):
        return self.clients[(service, region, (credentials or {}).get("aws_access_key_id") or "base")]

    def verify(self):
        for stubber in self.stubbers.values():
            stubber.assert_no_pending_responses()


def instances(*ids, tags=None):
    return {"Reservations": [{"ReservationId": "r-0123456789abcdef0", "OwnerId": "123456789012", "Instances": [
        {"InstanceId": i, "State": {"Name": "running", "Code": 16}, "PrivateIpAddress": "10.0.0.1",
         "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()]} for i in ids]}]}


def node_info(node_id, resource_type="EC2Instance"):
    return {"InstanceId": node_id, "PingStatus": "Online", "ResourceType": resource_type, "PlatformType": "Linux",
            "PlatformName": "Ubuntu", "PlatformVersion": "22.04", "LastPingDateTime": NOW}


def credentials(access_key):
    return {"Credentials": {"AccessKeyId": access_key, "SecretAccessKey": "s" * 20, "SessionToken": "t" * 20,
                            "Expiration": NOW}}


def collect(clients, accounts, regions=(HOME,), sources=("ec2", "ssm"), ec2_filters=None, extra_jobs=(),
            hybrid_tags_source="tagging_api"):
    collector = AwsCollector(clients, HOME, regions, sources, fleet_aws.ec2_filters(ec2_filters),
                             fleet_aws.ssm_filters(None), hybrid_tags_source)
    jobs = [job for account in accounts for job in collector.add_account(account)] + [
        make(collector) for make in extra_jobs]
    failures = run_jobs(jobs, 1, ERRORS)
    clients.verify()
    return collector, [str(failure) for failure in failures]


def expect_region(clients, access_key, region, instance_ids, node_ids=(), hybrid=()):
    clients.stub("ec2", region, access_key).add_response(
        "describe_instances", instances(*instance_ids), {"Filters": [STATES], "MaxResults": 1000})
    clients.stub("ssm", region, access_key).add_response(
        "describe_instance_information",
        {"InstanceInformationList": [node_info(n) for n in node_ids] +
                                    [node_info(n, "ManagedInstance") for n in hybrid]},
        {"MaxResults": 50})


def test_one_account_whose_role_cannot_be_assumed_is_reported_and_the_others_are_read():
    clients = StubbedClients()
    sts = clients.stub("sts")
    sts.add_client_error("assume_role", "AccessDenied", "User is not authorized to perform: sts:AssumeRole",
                         403, expected_params={"RoleArn": "arn:aws:iam::234567890123:role/Inventory",
                                               "RoleSessionName": "fleetpatch-inventory"})
    sts.add_response("assume_role", credentials("ASIAPRODNONPROD00001"), {
        "RoleArn": "arn:aws:iam::345678901234:role/Inventory", "RoleSessionName": "fleetpatch-inventory",
        "ExternalId": "fleet-42"})
    expect_region(clients, "base", HOME, ["i-0000000000000000a"], ["i-0000000000000000a"])
    expect_region(clients, "ASIAPRODNONPROD00001", HOME, ["i-0000000000000000b"])

    collector, failures = collect(clients, [
        Account("123456789012", "shared"),
        Account("234567890123", "production", "arn:aws:iam::234567890123:role/Inventory"),
        Account("345678901234", "nonproduction", "arn:aws:iam::345678901234:role/Inventory", "fleet-42"),
    ])

    assert failures == [
        "account 234567890123 (production) assume role arn:aws:iam::234567890123:role/Inventory: An error occurred "
        "(AccessDenied) when calling the AssumeRole operation: User is not authorized to perform: sts:AssumeRole"]
    assert sorted((r["account_id"], r["instance_id"]) for r in collector.ec2) == [
        ("123456789012", "i-0000000000000000a"), ("345678901234", "i-0000000000000000b")]
    assert collector.ec2_listed == {("123456789012", HOME), ("345678901234", HOME)}


def test_a_region_that_is_not_enabled_fails_alone():
    clients = StubbedClients()
    expect_region(clients, "base", HOME, ["i-0000000000000000a"], ["i-0000000000000000a"])
    # a disabled opt-in region: EC2 AuthFailure, SSM UnrecognizedClientException
    clients.stub("ec2", "me-south-1").add_client_error(
        "describe_instances", "AuthFailure", "AWS was not able to validate the provided access credentials", 401)
    clients.stub("ssm", "me-south-1").add_client_error(
        "describe_instance_information", "UnrecognizedClientException",
        "The security token included in the request is invalid.", 400)

    collector, failures = collect(clients, [Account("123456789012", "123456789012")], regions=(HOME, "me-south-1"))

    assert [f.split(":")[0] for f in failures] == ["account 123456789012 me-south-1 ec2",
                                                   "account 123456789012 me-south-1 ssm"]
    assert "(AuthFailure)" in failures[0]
    assert [r["instance_id"] for r in collector.ec2] == ["i-0000000000000000a"]
    assert collector.ec2_listed == {("123456789012", HOME)}


def test_without_regions_each_account_reads_its_enabled_regions():
    clients = StubbedClients()
    clients.stub("ec2", HOME).add_response("describe_regions", {"Regions": [
        {"RegionName": "us-east-1"}, {"RegionName": "eu-west-1"}]}, {})
    expect_region(clients, "base", "eu-west-1", [])
    expect_region(clients, "base", "us-east-1", ["i-0000000000000000c"])

    collector, failures = collect(clients, [Account("123456789012", "123456789012")], regions=())

    assert failures == []
    assert collector.ec2_listed == {("123456789012", "eu-west-1"), ("123456789012", "us-east-1")}


def org_account(account_id, name, **state):
    return {"Id": account_id, "Name": name, "Arn": f"arn:aws:organizations::123456789012:account/o-1/{account_id}",
            **state}


def test_organization_accounts_active_not_excluded_each_once():
    clients = StubbedClients()
    clients.stub("organizations").add_response("list_accounts", {"Accounts": [
        org_account("123456789012", "management", State="ACTIVE"),
        org_account("234567890123", "production", State="ACTIVE"),
        org_account("345678901234", "closed", State="SUSPENDED", Status="SUSPENDED"),
        org_account("456789012345", "legacy", Status="ACTIVE"),  # before AWS added State
        org_account("567890123456", "sandbox", State="ACTIVE"),
    ]}, {"MaxResults": 20})
    sts = clients.stub("sts")
    for account_id, key in (("234567890123", "ASIAPROD000000000001"), ("456789012345", "ASIALEGACY0000000001")):
        sts.add_response("assume_role", credentials(key), {
            "RoleArn": f"arn:aws:iam::{account_id}:role/OrgInventory", "RoleSessionName": "fleetpatch-inventory"})
        expect_region(clients, key, HOME, [])
    expect_region(clients, "base", HOME, [])

    collector, failures = collect(
        clients, [Account("123456789012", "123456789012")], sources=("ec2", "ssm"),
        extra_jobs=[lambda c: c.organization_job("OrgInventory", None, ["567890123456"], ())])

    assert failures == []
    assert {a: (acc.name, acc.role_arn) for a, acc in collector.accounts.items()} == {
        "123456789012": ("123456789012", None),  # the current credentials' account: no role needed
        "234567890123": ("production", "arn:aws:iam::234567890123:role/OrgInventory"),
        "456789012345": ("legacy", "arn:aws:iam::456789012345:role/OrgInventory"),
    }


MANAGED_INSTANCES = {"ResourceTypeFilters": ["ssm:managed-instance"], "ResourcesPerPage": 100}


def managed_instance(node_id, tags, region=HOME, account="123456789012"):
    return {"ResourceARN": f"arn:aws:ssm:{region}:{account}:managed-instance/{node_id}",
            "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}


def list_hybrid(clients, *node_ids, region=HOME, access_key="base"):
    clients.stub("ssm", region, access_key).add_response(
        "describe_instance_information",
        {"InstanceInformationList": [node_info("i-0000000000000000a")] +
                                    [node_info(n, "ManagedInstance") for n in node_ids]}, {"MaxResults": 50})


def test_hybrid_nodes_get_their_tags_from_every_page_of_one_get_resources():
    clients = StubbedClients()
    ssm = clients.stub("ssm")
    ssm.add_response("describe_instance_information", {
        "InstanceInformationList": [node_info("mi-00000000000000001", "ManagedInstance")], "NextToken": "page2"},
        {"MaxResults": 50})
    second_page = [node_info("i-0000000000000000a"), node_info("mi-00000000000000002", "ManagedInstance"),
                   node_info("mi-00000000000000003", "ManagedInstance")]
    ssm.add_response("describe_instance_information", {"InstanceInformationList": second_page},
                     {"MaxResults": 50, "NextToken": "page2"})
    tagging = clients.stub("resourcegroupstaggingapi")
    tagging.add_response("get_resources", {"ResourceTagMappingList": [
        managed_instance("mi-00000000000000001", {"PatchGroup": "prod-sensitive", "Name": "db-1"}),
        managed_instance("mi-0000000000000000f", {"PatchGroup": "nonprod"}),  # not listed (deregistered, filtered)
    ], "PaginationToken": "tags2"}, MANAGED_INSTANCES)
    tagging.add_response("get_resources", {"ResourceTagMappingList": [
        managed_instance("mi-00000000000000002", {"Patch Group": "jump-log"}),
    ]}, dict(MANAGED_INSTANCES, PaginationToken="tags2"))

    collector, failures = collect(clients, [Account("123456789012", "123456789012")], sources=("ssm",))

    assert failures == []
    assert {r["instance_id"]: r["tags"] for r in collector.ssm} == {
        "mi-00000000000000001": {"PatchGroup": "prod-sensitive", "Name": "db-1"},
        "mi-00000000000000002": {"Patch Group": "jump-log"},
        "mi-00000000000000003": {},  # GetResources returns no untagged resource: no tags, not unknown ones
        "i-0000000000000000a": None,  # an EC2 node's tags are its instance's (EC2)
    }
    assert collector.tagging_denied == []


def test_tags_are_read_once_per_account_region_with_hybrid_nodes_only():
    clients = StubbedClients()
    list_hybrid(clients, "mi-00000000000000001", "mi-00000000000000002")
    clients.stub("resourcegroupstaggingapi").add_response("get_resources", {"ResourceTagMappingList": [
        managed_instance("mi-00000000000000001", {"PatchGroup": "prod-auto"}),
        managed_instance("mi-00000000000000002", {"PatchGroup": "prod-auto"})]}, MANAGED_INSTANCES)
    list_hybrid(clients, region="us-east-1")  # no hybrid node there: no tagging client, no call

    collector, failures = collect(clients, [Account("123456789012", "123456789012")], regions=(HOME, "us-east-1"),
                                  sources=("ssm",))

    assert failures == []
    assert ("resourcegroupstaggingapi", "us-east-1", "base") not in clients.clients
    assert sorted(r["instance_id"] for r in collector.ssm if r["tags"] == {"PatchGroup": "prod-auto"}) == [
        "mi-00000000000000001", "mi-00000000000000002"]


def test_where_get_resources_is_denied_each_node_is_read_and_the_region_is_named():
    clients = StubbedClients()
    sts = clients.stub("sts")
    sts.add_response("assume_role", credentials("ASIAPROD000000000001"), {
        "RoleArn": "arn:aws:iam::234567890123:role/Inventory", "RoleSessionName": "fleetpatch-inventory"})
    list_hybrid(clients, "mi-00000000000000001", "mi-00000000000000002", access_key="ASIAPROD000000000001")
    clients.stub("resourcegroupstaggingapi", access_key="ASIAPROD000000000001").add_client_error(
        "get_resources", "AccessDeniedException", "User: arn:aws:sts::234567890123:assumed-role/Inventory/fleetpatch-"
        "inventory is not authorized to perform: tag:GetResources", 400, expected_params=MANAGED_INSTANCES)
    ssm = clients.stub("ssm", access_key="ASIAPROD000000000001")
    for node_id, group in (("mi-00000000000000001", "prod-auto"), ("mi-00000000000000002", "nonprod")):
        ssm.add_response("list_tags_for_resource", {"TagList": [{"Key": "PatchGroup", "Value": group}]},
                         {"ResourceType": "ManagedInstance", "ResourceId": node_id})

    collector, failures = collect(clients, [Account("234567890123", "production",
                                                    "arn:aws:iam::234567890123:role/Inventory")], sources=("ssm",))

    assert failures == []
    assert collector.tagging_denied == ["account 234567890123 (production) eu-west-1"]
    assert {r["instance_id"]: r["tags"] for r in collector.ssm if r["tags"] is not None} == {
        "mi-00000000000000001": {"PatchGroup": "prod-auto"}, "mi-00000000000000002": {"PatchGroup": "nonprod"}}


def test_get_resources_failing_otherwise_leaves_the_regions_hybrid_nodes_out_and_says_so():
    clients = StubbedClients()
    list_hybrid(clients, "mi-00000000000000001", "mi-00000000000000002")
    clients.stub("resourcegroupstaggingapi").add_client_error(
        "get_resources", "ThrottledException", "Rate exceeded", 400, expected_params=MANAGED_INSTANCES)

    collector, failures = collect(clients, [Account("123456789012", "123456789012")], sources=("ssm",))

    assert failures == ["account 123456789012 eu-west-1 ssm tags of 2 hybrid node(s) (GetResources; left out: their "
                        "patch group is unknown): An error occurred (ThrottledException) when calling the "
                        "GetResources operation: Rate exceeded"]
    assert [r["tags"] for r in collector.ssm if r["instance_id"].startswith("mi-")] == [None, None]
    assert collector.tagging_denied == []


def test_per_node_reads_each_hybrid_nodes_tags_from_ssm():
    clients = StubbedClients()
    list_hybrid(clients, "mi-00000000000000001")
    clients.stub("ssm").add_response("list_tags_for_resource", {"TagList": [{"Key": "PatchGroup", "Value": "a"}]},
                                     {"ResourceType": "ManagedInstance", "ResourceId": "mi-00000000000000001"})

    collector, failures = collect(clients, [Account("123456789012", "123456789012")], sources=("ssm",),
                                  hybrid_tags_source="per_node")

    assert failures == []
    assert ("resourcegroupstaggingapi", HOME, "base") not in clients.clients
    assert {r["instance_id"]: r["tags"] for r in collector.ssm} == {
        "mi-00000000000000001": {"PatchGroup": "a"}, "i-0000000000000000a": None}


def test_a_failed_node_tag_lookup_is_reported_with_its_consequence():
    clients = StubbedClients()
    list_hybrid(clients, "mi-00000000000000001")
    clients.stub("ssm").add_client_error("list_tags_for_resource", "ThrottlingException", "Rate exceeded", 400)

    collector, failures = collect(clients, [Account("123456789012", "123456789012")], sources=("ssm",),
                                  hybrid_tags_source="per_node")

    assert failures == ["account 123456789012 eu-west-1 ssm tags of mi-00000000000000001 (left out: its patch "
                        "group is unknown): An error occurred (ThrottlingException) when calling the "
                        "ListTagsForResource operation: Rate exceeded"]
    assert collector.ssm[1]["tags"] is None


def test_ec2_filters_keep_the_default_states_unless_they_name_states():
    assert fleet_aws.ec2_filters({"tag:Env": ["prod", "qa"]}) == [
        STATES, {"Name": "tag:Env", "Values": ["prod", "qa"]}]
    assert fleet_aws.ec2_filters({"instance-state-name": "running"}) == [
        {"Name": "instance-state-name", "Values": ["running"]}]
    assert fleet_aws.ssm_filters({"PingStatus": "Online"}) == [{"Key": "PingStatus", "Values": ["Online"]}]


def test_accounts_option_entries():
    accounts = fleet_aws.accounts_from_options([
        "arn:aws:iam::234567890123:role/Inventory",
        {"role_arn": "arn:aws-us-gov:iam::345678901234:role/path/Inventory", "name": "gov", "regions": ["us-gov-west-1"],
         "external_id": "x1"}])

    assert [(a.account_id, a.name, a.regions, a.external_id) for a in accounts] == [
        ("234567890123", "234567890123", (), None), ("345678901234", "gov", ("us-gov-west-1",), "x1")]
    with pytest.raises(fleet_aws.AccountSpecError, match="is not an IAM role ARN"):
        fleet_aws.accounts_from_options(["arn:aws:iam::2345:role/x"])
    with pytest.raises(fleet_aws.AccountSpecError, match=r"unknown key\(s\) \['region'\]"):
        fleet_aws.accounts_from_options([{"role_arn": "arn:aws:iam::234567890123:role/x", "region": "eu-west-1"}])


DESCRIBE_INSTANCES_XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>8f7e3c1a-0000-4000-8000-000000000001</requestId>
  <reservationSet><item><reservationId>r-0123456789abcdef0</reservationId><ownerId>123456789012</ownerId>
    <instancesSet><item>
      <instanceId>i-0123456789abcdef0</instanceId><instanceState><code>16</code><name>running</name></instanceState>
      <launchTime>2026-01-05T12:00:00.000Z</launchTime>
    </item></instancesSet>
  </item></reservationSet>
</DescribeInstancesResponse>"""


def test_sessions_leave_timestamps_as_sent_and_records_read_them_as_iso_utc():
    """The inventory's clients skip botocore's dateutil pass over every timestamp of a page; the record still
    carries the same ISO 8601 UTC text botocore's datetime would have given."""
    session = fleet_aws.make_session({"aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "secret"}, None)
    ec2 = session.client("ec2", region_name=HOME)
    parser = session._session.get_component("response_parser_factory").create_parser("ec2")  # pylint: disable=protected-access
    parsed = parser.parse({"body": DESCRIBE_INSTANCES_XML, "headers": {}, "status_code": 200},
                          ec2.meta.service_model.operation_model("DescribeInstances").output_shape)
    instance = parsed["Reservations"][0]["Instances"][0]
    assert instance["LaunchTime"] == "2026-01-05T12:00:00.000Z"
    assert fleet_aws.ec2_record(instance, "123456789012", HOME)["launch_time"] == NOW.isoformat()


@pytest.mark.parametrize("sent", [
    "2026-01-05T12:00:00.000Z",  # query/XML protocols (EC2)
    "2026-01-05T12:00:00Z",
    "2026-01-05T13:00:00+01:00",
    1767614400,  # JSON protocols (SSM): epoch seconds
    1767614400.0,
    "Mon, 05 Jan 2026 12:00:00 GMT",  # RFC 822 (rest-xml headers)
    NOW,  # parsed already (Stubber, or a caller's own parser)
    datetime.datetime(2026, 1, 5, 12, 0),  # naive: AWS timestamps are UTC
])
def test_iso_timestamp_reads_every_form_aws_sends(sent):
    assert fleet_aws.iso_timestamp(sent) == "2026-01-05T12:00:00+00:00"


@pytest.mark.parametrize("absent", [None, ""])
def test_iso_timestamp_of_nothing_is_none(absent):
    assert fleet_aws.iso_timestamp(absent) is None
