# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetpatch.ssm project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The host variables of a merged machine: `fleet_*` facts that say the same thing whichever sources saw it.

Tags: the Azure VM's, then the EC2 instance's, then the hybrid node's on top. A managed node's own tags win because
Patch Manager reads the patch group from them (EC2: the instance tags; hybrid: the tags SSM keeps for the node); a VM's
patch group tag never stands in for its node's.
Patch group: the `PatchGroup` tag, else `Patch Group` (Patch Manager accepts both keys; AWS does not say which wins
when a node has both; PatchGroup is taken, like the lab).
Cloud: aws for EC2 instances; azure for Azure VMs and for nodes whose SSM SourceType is an Azure VM; gcp for
SourceType compute.googleapis.com/Instance; onprem for the other hybrid nodes.
"""

from __future__ import annotations

from typing import Optional

from . import fleet_os
from .fleet_merge import AZURE_SOURCE_TYPE
from .fleet_merge import Machine

PATCH_GROUP_KEYS = ("PatchGroup", "Patch Group")
_CLOUD_OF_SOURCE_TYPE = {
    "AWS::EC2::Instance": "aws", AZURE_SOURCE_TYPE: "azure", "compute.googleapis.com/Instance": "gcp",
    "AWS::IoT::Thing": "iot",
}


def patch_group(tags: Optional[dict]) -> Optional[str]:
    for key in PATCH_GROUP_KEYS:
        if (tags or {}).get(key):
            return tags[key]
    return None


def effective_tags(machine: Machine) -> dict:
    """The Azure VM's tags under the managed node's; a managed node's patch group is its own even when only the VM
    has a patch group tag (Patch Manager then applies the default baseline: the inventory says what SSM does)."""
    tags = dict((machine.azure or {}).get("tags") or {})
    if machine.ssm:
        for key in PATCH_GROUP_KEYS:
            tags.pop(key, None)
    tags.update((machine.ec2 or {}).get("tags") or {})
    tags.update((machine.ssm or {}).get("tags") or {})
    return tags


def cloud(machine: Machine) -> str:
    if machine.ec2:
        return "aws"
    if machine.azure:
        return "azure"
    ssm = machine.ssm or {}
    if ssm.get("resource_type") == "EC2Instance":
        return "aws"
    return _CLOUD_OF_SOURCE_TYPE.get(ssm.get("source_type"), "onprem")


def machine_id(machine: Machine) -> str:
    """The machine's stable id: the managed node id (what Patch Manager targets), else the EC2 instance id, else the
    Azure vmId (or resource id)."""
    if machine.ssm:
        return machine.ssm["instance_id"]
    if machine.ec2:
        return machine.ec2["instance_id"]
    return machine.azure.get("vm_id") or machine.azure["id"]


def short_name(name: Optional[str]) -> Optional[str]:
    return name.split(".", 1)[0] if name else None


def computer_name(machine: Machine) -> Optional[str]:
    return (machine.ssm or {}).get("computer_name") or (machine.azure or {}).get("computer_name")


def own_name(machine: Machine, tags: dict) -> Optional[str]:
    """What the machine is called where it lives: the Name tag (EC2, or a hybrid node's), the Azure VM name, else
    an on-premises node's short computer name (a hybrid node's SSM `Name` is its activation's default instance
    name, shared by every node of that activation: not a machine name)."""
    return tags.get("Name") or (machine.azure or {}).get("name") or short_name(computer_name(machine))


def created(machine: Machine) -> Optional[str]:
    """When the machine appeared: EC2 launch time, hybrid registration, Azure creation (ISO 8601)."""
    return ((machine.ec2 or {}).get("launch_time") or (machine.ssm or {}).get("registration_date")
            or (machine.azure or {}).get("time_created"))


def _aws_scope(machine: Machine) -> dict:
    return machine.ec2 or machine.ssm or {}


def machine_facts(machine: Machine, account_names: dict) -> dict:
    """The `fleet_*` host variables of `machine` (`account_names`: AWS account id -> name)."""
    tags = effective_tags(machine)
    aws = _aws_scope(machine)
    azure = machine.azure or {}
    ssm = machine.ssm or {}
    os_info = fleet_os.best(fleet_os.from_ssm(machine.ssm), fleet_os.from_azure(machine.azure),
                            fleet_os.from_ec2(machine.ec2))
    account_id = aws.get("account_id")
    return {
        "fleet_id": machine_id(machine),
        "fleet_cloud": cloud(machine),
        "fleet_sources": [name for name in ("ec2", "ssm", "azure") if getattr(machine, name)],
        "fleet_name": own_name(machine, tags),
        "fleet_account_id": account_id,
        "fleet_account_name": account_names.get(account_id, account_id) if account_id else None,
        "fleet_region": aws.get("region"),
        "fleet_subscription_id": azure.get("subscription_id"),
        "fleet_location": azure.get("location"),
        "fleet_patch_group": patch_group(tags),
        "fleet_os_family": os_info.family,
        "fleet_os_version": os_info.version,
        "fleet_platform": os_info.platform,
        "fleet_managed": bool(machine.ssm),
        "fleet_ping_status": ssm.get("ping_status"),
        "fleet_private_ip_address": (machine.ec2 or {}).get("private_ip_address") or ssm.get("ip_address"),
        "fleet_created": created(machine),
        "fleet_matched_by": machine.matched_by,
        "fleet_tags": tags,
        "fleet_ec2": machine.ec2,
        "fleet_ssm": machine.ssm,
        "fleet_azure": machine.azure,
    }


def patch_group_drift(machine: Machine) -> Optional[tuple]:
    """(VM's patch group, node's patch group) when an Azure VM and its hybrid node disagree (the node's is the one
    Patch Manager uses; onboarding is meant to copy the VM's to the node)."""
    if not (machine.azure and machine.ssm):
        return None
    on_vm, on_node = patch_group(machine.azure.get("tags")), patch_group(machine.ssm.get("tags"))
    return (on_vm, on_node) if on_vm != on_node else None
