"""The lab's Azure endpoint, driven by the real azure-identity and azure-mgmt-compute clients.

The endpoint runs in-process (its own module fixture; the shared session lab runs without Azure). Clients get
nothing but the exports of .lab/env.sh, like a user's shell or AWX would.
"""
from __future__ import annotations

import base64
import json
import math
import uuid

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from azure.identity import ClientSecretCredential, DefaultAzureCredential
from azure.mgmt.compute import ComputeManagementClient

from fleetlab import azure

TENANT = str(uuid.uuid4())
SUB_MAIN, SUB_JUMP = str(uuid.uuid4()), str(uuid.uuid4())
ARM_SCOPE = "https://management.azure.com/.default"


def _vm(name: str, rg: str, plat: str, **tags: str) -> dict:
    return {"name": name, "resource_group": rg, "location": "westeurope", "platform": plat, "tags": tags,
            "vm_id": str(uuid.uuid4())}


FLEET = {
    SUB_MAIN: [_vm("web-01", "rg-web", "ubuntu-22.04", PatchGroup="prod-auto"),
               _vm("web-02", "rg-web", "ubuntu-24.04", PatchGroup="prod-auto"),
               _vm("web-03", "rg-web", "ubuntu-20.04", PatchGroup="nonprod"),
               _vm("db-01", "rg-db", "ubuntu-22.04", PatchGroup="prod-sensitive"),
               _vm("win-01", "rg-db", "windows-2022", PatchGroup="prod-sensitive")],
    SUB_JUMP: [_vm("jump-01", "rg-jump", "amzn-2023", PatchGroup="jump-log"),
               _vm("jump-02", "rg-jump", "ubuntu-22.04", PatchGroup="jump-log")],
}

# What an onboarding script does (user guide, "Install SSM Agent for a hybrid environment (Linux)").
LINUX_ONBOARDING = [
    "set -euo pipefail",
    'CODE="$1"; ID="$2"; REGION="$3"',
    "if [ -s /var/lib/amazon/ssm/registration ]; then",
    '  echo "already registered: $(cat /var/lib/amazon/ssm/registration)"; exit 0',
    "fi",
    "mkdir -p /tmp/ssm",
    'curl -fsSL -o /tmp/ssm/amazon-ssm-agent.deb '
    '"https://s3.${REGION}.amazonaws.com/amazon-ssm-${REGION}/latest/debian_amd64/amazon-ssm-agent.deb"',
    "dpkg -i /tmp/ssm/amazon-ssm-agent.deb",
    "systemctl stop amazon-ssm-agent",
    'amazon-ssm-agent -register -code "$CODE" -id "$ID" -region "$REGION" -y',
    "systemctl start amazon-ssm-agent",
    "cat /var/lib/amazon/ssm/registration",
]
# The Windows variant (user guide, "Install SSM Agent for a hybrid environment (Windows)").
WINDOWS_ONBOARDING = [
    "param([string]$code, [string]$id, [string]$region)",
    '$ErrorActionPreference = "Stop"',
    '$dir = $env:TEMP + "\\ssm"',
    "New-Item -ItemType directory -Path $dir -Force | Out-Null",
    "cd $dir",
    '(New-Object System.Net.WebClient).DownloadFile("https://amazon-ssm-$region.s3.$region.amazonaws.com/latest/'
    'windows_amd64/AmazonSSMAgentSetup.exe", $dir + "\\AmazonSSMAgentSetup.exe")',
    'Start-Process .\\AmazonSSMAgentSetup.exe -ArgumentList @("/q", "/log", "install.log", "CODE=$code", "ID=$id", '
    '"REGION=$region") -Wait',
    'Get-Content ($env:ProgramData + "\\Amazon\\SSM\\InstanceData\\registration")',
    '(Get-Service -Name "AmazonSSMAgent").Status',
]


