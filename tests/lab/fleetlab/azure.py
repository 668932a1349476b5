"""The lab's Azure: a Microsoft Entra ID token endpoint and Azure Resource Manager for Microsoft.Compute VMs.

One HTTPS server on 127.0.0.1 (a CA generated at start, see `start`). Unmodified azure-identity and
azure-mgmt-compute use it through their documented settings:

    ClientSecretCredential(AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET,
                           authority=AZURE_AUTHORITY_HOST, disable_instance_discovery=True)
    (or DefaultAzureCredential(disable_instance_discovery=True) with the AZURE_* variables exported)
    ComputeManagementClient(credential, subscription_id, base_url=FLEETPATCH_AZURE_ENDPOINT)

`disable_instance_discovery=True` is needed because MSAL otherwise validates an unknown authority host by asking
login.microsoftonline.com (azure-identity's documented switch for private clouds / Azure Stack).

Served (paths case-insensitive like ARM):
  Entra ID: GET /{tenant}/v2.0/.well-known/openid-configuration, POST /{tenant}/oauth2/v2.0/token
            (client_credentials with client_secret; errors as AADSTS codes).
  ARM, api-version required (API_VERSIONS), bearer token required (401 otherwise):
    GET  /subscriptions/{s}/providers/Microsoft.Compute/virtualMachines                    list_all
    GET  /subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines list
    GET  .../virtualMachines/{vm}[?$expand=instanceView]                                  get
    GET  .../virtualMachines/{vm}/instanceView                                            instance_view
    POST .../virtualMachines/{vm}/runCommand                                              begin_run_command
    GET  .../virtualMachines/{vm}/runCommands                                             list_by_virtual_machine
    PUT|GET|DELETE .../virtualMachines/{vm}/runCommands/{name}                           managed run commands
    GET  /subscriptions/{s}/providers/Microsoft.Compute/locations/{l}/operations/{id}     LRO status
Control API (fleetlab.control): POST /azure/vms/power, GET /azure/vms/agent.
Scripts run against simulated guests (azure_scripts.py).
"""
from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import ipaddress
import json
import os
import re
import secrets
import ssl
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, unquote, urlencode, urlparse

from . import azure_scripts
from .control import ControlError, route
from .platforms import Platform, platform
from .state import LAB

UTC = datetime.timezone.utc

# Microsoft.Compute api-versions the lab answers: azure-mgmt-compute 39's 2026-04-01 and the GA versions before it
# whose virtualMachines and runCommands shapes the lab's answers match.
API_VERSIONS = ("2023-03-01", "2023-07-01", "2023-09-01", "2024-03-01", "2024-07-01", "2024-11-01",
                "2025-04-01", "2026-04-01")
# Audiences ARM accepts in a token (ARM's InvalidAuthenticationTokenAudience message lists these).
ARM_AUDIENCES = ("https://management.core.windows.net/", "https://management.core.windows.net",
                 "https://management.azure.com/", "https://management.azure.com")
TOKEN_LIFETIME_SECONDS = 3599  # Entra ID access tokens: 60-90 minutes; expires_in as the token endpoint sends it
OUTPUT_TAIL_BYTES = 4096  # Run Command: "Output is limited to the last 4,096 bytes" (per stream, handler source)
ACTION_TIMEOUT_SECONDS = 90 * 60  # Run Command: "The maximum time a script can run is 90 minutes"
DEFAULT_PAGE_SIZE = 10  # ARM's page size is the provider's choice; small so that clients must follow nextLink

_IMAGES = {  # Azure Marketplace images of the simulated OSes (publisher/offer/sku as published)
    "ubuntu-20.04": ("Canonical", "0001-com-ubuntu-server-focal", "20_04-lts-gen2", "20.04.202410020"),
    "ubuntu-22.04": ("Canonical", "0001-com-ubuntu-server-jammy", "22_04-lts-gen2", "22.04.202410020"),
    "ubuntu-24.04": ("Canonical", "ubuntu-24_04-lts", "server", "24.04.202410010"),
    "windows-2016": ("MicrosoftWindowsServer", "WindowsServer", "2016-Datacenter", "14393.7428.241004"),
    "windows-2022": ("MicrosoftWindowsServer", "WindowsServer", "2022-datacenter-azure-edition",
                     "20348.2762.241006"),
}


# ------------------------------------------------------------------------------------------------ errors

class ArmError(Exception):
    """An ARM error response: {"error": {"code", "message"[, "target"]}} with its HTTP status."""

    def __init__(self, status: int, code: str, message: str, target: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.target = status, code, message, target

    def body(self) -> dict:
        error = {"code": self.code, "message": self.message}
        if self.target:
            error["target"] = self.target
        return {"error": error}


class AadError(Exception):
    """An Entra ID token endpoint error: OAuth2 `error` plus the AADSTS code in error_description/error_codes."""

    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.code, self.description = status, error, code, description


def _not_found(kind: str, name: str, resource_group: str) -> ArmError:
    return ArmError(404, "ResourceNotFound",
                    f"The Resource '{kind}/{name}' under resource group '{resource_group}' was not found. "
                    "For more details please go to https://aka.ms/ARMResourceNotFoundFix")


def _required(body: dict, name: str) -> Any:
    """Compute's answer to a missing required property."""
    if body.get(name) in (None, ""):
        raise ArmError(400, "InvalidParameter", f"Required parameter '{name}' is missing (null).", target=name)
    return body[name]


# ------------------------------------------------------------------------------------------------- model

@dataclass
class Operation:
    """An ARM asynchronous operation (Azure-AsyncOperation / Location URLs point here)."""

    id: str
    subscription: str
    location: str
    start_time: datetime.datetime
    status: str = "InProgress"
    end_time: datetime.datetime | None = None
    properties: dict | None = None  # Azure-AsyncOperation body's "properties" on success
    result: dict | None = None  # body of the Location URL once done (POST final state)
    error: dict | None = None

    def finish(self, status: str, now: datetime.datetime, properties: dict | None = None,
               result: dict | None = None, error: dict | None = None) -> None:
        self.properties, self.result, self.error, self.end_time = properties, result, error, now
        self.status = status  # last: a poller that sees the final status finds the result in place

    def status_body(self) -> dict:
        body = {"name": self.id, "status": self.status, "startTime": _iso(self.start_time)}
        if self.end_time:
            body["endTime"] = _iso(self.end_time)
        if self.properties is not None:
            body["properties"] = self.properties
        if self.error is not None:
            body["error"] = self.error
        return body


@dataclass
class RunCommand:
    """A managed run command (Microsoft.Compute/virtualMachines/runCommands). Never holds protected values after
    its script started: they only live in the worker's arguments."""

    name: str
    location: str
    tags: dict[str, str]
    properties: dict  # as the client sent them, minus protectedParameters and runAsPassword
    provisioning_state: str = "Creating"
    execution_state: str = "Pending"
    execution_message: str = ""
    exit_code: int | None = None
    output: str = ""
    error: str = ""
    start_time: datetime.datetime | None = None
    end_time: datetime.datetime | None = None
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def running(self) -> bool:
        return self.execution_state in ("Pending", "Running")


@dataclass
class VirtualMachine:
    subscription: str
    resource_group: str
    name: str
    location: str
    platform: Platform
    tags: dict[str, str]
    vm_id: str
    size: str
    created: datetime.datetime
    guest: azure_scripts.Guest
    power_state: str = "running"
    action_run_busy: bool = False  # Run Command (action): "You can run one script at a time"
    run_commands: dict[str, RunCommand] = field(default_factory=dict)  # lower-case name -> run command

    @property
    def id(self) -> str:
        return (f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}/providers/"
                f"Microsoft.Compute/virtualMachines/{self.name}")


