#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetpatch.ssm project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: maintenance_window_task
short_description: Register tasks with an AWS Systems Manager maintenance window
version_added: 0.1.0
description:
  - Registers, updates and deregisters a task of a maintenance window, identified by its O(name) within the
    O(window).
  - The task declares the whole window task; an update sends it complete (C(UpdateMaintenanceWindowTask) with
    C(Replace=true)), so changes made in the console are undone. Invocation parameters are written as
    C(TaskInvocationParameters); the deprecated C(TaskParameters) and C(LoggingInfo) are never used.
  - O(patch_baseline) writes the parameters of C(AWS-RunPatchBaseline) (operation, reboot option, snapshot,
    install override list, baseline override) so that patching tasks need no hand-written document parameters.
  - Tasks without targets (possible for Automation, Lambda and Step Functions tasks) take neither
    O(max_concurrency) nor O(max_errors); the placeholder V(1) AWS shows for them is not a difference.
author:
  - fleetpatch.ssm maintainers (@fleetpatch)
options:
  window:
    description:
      - The maintenance window, by name or by ID (V(mw-) followed by 17 hexadecimal digits).
    type: str
    required: true
  name:
    description:
      - Name of the task; identifies it within the window. 3 to 128 letters, digits, V(_), V(-) or V(.).
    type: str
    required: true
  description:
    description:
      - Description of the task, 1 to 128 characters.
    type: str
  task_type:
    description:
      - What the task runs. A different value than the registered task's replaces it (AWS cannot change the type).
    type: str
    choices: [RUN_COMMAND, AUTOMATION, LAMBDA, STEP_FUNCTIONS]
    default: RUN_COMMAND
  task_arn:
    description:
      - The SSM document (Run Command), runbook (Automation), function (Lambda) or state machine (Step Functions)
        to run, by name or ARN. 1 to 1600 characters.
      - Required unless O(patch_baseline) is set, which runs V(AWS-RunPatchBaseline).
    type: str
  priority:
    description:
      - Order of the task in the window, V(0) first; tasks of equal priority run in parallel.
    type: int
    default: 1
  targets:
    description:
      - Window targets the task runs on, by name (M(fleetpatch.ssm.maintenance_window_target)) or by ID. At most
        10. Several targets run one after the other.
      - The order does not matter.
    type: list
    elements: str
    aliases: [window_targets]
  instance_ids:
    description:
      - Managed nodes the task runs on without being window targets, by ID (V(i-...), V(mi-...)); the window must
        allow unassociated targets. At most 50.
    type: list
    elements: str
  max_concurrency:
    description:
      - How many targets run the task at the same time, a number from V(1) or a percentage V(1%) to V(100%).
      - Required when the task has O(targets) or O(instance_ids); not allowed without them.
    type: str
  max_errors:
    description:
      - How many errors stop the task on further targets, a number from V(0) or a percentage V(0%) to V(100%).
      - Required when the task has O(targets) or O(instance_ids); not allowed without them.
    type: str
  cutoff_behavior:
    description:
      - What happens to the task when the window reaches its cutoff time. V(CONTINUE_TASK) (AWS's default) lets
        invocations that started run on; V(CANCEL_TASK) cancels them.
    type: str
    choices: [CONTINUE_TASK, CANCEL_TASK]
  service_role_arn:
    description:
      - IAM role Systems Manager assumes to run the task. Unset, AWS uses its service-linked role (and shows it),
        and the module does not compare it.
    type: str
  alarm_configuration:
    description:
      - A CloudWatch alarm that stops the task when it is in ALARM.
    type: dict
    suboptions:
      alarms:
        description:
          - Name of the alarm (AWS takes exactly one).
        type: list
        elements: str
        required: true
      ignore_poll_alarm_failure:
        description:
          - Run the task even when the alarm's state cannot be read.
        type: bool
        default: false
  run_command:
    description:
      - Invocation parameters of a V(RUN_COMMAND) task.
    type: dict
    suboptions:
      parameters:
        description:
          - The document's parameters, name to a list of values (a single value may be written alone). The order
            of values is kept (a list of commands is ordered).
          - Not with O(patch_baseline), which sets them.
        type: dict
      comment:
        description:
          - Comment of the commands the task sends, at most 100 characters.
        type: str
      document_version:
        description:
          - Version of the document, V($DEFAULT), V($LATEST) or a version number.
        type: str
      document_hash:
        description:
          - Hash of the document (deprecated by AWS for Run Command, kept for documents shared by hash).
        type: str
      document_hash_type:
        description:
          - Algorithm of O(run_command.document_hash).
        type: str
        choices: [Sha256, Sha1]
      timeout_seconds:
        description:
          - Seconds for a command to start on a node before it is considered failed, 30 to 2592000.
        type: int
      output_s3_bucket:
        description:
          - S3 bucket (3 to 63 characters) that receives the command output.
        type: str
      output_s3_key_prefix:
        description:
          - Key prefix of the command output in O(run_command.output_s3_bucket), at most 500 characters.
        type: str
      cloudwatch_output:
        description:
          - Send the command output to CloudWatch Logs.
        type: dict
        suboptions:
          enabled:
            description:
              - Whether output goes to CloudWatch Logs.
            type: bool
            default: true
          log_group:
            description:
              - Log group (1 to 512 characters); unset, AWS uses C(/aws/ssm/<document name>).
            type: str
      notification_config:
        description:
          - Amazon SNS notifications about the commands.
        type: dict
        suboptions:
          arn:
            description:
              - ARN of the SNS topic.
            type: str
            required: true
          events:
            description:
              - Command status changes that notify.
            type: list
            elements: str
            choices: [All, InProgress, Success, TimedOut, Cancelled, Failed]
          type:
            description:
              - Notify per command or per node (invocation).
            type: str
            choices: [Command, Invocation]
      service_role_arn:
        description:
          - IAM role Systems Manager assumes to publish the SNS notifications.
        type: str
  patch_baseline:
    description:
      - Run V(AWS-RunPatchBaseline) with these parameters. Sets O(task_arn) to V(AWS-RunPatchBaseline) when it is
        unset, and the document parameters of O(run_command) (the other O(run_command) options still apply).
    type: dict
    suboptions:
      operation:
        description:
          - V(Scan) reports missing patches; V(Install) installs the approved ones.
        type: str
        choices: [Scan, Install]
        required: true
      reboot_option:
        description:
          - V(RebootIfNeeded) reboots a node after any installation; V(NoReboot) never reboots (the node reports
            C(InstalledPendingReboot) and stays non-compliant until it reboots).
        type: str
        choices: [RebootIfNeeded, NoReboot]
        default: RebootIfNeeded
      snapshot_id:
        description:
          - A GUID that makes every node of the run use the same approved patches.
          - Leave it unset in a maintenance window (AWS's best practice), where Patch Manager supplies one per
            window execution; a snapshot given here is kept at most three days. The module warns when it is set.
        type: str
      install_override_list:
        description:
          - https:// or s3:// URL of a YAML list of the exact patches to install; the baseline's rules and rejected
            list are skipped (installed patches are reported as C(InstalledOther)). V(Scan) ignores it.
        type: str
      baseline_override:
        description:
          - https:// or s3:// URL of a JSON patch baseline used instead of the node's baseline. Not with
            O(patch_baseline.install_override_list).
        type: str
  automation:
    description:
      - Invocation parameters of an V(AUTOMATION) task.
    type: dict
    suboptions:
      document_version:
        description:
          - Version of the runbook, V($DEFAULT), V($LATEST) or a version number.
        type: str
      parameters:
        description:
          - The runbook's parameters, name to a list of values (at most 200 parameters, 50 values each).
        type: dict
  lambda:
    description:
      - Invocation parameters of a V(LAMBDA) task.
    type: dict
    suboptions:
      client_context:
        description:
          - Base64-encoded client context passed to the function.
        type: str
      qualifier:
        description:
          - Version or alias of the function.
        type: str
      payload:
        description:
          - JSON input of the function, at most 4096 characters.
        type: str
  step_functions:
    description:
      - Invocation parameters of a V(STEP_FUNCTIONS) task.
    type: dict
    suboptions:
      input:
        description:
          - JSON input of the execution, at most 4096 characters.
        type: str
      name:
        description:
          - Name of the execution, 1 to 80 characters.
        type: str
  state:
    description:
      - V(present) registers or updates the task, V(absent) deregisters it.
    type: str
    choices: [present, absent]
    default: present
notes:
  - A run that changes nothing makes three list calls (C(DescribeMaintenanceWindows) when O(window) is a name,
    C(DescribeMaintenanceWindowTargets), C(DescribeMaintenanceWindowTasks)) and one C(GetMaintenanceWindowTask).
  - In check mode, a window or window target that does not exist yet (an earlier task of the play would create it)
    gives a warning and the task is reported as it would be registered.
  - AWS allows 20 tasks per window and 10 targets per task.
seealso:
  - module: fleetpatch.ssm.maintenance_window
  - module: fleetpatch.ssm.maintenance_window_target
  - name: AWS-RunPatchBaseline (AWS Systems Manager User Guide)
    description: The parameters of the patching document.
    link: https://docs.aws.amazon.com/systems-manager/latest/userguide/patch-manager-aws-runpatchbaseline.html
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Weekly scan of every patch group, output to S3
  fleetpatch.ssm.maintenance_window_task:
    window: mw-scan-all
    name: scan
    targets: [prod-auto, prod-sensitive, jump-log, nonprod]
    max_concurrency: 10%
    max_errors: 5%
    patch_baseline:
      operation: Scan
    run_command:
      output_s3_bucket: patch-logs-123456789012
      output_s3_key_prefix: scan/
      timeout_seconds: 600

- name: Install on the auto groups, reboot when needed
  fleetpatch.ssm.maintenance_window_task:
    window: mw-install-auto
    name: install
    priority: 1
    targets: [prod-auto, jump-log]
    max_concurrency: "25%"
    max_errors: "1"
    cutoff_behavior: CANCEL_TASK
    patch_baseline:
      operation: Install
      reboot_option: RebootIfNeeded
    run_command:
      cloudwatch_output:
        log_group: /fleetpatch/install

- name: A shell command before patching
  fleetpatch.ssm.maintenance_window_task:
    window: mw-install-auto
    name: stop-app
    priority: 0
    task_arn: AWS-RunShellScript
    targets: [prod-auto]
    max_concurrency: "10"
    max_errors: "0"
    run_command:
      parameters:
        commands:
          - systemctl stop myapp
          - sync

- name: Remove a task
  fleetpatch.ssm.maintenance_window_task:
    window: mw-install-auto
    name: stop-app
    state: absent
"""

RETURN = r"""
maintenance_window_task:
  description:
    - The task after the task, in the module's option names; V(null) after O(state=absent).
    - In check mode, the task the module would produce (RV(maintenance_window_task.window_task_id) is V(null) for a
      task that would be registered).
  returned: always
  type: dict
  contains:
    window_id:
      description: ID of the window.
      type: str
      sample: mw-0123456789abcdef0
    window_task_id:
      description: ID of the task.
      type: str
    name:
      description: Name of the task.
      type: str
    description:
      description: Description, V(null) when unset.
      type: str
    task_type:
      description: Type of the task.
      type: str
      sample: RUN_COMMAND
    task_arn:
      description: What the task runs.
      type: str
      sample: AWS-RunPatchBaseline
    priority:
      description: Priority of the task.
      type: int
    targets:
      description: Window targets of the task, by name (by ID for a target without a name), sorted.
      type: list
      elements: str
    instance_ids:
      description: Managed nodes targeted by ID, sorted.
      type: list
      elements: str
    max_concurrency:
      description: Concurrency limit, V(null) for a task without targets.
      type: str
    max_errors:
      description: Error threshold, V(null) for a task without targets.
      type: str
    cutoff_behavior:
      description: Behaviour at the cutoff time.
      type: str
    service_role_arn:
      description: Role of the task (AWS's service-linked role when none was set).
      type: str
    alarm_configuration:
      description: Alarm configuration, V(null) when unset.
      type: dict
    run_command:
      description: Invocation parameters of a Run Command task (V(null) for other types), in the option names of
        O(run_command).
      type: dict
    patch_baseline:
      description: For an V(AWS-RunPatchBaseline) task, its parameters in the option names of O(patch_baseline);
        otherwise V(null).
      type: dict
      sample: {"operation": "Install", "reboot_option": "NoReboot", "snapshot_id": null,
               "install_override_list": null, "baseline_override": null}
    automation:
      description: Invocation parameters of an Automation task, V(null) for other types.
      type: dict
    lambda:
      description: Invocation parameters of a Lambda task, V(null) for other types.
      type: dict
    step_functions:
      description: Invocation parameters of a Step Functions task, V(null) for other types.
      type: dict
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.fleetpatch.ssm.plugins.module_utils import window as api
from ansible_collections.fleetpatch.ssm.plugins.module_utils.ssm import ensure
from ansible_collections.fleetpatch.ssm.plugins.module_utils.validation import ParameterError
from ansible_collections.fleetpatch.ssm.plugins.module_utils.validation import check_pattern


class WindowTask(api.WindowPart):
    noun = "maintenance window task"
    result_key = "maintenance_window_task"

    def validate(self):
        check_pattern("name", self.params["name"], *api.NAME)
        if self.params["state"] == "present":
            self._desired = api.desired_task(self.params)
            if (self.params["patch_baseline"] or {}).get("snapshot_id"):
                self.module.warn("patch_baseline.snapshot_id is set: in a maintenance window AWS recommends leaving "
                                 "it unset (Patch Manager supplies one per window execution), and a snapshot is kept "
                                 "at most three days")

    def read(self):
        if not self.read_window():
            return None
        names = {target["window_target_id"]: target["name"] for target in self.window_targets}
        found = self.find_named(api.list_tasks(self.client, self.window_id()) or [])
        return found and api.get_task(self.client, self.window_id(), found["window_task_id"], names)

    def desired(self, current):
        return dict(self._desired, targets=self._target_names(self._desired["targets"]))

    def _target_names(self, given):
        """The window targets the task names, as task states show them; unknown ones fail (check mode: warn, as an
        earlier task of the play may register them)."""
        if self.window is None:  # check mode only: the window does not exist yet
            return sorted(set(given))
        names, unknown = api.task_target_names(given, self.window_targets)
        if unknown and not self.module.check_mode:
            known = sorted(target["name"] or target["window_target_id"] for target in self.window_targets)
            raise ParameterError(
                f"targets: {unknown[0]!r} is not a target of the window {self.params['window']!r}; allowed: the name "
                f"or ID of one of its targets ({', '.join(known) or 'it has none'}), registered with "
                "fleetpatch.ssm.maintenance_window_target"
            )
        if unknown:
            self.module.warn(f"targets {', '.join(unknown)} are not targets of the window {self.params['window']!r} "
                             "(yet): check mode assumes an earlier task registers them")
        return sorted(set(names) | set(unknown))

    def _target_ids(self, desired):
        return api.task_target_ids(desired["targets"], self.window_targets)

    def create(self, desired):
        api.register_task(self.client, self.window_id(), desired, self._target_ids(desired))

    def update(self, current, desired, changed):
        if "task_type" in changed:  # UpdateMaintenanceWindowTask has no TaskType: replace the task
            api.deregister_task(self.client, current["window_id"], current["window_task_id"])
            self.create(desired)
            return
        api.update_task(self.client, current["window_id"], current["window_task_id"], desired,
                        self._target_ids(desired))

    def delete(self, current):
        api.deregister_task(self.client, current["window_id"], current["window_task_id"])

    def predict(self, current, desired):
        predicted = super().predict(current, desired)
        if current is None or current["task_type"] != desired["task_type"]:
            predicted.update(window_id=self.window_id(), window_task_id=None)
        return predicted


def _suboptions(**options):
    return dict(type="dict", options=options)


def argument_spec():
    spec = dict(
        window=dict(type="str", required=True),
        name=dict(type="str", required=True),
        description=dict(type="str"),
        task_type=dict(type="str", choices=list(api.TASK_TYPES), default="RUN_COMMAND"),
        task_arn=dict(type="str"),
        priority=dict(type="int", default=1),
        targets=dict(type="list", elements="str", aliases=["window_targets"]),
        instance_ids=dict(type="list", elements="str"),
        max_concurrency=dict(type="str"),
        max_errors=dict(type="str"),
        cutoff_behavior=dict(type="str", choices=list(api.CUTOFF_BEHAVIORS)),
        service_role_arn=dict(type="str"),
        alarm_configuration=_suboptions(
            alarms=dict(type="list", elements="str", required=True),
            ignore_poll_alarm_failure=dict(type="bool", default=False),
        ),
        run_command=_suboptions(
            parameters=dict(type="dict"),
            comment=dict(type="str"),
            document_version=dict(type="str"),
            document_hash=dict(type="str"),
            document_hash_type=dict(type="str", choices=["Sha256", "Sha1"]),
            timeout_seconds=dict(type="int"),
            output_s3_bucket=dict(type="str"),
            output_s3_key_prefix=dict(type="str", no_log=False),
            cloudwatch_output=_suboptions(
                enabled=dict(type="bool", default=True),
                log_group=dict(type="str"),
            ),
            notification_config=_suboptions(
                arn=dict(type="str", required=True),
                events=dict(type="list", elements="str",
                            choices=["All", "InProgress", "Success", "TimedOut", "Cancelled", "Failed"]),
                type=dict(type="str", choices=["Command", "Invocation"]),
            ),
            service_role_arn=dict(type="str"),
        ),
        patch_baseline=_suboptions(
            operation=dict(type="str", choices=["Scan", "Install"], required=True),
            reboot_option=dict(type="str", choices=["RebootIfNeeded", "NoReboot"], default="RebootIfNeeded"),
            snapshot_id=dict(type="str"),
            install_override_list=dict(type="str"),
            baseline_override=dict(type="str"),
        ),
        automation=_suboptions(
            document_version=dict(type="str"),
            parameters=dict(type="dict"),
        ),
        step_functions=_suboptions(
            input=dict(type="str"),
            name=dict(type="str"),
        ),
        state=dict(type="str", choices=["present", "absent"], default="present"),
    )
    spec["lambda"] = _suboptions(  # `lambda` is a Python keyword, not a keyword argument
        client_context=dict(type="str"),
        qualifier=dict(type="str"),
        payload=dict(type="str"),
    )
    return spec


def main():
    module = AnsibleAWSModule(argument_spec=argument_spec(), supports_check_mode=True)
    ensure(WindowTask(module))


if __name__ == "__main__":
    main()
