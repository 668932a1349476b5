# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetpatch.ssm project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Azure Resource Manager (Microsoft.Compute) from a module: credentials, the client, VM references, run commands.

Credentials and endpoint
    The options and environment variables are the `fleetpatch.ssm.fleet` inventory's, which builds its credential
    with make_credential() too (plugins may import module_utils, not the other way round): a service
    principal secret gives azure-identity's ClientSecretCredential, no secret gives DefaultAzureCredential
    (environment, workload identity, managed identity, Azure CLI). An authority host that is not one of Microsoft's
    public ones (Azure Stack, a private cloud, a test endpoint) needs MSAL's instance discovery off, since MSAL
    would validate it by asking login.microsoftonline.com. The token is for ARM ("https://management.azure.com/
    .default", the SDK's default scope) whichever endpoint serves ARM.

Long-running operations
    ARM answers Run Command with an asynchronous operation. azure-core polls it every `polling_interval` seconds
    unless the service sends Retry-After; its default (30 s) would make a 2-second script take 30, so the caller
    chooses. Throttling (429) and 5xx answers are retried by azure-core's RetryPolicy, which honours Retry-After.

Run Command (Azure docs, "Run scripts in your VM by using action Run Commands" / "managed Run Commands")
    Action (POST .../runCommand): one script at a time per VM; the result is the last 4,096 bytes of each stream
    and no exit code (the Linux handler reports success even when the script fails), so scripts print their own
    end marker. Parameters are positional ($1..) on Linux and named on Windows.
    Managed (PUT .../runCommands/{name}): `protectedParameters` are encrypted and never returned; on Linux named
    parameters reach the script as environment variables, on Windows they bind to its param() block. The instance
    view (GET ?$expand=instanceView) has the exit code, state and output tails. Deleting it ends an execution and
    leaves nothing on the VM's resource.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlparse

from ansible.module_utils.basic import env_fallback

from .validation import ParameterError
from .validation import field_path

ARM_SCOPE = "https://management.azure.com/.default"
DEFAULT_ENDPOINT = "https://management.azure.com"
MICROSOFT_AUTHORITIES = ("login.microsoftonline.com", "login.chinacloudapi.cn", "login.microsoftonline.us")
TERMINAL_EXECUTION_STATES = ("Succeeded", "Failed", "TimedOut", "Canceled", "Unknown")
# ARM resource names (Azure naming rules): resource groups 1-90 of [-\w._()], not ending with a period; Linux VM
# names 1-64 and Windows 1-15 of [-\w.], so the shared pattern allows 64.
_RESOURCE_GROUP = r"[-\w._()]{0,89}[-\w_()]"
_VM_NAME = r"[-\w.]{1,64}"
_SUBSCRIPTION = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_VM_RESOURCE_ID = re.compile(
    rf"/subscriptions/(?P<subscription>{_SUBSCRIPTION})/resourceGroups/(?P<group>{_RESOURCE_GROUP})"
    rf"/providers/Microsoft\.Compute/virtualMachines/(?P<name>{_VM_NAME})", re.I)


def azure_argument_spec() -> dict:
    """The Azure connection options, with the inventory's names and environment variables. Where two variables
    can set one option, azure-identity's own name wins over AWX's credential type name (as in the inventory)."""
    return dict(
        azure_endpoint=dict(type="str", default=DEFAULT_ENDPOINT,
                            fallback=(env_fallback, ["FLEETPATCH_AZURE_ENDPOINT"])),
        azure_tenant_id=dict(type="str", fallback=(env_fallback, ["AZURE_TENANT_ID", "AZURE_TENANT"])),
        azure_client_id=dict(type="str", fallback=(env_fallback, ["AZURE_CLIENT_ID"])),
        azure_client_secret=dict(type="str", no_log=True,
                                 fallback=(env_fallback, ["AZURE_CLIENT_SECRET", "AZURE_SECRET"])),
        azure_authority_host=dict(type="str", fallback=(env_fallback, ["AZURE_AUTHORITY_HOST"])),
        azure_disable_instance_discovery=dict(type="bool"),
    )


def disables_instance_discovery(authority: Optional[str], explicit: Optional[bool]) -> bool:
    """The `azure_disable_instance_discovery` option, or its default: on for a non-Microsoft authority host."""
    if explicit is not None:
        return explicit
    return bool(authority) and urlparse(authority if "//" in authority else f"//{authority}").hostname \
        not in MICROSOFT_AUTHORITIES


# The options (module parameters, inventory options: the same names) that make_credential() reads.
CREDENTIAL_OPTIONS = ("azure_tenant_id", "azure_client_id", "azure_client_secret", "azure_authority_host",
                      "azure_disable_instance_discovery")


def make_credential(params: dict):
    """ClientSecretCredential for a service principal secret, else DefaultAzureCredential."""
    from azure.identity import ClientSecretCredential
    from azure.identity import DefaultAzureCredential

    authority = params.get("azure_authority_host")
    options = {"disable_instance_discovery": disables_instance_discovery(
        authority, params.get("azure_disable_instance_discovery"))}
    if authority:
        options["authority"] = authority
    if params.get("azure_client_secret"):
        return ClientSecretCredential(params.get("azure_tenant_id"), params.get("azure_client_id"),
                                      params["azure_client_secret"], **options)
    if params.get("azure_client_id"):  # a user-assigned managed identity, or a workload identity's client
        options["managed_identity_client_id"] = params["azure_client_id"]
    if params.get("azure_tenant_id"):
        options["workload_identity_tenant_id"] = params["azure_tenant_id"]
    return DefaultAzureCredential(**options)


def compute_client(credential, subscription_id: str, endpoint: str, polling_interval: float):
    from azure.mgmt.compute import ComputeManagementClient

    return ComputeManagementClient(credential, subscription_id, base_url=endpoint.rstrip("/"),
                                   credential_scopes=[ARM_SCOPE], polling_interval=polling_interval)


# ------------------------------------------------------------------------------------------------ VM references

@dataclass(frozen=True)
class VmRef:
    """One VM. ARM compares names without regard to case, so `key` does too."""

    subscription_id: str
    resource_group: str
    name: str

    @property
    def resource_id(self) -> str:
        return (f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}/providers/"
                f"Microsoft.Compute/virtualMachines/{self.name}")

    @property
    def key(self) -> tuple:
        return (self.subscription_id.lower(), self.resource_group.lower(), self.name.lower())


