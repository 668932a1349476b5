#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetpatch.ssm project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: run_patch_baseline
short_description: Scan or patch managed nodes now with AWS-RunPatchBaseline (Run Command)
version_added: 0.1.0
description:
  - Runs the C(AWS-RunPatchBaseline) document of AWS Systems Manager Patch Manager on managed nodes through Run
    Command (C(SendCommand)), waits for it and reports what happened on every node. Patch Manager does the work on
    the nodes; nothing connects to them over SSH.
  - The targets are listed first (C(DescribeInstanceInformation)). Check mode reports them without sending
    anything, and nodes whose agent is offline are named in a warning before the run.
  - Every node of the run gets the same approved set of patches - one O(snapshot_id), generated when the task
    sets none, is sent to all of them and returned.
  - The result names every node that did not succeed. By default the task fails when any node failed, was
    undeliverable, timed out or was cancelled, after the run finished for every other node.
  - For long runs, O(wait=false) returns at once with the command IDs, and M(fleetpatch.ssm.patch_command_info)
    follows the run with visible progress (see the examples).
author:
  - fleetpatch.ssm maintainers (@fleetpatch)
options:
  operation:
    description:
      - V(Scan) reports missing patches without changing the nodes; V(Install) installs the approved missing
        patches (the patch baseline of each node's patch group, or the default baseline of its operating system).
    type: str
    required: true
    choices: [Scan, Install]
  instance_ids:
    description:
      - Managed node IDs (V(i-...) EC2 instances, V(mi-...) hybrid nodes).
      - AWS takes at most 50 IDs per command; more are sent as several commands of 50 with the same snapshot and
        options, and O(max_concurrency) and O(max_errors) then apply to each command.
      - Exactly one of O(instance_ids), O(tags) and O(patch_group) is required.
    type: list
    elements: str
  tags:
    description:
      - Targets the managed nodes that have all of these tags (keys are ANDed). A value may be a list of values
        (ORed). At most 5 keys and 50 values per key.
      - Sent as C(Targets), resolved by AWS at any fleet size; O(max_concurrency) and O(max_errors) apply to the
        whole run.
    type: dict
  patch_group:
    description:
      - Targets the managed nodes of a patch group, whose C(PatchGroup) or C(Patch Group) tag has this value (Patch
        Manager reads both keys).
      - AWS ANDs the entries of C(Targets), so one command cannot select either key. One command is sent per key
        that the group's nodes carry (usually one, and then O(max_concurrency) and O(max_errors) apply to the whole
        group). A node that carries the group under both keys would run the document twice at once, so the task fails
        before sending anything and names it.
    type: str
  protected_patch_groups:
    description:
      - Patch groups (V(PatchGroup) or V(Patch Group) tag values) whose nodes an Install must not touch with the
        baseline's approvals, for example V(prod-sensitive).
      - An O(operation=Install) whose targets include a node of one of these groups, however it is targeted
        (O(patch_group), O(tags), O(instance_ids)), fails before anything is sent (check mode too) and names the
        nodes, unless it installs an explicit O(install_override_list) - what the C(install) step of the
        fleetpatch.ssm.sensitive_patching role builds from a recorded approval. O(baseline_override) does not lift
        it.
      - The nodes of these groups are found by their tags (one C(DescribeInstanceInformation) per group and tag
        key), so a node that carries a protected group under either key, next to another group, is caught too.
      - Defence in depth under the roles' own guards; a Scan is never refused.
    type: list
    elements: str
    default: []
  snapshot_id:
    description:
      - The patch baseline snapshot every node of the run uses (a GUID), so that all nodes get the same approved
        set even when patches are released or approved while the run is under way.
      - When unset, the module generates one for the task and returns it; reuse it to install exactly what a
        scan found (AWS keeps a snapshot for up to three days).
    type: str
  reboot_option:
    description:
      - V(NoReboot) never reboots; patches that need a reboot stay C(InstalledPendingReboot) and the node reports
        non-compliant until it is rebooted (RV(nodes[].reboot_pending)).
      - V(RebootIfNeeded) reboots a node after any install (Patch Manager does not check whether a patch needs it)
        and when patches are pending a reboot.
      - The default is V(NoReboot), unlike the document's (V(RebootIfNeeded)), so that a task never reboots a server
        unless it says so. Sensitive servers (databases, critical applications) should keep V(NoReboot); jump
        and log servers usually use V(RebootIfNeeded). The value is always sent.
      - A V(Scan) never reboots.
    type: str
    choices: [RebootIfNeeded, NoReboot]
    default: NoReboot
  install_override_list:
    description:
      - An https:// URL or s3://bucket/key of a YAML list of patches to install instead of the baseline's
        approved ones (C(InstallOverrideList)). Patch Manager installs exactly the listed patches, ignoring the
        baseline's rules and rejected list, and reports them C(InstalledOther).
      - Only with O(operation=Install); a Scan ignores it (AWS), so the module warns and does not send it.
    type: str
  baseline_override:
    description:
      - An https:// URL or s3://bucket/key of a JSON list of patch baselines used instead of the nodes' own
        (C(BaselineOverride)); its results go to the command output, not to the nodes' compliance.
      - Cannot be combined with O(install_override_list) (AWS fails the document when both are set).
    type: str
  max_concurrency:
    description:
      - How many nodes run the document at the same time, a number (V(10)) or a percentage of the targets
        (V(10%)). AWS's default is V(50).
    type: str
  max_errors:
    description:
      - How many failed nodes AWS tolerates before it stops sending the command to more nodes, a number (V(0))
        or a percentage (V(5%)). AWS's default is V(0). Undeliverable nodes do not count.
    type: str
  timeout_seconds:
    description:
      - Seconds (30 to 2592000) after which the command is no longer delivered to nodes it has not reached
        (C(TimeoutSeconds), AWS's default 3600). The document then has up to 2 hours per node.
    type: int
  comment:
    description: A comment for the command (at most 100 characters), shown in the Run Command console.
    type: str
  output_s3_bucket:
    description: An S3 bucket where the agents write the command output of every node.
    type: str
  output_s3_key_prefix:
    description: A key prefix for the output in O(output_s3_bucket).
    type: str
  output_s3_region:
    description:
      - Region of O(output_s3_bucket). AWS has deprecated this field and finds the bucket's region itself; it is
        sent only when set.
    type: str
  cloudwatch_output:
    description:
      - Send the command output to CloudWatch Logs (to O(cloudwatch_log_group_name), or to a group AWS names
        after the document).
    type: bool
  cloudwatch_log_group_name:
    description: The CloudWatch Logs group of the command output; setting it enables O(cloudwatch_output).
    type: str
  wait:
    description:
      - Wait until the run has finished on every node and report each node.
      - V(false) returns at once with RV(command_ids) and RV(snapshot_id); follow the run with
        M(fleetpatch.ssm.patch_command_info).
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait for the run. When they pass, the task fails and reports the nodes still running; the
        command keeps running in AWS (follow it with M(fleetpatch.ssm.patch_command_info)).
    type: int
    default: 3600
  poll_interval:
    description: Seconds between two reads of the run's progress (one C(ListCommands) call per command).
    type: int
    default: 15
  fail_on_node_errors:
    description:
      - V(true) fails the task when any node did not succeed (failed, undeliverable, timed out or cancelled), after
        the run finished for every other node.
      - V(false) fails it only when AWS's own verdict is a failure (more than O(max_errors) errors, a time-out or
        a cancellation); nodes that did not succeed are still listed.
    type: bool
    default: true
  package_details:
    description:
      - After an Install, read each node's patches (C(DescribeInstancePatches), one node per call, the only way
        AWS offers) to list the patches this run installed and those that failed.
      - At fleet scale these reads are most of the task's API calls; V(false) reports the counts only.
    type: bool
    default: true
