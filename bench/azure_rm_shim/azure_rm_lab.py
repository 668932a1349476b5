# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""BENCH-ONLY SHIM, never shipped (bench/ is in galaxy.yml's build_ignore): azure.azcollection's azure_rm inventory
plugin, unmodified, pointed at the lab's Azure endpoint.

azure_rm (3.12) has no setting for a custom resource manager or authority endpoint that works without azure-cli-core
(its metadata-URL path calls an azure-cli-core function that no longer exists). This file subclasses it and replaces
only what the lab cannot give it otherwise; everything the benchmark measures (listing, per-VM instance view and NIC
requests, host variables, constructed features, output) is azure_rm's own code:

* `_credential_setup`: AzureRMAuth is replaced by the lab's service principal (azure-identity ClientSecretCredential
  with the lab authority) and the lab's endpoint as `resource_manager`. Tokens are always asked for ARM's audience:
  azure_rm asks for "<resource manager>/.default", which is ARM's own audience on Azure but not the lab's URL.
* `send_request`: the lab serves no Microsoft.Network provider. NIC GETs are still sent (the lab answers 404) and
  answered with an empty NIC, as if the VM had one without IP configuration.
* `_serialize`: azure-mgmt-compute 39 (the collection's) returns enums where azure_rm, which pins 33, stores
  strings (hyper_v_generation); ansible-core 2.19 refuses such values as variables. They become their string value.
* `netaddr` and `azure.mgmt.network` (imported by azure_rm, used only for scale sets) are stubbed when missing, so
  that the benchmark needs none of azure.azcollection's 50 requirements besides those the collection already has.

Configuration files: `plugin: azure_rm_lab`, names ending in azure_rm.yml, plus `subscription_id`; the lab's
AZURE_TENANT_ID / AZURE_CLIENT_ID / AZURE_CLIENT_SECRET / AZURE_AUTHORITY_HOST / FLEETPATCH_AZURE_ENDPOINT come from
the environment. Loaded through ANSIBLE_INVENTORY_PLUGINS=bench/azure_rm_shim.
"""
from __future__ import annotations

import enum
import importlib
import os
import sys
import types

DOCUMENTATION = r"""
name: azure_rm_lab
short_description: BENCH-ONLY shim of azure.azcollection.azure_rm for the fleetpatch lab
description: azure.azcollection.azure_rm with the lab's credentials and endpoint (bench/azure_rm_shim).
extends_documentation_fragment:
  - azure.azcollection.azure
  - azure.azcollection.azure_rm
  - constructed
  - inventory_cache
options:
  plugin:
    description: marks the file as this shim's configuration
    required: true
    choices: [azure_rm_lab]
  batch_fetch_interval:
    description: as azure_rm
    default: 3
    type: int
  batch_fetch_timeout:
    description: as azure_rm
    default: 5
    type: int
"""


def _stub_missing(name: str, **attributes) -> None:
    try:
        importlib.import_module(name)
    except ImportError:
        module = types.ModuleType(name)
        module.__dict__.update(attributes)
        sys.modules[name] = module


_stub_missing("netaddr", IPAddress=object)
_stub_missing("azure.mgmt.network", NetworkManagementClient=object)

from ansible_collections.azure.azcollection.plugins.inventory import azure_rm  # noqa: E402

ARM_SCOPE = "https://management.azure.com/.default"


class _ArmAudienceCredential:
    """The lab's credential, always asked for ARM's audience (see the module docstring)."""

    def __init__(self, credential) -> None:
        self._credential = credential

    def get_token(self, *_scopes, **kwargs):
        return self._credential.get_token(ARM_SCOPE, **kwargs)


class _LabAuth:
    """What azure_rm reads of AzureRMAuth: a track-2 credential, the subscription and the cloud's ARM endpoint."""

    def __init__(self, subscription_id: str) -> None:
        from azure.identity import ClientSecretCredential

        credential = ClientSecretCredential(
            os.environ["AZURE_TENANT_ID"], os.environ["AZURE_CLIENT_ID"], os.environ["AZURE_CLIENT_SECRET"],
            authority=os.environ["AZURE_AUTHORITY_HOST"], disable_instance_discovery=True)
        self.azure_credential_track2 = _ArmAudienceCredential(credential)
        self.subscription_id = subscription_id
        endpoints = types.SimpleNamespace(resource_manager=os.environ["FLEETPATCH_AZURE_ENDPOINT"])
        self._cloud_environment = types.SimpleNamespace(endpoints=endpoints)


class InventoryModule(azure_rm.InventoryModule):
    NAME = "azure_rm_lab"

    def _credential_setup(self):
        self.azure_auth = _LabAuth(self.get_option("subscription_id"))
        endpoint = self.azure_auth._cloud_environment.endpoints.resource_manager
        self._clientconfig = azure_rm.AzureRMRestConfiguration(self.azure_auth.azure_credential_track2,
                                                               self.azure_auth.subscription_id, endpoint)
        self.new_client = azure_rm.PipelineClient(endpoint, config=self._clientconfig)

    def _serialize(self, hosts):
        return [{"default_inventory_hostname": entry["default_inventory_hostname"],
                 "hostvars": {k: v.value if isinstance(v, enum.Enum) else v for k, v in entry["hostvars"].items()}}
                for entry in super()._serialize(hosts)]

    def send_request(self, url, api_version):
        response = super().send_request(url, api_version)
        if "/providers/microsoft.network/networkinterfaces/" in url.lower() and "error" in response:
            return {"id": url, "name": url.rsplit("/", 1)[-1], "properties": {"ipConfigurations": []}}
        return response
