"""Managed nodes, hybrid activations, instance information, tags and service settings (fleetlab.nodes)."""
from __future__ import annotations

import datetime

import botocore.config
import botocore.exceptions
import pytest

from fleetlab import nodes
from fleetlab.errors import InvalidActivation, ResourceLimitExceededException

TIER = "/ssm/managed-instance/activation-tier"


def _code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def _fails(code: str, call, *args, **kwargs) -> str:
    """Run an AWS call that must fail with `code`; return the error message."""
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        call(*args, **kwargs)
    assert _code(excinfo) == code, excinfo.value
    return excinfo.value.response["Error"]["Message"]


def _server_side(aws):
    """An SSM client that skips botocore's client-side checks, to see what the service itself answers."""
    return aws.session.client("ssm", endpoint_url=aws.endpoint,
                              config=botocore.config.Config(parameter_validation=False))


def _activation(aws, **kwargs) -> dict:
    params = {"IamRole": "SSMServiceRole", "RegistrationLimit": 5, **kwargs}
    return aws.ssm.create_activation(**params)


def _register(aws, activation: dict, name: str = "onprem-01", platform_key: str = "ubuntu-22.04", **kwargs):
    return nodes.register_with_activation(
        activation["ActivationId"], activation["ActivationCode"], aws.region,
        computer_name=name, platform_key=platform_key, **kwargs,
    )


def _info(aws, **kwargs) -> list[dict]:
    pages = aws.ssm.get_paginator("describe_instance_information").paginate(**kwargs)
    return [info for page in pages for info in page["InstanceInformationList"]]


def _ids(infos: list[dict]) -> set[str]:
    return {info["InstanceId"] for info in infos}


# --- activations ---------------------------------------------------------------------------------------------

def test_activation_code_is_returned_once_and_never_stored(aws, lab):
    created = _activation(aws, DefaultInstanceName="onprem", Description="DC1 servers")
    code = created["ActivationCode"]
    assert len(code) >= 20
    described = aws.ssm.describe_activations()["ActivationList"]
    assert [a["ActivationId"] for a in described] == [created["ActivationId"]]
    assert code not in repr(described)
    stored = lab.region(aws.account, aws.region).activations[created["ActivationId"]]
    assert code not in repr(vars(stored))


def test_activation_defaults_follow_aws(aws, lab):
    before = lab.clock.now()
    created = aws.ssm.create_activation(IamRole="SSMServiceRole")
    activation = aws.ssm.describe_activations()["ActivationList"][0]
    assert activation["ActivationId"] == created["ActivationId"]
    assert activation["RegistrationLimit"] == 1
    assert activation["RegistrationsCount"] == 0
    assert activation["Expired"] is False
    lifetime = activation["ExpirationDate"] - before
    assert datetime.timedelta(hours=23, minutes=59) < lifetime < datetime.timedelta(hours=24, minutes=1)


def test_activation_rejects_what_aws_rejects(aws, lab):
    now = lab.clock.now()
    _fails("InvalidParameters", aws.ssm.create_activation, IamRole="r",
           ExpirationDate=now + datetime.timedelta(days=31))
    _fails("InvalidParameters", aws.ssm.create_activation, IamRole="r",
           ExpirationDate=now - datetime.timedelta(minutes=1))
    message = _fails("ValidationException", aws.ssm.create_activation, IamRole="r", RegistrationLimit=1001)
    assert "registrationLimit" in message
    _fails("ValidationException", aws.ssm.create_activation, IamRole="r",
           Tags=[{"Key": "aws:owner", "Value": "x"}])
    thirty_days = aws.ssm.create_activation(IamRole="r", ExpirationDate=now + datetime.timedelta(days=29.9))
    assert thirty_days["ActivationId"]