def vm_ref(field: str, value) -> VmRef:
    """A VM given as an ARM resource id or as a mapping {subscription_id, resource_group, name}."""
    if isinstance(value, str):
        match = _VM_RESOURCE_ID.fullmatch(value.strip().rstrip("/"))
        if not match:
            raise ParameterError(
                f"{field}: {value!r} is not a VM resource id; allowed: /subscriptions/<subscription id>/"
                "resourceGroups/<group>/providers/Microsoft.Compute/virtualMachines/<name>, or a mapping with "
                "subscription_id, resource_group and name")
        return VmRef(match["subscription"], match["group"], match["name"])
    if not isinstance(value, dict):
        raise ParameterError(f"{field}: expected a VM resource id or a mapping with subscription_id, resource_group "
                             f"and name, got {type(value).__name__}")
    unknown = sorted(set(value) - {"subscription_id", "resource_group", "name"})
    missing = [key for key in ("subscription_id", "resource_group", "name") if not value.get(key)]
    if unknown or missing:
        raise ParameterError(f"{field}: needs subscription_id, resource_group and name"
                             + (f"; missing: {', '.join(missing)}" if missing else "")
                             + (f"; unknown: {', '.join(unknown)}" if unknown else ""))
    checks = (("subscription_id", _SUBSCRIPTION, "a subscription id (a GUID)"),
              ("resource_group", _RESOURCE_GROUP, "1 to 90 letters, digits and - _ . ( ), not ending with ."),
              ("name", _VM_NAME, "1 to 64 letters, digits and - _ ."))
    for key, pattern, meaning in checks:
        if not re.fullmatch(pattern, str(value[key])):
            raise ParameterError(f"{field_path(field, key)}: {value[key]!r} is not valid; allowed: {meaning}")
    return VmRef(str(value["subscription_id"]), str(value["resource_group"]), str(value["name"]))


def vm_refs(field: str, values: list) -> list:
    """Every VM of the list, each once: two entries for one VM would run two scripts on it at the same time."""
    refs, seen = [], {}
    for index, value in enumerate(values or []):
        ref = vm_ref(field_path(field, index), value)
        if ref.key in seen:
            raise ParameterError(f"{field_path(field, index)}: {ref.resource_id} is the same VM as "
                                 f"{field_path(field, seen[ref.key])}")
        seen[ref.key] = index
        refs.append(ref)
    return refs


# ------------------------------------------------------------------------------------------------- run commands

@dataclass
class ScriptOutput:
    """What a run command reports. `exit_code` is None where Azure does not give one (action Run Command)."""

    stdout: str
    stderr: str
    exit_code: Optional[int] = None
    state: str = "Succeeded"


class RunCommandTimeout(Exception):
    """The script did not end within the time allowed."""


