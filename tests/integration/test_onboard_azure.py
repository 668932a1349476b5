# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Azure VMs onboarded as SSM hybrid nodes through Azure Run Command: playbooks/onboard_azure.yml and the
fleetpatch.ssm.azure_vm_onboard module against a lab of their own (tests/integration/fleets/onboard_azure.yml: one
subscription, Ubuntu 22.04/24.04/20.04, Amazon Linux 2023 and Windows Server 2022 VMs).

Before the playbook runs, the test spoils two VMs the way operators find them: one with two agents (a deb and a
snap), one registered in another AWS account. The playbook targets a fresh account through an assumed role. What
the playbook did is read back from SSM (boto3), from the lab's simulated guests (control API /azure/vms/agent) and
from Azure Resource Manager (the Azure SDK). The tests run in file order and build on each other (one lab).
"""
from __future__ import annotations

import copy
import json
import urllib.request
from pathlib import Path

import boto3
import pytest
import yaml

import harness

FLEET = Path(__file__).resolve().parent / "fleets" / "onboard_azure.yml"
INVENTORY = harness.PLAYBOOKS / "onboard_azure" / "onboard.fleet.yml"
REGISTER = harness.PLAYBOOKS / "onboard_azure" / "register.yml"
PLAYBOOK = "playbooks/onboard_azure.yml"
INSTALL = "playbooks/weekly_install.yml"
REGION = "eu-west-1"
TARGET_ACCOUNT, OTHER_ACCOUNT, THIRD_ACCOUNT = "640000000001", "640000000002", "640000000003"
AGENT_DEB = f"https://s3.{REGION}.amazonaws.com/amazon-ssm-{REGION}/latest/debian_amd64/amazon-ssm-agent.deb"
GOOD_VMS = {"az-app-001": "prod-auto", "az-dev-001": "nonprod", "az-api-001": "prod-auto", "az-win-001": "prod-auto"}
TWO_AGENTS, ELSEWHERE = "az-twoagents-001", "az-elsewhere-001"
FAIL_TASK = "Fail naming every VM and target that did not make it"
CODE_TASKS = ("Create an activation sized to the wave", "Register the wave's VMs")


# -------------------------------------------------------------------------------------------------- the world

class World:
    """The lab, its Azure VMs (ARM through the SDK), AWS accounts through assumed roles."""

    def __init__(self, lab: harness.Lab) -> None:
        from azure.identity import ClientSecretCredential
        from azure.mgmt.compute import ComputeManagementClient

        self.lab = lab
        self.subscription = lab.env["AZURE_SUBSCRIPTION_IDS"].split()[0]
        verify = lab.env["REQUESTS_CA_BUNDLE"]  # the lab's CA; this process's own settings stay as they are
        credential = ClientSecretCredential(
            lab.env["AZURE_TENANT_ID"], lab.env["AZURE_CLIENT_ID"], lab.env["AZURE_CLIENT_SECRET"],
            authority=lab.env["AZURE_AUTHORITY_HOST"], disable_instance_discovery=True, connection_verify=verify)
        self.compute = ComputeManagementClient(
            credential, self.subscription, base_url=lab.env["FLEETPATCH_AZURE_ENDPOINT"],
            credential_scopes=["https://management.azure.com/.default"], connection_verify=verify,
            polling_interval=0.2)
        self.vms = {vm.name: vm.as_dict() for vm in self.compute.virtual_machines.list_all()}

    def run_playbook(self, playbook, extra_vars=None, verbosity=0, **options) -> harness.PlaybookResult:
        env = {"AZURE_SUBSCRIPTION_ID": self.subscription, "ANSIBLE_VERBOSITY": str(verbosity)}
        return harness.run_playbook(self.lab.env, playbook, extra_vars, env=env, **options)

    def ssm(self, account_id: str):
        endpoint = self.lab.env["AWS_ENDPOINT_URL"]
        sts = boto3.client("sts", endpoint_url=endpoint, region_name=REGION,
                           aws_access_key_id=self.lab.env["AWS_ACCESS_KEY_ID"],
                           aws_secret_access_key=self.lab.env["AWS_SECRET_ACCESS_KEY"])
        credentials = sts.assume_role(RoleArn=f"arn:aws:iam::{account_id}:role/onboarding-test",
                                      RoleSessionName="integration")["Credentials"]
        return boto3.client("ssm", endpoint_url=endpoint, region_name=REGION,
                            aws_access_key_id=credentials["AccessKeyId"],
                            aws_secret_access_key=credentials["SecretAccessKey"],
                            aws_session_token=credentials["SessionToken"])

    def nodes(self, account_id: str) -> dict:
        """{node id: (InstanceInformation, tags)} of the account's hybrid nodes."""
        ssm = self.ssm(account_id)
        nodes = {}
        for page in ssm.get_paginator("describe_instance_information").paginate():
            for info in page["InstanceInformationList"]:
                tags = ssm.list_tags_for_resource(ResourceType="ManagedInstance", ResourceId=info["InstanceId"])
                nodes[info["InstanceId"]] = (info, {tag["Key"]: tag["Value"] for tag in tags["TagList"]})
        return nodes

    def vm_ref(self, name: str) -> tuple:
        vm = self.vms[name]
        return vm["id"].split("/")[4], name

    def run_script(self, name: str, script: str) -> str:
        """An action Run Command on the VM (test setup, as an operator would have done it by hand)."""
        group, vm = self.vm_ref(name)
        result = self.compute.virtual_machines.begin_run_command(group, vm, {
            "commandId": "RunShellScript", "script": script.splitlines()}).result().as_dict()
        return result["value"][0]["message"]

    def guest(self, name: str) -> dict:
        group, vm = self.vm_ref(name)
        query = f"subscription={self.subscription}&resource_group={group}&name={vm}"
        with urllib.request.urlopen(f"{self.lab.env['FLEETLAB_CONTROL_URL']}/azure/vms/agent?{query}",
                                    timeout=30) as response:
            return json.loads(response.read())

    def run_commands_left(self, name: str) -> list:
        group, vm = self.vm_ref(name)
        return [c.as_dict() for c in self.compute.virtual_machine_run_commands.list_by_virtual_machine(group, vm)]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with harness.running_lab("lab-onboard-", str(FLEET), tmp_path_factory.mktemp("lab-onboard")) as lab:
        yield World(lab)


