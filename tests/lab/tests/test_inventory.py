"""SSM Inventory (fleetlab.inventory): ListInventoryEntries of AWS:Application and AWS:WindowsUpdate.

What a user relies on: the entries say which version of each package a node has, in the attributes SSM Agent
reports (dpkg's whole version on Ubuntu; rpm's Version/Release/Epoch on Amazon Linux; KB ids on Windows); they
follow what an install changed; listings page like AWS's; bad requests answer AWS's error codes.
"""
from __future__ import annotations

import datetime

import botocore.exceptions
import pytest

from fleetlab import api, catalog
from fleetlab import inventory  # noqa: F401  (registers ListInventoryEntries)

APPLICATION, WINDOWS_UPDATE = "AWS:Application", "AWS:WindowsUpdate"


@pytest.fixture(scope="module", autouse=True)
def _served(lab_server):
    # fleetlab.handlers does not import this module yet: attach ListInventoryEntries to the running server.
    api.install()


def entries(aws, node_id: str, type_name: str = APPLICATION, **params) -> list[dict]:
    """Every entry, following NextToken by hand (boto3 has no paginator for ListInventoryEntries)."""
    found, token = [], None
    while True:
        page = aws.ssm.list_inventory_entries(InstanceId=node_id, TypeName=type_name,
                                              **params, **({"NextToken": token} if token else {}))
        found += page["Entries"]
        token = page.get("NextToken")
        if not token:
            return found


def error_code(call) -> str:
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        call()
    return raised.value.response["Error"]["Code"]