def test_activation_expires_in_lab_time(aws, lab, control):
    created = _activation(aws, ExpirationDate=lab.clock.now() + datetime.timedelta(hours=2))
    control.post("/clock/advance", {"hours": 3})
    assert aws.ssm.describe_activations()["ActivationList"][0]["Expired"] is True
    with pytest.raises(InvalidActivation, match="expired"):
        _register(aws, created)


def test_describe_activations_filters_and_pages(aws):
    web = _activation(aws, DefaultInstanceName="web", IamRole="RoleA")
    db = _activation(aws, DefaultInstanceName="db", IamRole="RoleB")
    _activation(aws, DefaultInstanceName="db", IamRole="RoleA")

    def ids(**kwargs):
        return {a["ActivationId"] for a in aws.ssm.describe_activations(**kwargs)["ActivationList"]}

    assert ids(Filters=[{"FilterKey": "DefaultInstanceName", "FilterValues": ["web"]}]) == {web["ActivationId"]}
    assert ids(Filters=[{"FilterKey": "DefaultInstanceName", "FilterValues": ["db"]},
                        {"FilterKey": "IamRole", "FilterValues": ["RoleB"]}]) == {db["ActivationId"]}
    assert ids(Filters=[{"FilterKey": "ActivationIds", "FilterValues": [web["ActivationId"], db["ActivationId"]]}]) \
        == {web["ActivationId"], db["ActivationId"]}

    first = aws.ssm.describe_activations(MaxResults=2)
    assert len(first["ActivationList"]) == 2 and first["NextToken"]
    rest = aws.ssm.describe_activations(MaxResults=2, NextToken=first["NextToken"])
    assert len(rest["ActivationList"]) == 1 and "NextToken" not in rest
    paged = aws.ssm.get_paginator("describe_activations").paginate(PaginationConfig={"PageSize": 1})
    assert len([a for p in paged for a in p["ActivationList"]]) == 3
    _fails("InvalidNextToken", aws.ssm.describe_activations, NextToken="not-a-token")
    _fails("InvalidFilter", aws.ssm.describe_activations, Filters=[{"FilterKey": "IamRole"}])


def test_deleting_an_activation_keeps_its_nodes(aws):
    created = _activation(aws)
    node = _register(aws, created)
    aws.ssm.delete_activation(ActivationId=created["ActivationId"])
    assert aws.ssm.describe_activations()["ActivationList"] == []
    assert _ids(_info(aws)) == {node.node_id}
    with pytest.raises(InvalidActivation):
        _register(aws, created, name="onprem-02")
    _fails("InvalidActivationId", aws.ssm.delete_activation, ActivationId=created["ActivationId"])


# --- registration ----------------------------------------------------------------------------------------------

def test_registration_creates_hybrid_node_with_activation_tags(aws):
    created = _activation(aws, DefaultInstanceName="dc1-db", IamRole="HybridRole",
                          Tags=[{"Key": "PatchGroup", "Value": "prod-sensitive"}, {"Key": "Site", "Value": "dc1"}])
    node = _register(aws, created, name="db01.corp.example", ip_address="10.1.2.3")
    assert node.node_id.startswith("mi-") and len(node.node_id) == 20
    info = _info(aws)[0]
    assert info["InstanceId"] == node.node_id
    assert info["ResourceType"] == "ManagedInstance"
    assert info["Name"] == "dc1-db"
    assert info["IamRole"] == "HybridRole"
    assert info["ActivationId"] == created["ActivationId"]
    assert info["ComputerName"] == "db01.corp.example"
    assert info["IPAddress"] == "10.1.2.3"
    assert info["PingStatus"] == "Online"
    assert info["RegistrationDate"]
    assert (info["SourceId"], info["SourceType"]) == (node.node_id, "AWS::SSM::ManagedInstance")
    tags = aws.ssm.list_tags_for_resource(ResourceType="ManagedInstance", ResourceId=node.node_id)["TagList"]
    assert {t["Key"]: t["Value"] for t in tags} == {"PatchGroup": "prod-sensitive", "Site": "dc1"}
    assert aws.ssm.describe_activations()["ActivationList"][0]["RegistrationsCount"] == 1