def run_action(client, ref: VmRef, windows: bool, script: str, parameters: list, timeout: float) -> ScriptOutput:
    """Action Run Command: the script and its parameters ([(name, value)]) in one POST; waits for the result."""
    body = {"commandId": "RunPowerShellScript" if windows else "RunShellScript", "script": script.splitlines(),
            "parameters": [{"name": name, "value": value} for name, value in parameters]}
    poller = client.virtual_machines.begin_run_command(ref.resource_group, ref.name, body)
    poller.wait(timeout)
    if not poller.done():
        raise RunCommandTimeout(f"the run command did not end within {timeout:g} seconds")
    return action_output(_as_dict(poller.result()), windows)


def action_output(result: dict, windows: bool) -> ScriptOutput:
    """RunCommandResult.value: Windows one status per stream (ComponentStatus/StdOut|StdErr/succeeded); Linux one
    status whose message holds both ("Enable succeeded: \\n[stdout]\\n...\\n[stderr]\\n...")."""
    statuses = result.get("value") or []
    if windows:
        streams = {"stdout": "", "stderr": ""}
        for status in statuses:
            code = (status.get("code") or "").lower()
            for stream in streams:
                if f"/{stream}/" in code:
                    streams[stream] = status.get("message") or ""
        return ScriptOutput(streams["stdout"], streams["stderr"])
    message = "\n".join(status.get("message") or "" for status in statuses)
    match = re.search(r"\[stdout\]\n(?P<out>.*?)\n?\[stderr\]\n?(?P<err>.*)\Z", message, re.S)
    return ScriptOutput(match["out"], match["err"]) if match else ScriptOutput(message, "")


def run_managed(client, ref: VmRef, location: str, name: str, script: str, parameters: list,
                protected_parameters: list, timeout: float) -> ScriptOutput:
    """Managed Run Command: create it (the PUT returns once the script ended: asyncExecution false), read its
    instance view, delete it. The protected values travel in the PUT only; Azure never returns them."""
    body = {
        "location": location,
        "properties": {
            "source": {"script": script},
            "parameters": [{"name": key, "value": value} for key, value in parameters],
            "protectedParameters": [{"name": key, "value": value} for key, value in protected_parameters],
            "asyncExecution": False,
            "timeoutInSeconds": int(timeout),
            "treatFailureAsDeploymentFailure": False,  # a failing script is read from the instance view
        },
    }
    operations = client.virtual_machine_run_commands
    try:
        poller = operations.begin_create_or_update(ref.resource_group, ref.name, name, body)
        poller.wait(timeout + 60)  # Azure ends the script at timeoutInSeconds; the margin is for the handler
        if not poller.done():
            raise RunCommandTimeout(f"the run command did not end within {timeout:g} seconds")
        view = _wait_for_execution(operations, ref, name, deadline=time.monotonic() + 60)
    finally:
        operations.begin_delete(ref.resource_group, ref.name, name).wait(60)
    return ScriptOutput(view.get("output") or "", view.get("error") or "", view.get("exitCode"),
                        view.get("executionState") or "Unknown")


def _wait_for_execution(operations, ref: VmRef, name: str, deadline: float) -> dict:
    """The instance view once the execution reached a final state (it does when the PUT ends, unless the service
    finishes provisioning first)."""
    while True:
        command = _as_dict(operations.get_by_virtual_machine(ref.resource_group, ref.name, name,
                                                             expand="instanceView"))
        view = (command.get("properties") or {}).get("instanceView") or {}
        if view.get("executionState") in TERMINAL_EXECUTION_STATES or time.monotonic() > deadline:
            return view
        time.sleep(1)


def get_vm(client, ref: VmRef) -> dict:
    """The VM with its instance view (power state, guest OS name), as ARM JSON."""
    return _as_dict(client.virtual_machines.get(ref.resource_group, ref.name, expand="instanceView"))


def power_state(vm: dict) -> Optional[str]:
    view = (vm.get("properties") or {}).get("instanceView") or {}
    for status in view.get("statuses") or []:
        code = status.get("code") or ""
        if code.startswith("PowerState/"):
            return code[len("PowerState/"):]
    return None


def _as_dict(model) -> dict:
    """azure-mgmt-compute models are mappings of the REST JSON (REST names, e.g. properties.vmId)."""
    if model is None:
        return {}
    if hasattr(model, "as_dict"):
        return model.as_dict()
    return dict(model)


def managed_run_command_refused(error: Exception) -> bool:
    """ARM's answer for a VM that cannot take a managed run command (400 or 404 to the PUT): the caller may fall
    back to the action Run Command."""
    return getattr(error, "status_code", None) in (400, 404) and not isinstance(error, RunCommandTimeout)


def sdk_errors() -> tuple:
    """The Azure SDK's errors that fail one VM (HTTP answers, connection and authentication problems)."""
    from azure.core.exceptions import AzureError  # HttpResponseError, ClientAuthenticationError, ServiceRequestError

    return (AzureError, RunCommandTimeout)
