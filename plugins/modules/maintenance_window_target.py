#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetpatch.ssm project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: maintenance_window_target
short_description: Register targets with an AWS Systems Manager maintenance window
version_added: 0.1.0
description:
  - Registers, updates and deregisters a target of a maintenance window, identified by its O(name) within the
    O(window). Tasks (M(fleetpatch.ssm.maintenance_window_task)) refer to targets by these names.
  - A target selects managed nodes by tag, by tag key or by ID, or a resource group. Target entries must all match;
    the values of one entry are alternatives. The order of entries and values does not matter, and keys are sent
    in AWS's spelling.
  - The task declares the whole target; an update sends it complete (C(UpdateMaintenanceWindowTarget) with
    C(Replace=true)).
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
      - Name of the target; identifies it within the window. 3 to 128 letters, digits, V(_), V(-) or V(.).
    type: str
    required: true
  description:
    description:
      - Description of the target, 1 to 128 characters.
    type: str
  resource_type:
    description:
      - V(INSTANCE) targets managed nodes, V(RESOURCE_GROUP) a resource group.
      - AWS cannot change the type of a registered target; deregister it and register it again instead.
    type: str
    choices: [INSTANCE, RESOURCE_GROUP]
    default: INSTANCE
  targets:
    description:
      - 1 to 5 entries that all must match. Required with O(state=present).
    type: list
    elements: dict
    suboptions:
      key:
        description:
          - 'With O(resource_type=INSTANCE): V(tag:<tag key>) (nodes whose tag has one of the values, for example
            V(tag:PatchGroup)), V(tag-key) (nodes that have one of the tag keys) or V(InstanceIds) (EC2 instance IDs
            V(i-...) or hybrid managed node IDs V(mi-...)).'
          - 'With O(resource_type=RESOURCE_GROUP): V(resource-groups:Name) (required, one group name) and
            optionally V(resource-groups:ResourceTypeFilters) (resource types such as V(AWS::EC2::Instance)).'
        type: str
        required: true
      values:
        description:
          - 1 to 50 values.
        type: list
        elements: str
        required: true
  owner_information:
    description:
      - Text (1 to 128 characters) that AWS includes in the events of tasks run on this target.
    type: str
  safe:
    description:
      - With V(true), a target that tasks of the window still use is not deregistered and the module fails naming
        those tasks (AWS's C(Safe) option). With V(false) it is deregistered anyway and the tasks lose it.
    type: bool
    default: true
  state:
    description:
      - V(present) registers or updates the target, V(absent) deregisters it.
    type: str
    choices: [present, absent]
    default: present
notes:
  - A run that changes nothing makes two list calls, C(DescribeMaintenanceWindows) (when O(window) is a name) and
    C(DescribeMaintenanceWindowTargets).
  - In check mode, a window that does not exist yet (an earlier task of the play would create it) gives a warning
    and the target is reported as created.
  - AWS allows 100 targets per window.
seealso:
  - module: fleetpatch.ssm.maintenance_window
  - module: fleetpatch.ssm.maintenance_window_task
  - name: Register targets with a maintenance window (AWS Systems Manager User Guide)
    description: Target types and examples.
    link: https://docs.aws.amazon.com/systems-manager/latest/userguide/mw-cli-tutorial-targets-examples.html
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Every node of the prod-auto patch group
  fleetpatch.ssm.maintenance_window_target:
    window: mw-install-auto
    name: prod-auto
    targets:
      - key: tag:PatchGroup
        values: [prod-auto]
    owner_information: prod-auto weekly install

- name: Jump and log servers in one target
  fleetpatch.ssm.maintenance_window_target:
    window: mw-install-auto
    name: jump-log
    targets:
      - key: tag:PatchGroup
        values: [jump-log]
      - key: tag:Environment
        values: [prod]

- name: A resource group of EC2 instances
  fleetpatch.ssm.maintenance_window_target:
    window: mw-scan-all
    name: web-tier
    resource_type: RESOURCE_GROUP
    targets:
      - key: resource-groups:Name
        values: [web-tier]
      - key: resource-groups:ResourceTypeFilters
        values: ["AWS::EC2::Instance"]

- name: Deregister a target that no task uses
  fleetpatch.ssm.maintenance_window_target:
    window: mw-scan-all
    name: legacy
    state: absent
"""

RETURN = r"""
maintenance_window_target:
  description:
    - The target after the task, in the module's option names; V(null) after O(state=absent).
    - In check mode, the target the task would produce (RV(maintenance_window_target.window_target_id) is V(null)
      for a target that would be registered).
  returned: always
  type: dict
  contains:
    window_id:
      description: ID of the window.
      type: str
      sample: mw-0123456789abcdef0
    window_target_id:
      description: ID of the target, what tasks refer to.
      type: str
      sample: 0b2b4c1e-2b6e-4d2b-9a0e-8f2f0a7c1d11
    name:
      description: Name of the target.
      type: str
    description:
      description: Description, V(null) when unset.
      type: str
    resource_type:
      description: V(INSTANCE) or V(RESOURCE_GROUP).
      type: str
    targets:
      description: Target entries, sorted by key, values sorted.
      type: list
      elements: dict
      sample: [{"key": "tag:PatchGroup", "values": ["prod-auto"]}]
    owner_information:
      description: Owner information, V(null) when unset.
      type: str
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.fleetpatch.ssm.plugins.module_utils import window as api
from ansible_collections.fleetpatch.ssm.plugins.module_utils.ssm import ensure
from ansible_collections.fleetpatch.ssm.plugins.module_utils.validation import ParameterError
from ansible_collections.fleetpatch.ssm.plugins.module_utils.validation import check_pattern


class WindowTarget(api.WindowPart):
    noun = "maintenance window target"
    result_key = "maintenance_window_target"

    def validate(self):
        check_pattern("name", self.params["name"], *api.NAME)
        if self.params["state"] == "present":
            self._desired = api.desired_target(self.params)

    def read(self):
        if not self.read_window():
            return None
        return self.find_named(self.window_targets)

    def desired(self, current):
        if current and current["resource_type"] != self._desired["resource_type"]:
            raise ParameterError(
                f"resource_type: {self._desired['resource_type']!r} differs from {current['resource_type']!r}, the "
                f"type of the registered target {current['name']!r} ({current['window_target_id']}), and AWS cannot "
                "change it; allowed: the registered type, or deregister the target (state=absent) and register it "
                "again (tasks that use it must be updated with the new target)"
            )
        return self._desired

    def create(self, desired):
        api.register_target(self.client, self.window_id(), desired)

    def update(self, current, desired, changed):
        api.update_target(self.client, current["window_id"], current["window_target_id"], desired)

    def check_delete(self, current):
        """AWS's Safe option, checked first so that the failure names the tasks (AWS's error does not)."""
        if not self.params["safe"]:
            return
        tasks = api.list_tasks(self.client, current["window_id"]) or []
        users = sorted(task["name"] or task["window_task_id"] for task in tasks
                       if current["window_target_id"] in task["target_ids"])
        if users:
            raise ParameterError(
                f"state: the target {current['name']!r} ({current['window_target_id']}) cannot be deregistered: tasks "
                f"{', '.join(users)} use it; remove it from those tasks first, or set safe=false"
            )

    def delete(self, current):
        api.deregister_target(self.client, current["window_id"], current["window_target_id"], self.params["safe"])

    def predict(self, current, desired):
        predicted = super().predict(current, desired)
        if current is None:
            predicted.update(window_id=self.window_id(), window_target_id=None)
        return predicted


def argument_spec():
    return dict(
        window=dict(type="str", required=True),
        name=dict(type="str", required=True),
        description=dict(type="str"),
        resource_type=dict(type="str", choices=list(api.RESOURCE_TYPES), default="INSTANCE"),
        targets=dict(
            type="list",
            elements="dict",
            options=dict(
                key=dict(type="str", required=True, no_log=False),
                values=dict(type="list", elements="str", required=True),
            ),
        ),
        owner_information=dict(type="str"),
        safe=dict(type="bool", default=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
    )


def main():
    module = AnsibleAWSModule(
        argument_spec=argument_spec(),
        required_if=[("state", "present", ["targets"])],
        supports_check_mode=True,
    )
    ensure(WindowTarget(module))


if __name__ == "__main__":
    main()