def test_registration_rejects_wrong_code_exhausted_activation_and_other_region(aws):
    created = _activation(aws, RegistrationLimit=1)
    with pytest.raises(InvalidActivation, match="don't match"):
        _register(aws, {**created, "ActivationCode": "A" * 20})
    with pytest.raises(InvalidActivation):
        nodes.register_with_activation(created["ActivationId"], created["ActivationCode"], "us-east-1",
                                       computer_name="x", platform_key="ubuntu-22.04")
    _register(aws, created)
    with pytest.raises(InvalidActivation, match="registration limit of 1"):
        _register(aws, created, name="onprem-02")


def test_agent_register_route_never_echoes_the_code(aws, control):
    created = _activation(aws)
    body = {"activation_id": created["ActivationId"], "activation_code": created["ActivationCode"],
            "region": aws.region, "computer_name": "az-web-01", "platform_key": "ubuntu-24.04",
            "source_vm_id": "0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9"}
    answer = control.post("/agent/register", body)
    assert answer["account"] == aws.account and answer["region"] == aws.region
    assert created["ActivationCode"] not in repr(answer)
    info = _info(aws)[0]
    assert info["InstanceId"] == answer["instance_id"]
    assert info["SourceType"] == "Microsoft.Compute/virtualMachines"
    assert info["SourceId"] == body["source_vm_id"]
    assert (info["PlatformName"], info["PlatformVersion"]) == ("Ubuntu", "24.04")
    with pytest.raises(RuntimeError, match="InvalidActivation") as excinfo:
        control.post("/agent/register", {**body, "activation_code": "B" * 20})
    assert "B" * 20 not in str(excinfo.value)


def test_standard_tier_allows_1000_hybrid_nodes(aws):
    created = _activation(aws, RegistrationLimit=1000)
    for index in range(1000):
        _register(aws, created, name=f"node-{index}")
    extra = _activation(aws)
    with pytest.raises(ResourceLimitExceededException, match="standard-instances tier"):
        _register(aws, extra, name="node-1000")

    aws.ssm.update_service_setting(SettingId=TIER, SettingValue="advanced")
    advanced = aws.ssm.get_service_setting(SettingId=TIER)["ServiceSetting"]
    assert (advanced["SettingValue"], advanced["Status"]) == ("advanced", "Customized")
    assert aws.account in advanced["LastModifiedUser"]
    node = _register(aws, extra, name="node-1000")

    message = _fails("ValidationException", aws.ssm.reset_service_setting, SettingId=TIER)
    assert "1001" in message
    aws.ssm.deregister_managed_instance(InstanceId=node.node_id)
    reset = aws.ssm.reset_service_setting(SettingId=TIER)["ServiceSetting"]
    assert (reset["SettingValue"], reset["Status"]) == ("standard", "Default")
    assert "LastModifiedUser" not in reset


def test_service_settings_reject_unknown_ids_and_values(aws):
    setting = aws.ssm.get_service_setting(SettingId=TIER)["ServiceSetting"]
    assert setting == {"SettingId": TIER, "SettingValue": "standard", "Status": "Default",
                       "ARN": f"arn:aws:ssm:{aws.region}:{aws.account}:servicesetting{TIER}"}
    _fails("ServiceSettingNotFound", aws.ssm.get_service_setting, SettingId="/ssm/no/such-setting")
    _fails("ValidationException", aws.ssm.update_service_setting, SettingId=TIER, SettingValue="premium")
    aws.ssm.update_service_setting(SettingId=setting["ARN"], SettingValue="advanced")  # the ARN form works too
    assert aws.ssm.get_service_setting(SettingId=TIER)["ServiceSetting"]["SettingValue"] == "advanced"