@pytest.fixture(scope="module")
def azure_lab(tmp_path_factory):
    spec = {"azure": {"tenant_id": TENANT, "page_size": 2,
                      "subscriptions": [{"id": sub, "name": f"sub-{i}", "vms": vms}
                                        for i, (sub, vms) in enumerate(FLEET.items())]}}
    server, env = azure.start(tmp_path_factory.mktemp("azure"), spec)
    yield env
    server.shutdown()


@pytest.fixture
def lab_env(azure_lab, monkeypatch):
    """The exports of .lab/env.sh in the environment, as `. .lab/env.sh` would set them."""
    for key, value in azure_lab.items():
        monkeypatch.setenv(key, value)
    return azure_lab


def _credential(env: dict, secret: str | None = None) -> ClientSecretCredential:
    return ClientSecretCredential(env["AZURE_TENANT_ID"], env["AZURE_CLIENT_ID"], secret or env["AZURE_CLIENT_SECRET"],
                                  authority=env["AZURE_AUTHORITY_HOST"], disable_instance_discovery=True)


def _compute(env: dict, subscription: str = SUB_MAIN) -> ComputeManagementClient:
    return ComputeManagementClient(_credential(env), subscription, base_url=env["FLEETPATCH_AZURE_ENDPOINT"],
                                   polling_interval=0.05)


def _arm_url(env: dict, path: str) -> str:
    return f"{env['FLEETPATCH_AZURE_ENDPOINT']}{path}?api-version=2026-04-01"


def _stdout(result) -> str:
    """The [stdout] part of a Linux RunCommandResult message."""
    return result.value[0].message.split("[stdout]\n", 1)[1].split("\n[stderr]\n", 1)[0]


def _claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


# ----------------------------------------------------------------------------------------------------- identity

def test_environment_credential_gets_an_arm_token(lab_env):
    token = DefaultAzureCredential(disable_instance_discovery=True).get_token(ARM_SCOPE)
    claims = _claims(token.token)
    assert claims["tid"] == TENANT and claims["appid"] == lab_env["AZURE_CLIENT_ID"]
    assert claims["aud"] == "https://management.azure.com/"
    assert token.expires_on == claims["exp"]


def test_wrong_client_secret_is_rejected_like_entra_id(lab_env):
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
        _credential(lab_env, secret="not-the-secret").get_token(ARM_SCOPE)
    answer = requests.post(f"{lab_env['AZURE_AUTHORITY_HOST']}/{TENANT}/oauth2/v2.0/token", timeout=10, data={
        "grant_type": "client_credentials", "client_id": lab_env["AZURE_CLIENT_ID"],
        "client_secret": "not-the-secret", "scope": ARM_SCOPE})
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client" and answer.json()["error_codes"] == [7000215]


def test_arm_requires_a_valid_bearer_token(lab_env):
    url = _arm_url(lab_env, f"/subscriptions/{SUB_MAIN}/providers/Microsoft.Compute/virtualMachines")
    anonymous = requests.get(url, timeout=10)
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "AuthenticationFailed"
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer ")
    token = _credential(lab_env).get_token(ARM_SCOPE).token
    header, payload, _ = token.split(".")
    forged = requests.get(url, timeout=10, headers={"Authorization": f"Bearer {header}.{payload}.AAAA"})
    assert forged.status_code == 401 and forged.json()["error"]["code"] == "InvalidAuthenticationToken"
    without_version = requests.get(url.split("?")[0], timeout=10, headers={"Authorization": f"Bearer {token}"})
    assert without_version.status_code == 400
    assert without_version.json()["error"]["code"] == "MissingApiVersionParameter"


# ----------------------------------------------------------------------------------------------- virtual machines

def test_list_all_pages_through_every_subscription(lab_env):
    seen = {}
    for subscription in lab_env["AZURE_SUBSCRIPTION_IDS"].split():
        pages = list(_compute(lab_env, subscription).virtual_machines.list_all().by_page())
        names = [vm.name for page in pages for vm in page]
        assert len(pages) == math.ceil(len(FLEET[subscription]) / 2)
        seen[subscription] = sorted(names)
    assert seen == {sub: sorted(vm["name"] for vm in vms) for sub, vms in FLEET.items()}
    in_group = [vm.name for vm in _compute(lab_env).virtual_machines.list("rg-web")]
    assert sorted(in_group) == ["web-01", "web-02", "web-03"]