def _iso(moment: datetime.datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _tail(text: str) -> str:
    data = text.encode()
    return data[-OUTPUT_TAIL_BYTES:].decode(errors="ignore") if len(data) > OUTPUT_TAIL_BYTES else text


# ------------------------------------------------------------------------------------------------ the cloud

class AzureCloud:
    """Tenant, app credentials, subscriptions and their VMs, and asynchronous operations."""

    def __init__(self, spec: dict, base_url: str) -> None:
        self.base_url = base_url
        self.tenant_id = spec.get("tenant_id") or str(uuid.uuid5(uuid.NAMESPACE_URL, "fleetlab/tenant"))
        self.client_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"fleetlab/{self.tenant_id}/app"))
        self.client_secret = "fleetlab~" + secrets.token_urlsafe(24)  # lab-only, new on every start
        self._signing_key = secrets.token_bytes(32)
        self.page_size = int(spec.get("page_size") or DEFAULT_PAGE_SIZE)
        self.retry_after = spec.get("retry_after_seconds")  # ARM: optional; omitted unless configured
        self.lock = threading.RLock()
        self.subscriptions: dict[str, dict] = {}
        self.operations: dict[str, Operation] = {}
        now = LAB.clock.now()
        for sub in spec.get("subscriptions", []):
            vms = [self._make_vm(sub["id"], vm, now) for vm in sub.get("vms", [])]
            self.subscriptions[sub["id"].lower()] = {
                "id": sub["id"], "name": sub.get("name", sub["id"]),
                "vms": {(vm.resource_group.lower(), vm.name.lower()): vm for vm in vms},
            }

    @staticmethod
    def _make_vm(subscription: str, spec: dict, now: datetime.datetime) -> VirtualMachine:
        plat = platform(spec["platform"])
        return VirtualMachine(
            subscription=subscription, resource_group=spec["resource_group"], name=spec["name"],
            location=spec["location"], platform=plat, tags=dict(spec.get("tags") or {}), vm_id=spec["vm_id"],
            size=spec.get("size", "Standard_D2s_v5"), created=now,
            guest=azure_scripts.Guest(spec["name"], spec["vm_id"], plat),
        )

    # -- lookups (ARM's 400/404 answers)
    def subscription(self, subscription_id: str) -> dict:
        try:
            uuid.UUID(subscription_id)
        except ValueError:
            raise ArmError(400, "InvalidSubscriptionId",
                           f"The provided subscription identifier '{subscription_id}' is malformed or invalid.") \
                from None
        sub = self.subscriptions.get(subscription_id.lower())
        if sub is None:
            raise ArmError(404, "SubscriptionNotFound", f"The subscription '{subscription_id}' could not be found.")
        return sub

    def vms(self, subscription_id: str, resource_group: str | None = None) -> list[VirtualMachine]:
        sub = self.subscription(subscription_id)
        vms = sorted(sub["vms"].values(), key=lambda vm: vm.id.lower())
        if resource_group is None:
            return vms
        selected = [vm for vm in vms if vm.resource_group.lower() == resource_group.lower()]
        if not selected:  # the lab's resource groups are those that hold VMs
            raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{resource_group}' could not be found.")
        return selected

    def vm(self, subscription_id: str, resource_group: str, name: str) -> VirtualMachine:
        self.vms(subscription_id, resource_group)
        vm = self.subscription(subscription_id)["vms"].get((resource_group.lower(), name.lower()))
        if vm is None:
            raise _not_found("Microsoft.Compute/virtualMachines", name, resource_group)
        return vm

    def find_vm(self, subscription_id: str, resource_group: str, name: str) -> VirtualMachine | None:
        try:
            return self.vm(subscription_id, resource_group, name)
        except ArmError:
            return None

    # -- Entra ID
    def issue_token(self, tenant: str, form: dict[str, str]) -> dict:
        """Client-credentials grant (Microsoft identity platform, OAuth 2.0 client credentials flow)."""
        self.check_tenant(tenant)
        if form.get("grant_type") != "client_credentials":
            raise AadError(400, "unsupported_grant_type", 70003,
                           "The app requested an unsupported grant type "
                           f"'{form.get('grant_type', '')}'. The lab issues client_credentials tokens only.")
        client_id = form.get("client_id", "")
        if client_id != self.client_id:
            raise AadError(400, "unauthorized_client", 700016,
                           f"Application with identifier '{client_id}' was not found in the directory "
                           f"'{self.tenant_id}'. This can happen if the application has not been installed by the "
                           "administrator of the tenant or consented to by any user in the tenant. You may have "
                           "sent your authentication request to the wrong tenant.")
        secret = form.get("client_secret")
        if not secret:
            raise AadError(401, "invalid_client", 7000216,
                           "'client_assertion', 'client_secret' or 'request' is required for the "
                           "'client_credentials' grant type.")
        if not hmac.compare_digest(secret, self.client_secret):
            raise AadError(401, "invalid_client", 7000215,
                           "Invalid client secret provided. Ensure the secret being sent in the request is the "
                           f"client secret value, not the client secret ID, for a secret added to app "
                           f"'{self.client_id}'.")
        audience = self._audience(form.get("scope", ""))
        now = int(time.time())
        claims = {"aud": audience, "iss": f"https://sts.windows.net/{self.tenant_id}/", "iat": now, "nbf": now,
                  "exp": now + TOKEN_LIFETIME_SECONDS, "appid": self.client_id, "tid": self.tenant_id,
                  "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, self.client_id)), "idtyp": "app", "ver": "1.0"}
        return {"token_type": "Bearer", "expires_in": TOKEN_LIFETIME_SECONDS,
                "ext_expires_in": TOKEN_LIFETIME_SECONDS, "access_token": self._sign(claims)}

    def check_tenant(self, tenant: str) -> None:
        if tenant.lower() != self.tenant_id.lower():
            raise AadError(400, "invalid_request", 90002,
                           f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are "
                           "signing into the correct cloud.")

    def _audience(self, scope: str) -> str:
        """Client credentials take exactly one `<resource>/.default` scope; the lab knows ARM as a resource."""
        scopes = scope.split()
        resources = [s[: -len(".default")] for s in scopes if s.endswith("/.default")]
        if len(scopes) != 1 or len(resources) != 1:
            raise AadError(400, "invalid_scope", 1002012,
                           f"The provided value for scope {scope} is not valid. Client credential flows must have "
                           "a scope value with /.default suffixed to the resource identifier (application ID URI).")
        resource = resources[0]
        if resource not in ARM_AUDIENCES and resource.rstrip("/") + "/" not in ARM_AUDIENCES \
                and resource.rstrip("/") != self.base_url:
            raise AadError(400, "invalid_resource", 500011,
                           f"The resource principal named {resource.rstrip('/')} was not found in the tenant named "
                           f"{self.tenant_id}. This can happen if the application has not been installed by the "
                           "administrator of the tenant or consented to by any user in the tenant.")
        return resource if resource.endswith("/") else resource + "/"

    def _sign(self, claims: dict) -> str:
        """A JWT like Entra ID's; signed HS256 with a key of this run (only the lab itself verifies it)."""
        header = _b64(json.dumps({"typ": "JWT", "alg": "HS256"}).encode())
        payload = _b64(json.dumps(claims).encode())
        signature = hmac.new(self._signing_key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{_b64(signature)}"

    def authenticate(self, authorization: str | None) -> dict:
        """ARM's 401 answers: missing header, invalid token, expired token, wrong audience."""
        if not authorization:
            raise ArmError(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
        scheme, _, token = authorization.partition(" ")
        try:
            if scheme.lower() != "bearer":
                raise ValueError("not a bearer token")
            header, payload, signature = token.strip().split(".")
            expected = hmac.new(self._signing_key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
            if not hmac.compare_digest(_unb64(signature), expected):
                raise ValueError("bad signature")
            claims = json.loads(_unb64(payload))
        except (ValueError, TypeError):
            raise ArmError(401, "InvalidAuthenticationToken", "The access token is invalid.") from None
        now = time.time()  # wall clock: the SDK's token cache expires tokens by the wall clock, not the lab's
        if claims["exp"] <= now:
            raise ArmError(401, "ExpiredAuthenticationToken",
                           f"The access token expiry UTC time '{_utc(claims['exp'])}' is earlier than current UTC "
                           f"time '{_utc(now)}'.")
        if claims["aud"] not in ARM_AUDIENCES:
            allowed = ",".join(f"'{a}'" for a in ARM_AUDIENCES)
            raise ArmError(401, "InvalidAuthenticationTokenAudience",
                           f"The access token has been obtained for wrong audience or resource '{claims['aud']}'. "
                           f"It should exactly match with one of the allowed audiences {allowed}.")
        return claims

    def openid_configuration(self, tenant: str) -> dict:
        self.check_tenant(tenant)
        base = f"{self.base_url}/{self.tenant_id}"
        return {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": f"{self.base_url}/{self.tenant_id}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{base}/v2.0",
            "request_uri_parameter_supported": False,
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "tenant_region_scope": "EU",
            "cloud_instance_name": "fleetlab.local",
        }

    # -- asynchronous operations
    def new_operation(self, vm: VirtualMachine) -> Operation:
        op = Operation(str(uuid.uuid4()), vm.subscription, vm.location, LAB.clock.now())
        with self.lock:
            self.operations[op.id] = op
        return op

    def lro_headers(self, op: Operation, api_version: str, with_location: bool) -> dict[str, str]:
        """Azure-AsyncOperation (status) and, for POST, Location (final result) like Microsoft.Compute sends."""
        url = (f"{self.base_url}/subscriptions/{op.subscription}/providers/Microsoft.Compute/locations/"
               f"{op.location}/operations/{op.id}")
        headers = {"Azure-AsyncOperation": f"{url}?api-version={api_version}"}
        if with_location:
            headers["Location"] = f"{url}?monitor=true&api-version={api_version}"
        if self.retry_after:
            headers["Retry-After"] = str(self.retry_after)
        return headers


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _utc(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, UTC).strftime("%m/%d/%Y %H:%M:%S")


# ------------------------------------------------------------------------------------------- representations

def _os_type(vm: VirtualMachine) -> str:
    return "Windows" if vm.platform.is_windows else "Linux"


def _image_reference(vm: VirtualMachine) -> dict:
    """Marketplace images for Ubuntu and Windows Server; Amazon Linux has none on Azure, so a gallery image."""
    if vm.platform.key in _IMAGES:
        publisher, offer, sku, exact = _IMAGES[vm.platform.key]
        return {"publisher": publisher, "offer": offer, "sku": sku, "version": "latest", "exactVersion": exact}
    return {"id": f"/subscriptions/{vm.subscription}/resourceGroups/{vm.resource_group}/providers/Microsoft.Compute/"
                  f"galleries/fleetlab_images/images/{vm.platform.key}/versions/latest"}


def vm_json(vm: VirtualMachine, instance_view: bool = False) -> dict:
    disk = f"{vm.name}_OsDisk_1_{vm.vm_id.replace('-', '')}"
    os_config = ({"windowsConfiguration": {"provisionVMAgent": True, "enableAutomaticUpdates": False,
                                           "patchSettings": {"patchMode": "Manual", "assessmentMode": "ImageDefault"}}}
                 if vm.platform.is_windows else
                 {"linuxConfiguration": {"disablePasswordAuthentication": True, "provisionVMAgent": True,
                                         "patchSettings": {"patchMode": "ImageDefault",
                                                           "assessmentMode": "ImageDefault"}}})
    properties = {
        "vmId": vm.vm_id,
        "hardwareProfile": {"vmSize": vm.size},
        "storageProfile": {
            "imageReference": _image_reference(vm),
            "osDisk": {"osType": _os_type(vm), "name": disk, "createOption": "FromImage", "caching": "ReadWrite",
                       "managedDisk": {"storageAccountType": "Premium_LRS",
                                       "id": f"/subscriptions/{vm.subscription}/resourceGroups/{vm.resource_group}/"
                                             f"providers/Microsoft.Compute/disks/{disk}"},
                       "deleteOption": "Delete", "diskSizeGB": 127 if vm.platform.is_windows else 30},
            "dataDisks": [],
        },
        "osProfile": {"computerName": vm.name, "adminUsername": "azureuser", **os_config, "secrets": [],
                      "allowExtensionOperations": True},
        "networkProfile": {"networkInterfaces": [{"id": f"/subscriptions/{vm.subscription}/resourceGroups/"
                                                        f"{vm.resource_group}/providers/Microsoft.Network/"
                                                        f"networkInterfaces/{vm.name}-nic"}]},
        "provisioningState": "Succeeded",
        "timeCreated": _iso(vm.created),
    }
    if instance_view:
        properties["instanceView"] = instance_view_json(vm)
    return {"name": vm.name, "id": vm.id, "type": "Microsoft.Compute/virtualMachines", "location": vm.location,
            "tags": dict(vm.tags), "properties": properties}


def instance_view_json(vm: VirtualMachine) -> dict:
    """Power state always; computerName/osName/osVersion and the VM agent only while the VM runs (the guest agent
    reports them, and a deallocated VM has no running guest)."""
    statuses = [
        {"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded",
         "time": _iso(vm.created)},
        {"code": f"PowerState/{vm.power_state}", "level": "Info", "displayStatus": f"VM {vm.power_state}"},
    ]
    view: dict[str, Any] = {"hyperVGeneration": "V2", "statuses": statuses}
    if vm.power_state == "running":
        plat = vm.platform
        os_name = plat.platform_name.removeprefix("Microsoft ") if plat.is_windows else (
            "ubuntu" if plat.family == "UBUNTU" else "amzn")
        view.update({
            "computerName": vm.name, "osName": os_name, "osVersion": plat.version,
            "vmAgent": {"vmAgentVersion": "2.7.41491.1102" if plat.is_windows else "2.11.1.12",
                        "statuses": [{"code": "ProvisioningState/succeeded", "level": "Info",
                                      "displayStatus": "Ready", "message": "Guest Agent is running",
                                      "time": _iso(LAB.clock.now())}]},
        })
    return view


def run_command_json(vm: VirtualMachine, rc: RunCommand, instance_view: bool = False) -> dict:
    properties = {**rc.properties, "provisioningState": rc.provisioning_state}
    if instance_view:
        view = {"executionState": rc.execution_state, "executionMessage": rc.execution_message,
                "output": rc.output, "error": rc.error}
        if rc.exit_code is not None:
            view["exitCode"] = rc.exit_code
        if rc.start_time:
            view["startTime"] = _iso(rc.start_time)
        if rc.end_time:
            view["endTime"] = _iso(rc.end_time)
        properties["instanceView"] = view
    body = {"name": rc.name, "id": f"{vm.id}/runCommands/{rc.name}",
            "type": "Microsoft.Compute/virtualMachines/runCommands", "location": rc.location,
            "properties": properties}
    if rc.tags:
        body["tags"] = dict(rc.tags)
    return body


# ---------------------------------------------------------------------------------------------- run commands

_SCRIPT_COMMANDS = {"RunShellScript": "Linux", "RunPowerShellScript": "Windows"}
# Other built-in command ids Azure publishes (not simulated: the lab answers that they are not available).
_BUILTIN_COMMANDS = {"ifconfig", "ipconfig", "EnableAdminAccount", "EnableRemotePS", "IPConfig", "RDPSettings",
                     "ResetRDPCert", "SetRDPPort", "DisableNLA", "DisableWindowsUpdate", "EnableWindowsUpdate"}


def _check_running(vm: VirtualMachine) -> None:
    if vm.power_state != "running":
        raise ArmError(409, "OperationNotAllowed", "The operation requires the VM to be running (or set to run).")


def _check_command_id(vm: VirtualMachine, command_id: str) -> None:
    """Run Command docs: an unknown command id gets "The entity was not found in this Azure location"."""
    if command_id not in _SCRIPT_COMMANDS:
        if command_id in _BUILTIN_COMMANDS:
            raise ArmError(400, "BadRequest", f"Run command '{command_id}' is not simulated by fleetlab; use "
                                              "RunShellScript or RunPowerShellScript.")
        raise ArmError(404, "NotFound", "The entity was not found in this Azure location.")
    if _SCRIPT_COMMANDS[command_id] != _os_type(vm):
        # Not documented; the message is the one Azure answers for an OS mismatch.
        raise ArmError(400, "BadRequest", f"Run command OS type '{_SCRIPT_COMMANDS[command_id]}' does not match the "
                                          f"target OS {_os_type(vm)}.")


def _parameters(items: list | None) -> list[tuple[str, str]]:
    """(name or "", value) of a RunCommandInputParameter list, in order."""
    pairs = []
    for item in items or []:
        if not isinstance(item, dict) or item.get("value") is None:
            raise ArmError(400, "InvalidParameter", "Required parameter 'value' is missing (null).",
                           target="parameters")
        pairs.append((str(item.get("name") or ""), str(item["value"])))
    return pairs


def _bind(pairs: list[tuple[str, str]]) -> tuple[list[str], dict[str, str]]:
    """Unnamed values in order (positional arguments) and named ones (a later name wins, as the handler sets
    them one after the other)."""
    return [value for name, value in pairs if not name], {name: value for name, value in pairs if name}


def _seconds(value: Any, name: str) -> int:
    try:
        seconds = int(value or 0)
    except (TypeError, ValueError):
        seconds = -1
    if seconds < 0:
        raise ArmError(400, "InvalidParameter", f"The value of parameter '{name}' is invalid: it must be a number "
                                                "of seconds.", target=name)
    return seconds


def _run(vm: VirtualMachine, script: str, positional: list[str], named: dict[str, str], timeout: float,
         cancel: threading.Event) -> azure_scripts.ScriptResult:
    return azure_scripts.run_script(vm.guest, script, positional=positional, named=named, timeout=timeout,
                                    cancel=cancel, now=LAB.clock.now)


def _background(name: str, work: Callable[[], None], on_crash: Callable[[dict], None]) -> None:
    """Runs `work` in a thread; a crash (a lab bug) fails the operation with InternalServerError, loudly."""
    def target() -> None:
        try:
            work()
        except Exception as err:  # noqa: BLE001 - reported on the operation and the lab log
            traceback.print_exc()
            on_crash({"code": "InternalServerError", "message": f"fleetlab: {type(err).__name__}: {err}"})

    threading.Thread(target=target, name=name, daemon=True).start()


def start_action_run(cloud: AzureCloud, vm: VirtualMachine, body: dict, api_version: str) -> dict[str, str]:
    """POST .../runCommand: one script at a time per VM; stdout/stderr tails in the result (Run Command docs)."""
    command_id = _required(body, "commandId")
    _check_command_id(vm, command_id)
    script = "\n".join(body.get("script") or [])
    pairs = _parameters(body.get("parameters"))
    if vm.platform.is_windows:
        positional, named = _bind(pairs)
    else:  # RunShellScript gets every value as $1, $2, ... (az vm run-command invoke docs: `echo $1 $2`)
        positional, named = [value for _, value in pairs], {}
    with cloud.lock:
        _check_running(vm)
        if vm.action_run_busy:
            raise ArmError(409, "Conflict", "Run command extension execution is in progress. Please wait for "
                                            "completion before invoking a run command.")
        vm.action_run_busy = True
    op = cloud.new_operation(vm)

    def work() -> None:
        try:
            result = _run(vm, script, positional, named, ACTION_TIMEOUT_SECONDS, threading.Event())
        finally:
            with cloud.lock:
                vm.action_run_busy = False  # before the operation ends: the next run may start right after
        value = _action_result(vm, result)
        op.finish("Succeeded", LAB.clock.now(), properties={"output": {"value": value}}, result={"value": value})

    _background(f"fleetlab-azure-run-{vm.name}", work, lambda error: op.finish("Failed", LAB.clock.now(),
                                                                               error=error))
    return cloud.lro_headers(op, api_version, with_location=True)


def _action_result(vm: VirtualMachine, result: azure_scripts.ScriptResult) -> list[dict]:
    """RunCommandResult.value: Linux reports one status with both streams (the extension reports success even when
    the script fails); Windows one status per stream."""
    if vm.platform.is_windows:
        return [{"code": f"ComponentStatus/{stream}/succeeded", "level": "Info",
                 "displayStatus": "Provisioning succeeded", "message": _tail(text)}
                for stream, text in (("StdOut", result.stdout), ("StdErr", result.stderr))]
    message = f"Enable succeeded: \n[stdout]\n{_tail(result.stdout)}\n[stderr]\n{_tail(result.stderr)}"
    return [{"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded",
             "message": message}]


def put_run_command(cloud: AzureCloud, vm: VirtualMachine, name: str, body: dict,
                    api_version: str) -> tuple[int, dict, dict[str, str]]:
    """PUT .../runCommands/{name} (create or update). Managed run commands run in parallel with each other
    (managed Run Command docs: "Parallel execution of multiple scripts"); a PUT on one that is still running
    cancels its execution first (the docs cancel with a blank-script PUT; the lab also re-runs a new script)."""
    location = _required(body, "location")
    if location.replace(" ", "").lower() != vm.location.replace(" ", "").lower():
        # Not documented; the lab requires the VM's location like for other child resources of the VM.
        raise ArmError(400, "InvalidParameter", f"The run command location '{location}' must be the location of "
                                                f"the virtual machine '{vm.location}'.", target="location")
    properties = dict(body.get("properties") or {})
    script = _managed_source(vm, properties.get("source") or {})
    # The handler passes public then protected parameters (run-command-handler-linux, SetEnvironmentVariables).
    positional, named = _bind(_parameters(properties.get("parameters"))
                              + _parameters(properties.pop("protectedParameters", None)))
    properties.pop("runAsPassword", None)  # secret like protectedParameters: never stored or returned
    timeout = _seconds(properties.get("timeoutInSeconds"), "timeoutInSeconds") or ACTION_TIMEOUT_SECONDS
    properties.setdefault("asyncExecution", False)
    properties.setdefault("timeoutInSeconds", 0)
    properties.setdefault("treatFailureAsDeploymentFailure", False)
    with cloud.lock:
        _check_running(vm)
        previous = vm.run_commands.get(name.lower())
        if previous is not None and previous.running:
            previous.cancel.set()
        rc = RunCommand(name=previous.name if previous else name, location=vm.location,
                        tags=dict(body.get("tags") or {}), properties=properties,
                        provisioning_state="Updating" if previous else "Creating")
        vm.run_commands[name.lower()] = rc
    op = cloud.new_operation(vm)
    if not script.strip():  # a blank script only cancels (documented way to cancel a running execution)
        state = "Canceled" if previous is not None and previous.running else "Succeeded"
        _finish_run_command(vm, rc, op, azure_scripts.ScriptResult(state, None, "", ""))
    else:
        _start_managed_run(vm, rc, op, script, positional, named, timeout)
    status = 200 if previous is not None else 201
    return status, run_command_json(vm, rc), cloud.lro_headers(op, api_version, with_location=False)


def _managed_source(vm: VirtualMachine, source: dict) -> str:
    """"Only one type of source input is supported for one command execution" (managed Run Command docs)."""
    given = [k for k in ("script", "scriptUri", "commandId") if source.get(k)]
    if len(given) > 1:
        raise ArmError(400, "InvalidParameter", "Only one of script, scriptUri and commandId can be specified.",
                       target="source")
    if "scriptUri" in given:
        raise ArmError(400, "InvalidParameter", "fleetlab does not download scriptUri sources; send the script "
                                                "inline (source.script).", target="source.scriptUri")
    if "commandId" in given:
        _check_command_id(vm, source["commandId"])
        raise ArmError(400, "InvalidParameter", "A script command id needs the script itself (source.script).",
                       target="source.commandId")
    return source.get("script") or ""


def _start_managed_run(vm: VirtualMachine, rc: RunCommand, op: Operation, script: str, positional: list[str],
                       named: dict[str, str], timeout: float) -> None:
    asynchronous = bool(rc.properties.get("asyncExecution"))

    def work() -> None:
        rc.execution_state, rc.start_time = "Running", LAB.clock.now()
        if asynchronous:  # "provisioning will complete as soon as the script starts"
            rc.provisioning_state = "Succeeded"
            op.finish("Succeeded", LAB.clock.now())
        result = _run(vm, script, positional, named, timeout, rc.cancel)
        _finish_run_command(vm, rc, None if asynchronous else op, result)

    def crash(error: dict) -> None:
        rc.execution_state, rc.provisioning_state, rc.end_time = "Failed", "Failed", LAB.clock.now()
        rc.execution_message = error["message"]
        if op.status == "InProgress":
            op.finish("Failed", LAB.clock.now(), error=error)

    _background(f"fleetlab-azure-runcommand-{vm.name}-{rc.name}", work, crash)


def _finish_run_command(vm: VirtualMachine, rc: RunCommand, op: Operation | None,
                        result: azure_scripts.ScriptResult) -> None:
    """instanceView fields as the Linux handler reports them (RunCommandInstanceView); a failing script fails
    provisioning (and the LRO) only with treatFailureAsDeploymentFailure."""
    now = LAB.clock.now()
    rc.exit_code, rc.end_time, rc.start_time = result.exit_code, now, rc.start_time or now
    rc.output, rc.error = _tail(result.stdout), _tail(result.stderr)
    rc.execution_message = {"Failed": f"command terminated with exit status={result.exit_code}",
                            "TimedOut": "Execution timed out", "Canceled": "Execution was canceled"
                            }.get(result.state, "")
    rc.execution_state = result.state  # after the fields it summarizes, for readers in other threads
    failed = result.state in ("Failed", "TimedOut") and bool(rc.properties.get("treatFailureAsDeploymentFailure"))
    rc.provisioning_state = "Failed" if failed else "Succeeded"
    if op is None or op.status != "InProgress":
        return
    if not failed:
        op.finish("Succeeded", now)
        return
    handler = "RunCommandHandlerWindows" if vm.platform.is_windows else "RunCommandHandlerLinux"
    op.finish("Failed", now, error={
        "code": "VMExtensionProvisioningError",
        "message": f"VM has reported a failure when processing extension '{rc.name}' (publisher "
                   f"'Microsoft.CPlat.Core' and type '{handler}'). Error message: '{rc.execution_message}'."})


def delete_run_command(cloud: AzureCloud, vm: VirtualMachine, name: str,
                       api_version: str) -> tuple[int, dict | None, dict[str, str]]:
    """DELETE: "If the script execution is still in progress, execution will be terminated" (managed docs).
    A run command that does not exist answers 204 like ARM deletes do."""
    with cloud.lock:
        rc = vm.run_commands.pop(name.lower(), None)
    if rc is None:
        return 204, None, {}
    rc.cancel.set()
    op = cloud.new_operation(vm)
    op.finish("Succeeded", LAB.clock.now())
    return 202, None, cloud.lro_headers(op, api_version, with_location=True)


# --------------------------------------------------------------------------------------------------- HTTP

_SUB = r"/subscriptions/(?P<sub>[^/]+)"
_VM = _SUB + r"/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.Compute/virtualMachines/(?P<vm>[^/]+)"
Handler = Callable[["Request"], tuple[int, Any, dict]]
_ARM_ROUTES: list[tuple[str, re.Pattern, Handler]] = []  # need a token and an api-version
_AAD_ROUTES: list[tuple[str, re.Pattern, Handler]] = []  # the token service: anonymous


def _routes(table: list) -> Callable[[str, str], Callable[[Handler], Handler]]:
    def route_for(method: str, pattern: str) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            table.append((method, re.compile(pattern + "$", re.I), fn))  # ARM paths are case-insensitive
            return fn
        return register
    return route_for


_arm = _routes(_ARM_ROUTES)
_aad = _routes(_AAD_ROUTES)


@dataclass
class Request:
    cloud: AzureCloud
    method: str
    path: str
    query: dict[str, str]
    params: dict[str, str]
    body: bytes
    api_version: str = ""

    def json(self) -> dict:
        try:
            data = json.loads(self.body or b"{}")
        except ValueError as err:
            raise ArmError(400, "InvalidRequestContent",
                           f"The request content was invalid and could not be deserialized: '{err}'.") from None
        if not isinstance(data, dict):
            raise ArmError(400, "InvalidRequestContent", "The request content must be a JSON object.")
        return data

    def vm(self) -> VirtualMachine:
        return self.cloud.vm(self.params["sub"], self.params["rg"], self.params["vm"])

    def expand_instance_view(self) -> bool:
        expand = self.query.get("$expand", "")
        if expand and expand.lower() != "instanceview":
            raise ArmError(400, "InvalidParameter", f"The value '{expand}' of parameter '$expand' is not valid. "
                                                    "Allowed values: instanceView.", target="$expand")
        return bool(expand)


def _page(request: Request, items: list, render: Callable[[Any], dict]) -> tuple[int, dict, dict]:
    """`value` + `nextLink` (an absolute URL with $skiptoken and the api-version, like ARM). Only the page's items
    are rendered: a listing in pages of 10 would otherwise render the whole subscription once per page."""
    token = request.query.get("$skiptoken")
    try:
        start = int(_unb64(token).decode()) if token else 0
    except ValueError:
        raise ArmError(400, "InvalidSkipToken", f"The skip token '{token}' is not valid.") from None
    end = start + request.cloud.page_size
    body: dict[str, Any] = {"value": [render(item) for item in items[start:end]]}
    if end < len(items):
        query = {k: v for k, v in request.query.items() if k != "$skiptoken"}
        query["$skiptoken"] = _b64(str(end).encode())
        body["nextLink"] = f"{request.cloud.base_url}{request.path}?{urlencode(query)}"
    return 200, body, {}


@_arm("GET", _SUB + r"/providers/Microsoft\.Compute/virtualMachines")
def list_all(request: Request) -> tuple[int, Any, dict]:
    if request.query.get("$filter"):
        raise ArmError(400, "InvalidParameter", "fleetlab does not evaluate $filter on virtualMachines.",
                       target="$filter")
    expand = request.expand_instance_view() or request.query.get("statusOnly", "").lower() == "true"
    vms = request.cloud.vms(request.params["sub"])
    return _page(request, vms, lambda vm: vm_json(vm, expand))


@_arm("GET", _SUB + r"/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.Compute/virtualMachines")
def list_in_resource_group(request: Request) -> tuple[int, Any, dict]:
    if request.query.get("$filter"):
        raise ArmError(400, "InvalidParameter", "fleetlab does not evaluate $filter on virtualMachines.",
                       target="$filter")
    expand = request.expand_instance_view()
    vms = request.cloud.vms(request.params["sub"], request.params["rg"])
    return _page(request, vms, lambda vm: vm_json(vm, expand))


@_arm("GET", _VM)
def get_vm(request: Request) -> tuple[int, Any, dict]:
    expand = request.expand_instance_view()
    return 200, vm_json(request.vm(), expand), {}


@_arm("GET", _VM + r"/instanceView")
def get_instance_view(request: Request) -> tuple[int, Any, dict]:
    return 200, instance_view_json(request.vm()), {}


@_arm("POST", _VM + r"/runCommand")
def run_command(request: Request) -> tuple[int, Any, dict]:
    vm = request.vm()
    return 202, None, start_action_run(request.cloud, vm, request.json(), request.api_version)


@_arm("GET", _VM + r"/runCommands")
def list_run_commands(request: Request) -> tuple[int, Any, dict]:
    vm, expand = request.vm(), request.expand_instance_view()
    with request.cloud.lock:
        items = [run_command_json(vm, rc, expand) for rc in vm.run_commands.values()]
    return 200, {"value": items}, {}


@_arm("GET", _VM + r"/runCommands/(?P<name>[^/]+)")
def get_run_command(request: Request) -> tuple[int, Any, dict]:
    vm, expand = request.vm(), request.expand_instance_view()
    rc = vm.run_commands.get(request.params["name"].lower())
    if rc is None:
        raise _not_found(f"Microsoft.Compute/virtualMachines/{vm.name}/runCommands", request.params["name"],
                         vm.resource_group)
    return 200, run_command_json(vm, rc, expand), {}


@_arm("PUT", _VM + r"/runCommands/(?P<name>[^/]+)")
def create_or_update_run_command(request: Request) -> tuple[int, Any, dict]:
    return put_run_command(request.cloud, request.vm(), request.params["name"], request.json(), request.api_version)


@_arm("DELETE", _VM + r"/runCommands/(?P<name>[^/]+)")
def remove_run_command(request: Request) -> tuple[int, Any, dict]:
    return delete_run_command(request.cloud, request.vm(), request.params["name"], request.api_version)


@_arm("GET", _SUB + r"/providers/Microsoft\.Compute/locations/(?P<loc>[^/]+)/operations/(?P<op>[^/]+)")
def get_operation(request: Request) -> tuple[int, Any, dict]:
    """Azure-AsyncOperation: the status body. Location (?monitor=true): 202 while running, then the result."""
    request.cloud.subscription(request.params["sub"])
    op = request.cloud.operations.get(request.params["op"])
    if op is None or op.subscription.lower() != request.params["sub"].lower():
        raise ArmError(404, "NotFound", f"The operation '{request.params['op']}' was not found.")
    if request.query.get("monitor", "").lower() != "true":
        return 200, op.status_body(), {}
    if op.status == "InProgress":
        return 202, None, request.cloud.lro_headers(op, request.api_version, with_location=True)
    if op.status == "Failed":
        return 500, {"error": op.error}, {}
    return (200, op.result, {}) if op.result is not None else (204, None, {})


@_aad("GET", r"/(?P<tenant>[^/]+)/v2\.0/\.well-known/openid-configuration")
def openid_configuration(request: Request) -> tuple[int, Any, dict]:
    return 200, request.cloud.openid_configuration(request.params["tenant"]), {}


@_aad("POST", r"/(?P<tenant>[^/]+)/oauth2/v2\.0/token")
def token(request: Request) -> tuple[int, Any, dict]:
    form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
    return 200, request.cloud.issue_token(request.params["tenant"], form), {"Cache-Control": "no-store, no-cache"}


class _Handler(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True  # otherwise every response stalls ~40 ms (Nagle + delayed ACK)
    server_version = "fleetlab-azure"
    protocol_version = "HTTP/1.1"  # keep-alive, like the SDKs expect
    server: "AzureEndpoint"

    def handle(self) -> None:
        try:
            self.connection.do_handshake()  # in this connection's thread, not in the accept loop
            super().handle()
        except (ssl.SSLError, ConnectionError, TimeoutError):
            pass  # a client that rejected the certificate or went away

    def log_message(self, fmt: str, *args) -> None:  # never log requests: bodies and URLs may hold secrets
        pass

    def _serve(self, method: str) -> None:
        url = urlparse(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        cloud = self.server.cloud
        try:
            for routes, is_arm in ((_AAD_ROUTES, False), (_ARM_ROUTES, True)):
                for route_method, pattern, handler in routes:
                    match = pattern.match(url.path)
                    if match and route_method == method:
                        params = {k: unquote(v) for k, v in match.groupdict().items()}
                        request = Request(cloud, method, url.path, query, params, body)
                        if is_arm:
                            self._arm_checks(request)
                        status, payload, headers = handler(request)
                        self._reply(status, payload, headers)
                        return
            self._arm_checks(Request(cloud, method, url.path, query, {}, body))
            raise ArmError(404, "InvalidResourceType", f"fleetlab does not serve {method} {url.path}.")
        except ArmError as err:
            headers = {}
            if err.status == 401:
                headers["WWW-Authenticate"] = (f'Bearer authorization_uri="{cloud.base_url}/{cloud.tenant_id}", '
                                               f'error="invalid_token", error_description="{err.message}"')
            self._reply(err.status, err.body(), headers)
        except AadError as err:
            self._reply(err.status, _aad_body(cloud, err), {})
        except Exception as err:  # a lab bug: say so loudly, keep serving
            traceback.print_exc()
            self._reply(500, {"error": {"code": "InternalServerError", "message": f"fleetlab: {err}"}}, {})

    def _arm_checks(self, request: Request) -> None:
        """ARM authenticates first, then requires a supported api-version."""
        request.cloud.authenticate(self.headers.get("Authorization"))
        version = request.query.get("api-version")
        if not version:
            raise ArmError(400, "MissingApiVersionParameter",
                           "The api-version query parameter (?api-version=) is required for all requests.")
        if version not in API_VERSIONS:
            raise ArmError(400, "NoRegisteredProviderFound",
                           f"No registered resource provider found for location 'global' and API version "
                           f"'{version}' for type 'virtualMachines'. The supported api-versions are "
                           f"'{', '.join(API_VERSIONS)}'.")
        request.api_version = version

    def _reply(self, status: int, payload: Any, headers: dict[str, str]) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        if payload is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-ms-request-id", str(uuid.uuid4()))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._serve("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._serve("DELETE")


def _aad_body(cloud: AzureCloud, err: AadError) -> dict:
    now = datetime.datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    return {"error": err.error,
            "error_description": f"AADSTS{err.code}: {err.description} Trace ID: {trace} Correlation ID: "
                                 f"{correlation} Timestamp: {now}",
            "error_codes": [err.code], "timestamp": now, "trace_id": trace, "correlation_id": correlation,
            "error_uri": f"{cloud.base_url}/error?code={err.code}"}


# ------------------------------------------------------------------------------------------------ TLS + start

def _certificates(state_dir: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1/localhost. Only the CA certificate and the server key and
    certificate are written (key 0600); the CA key stays in memory and dies with the process."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(UTC)
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fleetlab Azure CA (lab only)")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=90))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(ca_ski, critical=False)
          .sign(ca_key, hashes.SHA256()))
    server = (x509.CertificateBuilder()
              .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
              .issuer_name(ca_name).public_key(server_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=90))
              .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                          x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                             critical=False)
              .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
              .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                           data_encipherment=False, key_agreement=True, key_cert_sign=False,
                                           crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
              .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
              .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
              .sign(ca_key, hashes.SHA256()))
    ca_path, cert_path, key_path = (state_dir / "azure-ca.pem", state_dir / "azure-server.pem",
                                    state_dir / "azure-server-key.pem")
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    key_path.touch(mode=0o600)
    os.chmod(key_path, 0o600)
    key_path.write_bytes(server_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    return ca_path, cert_path, key_path


def _system_bundle(own: Path) -> Path:
    """The CA bundle clients use today (SSL_CERT_FILE, REQUESTS_CA_BUNDLE, else certifi's), never our own output."""
    for variable in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        candidate = os.environ.get(variable)
        if candidate and Path(candidate).is_file() and Path(candidate).resolve() != own.resolve():
            return Path(candidate)
    import certifi

    return Path(certifi.where())


def _combined_bundle(state_dir: Path, ca_path: Path) -> Path:
    bundle = state_dir / "azure-ca-bundle.pem"
    system = _system_bundle(bundle).read_text()
    bundle.write_text(system.rstrip("\n") + "\n" + ca_path.read_text())
    return bundle


class AzureEndpoint(ThreadingHTTPServer):
    """The running endpoint; `cloud` is its state. shutdown() stops serving and forgets it."""

    daemon_threads = True

    def __init__(self, cloud_spec: dict, cert_path: Path, key_path: Path, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        self.socket = context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)
        self.base_url = f"https://127.0.0.1:{self.server_address[1]}"
        self.cloud = AzureCloud(cloud_spec, self.base_url)

    def shutdown(self) -> None:
        super().shutdown()
        self.server_close()
        with _ENDPOINTS_LOCK:
            if self in _ENDPOINTS:
                _ENDPOINTS.remove(self)


_ENDPOINTS: list[AzureEndpoint] = []
_ENDPOINTS_LOCK = threading.Lock()


def start(state_dir: Path, spec: dict) -> tuple[AzureEndpoint, dict[str, str]]:
    """Starts the endpoint for spec["azure"] and returns it with the exports for .lab/env.sh."""
    state_dir.mkdir(parents=True, exist_ok=True)
    cloud_spec = spec.get("azure") or {}
    ca_path, cert_path, key_path = _certificates(state_dir)
    bundle = _combined_bundle(state_dir, ca_path)
    endpoint = AzureEndpoint(cloud_spec, cert_path, key_path, int(cloud_spec.get("port") or 0))
    threading.Thread(target=endpoint.serve_forever, name="fleetlab-azure", daemon=True).start()
    with _ENDPOINTS_LOCK:
        _ENDPOINTS.append(endpoint)
    cloud = endpoint.cloud
    env = {
        "AZURE_TENANT_ID": cloud.tenant_id,
        "AZURE_CLIENT_ID": cloud.client_id,
        "AZURE_CLIENT_SECRET": cloud.client_secret,
        "AZURE_AUTHORITY_HOST": endpoint.base_url,  # azure-identity reads it (EnvironmentCredential and others)
        "FLEETPATCH_AZURE_ENDPOINT": endpoint.base_url,  # resource manager endpoint (ComputeManagementClient base_url)
        "AZURE_SUBSCRIPTION_IDS": " ".join(s["id"] for s in cloud.subscriptions.values()),
        "FLEETLAB_AZURE_CA": str(ca_path),
        "REQUESTS_CA_BUNDLE": str(bundle),  # requests (azure-core's default transport) and so every SDK client
        "SSL_CERT_FILE": str(bundle),  # OpenSSL default verify paths (urllib, aiohttp, ...)
    }
    return endpoint, env


# --------------------------------------------------------------------------------------------- control API

def _control_vm(body: dict) -> tuple[AzureCloud, VirtualMachine]:
    missing = [k for k in ("subscription", "resource_group", "name") if not body.get(k)]
    if missing:
        raise ControlError(f"missing {', '.join(missing)}")
    with _ENDPOINTS_LOCK:
        endpoints = list(_ENDPOINTS)
    for endpoint in endpoints:
        vm = endpoint.cloud.find_vm(body["subscription"], body["resource_group"], body["name"])
        if vm is not None:
            return endpoint.cloud, vm
    raise ControlError(f"no Azure VM {body['subscription']}/{body['resource_group']}/{body['name']} "
                       f"({'no Azure endpoint is running' if not endpoints else 'unknown'})")


@route("POST", "/azure/vms/power")
def _power(body: dict, query: dict) -> dict:
    """What the portal's Start / Stop (deallocate) do to the VM's power state. A script already running keeps
    running to its end (the lab's scripts take milliseconds unless they sleep)."""
    cloud, vm = _control_vm(body)
    if body.get("state") not in ("running", "deallocated"):
        raise ControlError("state must be 'running' or 'deallocated'")
    with cloud.lock:
        vm.power_state = body["state"]
    return {"id": vm.id, "power_state": vm.power_state}


@route("GET", "/azure/vms/agent")
def _agent(body: dict, query: dict) -> dict:
    """The simulated SSM agent on the VM (installed flavours, services, registration file, history)."""
    _, vm = _control_vm({k: v[0] for k, v in query.items()})
    return {"id": vm.id, "power_state": vm.power_state, **vm.guest.describe()}