def test_ubuntu_packages_are_reported_as_dpkg_reports_them(aws, lab):
    (node,) = aws.launch("ubuntu-22.04")
    page = aws.ssm.list_inventory_entries(InstanceId=node.node_id, TypeName=APPLICATION)

    assert (page["TypeName"], page["InstanceId"], page["SchemaVersion"]) == (APPLICATION, node.node_id, "1.1")
    capture = datetime.datetime.strptime(page["CaptureTime"], "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc)
    assert abs(capture - lab.clock.now()) < datetime.timedelta(minutes=1)
    reported = {entry["Name"]: entry for entry in entries(aws, node.node_id)}
    assert {name: entry["Version"] for name, entry in reported.items()} == node.installed
    ssh = reported["openssh-server"]
    assert ssh["Version"].startswith("1:")  # dpkg's version keeps its epoch; no Release or Epoch attribute
    assert "Release" not in ssh and "Epoch" not in ssh and "InstalledTime" not in ssh
    assert ssh["Architecture"] == "x86_64"  # the agent reports dpkg's amd64 as x86_64
    assert ssh["PackageId"] == f"openssh-server_{ssh['Version']}_amd64.deb"
    assert reported["tzdata"]["Architecture"] == "all"


def test_amazon_linux_packages_carry_rpm_version_release_and_install_time(aws, lab):
    (node,) = aws.launch("amzn-2023")
    reported = {entry["Name"]: entry for entry in entries(aws, node.node_id)}

    assert set(reported) == set(node.installed)
    openssl = reported["openssl"]
    assert f"{openssl['Version']}-{openssl['Release']}" == node.installed["openssl"]
    assert "Epoch" not in openssl  # these packages have none: the agent omits the empty field
    assert openssl["Architecture"] == "x86_64" and reported["tzdata"]["Architecture"] == "noarch"
    assert openssl["PackageId"] == f"openssl-{node.installed['openssl']}.src.rpm"
    shipped = catalog.catalog_for(node.platform).packages["openssl"].record(node.installed["openssl"]).released
    assert openssl["InstalledTime"] == shipped.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_entries_follow_an_install(aws, lab, control):
    (node,) = aws.launch("amzn-2023")
    aws.ssm.create_patch_baseline(Name="everything", OperatingSystem="AMAZON_LINUX_2023", ApprovalRules={
        "PatchRules": [{"PatchFilterGroup": {"PatchFilters": [{"Key": "PRODUCT", "Values": ["*"]}]},
                        "ApproveAfterDays": 0, "EnableNonSecurity": True}]})
    baseline_id = aws.ssm.describe_patch_baselines(
        Filters=[{"Key": "OWNER", "Values": ["Self"]}])["BaselineIdentities"][0]["BaselineId"]
    aws.ssm.register_default_patch_baseline(BaselineId=baseline_id)
    command_id = aws.ssm.send_command(InstanceIds=[node.node_id], DocumentName="AWS-RunPatchBaseline",
                                      Parameters={"Operation": ["Install"], "RebootOption": ["NoReboot"]}
                                      )["Command"]["CommandId"]
    assert control.post("/commands/wait", {"account": aws.account, "region": aws.region,
                                           "command_id": command_id})["done"]

    installs = [row for row in lab.install_log if row["command_id"] == command_id]
    assert installs
    reported = {entry["Name"]: entry for entry in entries(aws, node.node_id)}
    for row in installs:
        entry = reported[row["package"]]
        assert f"{entry['Version']}-{entry['Release']}" == row["to_version"]
        assert entry["InstalledTime"] == row["installed_time"].strftime("%Y-%m-%dT%H:%M:%SZ")


def test_windows_updates_are_the_installed_kbs(aws):
    (windows,) = aws.launch("windows-2022")
    (linux,) = aws.launch("ubuntu-24.04")

    updates = entries(aws, windows.node_id, WINDOWS_UPDATE)
    assert sorted(entry["HotFixId"] for entry in updates) == sorted(windows.installed)
    assert all(entry["InstalledTime"].endswith("Z") for entry in updates)
    assert entries(aws, windows.node_id, APPLICATION) == []  # the lab models no Windows applications
    assert entries(aws, linux.node_id, WINDOWS_UPDATE) == []  # Linux nodes gather no Windows updates


def test_entries_page_by_next_token_within_the_models_limit(aws):
    (node,) = aws.launch("ubuntu-20.04")
    every = entries(aws, node.node_id)

    first = aws.ssm.list_inventory_entries(InstanceId=node.node_id, TypeName=APPLICATION, MaxResults=5)
    assert len(first["Entries"]) == 5 and first["NextToken"]
    assert entries(aws, node.node_id, MaxResults=5) == every
    assert len(every) > 5
    assert error_code(lambda: aws.ssm.list_inventory_entries(
        InstanceId=node.node_id, TypeName=APPLICATION, NextToken="not-a-token")) == "InvalidNextToken"
    assert error_code(lambda: aws.ssm.list_inventory_entries(
        InstanceId=node.node_id, TypeName=APPLICATION, MaxResults=51)) == "ValidationException"


def test_filters_select_by_attribute(aws):
    (node,) = aws.launch("ubuntu-22.04")

    def names(*filters) -> set[str]:
        return {entry["Name"] for entry in entries(aws, node.node_id, Filters=list(filters))}

    assert names({"Key": "Name", "Values": ["sudo"], "Type": "Equal"}) == {"sudo"}
    assert names({"Key": "AWS:Application.Name", "Values": ["openssh-"], "Type": "BeginWith"}) == {
        "openssh-server", "openssh-client", "openssh-sftp-server"}
    assert "sudo" not in names({"Key": "Name", "Values": ["sudo"], "Type": "NotEqual"})
    assert error_code(lambda: entries(aws, node.node_id, Filters=[
        {"Key": "Colour", "Values": ["red"], "Type": "Equal"}])) == "InvalidFilter"
    assert error_code(lambda: entries(aws, node.node_id, Filters=[
        {"Key": "Name", "Values": ["sudo"], "Type": "Exists"}])) == "InvalidFilter"


def test_unknown_nodes_and_types_answer_awss_errors(aws):
    (node,) = aws.launch("ubuntu-22.04")

    assert error_code(lambda: aws.ssm.list_inventory_entries(
        InstanceId="i-0123456789abcdef0", TypeName=APPLICATION)) == "InvalidInstanceId"
    assert error_code(lambda: aws.ssm.list_inventory_entries(
        InstanceId=node.node_id, TypeName="AWS:Bogus")) == "InvalidTypeNameException"
    with pytest.raises(botocore.exceptions.ClientError, match="not simulated by the lab"):
        aws.ssm.list_inventory_entries(InstanceId=node.node_id, TypeName="AWS:Network")
    assert error_code(lambda: aws.ssm.list_inventory_entries(
        InstanceId=node.node_id, TypeName="Application")) == "ValidationException"  # the model's pattern