def test_get_with_instance_view_describes_the_vm(lab_env):
    compute = _compute(lab_env)
    vm = compute.virtual_machines.get("rg-web", "web-01", expand="instanceView")
    expected = FLEET[SUB_MAIN][0]
    assert vm.id == (f"/subscriptions/{SUB_MAIN}/resourceGroups/rg-web/providers/Microsoft.Compute/"
                     "virtualMachines/web-01")
    assert (vm.location, vm.tags, vm.vm_id) == ("westeurope", {"PatchGroup": "prod-auto"}, expected["vm_id"])
    assert vm.storage_profile.os_disk.os_type == "Linux"
    image = vm.storage_profile.image_reference
    assert (image.publisher, image.offer, image.sku) == ("Canonical", "0001-com-ubuntu-server-jammy", "22_04-lts-gen2")
    view = vm.instance_view
    assert (view.computer_name, view.os_name, view.os_version) == ("web-01", "ubuntu", "22.04")
    assert "PowerState/running" in [s.code for s in view.statuses]
    windows = compute.virtual_machines.get("rg-db", "win-01", expand="instanceView")
    assert windows.storage_profile.os_disk.os_type == "Windows"
    assert windows.storage_profile.image_reference.publisher == "MicrosoftWindowsServer"
    assert windows.instance_view.os_name == "Windows Server 2022 Datacenter"


def test_unknown_resources_answer_like_arm(lab_env):
    compute = _compute(lab_env)
    with pytest.raises(ResourceNotFoundError) as vm:
        compute.virtual_machines.get("rg-web", "web-99")
    with pytest.raises(ResourceNotFoundError) as group:
        compute.virtual_machines.get("rg-nope", "web-01")
    with pytest.raises(ResourceNotFoundError) as subscription:
        list(_compute(lab_env, str(uuid.uuid4())).virtual_machines.list_all())
    assert [e.value.error.code for e in (vm, group, subscription)] == [
        "ResourceNotFound", "ResourceGroupNotFound", "SubscriptionNotFound"]


# --------------------------------------------------------------------------------------------------- run command

def _activation(aws, **tags: str) -> dict:
    return aws.ssm.create_activation(IamRole="SSMServiceRole", RegistrationLimit=5,
                                     Tags=[{"Key": k, "Value": v} for k, v in tags.items()])


def _run_linux(compute, vm: str, lines: list[str], *values: str, rg: str = "rg-web"):
    parameters = [{"name": f"arg{i}", "value": v} for i, v in enumerate(values, 1)]
    return compute.virtual_machines.begin_run_command(
        rg, vm, {"commandId": "RunShellScript", "script": lines, "parameters": parameters}).result()


def _hybrid_nodes(aws) -> list[dict]:
    return [n for n in aws.ssm.describe_instance_information()["InstanceInformationList"]
            if n["InstanceId"].startswith("mi-")]


def test_run_command_onboards_a_linux_vm_into_the_activation_account(lab_env, aws, control):
    activation = _activation(aws, PatchGroup="prod-auto")
    compute = _compute(lab_env)
    first = _run_linux(compute, "web-01", LINUX_ONBOARDING, activation["ActivationCode"],
                       activation["ActivationId"], aws.region)
    registration = json.loads(_stdout(first).strip().splitlines()[-1])
    assert "Successfully registered the instance with AWS SSM" in _stdout(first)
    nodes = _hybrid_nodes(aws)
    assert [(n["InstanceId"], n["ComputerName"], n["PlatformType"], n["PingStatus"]) for n in nodes] == [
        (registration["ManagedInstanceID"], "web-01", "Linux", "Online")]
    assert registration["Region"] == aws.region

    agent = control.get("/azure/vms/agent", subscription=SUB_MAIN, resource_group="rg-web", name="web-01")
    assert (agent["installed"], agent["running"], agent["registration"]) == (["deb"], True, registration)
    assert agent["history"].index("service amazon-ssm-agent stopped") < agent["history"].index(
        f"registered {registration['ManagedInstanceID']} in {aws.region}")
    assert "mkdir" in agent["ignored_commands"]
    assert activation["ActivationCode"] not in json.dumps(agent)

    second = _run_linux(compute, "web-01", LINUX_ONBOARDING, activation["ActivationCode"],
                        activation["ActivationId"], aws.region)
    assert _stdout(second).startswith("already registered: ")
    assert len(_hybrid_nodes(aws)) == 1


