# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Azure collector through the real SDK stack (azure-mgmt-compute, azure-core's pipeline and retry policy) on a
requests adapter that answers like ARM: paging by nextLink, statusOnly, 404 and 429 answers."""
from __future__ import annotations

import io
import json
import time
from types import SimpleNamespace
from urllib.parse import parse_qs
from urllib.parse import urlparse

import pytest
import requests
import urllib3
from azure.core.credentials import AccessToken
from azure.core.exceptions import AzureError
from azure.core.pipeline.transport import RequestsTransport

from ansible_collections.fleetpatch.ssm.plugins.plugin_utils import fleet_azure
from ansible_collections.fleetpatch.ssm.plugins.plugin_utils.fleet_jobs import run_jobs

ENDPOINT = "https://arm.example.test"
PROD = "1f6b2c8e-3a4d-4e5f-8a9b-0c1d2e3f4a5b"
GONE = "00000000-0000-4000-8000-00000000dead"


class Credential:
    def __init__(self):
        self.scopes = []

    def get_token(self, *scopes, **_kwargs):
        self.scopes.append(scopes)
        return AccessToken("token", int(time.time()) + 3600)


def arm_vm(subscription, name, power="running"):
    return {"id": f"/subscriptions/{subscription}/resourceGroups/RG-App/providers/Microsoft.Compute/virtualMachines/{name}",
            "name": name, "location": "westeurope", "type": "Microsoft.Compute/virtualMachines",
            "tags": {"PatchGroup": "prod-auto"},
            "properties": {"vmId": f"{len(name):08d}-0000-4000-8000-000000000000",
                           "storageProfile": {"osDisk": {"osType": "Linux"}},
                           "instanceView": {"statuses": [{"code": "ProvisioningState/succeeded"},
                                                         {"code": f"PowerState/{power}"}]}}}


class Arm(requests.adapters.BaseAdapter):
    """Answers GET /subscriptions/{s}/providers/Microsoft.Compute/virtualMachines like ARM (pages of 2)."""

    def __init__(self, vms, throttle_first=0):
        super().__init__()
        self.vms, self.throttle_first, self.requests = vms, throttle_first, []

    def send(self, request, **_kwargs):
        self.requests.append(request)
        url = urlparse(request.url)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        subscription = url.path.split("/")[2]
        if self.throttle_first:
            self.throttle_first -= 1
            return self._reply(request, 429, {"error": {"code": "TooManyRequests", "message": "throttled"}},
                               {"Retry-After": "0"})
        if subscription not in self.vms:
            return self._reply(request, 404, {"error": {"code": "SubscriptionNotFound",
                                                        "message": f"The subscription '{subscription}' could not be found."}})
        start = int(query.get("$skiptoken", 0))
        body = {"value": self.vms[subscription][start:start + 2]}
        if start + 2 < len(self.vms[subscription]):
            body["nextLink"] = f"{ENDPOINT}{url.path}?api-version={query['api-version']}&statusOnly=true&$skiptoken={start + 2}"
        return self._reply(request, 200, body)

    @staticmethod
    def _reply(request, status, body, headers=None):
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Content-Length": str(len(data)), **(headers or {})}
        raw = urllib3.HTTPResponse(body=io.BytesIO(data), headers=headers, status=status, preload_content=False)
        response = requests.adapters.HTTPAdapter().build_response(request, raw)
        return response

    def close(self):
        pass


def collect(arm, subscriptions, max_attempts=3):
    session = requests.Session()
    session.mount("https://", arm)
    credential = Credential()
    collector = fleet_azure.AzureCollector(credential, ENDPOINT, subscriptions, max_attempts,
                                           transport=RequestsTransport(session=session, session_owner=False))
    failures = run_jobs(collector.jobs(), 2, (AzureError,))
    return SimpleNamespace(vms=collector.vms, failures=[str(f) for f in failures], credential=credential)


def test_every_page_of_every_subscription_with_power_state_in_the_listing():
    arm = Arm({PROD: [arm_vm(PROD, f"vm-{n}", "deallocated" if n == 4 else "running") for n in range(5)]})

    read = collect(arm, [(PROD, "azure-prod")])

    assert read.failures == []
    assert [(vm["name"], vm["power_state"]) for vm in read.vms] == [
        ("vm-0", "running"), ("vm-1", "running"), ("vm-2", "running"), ("vm-3", "running"), ("vm-4", "deallocated")]
    assert len(arm.requests) == 3  # 5 VMs, pages of 2: one call per page, none per VM
    assert all("statusOnly=true" in r.url for r in arm.requests)
    assert {r.headers["Authorization"] for r in arm.requests} == {"Bearer token"}
    assert read.credential.scopes[0] == ("https://management.azure.com/.default",)
    vm = read.vms[0]
    assert (vm["resource_group"], vm["subscription_id"], vm["subscription_name"]) == ("RG-App", PROD, "azure-prod")


def test_a_subscription_that_cannot_be_read_fails_alone():
    arm = Arm({PROD: [arm_vm(PROD, "vm-1")]})

    read = collect(arm, [(PROD, "azure-prod"), (GONE, GONE)])

    assert [vm["name"] for vm in read.vms] == ["vm-1"]
    assert len(read.failures) == 1
    assert read.failures[0].startswith(f"azure subscription {GONE}: (SubscriptionNotFound)")


def test_throttling_is_retried_within_max_attempts():
    arm = Arm({PROD: [arm_vm(PROD, "vm-1")]}, throttle_first=1)

    read = collect(arm, [(PROD, "azure-prod")], max_attempts=2)

    assert read.failures == []
    assert [vm["name"] for vm in read.vms] == ["vm-1"]


def test_throttling_beyond_max_attempts_is_a_failure():
    arm = Arm({PROD: [arm_vm(PROD, "vm-1")]}, throttle_first=2)

    read = collect(arm, [(PROD, "azure-prod")], max_attempts=2)

    assert len(read.failures) == 1 and "TooManyRequests" in read.failures[0]


def test_subscription_entries():
    assert fleet_azure.subscriptions_from_options([PROD, {"id": GONE, "name": "old"}]) == [(PROD, PROD), (GONE, "old")]
    with pytest.raises(ValueError, match=r"azure_subscriptions\[0\]"):
        fleet_azure.subscriptions_from_options([{"name": "no id"}])