def test_deregistered_node_disappears_with_its_tags(aws, lab):
    node = _register(aws, _activation(aws, Tags=[{"Key": "PatchGroup", "Value": "nonprod"}]))
    aws.ssm.deregister_managed_instance(InstanceId=node.node_id)
    assert _info(aws) == []
    assert ("ManagedInstance", node.node_id) not in lab.region(aws.account, aws.region).tags
    _fails("InvalidInstanceId", aws.ssm.deregister_managed_instance, InstanceId=node.node_id)
    ec2_node = aws.launch("ubuntu-22.04")[0]
    _fails("ValidationException", _server_side(aws).deregister_managed_instance, InstanceId=ec2_node.node_id)


# --- DescribeInstanceInformation -------------------------------------------------------------------------------

def test_ec2_nodes_report_platform_agent_and_source(aws):
    ubuntu, = aws.launch("ubuntu-22.04")
    windows, = aws.launch("windows-2022")
    infos = {i["InstanceId"]: i for i in _info(aws)}
    linux_info, windows_info = infos[ubuntu.node_id], infos[windows.node_id]
    assert (linux_info["PlatformType"], linux_info["PlatformName"], linux_info["PlatformVersion"]) == \
        ("Linux", "Ubuntu", "22.04")
    assert (windows_info["PlatformType"], windows_info["PlatformVersion"]) == ("Windows", "10.0.20348")
    assert linux_info["ResourceType"] == "EC2Instance"
    assert (linux_info["SourceId"], linux_info["SourceType"]) == (ubuntu.node_id, "AWS::EC2::Instance")
    assert linux_info["IsLatestVersion"] is True
    for hybrid_only in ("Name", "ActivationId", "RegistrationDate", "IamRole"):
        assert hybrid_only not in linux_info


def test_ping_status_follows_agent_connection_and_instance_state(aws, control, lab):
    connected, disconnected, stopped, terminated = aws.launch("amzn-2023", 4)
    control.post("/nodes/online", {"account": aws.account, "region": aws.region,
                                   "node_id": disconnected.node_id, "online": False})
    aws.ec2.stop_instances(InstanceIds=[stopped.node_id])
    aws.ec2.terminate_instances(InstanceIds=[terminated.node_id])
    infos = {i["InstanceId"]: i for i in _info(aws)}
    # "does not return information for nodes that are either Stopped or Terminated"
    assert set(infos) == {connected.node_id, disconnected.node_id}
    assert infos[connected.node_id]["PingStatus"] == "Online"
    assert infos[disconnected.node_id]["PingStatus"] == "ConnectionLost"
    assert nodes.ping_status(disconnected) == "ConnectionLost"
    assert nodes.ping_status(stopped) is None

    lost_at = infos[disconnected.node_id]["LastPingDateTime"]
    control.post("/clock/advance", {"hours": 1})
    assert _info(aws, Filters=[{"Key": "InstanceIds", "Values": [disconnected.node_id]}])[0]["LastPingDateTime"] \
        == lost_at
    aws.ec2.start_instances(InstanceIds=[stopped.node_id])
    control.post("/nodes/online", {"account": aws.account, "region": aws.region,
                                   "node_id": disconnected.node_id, "online": True})
    assert {i["PingStatus"] for i in _info(aws)} == {"Online"}
    assert len(_info(aws)) == 3


