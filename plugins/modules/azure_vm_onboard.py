#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetpatch.ssm project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: azure_vm_onboard
short_description: Register Azure VMs as AWS Systems Manager hybrid nodes through Azure Run Command (no SSH)
version_added: 0.1.0
description:
  - Makes each Azure VM of O(vms) a managed node (V(mi-...)) of the account of the task's AWS credentials in
    O(region), with a hybrid activation, through Azure Run Command - no SSH, WinRM or network path to the VM.
  - O(region) is required; the VMs register there and their registration is checked there.
  - "Per VM, one script at a time: a read-only script reads which SSM agent is installed (deb, rpm, snap, the
    Windows service) and the agent's registration file. A VM whose registration names a node that is Online in the
    target account and region is left alone. Otherwise a second script installs the agent from AWS's regional
    bucket when it is missing (never a second agent next to one that is there), registers it with O(activation_id)
    and O(activation_code) while the agent service is stopped, starts the service and reads back the new node id;
    then the task waits until SSM lists the node Online (O(wait))."
  - A VM with two agent flavours (snap and deb) fails with a message, as does a VM registered elsewhere (another
    account or region, or a deregistered node) unless O(override) is set. The other VMs go on.
  - VMs are handled in parallel (O(parallelism)), each by one thread, so one VM never runs two scripts at once.
  - The activation code reaches the VM as a protected parameter of a managed run command (encrypted by Azure,
    never returned by it; on Linux an environment variable of the script, on Windows its C(param()) block). It is
    never part of the script text, never written on the VM, never in the result; any text the VM sends back has it
    replaced by asterisks. A VM that refuses managed run commands (ARM answers 400 or 404) gets the action Run
    Command with the code as a parameter (O(run_command)).
  - Check mode runs the read-only script only and reports what would change.
  - "Documentation: docs/azure-onboarding.md of the collection (the playbook C(playbooks/onboard_azure.yml), the
    scripts, what is not covered)."
author:
  - fleetpatch.ssm maintainers (@fleetpatch)
requirements:
  - azure-identity and azure-mgmt-compute
  - boto3 and botocore
