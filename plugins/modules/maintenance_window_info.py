#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetpatch.ssm project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: maintenance_window_info
short_description: List AWS Systems Manager maintenance windows with their targets, tasks and recent runs
version_added: 0.1.0
description:
  - Lists the maintenance windows of the account and region in the option names of
    M(fleetpatch.ssm.maintenance_window), with their tags, their targets and tasks in the option names of
    M(fleetpatch.ssm.maintenance_window_target) and M(fleetpatch.ssm.maintenance_window_task), and optionally
    their most recent executions with the status of each task.
author:
  - fleetpatch.ssm maintainers (@fleetpatch)
options:
  name:
    description:
      - Only the windows with exactly this name.
    type: str
  enabled:
    description:
      - Only the enabled (V(true)) or disabled (V(false)) windows; unset, both.
    type: bool
  include_targets:
    description:
      - Return each window's targets (one C(DescribeMaintenanceWindowTargets) call per window).
    type: bool
    default: true
  include_tasks:
    description:
      - Return each window's tasks with their invocation parameters (one C(DescribeMaintenanceWindowTasks) call
        per window and one C(GetMaintenanceWindowTask) call per task).
    type: bool
    default: true
  executions:
    description:
      - How many of each window's most recent executions to return, with the status of each task execution; V(0)
        returns none.
    type: int
    default: 0
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Every window with its targets and tasks
  fleetpatch.ssm.maintenance_window_info:
  register: windows

- name: The last three runs of the install window
  fleetpatch.ssm.maintenance_window_info:
    name: mw-install-auto
    include_targets: false
    include_tasks: false
    executions: 3
  register: install

- name: Fail when the last install did not succeed
  ansible.builtin.assert:
    that: install.maintenance_windows[0].executions[0].status == "SUCCESS"
"""

RETURN = r"""
maintenance_windows:
  description: The windows, sorted by name, each with the return values of M(fleetpatch.ssm.maintenance_window).
  returned: always
  type: list
  elements: dict
  contains:
    window_id:
      description: ID of the window.
      type: str
      sample: mw-0123456789abcdef0
    name:
      description: Name of the window.
      type: str
    schedule:
      description: The schedule.
      type: str
    next_execution_time:
      description: When the window runs next, V(null) when it will not run.
      type: str
    tags:
      description: Tags of the window.
      type: dict
    targets:
      description:
        - The window's targets, sorted by name, each with the return values of
          M(fleetpatch.ssm.maintenance_window_target). With O(include_targets=true).
      type: list
      elements: dict
      returned: when O(include_targets=true)
    tasks:
      description:
        - The window's tasks, sorted by priority and name, each with the return values of
          M(fleetpatch.ssm.maintenance_window_task). With O(include_tasks=true).
      type: list
      elements: dict
      returned: when O(include_tasks=true)
    executions:
      description: The most recent executions, newest first. With O(executions) above 0.
      type: list
      elements: dict
      returned: when O(executions) is above 0
      contains:
        window_execution_id:
          description: ID of the execution.
          type: str
        status:
          description: V(PENDING), V(IN_PROGRESS), V(SUCCESS), V(FAILED), V(TIMED_OUT), V(CANCELLING), V(CANCELLED),
            V(SKIPPED_OVERLAPPING).
          type: str
        status_details:
          description: AWS's explanation of the status.
          type: str
        start_time:
          description: Start (ISO 8601).
          type: str
        end_time:
          description: End (ISO 8601), V(null) while running.
          type: str
        tasks:
          description: The task executions, each with C(task_execution_id), C(task_arn), C(task_type), C(status),
            C(status_details), C(start_time) and C(end_time).
          type: list
          elements: dict
"""

from ansible_collections.amazon.aws.plugins.module_utils.exceptions import AnsibleAWSError
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.fleetpatch.ssm.plugins.module_utils import window as api
from ansible_collections.fleetpatch.ssm.plugins.module_utils.ssm import ssm_client
from ansible_collections.fleetpatch.ssm.plugins.module_utils.tags import resource_tags
from ansible_collections.fleetpatch.ssm.plugins.module_utils.validation import ParameterError
from ansible_collections.fleetpatch.ssm.plugins.module_utils.validation import check_range

MAX_EXECUTIONS = 100


def window_tasks(client, window_id, targets):
    """The window's tasks in maintenance_window_task's terms, priority first (the order they run in)."""
    names = {target["window_target_id"]: target["name"] for target in targets}
    tasks = [api.get_task(client, window_id, row["window_task_id"], names)
             for row in api.list_tasks(client, window_id) or ()]
    return sorted((task for task in tasks if task), key=lambda task: (task["priority"], task["name"] or ""))


def describe(client, identity, params):
    """One window with the details asked for; None if it was deleted since it was listed."""
    window = api.get_window(client, identity["window_id"])
    if window is None:
        return None
    window["tags"] = resource_tags(client, api.RESOURCE_TYPE, window["window_id"])
    wanted = params["include_targets"] or params["include_tasks"]  # tasks show their targets by name
    targets = (api.list_targets(client, window["window_id"]) or []) if wanted else []
    if params["include_targets"]:
        window["targets"] = sorted(targets, key=lambda target: target["name"] or target["window_target_id"])
    if params["include_tasks"]:
        window["tasks"] = window_tasks(client, window["window_id"], targets)
    if params["executions"]:
        window["executions"] = api.recent_executions(client, window["window_id"], params["executions"])
    return window


def gather(client, params):
    identities = [identity for identity in api.list_windows(client, name=params["name"], enabled=params["enabled"])
                  if params["name"] is None or identity["name"] == params["name"]]
    windows = [window for window in (describe(client, identity, params) for identity in identities) if window]
    return {"maintenance_windows": sorted(windows, key=lambda window: (window["name"], window["window_id"]))}


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            name=dict(type="str"),
            enabled=dict(type="bool"),
            include_targets=dict(type="bool", default=True),
            include_tasks=dict(type="bool", default=True),
            executions=dict(type="int", default=0),
        ),
        supports_check_mode=True,
    )
    try:
        check_range("executions", module.params["executions"], 0, MAX_EXECUTIONS)
        result = gather(ssm_client(module), module.params)
    except ParameterError as error:
        module.fail_json(msg=str(error))
    except AnsibleAWSError as error:
        module.fail_json_aws_error(error)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