notes:
  - Check mode lists the targeted nodes and sends nothing. It reports V(changed=true) for an Install with at least
    one targeted node, as amazon.aws action modules do for an action they would take, and V(changed=false) for a
    Scan.
  - V(changed) is V(false) for a Scan (it installs and reboots nothing; the compliance data it refreshes is a
    report). An Install is V(changed) when any node reports a patch installed by the run, or with
    O(reboot_option=RebootIfNeeded) when a node that had patches pending a reboot before the run succeeded (it was
    rebooted); when installs are not known (O(wait=false), O(package_details=false)), when the command reached
    any node.
  - The patches a run installed are those whose C(InstalledTime) falls within the node's operation start and end.
    Where an operating system does not report C(InstalledTime), the counts are right but the list may be empty.
  - All calls are retried with jittered backoff on C(ThrottlingException).
seealso:
  - module: fleetpatch.ssm.patch_command_info
  - module: fleetpatch.ssm.patch_baseline
  - module: fleetpatch.ssm.patch_group
  - name: AWS-RunPatchBaseline (AWS Systems Manager User Guide)
    description: The document's parameters and what it does on each operating system.
    link: https://docs.aws.amazon.com/systems-manager/latest/userguide/patch-manager-aws-runpatchbaseline.html
  - name: Understanding command statuses
    description: Run Command's statuses of commands and of each node.
    link: https://docs.aws.amazon.com/systems-manager/latest/userguide/monitor-commands.html
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Scan a patch group (PatchGroup or Patch Group tag)
  fleetpatch.ssm.run_patch_baseline:
    operation: Scan
    patch_group: prod-sensitive
  register: scan