def targets(**match) -> dict:
    """Every VM (or those matching `match`) to the target account, through its role."""
    return {"onboard_azure_targets": [dict(name="azure-prod", region=REGION, **match,
                                           role_arn=f"arn:aws:iam::{TARGET_ACCOUNT}:role/fleetpatch-onboarding")],
            "onboard_azure_owner": "platform-team", "onboard_azure_poll_interval": 0.2,
            "onboard_azure_wait_timeout": 60}


@pytest.fixture(scope="module")
def spoiled(world):
    """Two VMs as operators find them: one with both agent flavours, one registered in another account."""
    world.run_script(TWO_AGENTS, f"curl -fsS -o /tmp/agent.deb {AGENT_DEB}\ndpkg -i /tmp/agent.deb\n"
                                 "snap install amazon-ssm-agent --classic\n")
    activation = world.ssm(OTHER_ACCOUNT).create_activation(IamRole="SSMServiceRole", RegistrationLimit=1)
    world.run_script(ELSEWHERE, f"curl -fsS -o /tmp/agent.deb {AGENT_DEB}\ndpkg -i /tmp/agent.deb\n"
                                "systemctl stop amazon-ssm-agent\n"
                                f"amazon-ssm-agent -register -code {activation['ActivationCode']} "
                                f"-id {activation['ActivationId']} -region {REGION} -y\n"
                                "systemctl start amazon-ssm-agent\n")
    (elsewhere_node,) = world.nodes(OTHER_ACCOUNT)
    assert world.guest(TWO_AGENTS)["installed"] == ["deb", "snap"]
    return {"elsewhere_node": elsewhere_node}


@pytest.fixture(scope="module")
def first_run(world, spoiled):
    return world.run_playbook(PLAYBOOK, targets(), inventory=INVENTORY)


# ---------------------------------------------------------------------------------------------------- tests

