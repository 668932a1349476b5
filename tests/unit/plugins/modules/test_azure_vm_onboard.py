# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleetpatch.ssm.azure_vm_onboard: the option checks before any call, the node lookup on a stubbed SSM client,
and the task's outcome when some VMs fail (Azure replaced by canned answers; the lab test runs the real thing)."""
from __future__ import annotations

import json
import re
from unittest import mock

import pytest
from botocore.exceptions import ClientError

from ansible_collections.fleetpatch.ssm.plugins.module_utils import azure_compute
from ansible_collections.fleetpatch.ssm.plugins.modules import azure_vm_onboard
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import run_module
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import stubbed

SUB = "6c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
NODE = "mi-0123456789abcdef0"
AZURE = {"azure_tenant_id": "t", "azure_client_id": "c", "azure_client_secret": "s",
         "azure_endpoint": "https://127.0.0.1:1", "azure_authority_host": "https://127.0.0.1:1"}


def vm_id(name: str) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/{name}"


def expect_node(stubber, rows=None, error=None):
    params = {"Filters": [{"Key": "InstanceIds", "Values": [NODE]}]}
    if error:
        stubber.add_client_error("describe_instance_information", error, expected_params=params)
    else:
        stubber.add_response("describe_instance_information", {"InstanceInformationList": rows}, params)


@pytest.mark.parametrize("rows, error, expected", [
    ([{"InstanceId": NODE, "PingStatus": "Online"}], None, "Online"),
    ([{"InstanceId": NODE, "PingStatus": "ConnectionLost"}], None, "ConnectionLost"),
    ([], None, None),  # a well-formed id this account-region does not know
    (None, "InvalidInstanceId", None),  # AWS's answer for another account's node
])
def test_the_node_lookup_tells_online_from_unknown(rows, error, expected):
    with stubbed() as (client, stubber):
        expect_node(stubber, rows, error)
        assert azure_vm_onboard.ping_status_reader(client)(NODE) == expected


def test_other_aws_errors_are_not_mistaken_for_an_unknown_node():
    with stubbed() as (client, stubber):
        expect_node(stubber, error="AccessDeniedException")
        with pytest.raises(ClientError):
            azure_vm_onboard.ping_status_reader(client)(NODE)


@pytest.mark.parametrize("args, message", [
    ({"vms": ["az-app-001"]}, r"vms\[0\]: 'az-app-001' is not a VM resource id"),
    ({"vms": [vm_id("a"), vm_id("A")]}, r"vms\[1\]: .* is the same VM as vms\[0\]"),
    ({"vms": [vm_id("a")], "activation_id": "abc"}, "activation_id: 'abc' is not valid"),
    ({"vms": [vm_id("a")], "region": "Ireland"}, "region: 'Ireland' is not valid"),
])
def test_bad_options_fail_before_any_call(args, message):
    with stubbed() as (client, _stubber), mock.patch.object(azure_compute, "get_vm") as get_vm:
        result = run_module(azure_vm_onboard.main, dict(AZURE, **args), client)
    assert result["failed"] and get_vm.call_count == 0
    assert re.search(message, result["msg"]), result["msg"]


def fake_vm(client, ref):
    return {"location": "westeurope", "properties": {
        "vmId": f"id-{ref.name}", "storageProfile": {"osDisk": {"osType": "Linux"}},
        "instanceView": {"osName": "ubuntu", "osVersion": "22.04", "statuses": [{"code": "PowerState/running"}]}}}


def fake_probe(client, ref, windows, script, parameters, timeout):
    """az-two has a deb and a snap agent; every other VM is registered as NODE in this region."""
    if ref.name == "az-two":
        return azure_compute.ScriptOutput("fleetpatch:agents=deb:1 rpm:0 snap:1\nfleetpatch:exit=0\n", "")
    registration = json.dumps({"ManagedInstanceID": NODE, "Region": "eu-west-1"})
    return azure_compute.ScriptOutput(f"fleetpatch:agents=deb:1\nfleetpatch:registration-begin\n{registration}\n"
                                      "fleetpatch:registration-end\nfleetpatch:exit=0\n", "")


@pytest.mark.parametrize("tolerate", [False, True])
def test_a_failed_vm_fails_the_task_at_the_end_unless_tolerated(tolerate):
    with stubbed() as (client, stubber), \
            mock.patch.object(azure_compute, "compute_client"), \
            mock.patch.object(azure_compute, "get_vm", fake_vm), \
            mock.patch.object(azure_compute, "run_action", fake_probe):
        expect_node(stubber, [{"InstanceId": NODE, "PingStatus": "Online"}])
        args = dict(AZURE, vms=[vm_id("az-ok"), vm_id("az-two")], tolerate_failures=tolerate)
        result = run_module(azure_vm_onboard.main, args, client)
    assert [(vm["name"], vm["status"]) for vm in result["vms"]] == [("az-ok", "registered"), ("az-two", "failed")]
    assert result["summary"] == {"registered": 1, "failed": 1} and result["changed"] is False
    assert result.get("failed", False) is not tolerate
    if not tolerate:
        assert result["msg"].startswith("1 of 2 VM(s) failed: az-two (more than one SSM agent is installed")