- name: Install on the jump and log servers, rebooting where needed, 10 at a time
  fleetpatch.ssm.run_patch_baseline:
    operation: Install
    patch_group: jump-log
    reboot_option: RebootIfNeeded
    max_concurrency: "10"
    max_errors: "1"
    output_s3_bucket: patch-logs-123456789012
    output_s3_key_prefix: run-patch-baseline

- name: Install exactly an approved list on two database servers, never rebooting
  fleetpatch.ssm.run_patch_baseline:
    operation: Install
    instance_ids: [i-0123456789abcdef0, mi-0123456789abcdef0]
    install_override_list: s3://patch-approvals-123456789012/2026-W02/ubuntu.yaml
    reboot_option: NoReboot
  register: install

- name: Install on the application servers, never on a sensitive server that carries the same tags
  fleetpatch.ssm.run_patch_baseline:
    operation: Install
    tags:
      Tier: app
    protected_patch_groups: [prod-sensitive]
    reboot_option: RebootIfNeeded

- name: Install on tagged nodes (both tags), start only
  fleetpatch.ssm.run_patch_baseline:
    operation: Install
    tags:
      Env: [dev, qa]
      Role: web
    reboot_option: RebootIfNeeded
    wait: false
  register: run

# Progress of a long run: every retry prints a line; at verbosity 2 (AWX: "2 (More Verbose)") it also shows the
# counts (summary: "InProgress: 37/120 nodes done, 1 error(s)").
- name: Follow the run
  fleetpatch.ssm.patch_command_info:
    command_ids: "{{ run.command_ids }}"
  register: progress
  until: progress.done
  retries: 240
  delay: 30

- name: Report every node and fail unless all succeeded
  fleetpatch.ssm.patch_command_info:
    command_ids: "{{ run.command_ids }}"
    details: true
  register: outcome
  failed_when: not outcome.clean
"""

RETURN = r"""
command_id:
  description: ID of the run's first command (most runs send one command; all are in RV(command_ids)).
  returned: when a command was sent
  type: str
  sample: 0b6a1c3e-3f1a-4c57-9a0e-1f2d3c4b5a69
command_ids:
  description: IDs of the run's commands (several for more than 50 instance IDs or a patch group under both keys).
  returned: always
  type: list
  elements: str
snapshot_id:
  description: The snapshot every node of the run used (given or generated).
  returned: always
  type: str
  sample: 8b8f2d4e-6a36-4c5e-9d57-0f3c1a2b4c5d
operation:
  description: V(Scan) or V(Install).
  returned: always
  type: str
reboot_option:
  description: The reboot option sent.
  returned: always
  type: str
document_parameters:
  description: The C(Parameters) sent to AWS-RunPatchBaseline (in check mode, that would be sent).
  returned: always
  type: dict
  sample:
    Operation: [Install]
    SnapshotId: [8b8f2d4e-6a36-4c5e-9d57-0f3c1a2b4c5d]
    RebootOption: [NoReboot]
targets:
  description: The managed nodes AWS listed for the targets before the run (what check mode reports).
  returned: always
  type: list
  elements: dict
  contains:
    instance_id:
      description: Managed node ID.
      type: str
    computer_name:
      description: Host name reported by the agent.
      type: str
    ping_status:
      description: V(Online) or V(ConnectionLost) (such a node ends Undeliverable).
      type: str
    platform_type:
      description: V(Linux), V(Windows) or V(MacOS).
      type: str
    platform_name:
      description: Operating system name.
      type: str
    platform_version:
      description: Operating system version.
      type: str
    resource_type:
      description: V(EC2Instance) or V(ManagedInstance) (hybrid).
      type: str