def test_instance_information_filters(aws):
    ubuntu = aws.launch("ubuntu-22.04", 2, {"PatchGroup": "prod-auto"})
    windows, = aws.launch("windows-2016", 1, {"Patch Group": "nonprod"})
    hybrid = _register(aws, _activation(aws, IamRole="HybridRole",
                                        Tags=[{"Key": "PatchGroup", "Value": "prod-sensitive"}]))
    hybrid.agent_version = "3.2.1000.0"
    everyone = {n.node_id for n in ubuntu} | {windows.node_id, hybrid.node_id}

    def ids(**kwargs):
        return _ids(_info(aws, **kwargs))

    assert ids() == everyone
    assert ids(Filters=[{"Key": "PlatformTypes", "Values": ["Windows"]}]) == {windows.node_id}
    assert ids(Filters=[{"Key": "ResourceType", "Values": ["ManagedInstance"]}]) == {hybrid.node_id}
    assert ids(Filters=[{"Key": "ActivationIds", "Values": [hybrid.activation_id]}]) == {hybrid.node_id}
    assert ids(Filters=[{"Key": "IamRole", "Values": ["HybridRole"]}]) == {hybrid.node_id}
    assert ids(Filters=[{"Key": "AgentVersion", "Values": ["3.2.1000.0"]}]) == {hybrid.node_id}
    assert ids(Filters=[{"Key": "PingStatus", "Values": ["Online"]},
                        {"Key": "PlatformTypes", "Values": ["Linux"]}]) == everyone - {windows.node_id}
    assert ids(Filters=[{"Key": "tag:PatchGroup", "Values": ["prod-auto", "prod-sensitive"]}]) \
        == {n.node_id for n in ubuntu} | {hybrid.node_id}
    assert ids(Filters=[{"Key": "tag-key", "Values": ["Patch Group"]}]) == {windows.node_id}
    assert ids(Filters=[{"Key": "SourceTypes", "Values": ["AWS::SSM::ManagedInstance"]}]) == {hybrid.node_id}
    assert ids(InstanceInformationFilterList=[{"key": "InstanceIds", "valueSet": [windows.node_id]}]) \
        == {windows.node_id}
    assert ids(Filters=[{"Key": "InstanceIds", "Values": ["i-0123456789abcdef0"]}]) == set()
    assert ids(Filters=[{"Key": "AssociationStatus", "Values": ["Failed"]}]) == set()
    assert [i["IsLatestVersion"] for i in _info(aws, Filters=[{"Key": "ResourceType",
                                                               "Values": ["ManagedInstance"]}])] == [False]


def test_instance_information_rejects_bad_filters(aws):
    node, = aws.launch("ubuntu-20.04")
    describe = aws.ssm.describe_instance_information
    _fails("ValidationException", describe,
           InstanceInformationFilterList=[{"key": "PingStatus", "valueSet": ["Online"]}],
           Filters=[{"Key": "PingStatus", "Values": ["Online"]}])
    _fails("ValidationException", describe, Filters=[{"Key": "tag:PatchGroup", "Values": ["nonprod"]},
                                                     {"Key": "PingStatus", "Values": ["Online"]}])
    _fails("InvalidFilterKey", describe, Filters=[{"Key": "Colour", "Values": ["blue"]}])
    # The legacy list "doesn't support tags": its key enum (botocore's model) has none.
    _fails("ValidationException", describe,
           InstanceInformationFilterList=[{"key": "tag:PatchGroup", "valueSet": ["x"]}])
    message = _fails("InvalidInstanceInformationFilterValue", describe,
                     Filters=[{"Key": "ResourceType", "Values": ["Document"]}])
    assert "EC2Instance" in message
    _fails("InvalidInstanceInformationFilterValue", describe,
           Filters=[{"Key": "ResourceType", "Values": ["EC2Instance", "ManagedInstance"]}])
    _fails("InvalidInstanceInformationFilterValue", describe, Filters=[{"Key": "PingStatus", "Values": ["Up"]}])
    _fails("InvalidInstanceId", describe, Filters=[{"Key": "InstanceIds", "Values": ["web-01"]}])
    assert _ids(_info(aws)) == {node.node_id}


