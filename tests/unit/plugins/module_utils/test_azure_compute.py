# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Azure from a module: VM references, the credential options, and reading Run Command results."""
from __future__ import annotations

import pytest

from ansible_collections.fleetpatch.ssm.plugins.module_utils import azure_compute
from ansible_collections.fleetpatch.ssm.plugins.module_utils.validation import ParameterError

SUB = "6c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
VM_ID = f"/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.Compute/virtualMachines/az-app-001"


# ------------------------------------------------------------------------------------------------ references

def test_a_vm_is_given_by_resource_id_or_by_its_three_names():
    by_id = azure_compute.vm_ref("vms[0]", VM_ID)
    by_names = azure_compute.vm_ref("vms[1]", {"subscription_id": SUB, "resource_group": "rg-app", "name": "az-app-001"})
    assert by_id == by_names == azure_compute.VmRef(SUB, "rg-app", "az-app-001")
    assert by_id.resource_id == VM_ID


def test_arm_ids_are_matched_without_regard_to_case_and_a_trailing_slash():
    ref = azure_compute.vm_ref("vms[0]", VM_ID.replace("resourceGroups", "resourcegroups").lower() + "/")
    assert ref.key == azure_compute.VmRef(SUB, "rg-app", "az-app-001").key


@pytest.mark.parametrize("value, message", [
    ("az-app-001", r"vms\[2\]: 'az-app-001' is not a VM resource id"),
    (VM_ID.replace("virtualMachines", "disks"), "is not a VM resource id"),
    ({"subscription_id": SUB, "name": "x"}, r"vms\[2\]: needs subscription_id, resource_group and name; missing: "
                                            "resource_group"),
    ({"subscription_id": SUB, "resource_group": "rg", "name": "x", "zone": 1}, "unknown: zone"),
    ({"subscription_id": "prod", "resource_group": "rg", "name": "x"}, r"vms\[2\].subscription_id: 'prod' is not valid"),
    ({"subscription_id": SUB, "resource_group": "rg.", "name": "x"}, r"vms\[2\].resource_group: 'rg.' is not valid"),
    ({"subscription_id": SUB, "resource_group": "rg", "name": "a b"}, r"vms\[2\].name: 'a b' is not valid"),
    (42, r"vms\[2\]: expected a VM resource id or a mapping"),
])
def test_a_bad_vm_reference_names_the_entry_and_what_is_allowed(value, message):
    with pytest.raises(ParameterError, match=message):
        azure_compute.vm_ref("vms[2]", value)


def test_a_vm_listed_twice_is_refused_since_it_would_run_two_scripts_at_once():
    with pytest.raises(ParameterError, match=r"vms\[1\]: .* is the same VM as vms\[0\]"):
        azure_compute.vm_refs("vms", [VM_ID, {"subscription_id": SUB.upper(), "resource_group": "RG-APP",
                                              "name": "AZ-APP-001"}])


# ---------------------------------------------------------------------------------------------- credentials

@pytest.mark.parametrize("authority, explicit, expected", [
    (None, None, False),
    ("https://login.microsoftonline.com", None, False),
    ("login.microsoftonline.us", None, False),
    ("https://127.0.0.1:8443", None, True),
    ("https://127.0.0.1:8443", False, False),
    ("https://login.microsoftonline.com", True, True),
])
def test_instance_discovery_is_off_for_an_authority_microsoft_does_not_run(authority, explicit, expected):
    assert azure_compute.disables_instance_discovery(authority, explicit) is expected


def test_the_options_read_the_inventorys_environment_variables_azure_identitys_first():
    spec = azure_compute.azure_argument_spec()
    assert spec["azure_tenant_id"]["fallback"][1] == ["AZURE_TENANT_ID", "AZURE_TENANT"]
    assert spec["azure_client_secret"]["fallback"][1] == ["AZURE_CLIENT_SECRET", "AZURE_SECRET"]
    assert spec["azure_client_secret"]["no_log"] is True
    assert spec["azure_endpoint"]["fallback"][1] == ["FLEETPATCH_AZURE_ENDPOINT"]


def test_a_service_principal_secret_gives_a_client_secret_credential():
    credential = azure_compute.make_credential({"azure_tenant_id": "t", "azure_client_id": "c",
                                                "azure_client_secret": "s",
                                                "azure_authority_host": "https://127.0.0.1:1"})
    assert type(credential).__name__ == "ClientSecretCredential"