def test_check_mode_names_the_wave_and_registers_nothing(world, spoiled):
    result = world.run_playbook(PLAYBOOK, targets(), inventory=INVENTORY, check=True)

    looked = result.task("Find the VMs that need registering (read-only)").result["vms"]
    assert {vm["name"]: vm["status"] for vm in looked} == dict(
        dict.fromkeys(GOOD_VMS, "onboarded"), **{TWO_AGENTS: "failed", ELSEWHERE: "failed"})
    assert world.nodes(TARGET_ACCOUNT) == {}
    assert not any(task.task == "Create an activation sized to the wave" and task.status != "skipped"
                   for task in result.tasks)


def test_onboarding_makes_each_vm_a_node_of_the_target_account_with_its_patch_group(world, first_run):
    nodes = world.nodes(TARGET_ACCOUNT)

    by_vm = {tags["AzureResourceId"].split("/")[-1]: (info, tags) for info, tags in nodes.values()}
    assert sorted(by_vm) == sorted(GOOD_VMS)
    for name, patch_group in GOOD_VMS.items():
        info, tags = by_vm[name]
        vm = world.vms[name]
        assert info["PingStatus"] == "Online"
        assert (tags["PatchGroup"], tags["AzureVmId"], tags["AzureResourceId"]) == (
            patch_group, vm["properties"]["vmId"], vm["id"])
        assert tags["Owner"] == ("team-app" if name == "az-app-001" else "platform-team")  # the VM's Owner wins
        assert (info["SourceType"], info["SourceId"]) == ("Microsoft.Compute/virtualMachines", vm["properties"]["vmId"])
        assert world.guest(name)["registration"]["ManagedInstanceID"] == info["InstanceId"]
    assert world.guest("az-win-001")["installed"] == ["windows"]
    assert world.guest("az-api-001")["installed"] == ["rpm"]
    assert world.ssm(TARGET_ACCOUNT).describe_activations()["ActivationList"] == []  # deleted after the wave


def test_a_vm_with_two_agents_or_registered_elsewhere_fails_clearly_and_is_left_as_it_was(world, spoiled, first_run):
    assert first_run.rc != 0
    failures = "\n".join(first_run.task(FAIL_TASK).result["msg"])
    assert f"{TWO_AGENTS}: more than one SSM agent is installed (deb and snap)" in failures
    assert f"{ELSEWHERE}: registered as {spoiled['elsewhere_node']} in {REGION}, which the target account does " \
           "not know" in failures and "set override" in failures
    assert world.guest(TWO_AGENTS)["installed"] == ["deb", "snap"]  # no third agent, no registration
    assert world.guest(TWO_AGENTS)["registration"] is None
    assert world.guest(ELSEWHERE)["registration"]["ManagedInstanceID"] == spoiled["elsewhere_node"]
    assert list(world.nodes(OTHER_ACCOUNT)) == [spoiled["elsewhere_node"]]


def test_the_tasks_that_hold_the_activation_code_show_nothing(first_run):
    for name in CODE_TASKS:
        (task,) = [task for task in first_run.tasks if task.task == name]
        assert task.result.get("censored"), f"{name} is not no_log: {task.result}"
    shown = [(task.task, value) for task in first_run.tasks for value in values_of("activation_code", task.result)]
    assert all(value in (None, "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER") for _task, value in shown), shown


def values_of(key: str, data) -> list:
    """Every value of `key` anywhere in nested dicts and lists."""
    if isinstance(data, dict):
        own = [data[key]] if key in data else []
        return own + [v for value in data.values() for v in values_of(key, value)]
    if isinstance(data, list):
        return [v for item in data for v in values_of(key, item)]
    return []


def test_a_second_run_changes_nothing(world, first_run):
    variables = targets(resource_group="rg-app")  # the two VMs that failed (rg-odd) are left out: a clean run
    variables["onboard_azure_targets"].append(dict(variables["onboard_azure_targets"][0], name="azure-win",
                                                   resource_group="rg-win"))

    result = world.run_playbook(PLAYBOOK, variables, inventory=INVENTORY)

    assert (result.rc, result.changed) == (0, 0), result.summary
    assert all(task.status == "skipped" for task in result.tasks if task.task in CODE_TASKS)
    assert len(result.task("Print the outcome per VM").result["msg"]) == len(GOOD_VMS)
    assert len(world.nodes(TARGET_ACCOUNT)) == len(GOOD_VMS)