def test_instance_information_pages(aws):
    launched = sorted(n.node_id for n in aws.launch("ubuntu-24.04", 12))
    first = aws.ssm.describe_instance_information()
    assert [i["InstanceId"] for i in first["InstanceInformationList"]] == launched[:10]  # default page: 10
    second = aws.ssm.describe_instance_information(NextToken=first["NextToken"])
    assert [i["InstanceId"] for i in second["InstanceInformationList"]] == launched[10:]
    assert "NextToken" not in second
    pages = aws.ssm.get_paginator("describe_instance_information").paginate(PaginationConfig={"PageSize": 5})
    assert [len(p["InstanceInformationList"]) for p in pages] == [5, 5, 2]
    unchecked = _server_side(aws)
    assert "maxResults" in _fails("ValidationException", unchecked.describe_instance_information, MaxResults=4)
    assert "maxResults" in _fails("ValidationException", unchecked.describe_instance_information, MaxResults=51)
    _fails("InvalidNextToken", aws.ssm.describe_instance_information, NextToken="bm90LWEtdG9rZW4=")


def test_accounts_do_not_see_each_others_nodes_or_activations(aws, lab_server):
    from conftest import make_session

    other = make_session(lab_server.env["AWS_ENDPOINT_URL"], "299999999998").client(
        "ssm", endpoint_url=lab_server.env["AWS_ENDPOINT_URL"])
    mine, = aws.launch("amzn-2")
    created = _activation(aws)
    hybrid = _register(aws, created)
    assert hybrid.account == aws.account
    assert _ids(_info(aws)) == {mine.node_id, hybrid.node_id}
    theirs = other.describe_instance_information()["InstanceInformationList"]
    assert not _ids(theirs) & {mine.node_id, hybrid.node_id}
    assert created["ActivationId"] not in repr(other.describe_activations()["ActivationList"])
    _fails("InvalidInstanceId", other.describe_instance_information,
           Filters=[{"Key": "InstanceIds", "Values": [mine.node_id]}])  # "a node that you don't own"
    _fails("InvalidResourceId", other.list_tags_for_resource, ResourceType="ManagedInstance",
           ResourceId=hybrid.node_id)


# --- tags ----------------------------------------------------------------------------------------------------

def _tags(aws, resource_type: str, resource_id: str) -> dict[str, str]:
    tag_list = aws.ssm.list_tags_for_resource(ResourceType=resource_type, ResourceId=resource_id)["TagList"]
    return {t["Key"]: t["Value"] for t in tag_list}


def test_managed_instance_tags(aws):
    node = _register(aws, _activation(aws, Tags=[{"Key": "PatchGroup", "Value": "nonprod"}]))
    aws.ssm.add_tags_to_resource(ResourceType="ManagedInstance", ResourceId=node.node_id,
                                 Tags=[{"Key": "PatchGroup", "Value": "prod-auto"}, {"Key": "Owner", "Value": ""}])
    assert _tags(aws, "ManagedInstance", node.node_id) == {"PatchGroup": "prod-auto", "Owner": ""}
    filtered = _info(aws, Filters=[{"Key": "tag:PatchGroup", "Values": ["prod-auto"]}])
    assert _ids(filtered) == {node.node_id}
    aws.ssm.remove_tags_from_resource(ResourceType="ManagedInstance", ResourceId=node.node_id,
                                      TagKeys=["Owner", "NotThere"])
    assert _tags(aws, "ManagedInstance", node.node_id) == {"PatchGroup": "prod-auto"}