def test_wrong_activation_code_fails_with_the_agents_error(lab_env, aws):
    activation = _activation(aws)
    result = _run_linux(_compute(lab_env), "db-01", LINUX_ONBOARDING, "wrong-code", activation["ActivationId"],
                        aws.region, rg="rg-db")
    assert "Registration failed due to error registering the instance with AWS SSM. InvalidActivation" \
        in _stdout(result)
    assert "/var/lib/amazon/ssm/registration" not in _stdout(result)  # set -e stopped the script there
    assert _hybrid_nodes(aws) == []


def test_windows_vm_onboards_with_the_agent_installer(lab_env, aws):
    activation = _activation(aws)
    parameters = [{"name": "code", "value": activation["ActivationCode"]},
                  {"name": "id", "value": activation["ActivationId"]}, {"name": "region", "value": aws.region}]
    result = _compute(lab_env).virtual_machines.begin_run_command("rg-db", "win-01", {
        "commandId": "RunPowerShellScript", "script": WINDOWS_ONBOARDING, "parameters": parameters}).result()
    stdout, stderr = (status.message for status in result.value)
    registration_line, service_status = stdout.strip().splitlines()
    node_id = json.loads(registration_line)["ManagedInstanceID"]
    assert (service_status, stderr) == ("Running", "")
    assert [(n["InstanceId"], n["ComputerName"], n["PlatformType"]) for n in _hybrid_nodes(aws)] == [
        (node_id, "win-01", "Windows")]


def test_managed_run_command_never_returns_protected_parameters(lab_env):
    secret = "s3cr3t-" + uuid.uuid4().hex
    compute = _compute(lab_env)
    created = compute.virtual_machine_run_commands.begin_create_or_update("rg-web", "web-02", "check-code", {
        "location": "westeurope",
        "properties": {"source": {"script": 'test -n "$SSM_CODE" && echo "code of ${#SSM_CODE} chars"'},
                       "parameters": [{"name": "SSM_REGION", "value": "eu-west-1"}],
                       "protectedParameters": [{"name": "SSM_CODE", "value": secret}]}}).result()
    assert created.properties.provisioning_state == "Succeeded"
    fetched = compute.virtual_machine_run_commands.get_by_virtual_machine("rg-web", "web-02", "check-code",
                                                                          expand="instanceView")
    view = fetched.properties.instance_view
    assert (view.execution_state, view.exit_code, view.output) == ("Succeeded", 0, f"code of {len(secret)} chars\n")
    assert fetched.properties.protected_parameters is None
    assert [p.name for p in fetched.properties.parameters] == ["SSM_REGION"]
    token = _credential(lab_env).get_token(ARM_SCOPE).token
    vm_path = f"/subscriptions/{SUB_MAIN}/resourceGroups/rg-web/providers/Microsoft.Compute/virtualMachines/web-02"
    for path in (f"{vm_path}/runCommands/check-code", f"{vm_path}/runCommands"):
        raw = requests.get(_arm_url(lab_env, path) + "&$expand=instanceView", timeout=10,
                           headers={"Authorization": f"Bearer {token}"})
        assert raw.status_code == 200 and secret not in raw.text
    compute.virtual_machine_run_commands.begin_delete("rg-web", "web-02", "check-code").result()
    with pytest.raises(ResourceNotFoundError):
        compute.virtual_machine_run_commands.get_by_virtual_machine("rg-web", "web-02", "check-code")