def test_no_secret_gives_the_default_chain_the_inventory_and_modules_share():
    """The inventory builds its credential from its options of the same names (plugins/inventory/fleet.py)."""
    assert set(azure_compute.CREDENTIAL_OPTIONS) <= set(azure_compute.azure_argument_spec())
    credential = azure_compute.make_credential(dict.fromkeys(azure_compute.CREDENTIAL_OPTIONS))
    assert type(credential).__name__ == "DefaultAzureCredential"


# ------------------------------------------------------------------------------------------------- results

def test_linux_action_output_is_split_into_its_streams():
    result = {"value": [{"code": "ProvisioningState/succeeded", "message":
                         "Enable succeeded: \n[stdout]\nfleetpatch:exit=0\nline two\n[stderr]\nwarning: x\n"}]}
    output = azure_compute.action_output(result, windows=False)
    assert (output.stdout, output.stderr.strip(), output.exit_code) == ("fleetpatch:exit=0\nline two", "warning: x",
                                                                        None)


def test_windows_action_output_has_one_status_per_stream():
    result = {"value": [{"code": "ComponentStatus/StdOut/succeeded", "message": "fleetpatch:exit=0"},
                        {"code": "ComponentStatus/StdErr/succeeded", "message": "oops"}]}
    output = azure_compute.action_output(result, windows=True)
    assert (output.stdout, output.stderr) == ("fleetpatch:exit=0", "oops")


class _Poller:
    def __init__(self, result=None, done=True):
        self._result, self._done = result, done

    def wait(self, timeout=None):
        pass

    def done(self):
        return self._done

    def result(self):
        return self._result


class _RunCommands:
    """virtual_machine_run_commands: records the calls; the instance view says how the script ended."""

    def __init__(self, view, create_done=True):
        self.view, self.create_done, self.calls = view, create_done, []

    def begin_create_or_update(self, group, vm, name, body):
        self.calls.append(("put", name, body))
        return _Poller(done=self.create_done)

    def get_by_virtual_machine(self, group, vm, name, expand=None):
        self.calls.append(("get", name, expand))
        return {"properties": {"instanceView": self.view}}

    def begin_delete(self, group, vm, name):
        self.calls.append(("delete", name))
        return _Poller()


def test_a_managed_run_command_sends_the_protected_values_apart_reads_the_exit_code_and_is_deleted():
    operations = _RunCommands({"executionState": "Failed", "exitCode": 1, "output": "out", "error": "err"})
    client = type("Client", (), {"virtual_machine_run_commands": operations})()
    ref = azure_compute.VmRef(SUB, "rg-app", "az-app-001")
    output = azure_compute.run_managed(client, ref, "westeurope", "cmd", "echo hi", [("A", "1")],
                                       [("ActivationCode", "secret")], timeout=120)
    assert (output.exit_code, output.state, output.stdout, output.stderr) == (1, "Failed", "out", "err")
    put = operations.calls[0][2]
    assert put["properties"]["protectedParameters"] == [{"name": "ActivationCode", "value": "secret"}]
    assert put["properties"]["parameters"] == [{"name": "A", "value": "1"}]
    assert "secret" not in put["properties"]["source"]["script"]
    assert (put["properties"]["timeoutInSeconds"], put["properties"]["asyncExecution"]) == (120, False)
    assert operations.calls[-1] == ("delete", "cmd")


def test_a_managed_run_command_that_does_not_end_in_time_is_deleted_too():
    operations = _RunCommands({}, create_done=False)
    client = type("Client", (), {"virtual_machine_run_commands": operations})()
    with pytest.raises(azure_compute.RunCommandTimeout):
        azure_compute.run_managed(client, azure_compute.VmRef(SUB, "rg", "vm"), "westeurope", "cmd", "x", [], [], 5)
    assert operations.calls[-1] == ("delete", "cmd")


def test_only_a_400_or_404_to_the_put_means_managed_run_commands_are_refused():
    refused = type("HttpResponseError", (Exception,), {"status_code": 404})()
    conflict = type("HttpResponseError", (Exception,), {"status_code": 409})()
    assert azure_compute.managed_run_command_refused(refused)
    assert not azure_compute.managed_run_command_refused(conflict)
    assert not azure_compute.managed_run_command_refused(azure_compute.RunCommandTimeout("late"))


def test_the_power_state_comes_from_the_instance_view():
    vm = {"properties": {"instanceView": {"statuses": [{"code": "ProvisioningState/succeeded"},
                                                       {"code": "PowerState/deallocated"}]}}}
    assert azure_compute.power_state(vm) == "deallocated"
    assert azure_compute.power_state({"properties": {}}) is None