options:
  vms:
    description:
      - The VMs, each an ARM resource id (V(/subscriptions/<id>/resourceGroups/<group>/providers/
        Microsoft.Compute/virtualMachines/<name>)) or a mapping with C(subscription_id), C(resource_group) and
        C(name). A VM may be listed once.
    type: list
    elements: raw
    required: true
  activation_id:
    description:
      - ID of the hybrid activation the VMs register with (M(fleetpatch.ssm.hybrid_activation) returns it).
      - Needed only when a VM needs registering; check mode needs none.
    type: str
  activation_code:
    description:
      - Code of the activation, a one-time secret that AWS returns only when the activation is created.
      - Needed only when a VM needs registering.
    type: str
  override:
    description:
      - Re-register a VM whose registration the target account-region does not know (it belongs to another account
        or region, or its node was deregistered), or whose node here is not Online. The agent's old registration is
        cleared first. The old node id is returned as C(previous_instance_id); AWS keeps that node until it is
        deregistered where it lives.
    type: bool
    default: false
  agent_base_url:
    description:
      - Where the agent is downloaded from; C(<base>/debian_amd64/amazon-ssm-agent.deb),
        C(<base>/linux_amd64/amazon-ssm-agent.rpm) and C(<base>/windows_amd64/AmazonSSMAgentSetup.exe) must exist
        there (C(arm64) on Arm VMs).
      - Default AWS's bucket of O(region), V(https://s3.<region>.amazonaws.com/amazon-ssm-<region>/latest).
    type: str
  proxy:
    description:
      - An HTTP(S) proxy URL the VMs use to download the agent and to reach Systems Manager. On Linux the agent's
        systemd unit gets it as a drop-in (C(fleetpatch-proxy.conf)); on Windows it is used for the download only
        (the agent follows the machine's WinHTTP proxy settings).
    type: str
  run_command:
    description:
      - How the registration script is sent. V(auto) a managed run command, or the action Run Command on a VM that
        refuses managed run commands. V(managed) never falls back. V(action) always uses the action Run Command
        (the code is then a parameter of the POST rather than a protected parameter).
      - The read-only script always uses the action Run Command (nothing secret, no resource left on the VM).
    type: str
    choices: [auto, managed, action]
    default: auto
  timeout:
    description: Seconds each script may run on a VM (Azure stops the managed run command after that).
    type: int
    default: 900
  wait:
    description: After registering a VM, wait until SSM lists its node Online.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for a registered node to be Online (O(wait)).
    type: int
    default: 300
  poll_interval:
    description:
      - Seconds between two looks at a run command's operation when Azure sends no C(Retry-After), and between two
        looks at a node's ping status.
    type: float
    default: 5
  parallelism:
    description: VMs handled at the same time (one thread each).
    type: int
    default: 10
  tolerate_failures:
    description:
      - Do not fail the task when some VMs failed; the result lists them (C(status=failed)) in any case.
    type: bool
    default: false
  azure_endpoint:
    description: Azure Resource Manager endpoint (another cloud, Azure Stack, a test endpoint).
    type: str
    default: https://management.azure.com
  azure_tenant_id:
    description:
      - Tenant of the service principal. Default from the environment, C(AZURE_TENANT_ID) (azure-identity's) before
        C(AZURE_TENANT) (AWX's credential type).
    type: str
  azure_client_id:
    description: Application (client) id of the service principal (C(AZURE_CLIENT_ID)).
    type: str
  azure_client_secret:
    description:
      - Secret of the service principal (C(AZURE_CLIENT_SECRET), then C(AZURE_SECRET)). Without it,
        azure-identity's DefaultAzureCredential is used (environment, workload identity, managed identity, Azure
        CLI).
    type: str
  azure_authority_host:
    description: Microsoft Entra ID authority host, for a sovereign or private cloud (C(AZURE_AUTHORITY_HOST)).
    type: str
  azure_disable_instance_discovery:
    description:
      - Turn off MSAL's authority validation (it asks login.microsoftonline.com about the authority host).
      - By default on for an O(azure_authority_host) that is not one of Microsoft's public authorities, off
        otherwise.
    type: bool
notes:
  - The Azure options and environment variables are the same as the C(fleetpatch.ssm.fleet) inventory's.
  - The Azure identity needs C(Microsoft.Compute/virtualMachines/read), C(.../runCommand/action) and
    C(.../runCommands/write|read|delete) on the VMs (the built-in role "Virtual Machine Contributor" has them).
  - The AWS identity needs C(ssm:DescribeInstanceInformation) in the target account-region.
  - The agent package's signature (GPG, Authenticode) is not verified by these scripts; the C(fleetpatch.ssm.ssm_agent)
    role does, for hosts reached over SSH or WinRM.
  - Azure keeps the last 4,096 bytes of each output stream of a script; the scripts print what the task reads last.
seealso:
  - module: fleetpatch.ssm.hybrid_activation
  - module: fleetpatch.ssm.managed_instance
  - name: Managed Run Command (Azure documentation)
    description: Managed run commands, protected parameters, one script per VM for the action Run Command.
    link: https://learn.microsoft.com/azure/virtual-machines/linux/run-command-managed
  - name: Setting up hybrid environments (AWS Systems Manager User Guide)
    description: Hybrid activations, agent installation and registration.
    link: https://docs.aws.amazon.com/systems-manager/latest/userguide/systems-manager-hybrid-multicloud.html
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Create a short-lived activation for this wave
  fleetpatch.ssm.hybrid_activation:
    name: azure-onboarding-wave
    iam_role: SSMServiceRole
    registration_limit: 3
    expires_in_hours: 4
    region: eu-west-1
  register: activation
  no_log: true

- name: Register the VMs (the code never reaches the output)
  fleetpatch.ssm.azure_vm_onboard:
    vms:
      - /subscriptions/1f6b2c8e-3a4d-4e5f-8a9b-0c1d2e3f4a5b/resourceGroups/rg-app/providers/Microsoft.Compute/virtualMachines/az-app-01
      - {subscription_id: 1f6b2c8e-3a4d-4e5f-8a9b-0c1d2e3f4a5b, resource_group: rg-app, name: az-app-02}
    activation_id: "{{ activation.activation.activation_id }}"
    activation_code: "{{ activation.activation_code }}"
    region: eu-west-1
  register: onboarded
  no_log: true  # the task's parameters hold the code

- name: What would change (reads the VMs, registers nothing, needs no activation)
  fleetpatch.ssm.azure_vm_onboard:
    vms: "{{ my_vms }}"
    region: eu-west-1
  check_mode: true
  register: plan
"""

RETURN = r"""
vms:
  description: One entry per VM, in the order of O(vms).
  returned: always
  type: list
  elements: dict
  contains:
    vm:
      description: ARM resource id of the VM.
      type: str
      sample: /subscriptions/1f6b2c8e-3a4d-4e5f-8a9b-0c1d2e3f4a5b/resourceGroups/rg-app/providers/Microsoft.Compute/virtualMachines/az-app-01
    name:
      description: Name of the VM.
      type: str
      sample: az-app-01
    vm_id:
      description: The VM's unique id (C(vmId)); SSM records it as the node's C(SourceId) where it can.
      type: str
      sample: 0c7d52b4-9a7e-4c1f-8a56-2b3c4d5e6f70
    os:
      description: The guest OS as the VM reports it (C(ID VERSION_ID) of os-release on Linux).
      type: str
      sample: ubuntu 22.04
    agent:
      description: The SSM agent flavour found before the task (V(deb), V(rpm), V(snap), V(windows)), or null.
      type: str
      sample: deb
    instance_id:
      description: The managed node id the VM is registered as after the task (before it, in check mode).
      type: str
      sample: mi-0123456789abcdef0
    previous_instance_id:
      description: The node id a re-registration (O(override)) replaced; it still exists where it was registered.
      type: str
      sample: mi-0fedcba9876543210
    run_command:
      description: How the registration script was sent (V(managed), V(action)); null when none was sent.
      type: str
      sample: managed
    changed:
      description: Whether the VM was (in check mode, would be) registered.
      type: bool
    status:
      description:
        - V(registered) already registered and Online in the target account-region; V(onboarded) registered by this
          task (the agent installed if it was missing); V(reregistered) registered again (O(override)); V(failed).
        - In check mode, the status the VM would get.
      type: str
      sample: onboarded
    message:
      description: What was done or found, in words (why it failed, for a failed VM).
      type: str
      sample: installed the agent and registered as mi-0123456789abcdef0
summary:
  description: Number of VMs per status.
  returned: always
  type: dict
  sample: {"registered": 12, "onboarded": 3, "failed": 1}
"""

try:
    import botocore.exceptions
except ImportError:
    pass  # AnsibleAWSModule reports the missing SDK

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.fleetpatch.ssm.plugins.module_utils import azure_compute
from ansible_collections.fleetpatch.ssm.plugins.module_utils import azure_onboarding
from ansible_collections.fleetpatch.ssm.plugins.module_utils.ssm import ssm_client
from ansible_collections.fleetpatch.ssm.plugins.module_utils.validation import ParameterError

try:
    import azure.identity  # noqa: F401  pylint: disable=unused-import
    import azure.mgmt.compute  # noqa: F401  pylint: disable=unused-import
    HAS_AZURE = True
except ImportError:
    HAS_AZURE = False


def argument_spec() -> dict:
    spec = dict(
        vms=dict(type="list", elements="raw", required=True),
        activation_id=dict(type="str"),
        activation_code=dict(type="str", no_log=True),
        override=dict(type="bool", default=False),
        agent_base_url=dict(type="str"),
        proxy=dict(type="str"),
        run_command=dict(type="str", choices=["auto", "managed", "action"], default="auto"),
        timeout=dict(type="int", default=900),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=300),
        poll_interval=dict(type="float", default=5),
        parallelism=dict(type="int", default=10),
        tolerate_failures=dict(type="bool", default=False),
    )
    spec.update(azure_compute.azure_argument_spec())
    return spec


def settings(module) -> azure_onboarding.Settings:
    params = module.params
    return azure_onboarding.Settings(
        region=module.region, activation_id=params["activation_id"], activation_code=params["activation_code"],
        agent_base_url=params["agent_base_url"] or azure_onboarding.default_agent_base_url(module.region),
        proxy=params["proxy"], override=params["override"], run_command=params["run_command"],
        timeout=params["timeout"], wait_online=params["wait"], wait_timeout=params["wait_timeout"],
        poll_interval=params["poll_interval"], check_mode=module.check_mode)


def ping_status_reader(client):
    """node id -> its PingStatus in the client's account-region, None when that account-region does not know it
    (AWS answers InvalidInstanceId for a node of another account)."""
    def ping_status(instance_id):
        try:
            response = client.describe_instance_information(
                Filters=[{"Key": "InstanceIds", "Values": [instance_id]}], aws_retry=True)
        except is_boto3_error_code("InvalidInstanceId"):
            return None
        nodes = response.get("InstanceInformationList") or []
        return nodes[0].get("PingStatus") if nodes else None
    return ping_status


def main():
    module = AnsibleAWSModule(argument_spec=argument_spec(), supports_check_mode=True)
    if not HAS_AZURE:
        module.fail_json(msg=missing_required_lib("azure-identity and azure-mgmt-compute"))
    params = module.params
    try:
        azure_onboarding.check_settings(dict(params, region=module.region))
        refs = azure_compute.vm_refs("vms", params["vms"])
    except ParameterError as error:
        module.fail_json(msg=str(error))

    credential = azure_compute.make_credential(params)
    onboarding = azure_onboarding.Onboarding(
        settings(module),
        compute_for=lambda subscription_id: azure_compute.compute_client(
            credential, subscription_id, params["azure_endpoint"], params["poll_interval"]),
        ping_status=ping_status_reader(ssm_client(module)),
        azure=azure_compute,
        errors=azure_compute.sdk_errors() + (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError),
    )
    results = onboarding.run(refs, params["parallelism"])
    failed = [result for result in results if result["status"] == "failed"]
    outcome = dict(changed=any(result["changed"] for result in results), vms=results,
                   summary=azure_onboarding.summary(results))
    if failed and not params["tolerate_failures"]:
        names = ", ".join(f"{result['name']} ({result['message']})" for result in failed[:5])
        more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
        module.fail_json(msg=f"{len(failed)} of {len(results)} VM(s) failed: {names}{more}", **outcome)
    module.exit_json(**outcome)


if __name__ == "__main__":
    main()