status:
  description:
    - The run's status in Run Command's words - V(Pending), V(InProgress), V(Success), V(Failed), V(Incomplete)
      (some nodes did not succeed, within O(max_errors)), V(DeliveryTimedOut), V(ExecutionTimedOut), V(Cancelled),
      V(NoInstancesInTag) (no node to run on; nothing was sent).
    - With several commands, the most severe of theirs.
  returned: unless check mode
  type: str
  sample: Incomplete
done:
  description: Whether every command has finished.
  returned: unless check mode
  type: bool
clean:
  description: Whether the run finished and every node succeeded.
  returned: when waited
  type: bool
target_count:
  description: Nodes the commands targeted (AWS's count).
  returned: unless check mode
  type: int
completed_count:
  description: Nodes whose invocation has finished, whatever the result.
  returned: unless check mode
  type: int
error_count:
  description: Nodes whose invocation failed or timed out while running (what O(max_errors) counts).
  returned: unless check mode
  type: int
delivery_timed_out_count:
  description: Nodes the commands did not reach before O(timeout_seconds).
  returned: unless check mode
  type: int
percent_complete:
  description: RV(completed_count) as a percentage of RV(target_count).
  returned: unless check mode
  type: int
summary:
  description: One line on the run, naming the nodes that did not succeed.
  returned: unless check mode
  type: str
  sample: >-
    Incomplete: 5/5 nodes done, 1 error(s); 1 failed (mi-0a1b2c3d4e5f60718); 1 undeliverable (i-0123456789abcdef0)
commands:
  description: Each command of the run.
  returned: unless check mode
  type: list
  elements: dict
  contains:
    command_id:
      description: Command ID.
      type: str
    status:
      description: Command status.
      type: str
    status_details:
      description: Detailed status (e.g. V(Incomplete)).
      type: str
    requested_date_time:
      description: When the command was sent.
      type: str
    target_count:
      description: Targeted nodes.
      type: int
    completed_count:
      description: Finished nodes.
      type: int
    error_count:
      description: Failed nodes.
      type: int
    delivery_timed_out_count:
      description: Nodes not reached in time.
      type: int
    max_concurrency:
      description: MaxConcurrency of the command.
      type: str
    max_errors:
      description: MaxErrors of the command.
      type: str
    targets:
      description: C(Targets) of the command, if sent by tag.
      type: list
      elements: dict
    instance_ids:
      description: C(InstanceIds) of the command, if sent by ID.
      type: list
      elements: str
nodes:
  description: What the run did on each node, in command and instance ID order.
  returned: when waited
  type: list
  elements: dict
  contains:
    instance_id:
      description: Managed node ID.
      type: str
    computer_name:
      description: Host name.
      type: str
    command_id:
      description: The command that ran on the node.
      type: str
    status:
      description: Invocation status (V(Success), V(Failed), V(TimedOut), V(Cancelled), V(InProgress), ...).
      type: str
    status_details:
      description: Detailed status (V(Undeliverable), V(DeliveryTimedOut), V(Terminated), ...).
      type: str
    outcome:
      description: V(succeeded), V(failed), V(undeliverable), V(timed_out), V(cancelled) or V(running).
      type: str
    response_code:
      description: Exit code of the document's step for the node's platform (V(null) when nothing ran).
      type: int
    output:
      description: Output of the failing step (at most 2,500 characters, AWS's limit), for nodes that did not succeed.
      type: str
    patch_state:
      description:
        - The node's compliance as its agent reported it for this run (C(DescribeInstancePatchStates)), V(null) when
          it reported none (undeliverable, or failed before scanning).
        - Counts C(installed_count), C(installed_other_count), C(installed_pending_reboot_count),
          C(installed_rejected_count), C(missing_count), C(failed_count), C(not_applicable_count),
          C(critical_non_compliant_count), C(security_non_compliant_count), C(other_non_compliant_count), and
          C(operation), C(operation_start_time), C(operation_end_time), C(snapshot_id), C(baseline_id),
          C(patch_group), C(reboot_option).
      type: dict
    installed_patches:
      description:
        - Patches this run installed (state V(INSTALLED), V(INSTALLED_OTHER) or V(INSTALLED_PENDING_REBOOT), with an
          C(installed_time) within the operation), each with C(title), C(kb_id), C(classification), C(severity),
          C(state), C(installed_time), C(cve_ids).
        - V(null) for a Scan, with O(package_details=false), or when the node reported nothing.
      type: list
      elements: dict
    failed_patches:
      description: Patches whose installation failed (state V(FAILED)), with their C(cve_ids); V(null) as above.
      type: list
      elements: dict
    reboot_pending:
      description:
        - Whether the node needs a reboot - patches V(InstalledPendingReboot), or installs made with V(NoReboot).
          V(null) when the node reported nothing.
      type: bool
failed_nodes:
  description: Nodes where the document failed.
  returned: when waited
  type: list
  elements: str
undeliverable_nodes:
  description: Nodes the command could not reach (agent offline, node gone).
  returned: when waited
  type: list
  elements: str
timed_out_nodes:
  description: Nodes not reached in time (V(DeliveryTimedOut)) or whose run did not end in time (V(ExecutionTimedOut)).
  returned: when waited
  type: list
  elements: str
cancelled_nodes:
  description: Nodes where the run was cancelled, or never sent because the command exceeded O(max_errors).
  returned: when waited
  type: list
  elements: str
running_nodes:
  description: Nodes still running when O(wait_timeout) passed.
  returned: when waited
  type: list
  elements: str
reboot_pending_nodes:
  description: Nodes that need a reboot (RV(nodes[].reboot_pending)).
  returned: when waited
  type: list
  elements: str
"""

import uuid

from ansible_collections.amazon.aws.plugins.module_utils.exceptions import AnsibleAWSError
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.fleetpatch.ssm.plugins.module_utils import commands
from ansible_collections.fleetpatch.ssm.plugins.module_utils.ssm import AnsibleSSMError
from ansible_collections.fleetpatch.ssm.plugins.module_utils.ssm import ssm_client
from ansible_collections.fleetpatch.ssm.plugins.module_utils.validation import ParameterError

TARGET_OPTIONS = ("instance_ids", "tags", "patch_group")


def validate(module) -> None:
    """Everything checkable without AWS; warns about options AWS would ignore."""
    params = module.params
    commands.check_targets(params)
    commands.check_run_options(params)
    if params["install_override_list"] and params["operation"] == "Scan":
        module.warn("install_override_list is ignored by a Scan (AWS-RunPatchBaseline); it is not sent.")


def warn_about_targets(module, selections) -> None:
    unlisted = commands.unlisted_ids(selections)
    if unlisted:
        module.warn(f"Not listed as managed nodes by AWS (stopped, terminated, unregistered or unknown): "
                    f"{', '.join(unlisted)}.")
    offline = commands.offline_ids(selections)
    if offline:
        module.warn(f"The SSM agent of {', '.join(offline)} is not online: the command will be Undeliverable there.")
    if not selections:
        target = {name: module.params[name] for name in TARGET_OPTIONS if module.params[name] is not None}
        module.warn(f"No managed node matches {target}: nothing was sent.")


def guard_protected_groups(client, params: dict, selections: list) -> None:
    """See protected_patch_groups: only an Install of the baseline's approvals (or a BaselineOverride's) is
    refused; the protected groups are listed only when the run targets some node."""
    if params["operation"] != "Install" or params["install_override_list"] or not params["protected_patch_groups"]:
        return
    if selections:
        commands.refuse_protected(selections, commands.protected_nodes(client, params["protected_patch_groups"]))


def send(client, request: dict, selections: list) -> list:
    """One command per selection (the Commands SendCommand answers); if one fails, the error names the commands
    already running."""
    sent = []
    for selection in selections:
        try:
            sent.append(commands.send_command(client, dict(request, **selection.address)))
        except AnsibleAWSError as error:
            if sent:
                running = ", ".join(command["CommandId"] for command in sent)
                raise AnsibleSSMError(message=f"{error.message} (commands already running: {running})",
                                      exception=error.exception) from error
            raise
    return sent


def is_changed(operation: str, report: dict, pending_reboot=frozenset()) -> bool:
    """See the module's notes: only an Install changes nodes. Known installs decide, or a node it reboots (patches
    pending a reboot before a RebootIfNeeded run, which then succeeded); unknown installs: delivery does."""
    if operation != "Install" or not report["command_ids"]:
        return False
    if "nodes" not in report:
        return True  # not waited: AWS is installing
    nodes = report["nodes"]
    if any(node["instance_id"] in pending_reboot and node["outcome"] == "succeeded" for node in nodes):
        return True
    if all(node["installed_patches"] is not None for node in nodes if node["patch_state"]):
        return any(node["installed_patches"] for node in nodes if node["patch_state"])
    return any(node["response_code"] is not None for node in nodes)


def failure(params: dict, report: dict):
    """Why the task fails, or None."""
    if report["command_ids"] and not report["done"]:
        return (f"AWS-RunPatchBaseline {params['operation']} still running after {params['wait_timeout']} s "
                f"({report['summary']}); it goes on in AWS: follow it with fleetpatch.ssm.patch_command_info and "
                f"command_ids {report['command_ids']}")
    if params["fail_on_node_errors"] and not report["clean"]:
        return f"AWS-RunPatchBaseline {params['operation']} did not succeed on every node: {report['summary']}"
    if commands.aws_verdict_failed(report["status"]):
        return f"AWS-RunPatchBaseline {params['operation']} failed: {report['summary']}"
    return None


def execute(client, params: dict, request: dict, selections: list) -> tuple:
    """Send the run and, unless told not to, wait for it and read every node: (report, changed)."""
    pending_reboot = set()
    if params["operation"] == "Install" and params["reboot_option"] == "RebootIfNeeded" and params["wait"]:
        listed = [node["InstanceId"] for selection in selections for node in selection.nodes]
        pending_reboot = commands.pending_reboot_ids(client, listed)
    sent = send(client, request, selections)
    if not params["wait"]:
        report = commands.run_report(sent)
    else:
        command_ids = [command["CommandId"] for command in sent]
        statuses = commands.wait_for_commands(client, command_ids, params["wait_timeout"], params["poll_interval"])
        report = commands.run_report(statuses, commands.collect_nodes(client, statuses, params["package_details"]))
    return report, is_changed(params["operation"], report, pending_reboot)


def run(module) -> tuple:
    """(result, failure message or None)."""
    params = module.params
    validate(module)
    snapshot_id = params["snapshot_id"] or str(uuid.uuid4())
    request = commands.command_request(params, snapshot_id)
    client = ssm_client(module)
    selections = commands.target_selections(client, **{name: params[name] for name in TARGET_OPTIONS})
    guard_protected_groups(client, params, selections)
    warn_about_targets(module, selections)
    result = {
        "snapshot_id": snapshot_id,
        "operation": params["operation"],
        "reboot_option": params["reboot_option"],
        "document_parameters": request["Parameters"],
        "targets": [commands.node_view(node) for selection in selections for node in selection.nodes],
    }
    if module.check_mode:
        return dict(result, command_ids=[], changed=params["operation"] == "Install" and bool(result["targets"])), None
    report, changed = execute(client, params, request, selections)
    result.update(report, changed=changed)
    if report["command_ids"]:
        result["command_id"] = report["command_ids"][0]
    return result, failure(params, report) if params["wait"] else None


def argument_spec() -> dict:
    return dict(
        operation=dict(type="str", required=True, choices=list(commands.OPERATIONS)),
        instance_ids=dict(type="list", elements="str"),
        tags=dict(type="dict"),
        patch_group=dict(type="str"),
        protected_patch_groups=dict(type="list", elements="str", default=[]),
        snapshot_id=dict(type="str"),
        reboot_option=dict(type="str", choices=list(commands.REBOOT_OPTIONS), default="NoReboot"),
        install_override_list=dict(type="str"),
        baseline_override=dict(type="str"),
        max_concurrency=dict(type="str"),
        max_errors=dict(type="str"),
        timeout_seconds=dict(type="int"),
        comment=dict(type="str"),
        output_s3_bucket=dict(type="str"),
        output_s3_key_prefix=dict(type="str", no_log=False),
        output_s3_region=dict(type="str"),
        cloudwatch_output=dict(type="bool"),
        cloudwatch_log_group_name=dict(type="str"),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=3600),
        poll_interval=dict(type="int", default=15),
        fail_on_node_errors=dict(type="bool", default=True),
        package_details=dict(type="bool", default=True),
    )


def main():
    module = AnsibleAWSModule(
        argument_spec=argument_spec(),
        mutually_exclusive=[TARGET_OPTIONS, ("install_override_list", "baseline_override")],
        required_one_of=[TARGET_OPTIONS],
        supports_check_mode=True,
    )
    try:
        result, failed = run(module)
    except ParameterError as error:
        module.fail_json(msg=str(error))
    except AnsibleAWSError as error:
        module.fail_json_aws_error(error)
    if failed:
        module.fail_json(msg=failed, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