def test_tags_rejected_like_aws(aws):
    node = _register(aws, _activation(aws))
    ec2_node, = aws.launch("ubuntu-22.04")
    add = aws.ssm.add_tags_to_resource
    message = _fails("ValidationException", add, ResourceType="ManagedInstance", ResourceId=ec2_node.node_id,
                     Tags=[{"Key": "PatchGroup", "Value": "x"}])
    assert "mi-[0-9a-f]{17}" in message
    _fails("InvalidResourceId", add, ResourceType="ManagedInstance", ResourceId="mi-0123456789abcdef0",
           Tags=[{"Key": "k", "Value": "v"}])
    _fails("InvalidResourceId", add, ResourceType="PatchBaseline", ResourceId="pb-0123456789abcdef0",
           Tags=[{"Key": "k", "Value": "v"}])
    _fails("ValidationException", add, ResourceType="ManagedInstance", ResourceId=node.node_id,
           Tags=[{"Key": "AWS:Team", "Value": "x"}])
    fifty = [{"Key": f"k{i}", "Value": "v"} for i in range(50)]
    add(ResourceType="ManagedInstance", ResourceId=node.node_id, Tags=fifty)
    add(ResourceType="ManagedInstance", ResourceId=node.node_id, Tags=[{"Key": "k0", "Value": "overwritten"}])
    _fails("TooManyTagsError", add, ResourceType="ManagedInstance", ResourceId=node.node_id,
           Tags=[{"Key": "k50", "Value": "v"}])
    assert len(_tags(aws, "ManagedInstance", node.node_id)) == 50


def test_baseline_and_window_tags_are_kept_by_the_lab(aws):
    baseline = aws.ssm.create_patch_baseline(Name="ubuntu-prod-auto", OperatingSystem="UBUNTU")["BaselineId"]
    window = aws.ssm.create_maintenance_window(Name="mw-install-auto", Schedule="cron(0 3 ? * SUN *)", Duration=3,
                                               Cutoff=1, AllowUnassociatedTargets=False)["WindowId"]
    for resource_type, resource_id in (("PatchBaseline", baseline), ("MaintenanceWindow", window)):
        aws.ssm.add_tags_to_resource(ResourceType=resource_type, ResourceId=resource_id,
                                     Tags=[{"Key": "Policy", "Value": "prod-auto"}])
        assert _tags(aws, resource_type, resource_id) == {"Policy": "prod-auto"}
        aws.ssm.remove_tags_from_resource(ResourceType=resource_type, ResourceId=resource_id, TagKeys=["Policy"])
        assert _tags(aws, resource_type, resource_id) == {}
    aws.ssm.delete_maintenance_window(WindowId=window)
    _fails("InvalidResourceId", aws.ssm.list_tags_for_resource, ResourceType="MaintenanceWindow", ResourceId=window)


def test_other_resource_types_go_to_moto_with_the_same_limits(aws):
    aws.ssm.put_parameter(Name="/fleetpatch/owner", Value="ops", Type="String")
    aws.ssm.add_tags_to_resource(ResourceType="Parameter", ResourceId="/fleetpatch/owner",
                                 Tags=[{"Key": "Team", "Value": "ops"}])
    assert _tags(aws, "Parameter", "/fleetpatch/owner") == {"Team": "ops"}
    _fails("TooManyTagsError", aws.ssm.add_tags_to_resource, ResourceType="Parameter",
           ResourceId="/fleetpatch/owner", Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(50)])
    aws.ssm.remove_tags_from_resource(ResourceType="Parameter", ResourceId="/fleetpatch/owner", TagKeys=["Team"])
    assert _tags(aws, "Parameter", "/fleetpatch/owner") == {}
    _fails("InvalidResourceId", aws.ssm.list_tags_for_resource, ResourceType="Document", ResourceId="NoSuchDoc")


# --- control routes --------------------------------------------------------------------------------------------

def test_failure_injection_route(aws, control):
    node, = aws.launch("ubuntu-22.04")
    where = {"account": aws.account, "region": aws.region, "node_id": node.node_id}
    assert control.post("/nodes/fail", {**where, "message": "E: Could not get lock"})["fail_install"]
    assert node.fail_install == "E: Could not get lock"
    control.post("/nodes/fail", {**where, "message": None})
    assert node.fail_install is None
    with pytest.raises(RuntimeError, match="no managed node"):
        control.post("/nodes/fail", {**where, "node_id": "i-0000000000000000f", "message": "x"})
    with pytest.raises(RuntimeError, match="online"):
        control.post("/nodes/online", {**where, "online": "no"})
