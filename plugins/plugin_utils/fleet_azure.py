# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetpatch.ssm project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The Azure half of the fleet inventory: the virtual machines of several subscriptions, with their power state.

Rules followed (Azure REST API reference, Compute "Virtual Machines - List All"; azure-identity and azure-core docs):
* list_all pages with `nextLink`; the SDK's ItemPaged follows it. `statusOnly=true` "enables fetching run time status
  of all Virtual Machines" (the instance view, with the power state) in the same pages, where `$expand=instanceView`
  would need a `$filter`. One listing per subscription, no call per VM.
* `properties.vmId` is the VM's unique id (the SMBIOS UUID its guest sees): the key of the hybrid-node merge.
* The power state is the instance-view status whose code starts with `PowerState/`.
* Throttling: ARM answers 429 with Retry-After; azure-core's RetryPolicy retries 429 and 5xx and honours it.
* Credentials and the token's scope: module_utils/azure_compute.py (one mechanism for the inventory and the
  modules).

The SDK is imported only when Azure is read (a cached inventory never loads it).
"""

from __future__ import annotations

from typing import Mapping
from typing import Optional

from ansible_collections.fleetpatch.ssm.plugins.module_utils.azure_compute import ARM_SCOPE

from .fleet_jobs import Job

_POWER_STATE_PREFIX = "PowerState/"


def _power_state(instance_view: Mapping) -> Optional[str]:
    for status in instance_view.get("statuses") or []:
        code = status.get("code") or ""
        if code.startswith(_POWER_STATE_PREFIX):
            return code[len(_POWER_STATE_PREFIX):]
    return None


def _resource_group(resource_id: str) -> Optional[str]:
    """The resource group segment of an ARM id (/subscriptions/s/resourceGroups/<rg>/providers/...)."""
    parts = resource_id.split("/")
    lowered = [part.lower() for part in parts]
    return parts[lowered.index("resourcegroups") + 1] if "resourcegroups" in lowered else None


def vm_record(vm: Mapping, subscription_id: str, subscription_name: str) -> dict:
    """What the inventory keeps of a VM (ARM JSON names in, JSON-able record out: it goes to the inventory cache)."""
    properties = vm.get("properties") or {}
    storage = properties.get("storageProfile") or {}
    view = properties.get("instanceView") or {}
    image = {key: value for key, value in (storage.get("imageReference") or {}).items()
             if key in ("publisher", "offer", "sku", "version", "exactVersion", "id")}
    return {
        "id": vm["id"],
        "name": vm["name"],
        "vm_id": properties.get("vmId"),
        "subscription_id": subscription_id,
        "subscription_name": subscription_name,
        "resource_group": _resource_group(vm["id"]),
        "location": vm.get("location"),
        "zones": list(vm.get("zones") or []),
        "vm_size": (properties.get("hardwareProfile") or {}).get("vmSize"),
        "os_type": (storage.get("osDisk") or {}).get("osType"),
        "image": image,
        "computer_name": view.get("computerName") or (properties.get("osProfile") or {}).get("computerName"),
        "os_name": view.get("osName"),
        "os_version": view.get("osVersion"),
        "power_state": _power_state(view),
        "provisioning_state": properties.get("provisioningState"),
        "time_created": properties.get("timeCreated"),
        "tags": dict(vm.get("tags") or {}),
    }


def list_virtual_machines(client, subscription_id: str, subscription_name: str) -> list[dict]:
    """Every VM of the subscription with its power state (list_all, statusOnly=true, all pages)."""
    return [vm_record(vm.as_dict(), subscription_id, subscription_name)
            for vm in client.virtual_machines.list_all(status_only="true")]


def subscriptions_from_options(entries) -> list[tuple[str, str]]:
    """`azure_subscriptions` entries: an id, or a mapping with id and optional name -> (id, name)."""
    subscriptions = []
    for index, entry in enumerate(entries or []):
        if isinstance(entry, str):
            entry = {"id": entry}
        if not isinstance(entry, dict) or not entry.get("id"):
            raise ValueError(f"azure_subscriptions[{index}]: expected a subscription id or a mapping with 'id'")
        subscriptions.append((str(entry["id"]), str(entry.get("name") or entry["id"])))
    return subscriptions


class AzureCollector:
    """One job per subscription; results in `vms`."""

    def __init__(self, credential, endpoint: str, subscriptions: list[tuple[str, str]], max_attempts: int,
                 transport=None) -> None:
        self._credential = credential
        self._endpoint = endpoint
        self._subscriptions = subscriptions
        # azure-core counts retries after the first attempt; the option counts attempts, like botocore.
        self._client_options = {"retry_total": max(0, max_attempts - 1), "credential_scopes": [ARM_SCOPE]}
        if transport is not None:
            self._client_options["transport"] = transport
        self.vms: list[dict] = []

    def jobs(self) -> list[Job]:
        return [self._job(subscription_id, name) for subscription_id, name in self._subscriptions]

    def _job(self, subscription_id: str, name: str) -> Job:
        named = f" ({name})" if name != subscription_id else ""

        def listing() -> list[dict]:
            from azure.mgmt.compute import ComputeManagementClient

            with ComputeManagementClient(self._credential, subscription_id, base_url=self._endpoint,
                                         **self._client_options) as client:
                return list_virtual_machines(client, subscription_id, name)

        return Job(f"azure subscription {subscription_id}{named}", listing, self.vms.extend)