def test_a_second_concurrent_run_command_gets_conflict(lab_env):
    compute = _compute(lab_env)
    running = compute.virtual_machines.begin_run_command(
        "rg-web", "web-03", {"commandId": "RunShellScript", "script": ["sleep 0.5", "echo done"]})
    with pytest.raises(HttpResponseError) as conflict:
        compute.virtual_machines.begin_run_command("rg-web", "web-03",
                                                   {"commandId": "RunShellScript", "script": ["echo again"]})
    assert (conflict.value.status_code, conflict.value.error.code) == (409, "Conflict")
    assert _stdout(running.result()) == "done\n"
    assert _stdout(_run_linux(compute, "web-03", ["echo free again"])) == "free again\n"


def test_output_keeps_the_last_4096_bytes(lab_env):
    long_line = "x" * 5000 + "END"
    result = _run_linux(_compute(lab_env), "web-03", ['echo "$1"'], long_line)
    assert _stdout(result) == long_line[-4095:] + "\n"


def test_deallocated_vm_refuses_run_commands(lab_env, control):
    compute = _compute(lab_env, SUB_JUMP)
    target = {"subscription": SUB_JUMP, "resource_group": "rg-jump", "name": "jump-02"}
    control.post("/azure/vms/power", {**target, "state": "deallocated"})
    try:
        view = compute.virtual_machines.instance_view("rg-jump", "jump-02")
        assert "PowerState/deallocated" in [s.code for s in view.statuses] and view.os_name is None
        with pytest.raises(HttpResponseError) as refused:
            compute.virtual_machines.begin_run_command("rg-jump", "jump-02",
                                                       {"commandId": "RunShellScript", "script": ["true"]})
        assert (refused.value.status_code, refused.value.error.code) == (409, "OperationNotAllowed")
    finally:
        control.post("/azure/vms/power", {**target, "state": "running"})
    assert _stdout(_run_linux(compute, "jump-02", ["echo up"], rg="rg-jump")) == "up\n"


def test_script_for_the_other_os_is_refused(lab_env):
    with pytest.raises(HttpResponseError) as refused:
        _compute(lab_env).virtual_machines.begin_run_command(
            "rg-web", "web-01", {"commandId": "RunPowerShellScript", "script": ["Write-Output hi"]})
    assert (refused.value.status_code, refused.value.error.code) == (400, "BadRequest")


def test_failing_managed_script_fails_the_deployment_only_when_asked(lab_env):
    commands = _compute(lab_env).virtual_machine_run_commands
    body = {"location": "westeurope", "properties": {"source": {"script": "echo partial; exit 3"}}}
    tolerated = commands.begin_create_or_update("rg-web", "web-02", "tolerated", body).result()
    view = commands.get_by_virtual_machine("rg-web", "web-02", "tolerated", expand="instanceView").properties
    assert tolerated.properties.provisioning_state == "Succeeded"
    assert (view.instance_view.execution_state, view.instance_view.exit_code) == ("Failed", 3)
    body["properties"]["treatFailureAsDeploymentFailure"] = True
    with pytest.raises(HttpResponseError) as failed:
        commands.begin_create_or_update("rg-web", "web-02", "strict", body).result()
    assert "VMExtensionProvisioningError" in str(failed.value)
    assert commands.get_by_virtual_machine("rg-web", "web-02", "strict").properties.provisioning_state == "Failed"


def test_managed_run_command_stops_at_its_timeout(lab_env):
    commands = _compute(lab_env).virtual_machine_run_commands
    commands.begin_create_or_update("rg-web", "web-02", "slow", {"location": "westeurope", "properties": {
        "source": {"script": "echo started; sleep 30; echo finished"}, "timeoutInSeconds": 1}}).result()
    view = commands.get_by_virtual_machine("rg-web", "web-02", "slow", expand="instanceView").properties.instance_view
    assert (view.execution_state, view.output) == ("TimedOut", "started\n")