def test_the_activation_code_is_nowhere_after_a_reregistration(world, spoiled, first_run):
    """With a code the test knows: the module at -vvv re-registers the VM registered elsewhere (override)."""
    activation = world.ssm(THIRD_ACCOUNT).create_activation(IamRole="SSMServiceRole", RegistrationLimit=1)
    code = activation["ActivationCode"]
    result = world.run_playbook(REGISTER, {
        "vm": world.vms[ELSEWHERE]["id"], "region": REGION, "role_arn": f"arn:aws:iam::{THIRD_ACCOUNT}:role/onboarding",
        "activation_id": activation["ActivationId"], "activation_code": code}, verbosity=3)

    assert result.rc == 0, result.summary
    assert result.task("Register the VM").result.get("censored")
    (vm,) = result.task("Show the result (it holds no secret)").result["registered.vms"]
    (node,) = world.nodes(THIRD_ACCOUNT)
    assert (vm["status"], vm["instance_id"], vm["previous_instance_id"]) == (
        "reregistered", node, spoiled["elsewhere_node"])
    assert world.guest(ELSEWHERE)["registration"]["ManagedInstanceID"] == node
    assert code not in result.stdout + result.stderr
    assert code not in json.dumps(world.guest(ELSEWHERE))
    assert world.run_commands_left(ELSEWHERE) == []  # the managed run command (and its parameters) is gone
    for path in world.lab.state_dir.rglob("*"):
        if path.is_file():
            assert code.encode() not in path.read_bytes(), path


def test_the_weekly_cycle_patches_the_onboarded_vms_like_ec2(world, first_run, tmp_path):
    reference = yaml.safe_load((harness.REPO / "playbooks/vars/reference_policy.yml").read_text())
    variables = copy.deepcopy(reference)
    variables["patch_policy_accounts"] = [{"name": "azure-prod", "regions": [REGION],
                                           "role_arn": f"arn:aws:iam::{TARGET_ACCOUNT}:role/fleetpatch-cycle"}]
    variables.update(patch_cycle_results_dir=str(tmp_path), patch_cycle_poll_interval=1)

    result = world.run_playbook(INSTALL, variables)

    assert result.rc == 0, result.summary
    url = f"{world.lab.env['FLEETLAB_CONTROL_URL']}/install-log?account={TARGET_ACCOUNT}"
    with urllib.request.urlopen(url, timeout=30) as response:
        installed = {row["node_id"] for row in json.loads(response.read())["installs"]}
    onboarded = {info["InstanceId"] for info, _tags in world.nodes(TARGET_ACCOUNT).values()}
    assert installed == onboarded  # every onboarded VM got packages from Patch Manager, nothing else did


def test_an_explicit_vm_list_and_a_target_whose_role_is_refused(world, first_run):
    denied = "640000000009"
    request = urllib.request.Request(f"{world.lab.env['FLEETLAB_CONTROL_URL']}/sts/deny", method="POST",
                                     data=json.dumps({"accounts": [denied]}).encode(),
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=30).close()
    variables = targets()
    variables["onboard_azure_targets"].insert(0, {"name": "refused", "resource_group": "rg-win", "region": REGION,
                                                  "role_arn": f"arn:aws:iam::{denied}:role/fleetpatch-onboarding"})
    app = world.vms["az-app-001"]
    variables["onboard_azure_vms"] = [world.vms["az-win-001"]["id"], {
        "subscription_id": world.subscription, "resource_group": "rg-app", "name": "az-app-001", "tags": app["tags"]}]

    result = world.run_playbook(PLAYBOOK, variables, check=True)  # no inventory: the list is the scope

    assert result.rc != 0 and result.changed == 0
    (failure,) = result.task(FAIL_TASK).result["msg"]
    assert failure.startswith("refused: ") and "AccessDenied" in failure
    (line,) = result.task("Print the outcome per VM").result["msg"]
    assert line.startswith("azure-prod az-app-001: registered mi-")
