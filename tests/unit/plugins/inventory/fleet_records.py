# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test data for the fleet inventory: source records built from AWS- and ARM-shaped responses by the plugin's own
normalisers, so that tests feed the merge what the collectors really produce."""
from __future__ import annotations

import datetime

from ansible_collections.fleetpatch.ssm.plugins.plugin_utils.fleet_aws import ec2_record
from ansible_collections.fleetpatch.ssm.plugins.plugin_utils.fleet_aws import ssm_record
from ansible_collections.fleetpatch.ssm.plugins.plugin_utils.fleet_azure import vm_record
from ansible_collections.fleetpatch.ssm.plugins.plugin_utils.fleet_merge import Sources

ACCOUNT = "123456789012"
REGION = "eu-west-1"
SUBSCRIPTION = "1f6b2c8e-3a4d-4e5f-8a9b-0c1d2e3f4a5b"
T0 = datetime.datetime(2026, 1, 5, 12, 0, tzinfo=datetime.timezone.utc)


def at(hours: float) -> datetime.datetime:
    return T0 + datetime.timedelta(hours=hours)


def ec2(instance_id: str, tags: dict | None = None, account: str = ACCOUNT, region: str = REGION,
        launched: float = 0, ip: str = "10.0.0.10", windows: bool = False, state: str = "running") -> dict:
    instance = {
        "InstanceId": instance_id, "InstanceType": "t3.medium", "State": {"Name": state},
        "Placement": {"AvailabilityZone": f"{region}a"}, "PrivateIpAddress": ip,
        "PrivateDnsName": f"ip-{ip.replace('.', '-')}.{region}.compute.internal", "LaunchTime": at(launched),
        "PlatformDetails": "Windows" if windows else "Linux/UNIX",
        "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()],
    }
    if windows:
        instance["Platform"] = "windows"
    return ec2_record(instance, account, region)


def node(instance_id: str, platform: tuple = ("Linux", "Ubuntu", "22.04"), account: str = ACCOUNT,
         region: str = REGION, ping: str = "Online", ip: str = "10.0.0.10", **extra) -> dict:
    """The SSM record of an EC2 node (i-...)."""
    info = {"InstanceId": instance_id, "PingStatus": ping, "LastPingDateTime": at(1), "AgentVersion": "3.3.1957.0",
            "PlatformType": platform[0], "PlatformName": platform[1], "PlatformVersion": platform[2],
            "ResourceType": "EC2Instance", "IPAddress": ip, "SourceId": instance_id,
            "SourceType": "AWS::EC2::Instance", **extra}
    return ssm_record(info, account, region)


def hybrid(node_id: str, computer_name: str, tags: dict | None = None, source_id: str | None = None,
           source_type: str = "AWS::SSM::ManagedInstance", platform: tuple = ("Linux", "Ubuntu", "22.04"),
           registered: float = 0, pinged: float = 1, account: str = ACCOUNT, region: str = REGION) -> dict:
    """A hybrid node with its tags read (tags=None: the tag lookup failed)."""
    info = {"InstanceId": node_id, "PingStatus": "Online", "LastPingDateTime": at(pinged),
            "AgentVersion": "3.3.1957.0", "PlatformType": platform[0], "PlatformName": platform[1],
            "PlatformVersion": platform[2], "ResourceType": "ManagedInstance", "IPAddress": "192.168.1.5",
            "ComputerName": computer_name, "Name": "dc1-onboarding", "ActivationId": "a1b2c3d4-0000-4000-8000-000000000001",
            "RegistrationDate": at(registered), "IamRole": "SSMServiceRole",
            "SourceId": source_id or node_id, "SourceType": source_type}
    record = ssm_record(info, account, region)
    record["tags"] = tags
    return record


def vm(name: str, vm_id: str, tags: dict | None = None, subscription: str = SUBSCRIPTION,
       resource_group: str = "rg-app", location: str = "westeurope", computer_name: str | None = None,
       power: str = "running", image: dict | None = None, os_name: str | None = "ubuntu",
       os_version: str | None = "22.04", created: float = 0) -> dict:
    view = {"statuses": [{"code": "ProvisioningState/succeeded"}, {"code": f"PowerState/{power}"}]}
    if os_name:
        view.update(osName=os_name, osVersion=os_version, computerName=computer_name or name)
    arm = {
        "id": f"/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.Compute/"
              f"virtualMachines/{name}",
        "name": name, "location": location, "tags": tags or {},
        "properties": {
            "vmId": vm_id, "hardwareProfile": {"vmSize": "Standard_D2s_v5"}, "provisioningState": "Succeeded",
            "timeCreated": at(created).isoformat(),
            "storageProfile": {"imageReference": image or {"publisher": "Canonical", "sku": "22_04-lts-gen2"},
                               "osDisk": {"osType": "Linux"}},
            "osProfile": {"computerName": computer_name or name}, "instanceView": view,
        },
    }
    return vm_record(arm, subscription, "azure-prod")


def sources(ec2_records=(), ssm_records=(), vms=(), ec2_listed=None, ec2_enabled=True) -> Sources:
    """Sources as the collectors leave them; by default EC2 was listed wherever an EC2 record comes from."""
    if ec2_listed is None:
        ec2_listed = {(r["account_id"], r["region"]) for r in ec2_records} | {(ACCOUNT, REGION)}
    return Sources(list(ec2_records), list(ssm_records), list(vms), set(ec2_listed), ec2_enabled)
