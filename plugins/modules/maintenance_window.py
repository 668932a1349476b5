#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetpatch.ssm project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: maintenance_window
short_description: Manage AWS Systems Manager maintenance windows
version_added: 0.1.0
description:
  - Creates, updates and deletes a maintenance window of AWS Systems Manager, identified by its O(name) in the
    account and region.
  - The task declares the whole window. Options left unset mean "not set", and an update sends the complete
    window (C(UpdateMaintenanceWindow) with C(Replace=true)), so changes made in the console are detected and
    undone.
  - The schedule, time zone, offset, duration, cutoff and active period are checked before anything is written; a
    bad value fails naming the field, the value and what is allowed.
  - Targets and tasks are managed by M(fleetpatch.ssm.maintenance_window_target) and
    M(fleetpatch.ssm.maintenance_window_task). Deleting a window deletes its targets and tasks.
author:
  - fleetpatch.ssm maintainers (@fleetpatch)
options:
  name:
    description:
      - Name of the window; identifies it in the account and region.
      - 3 to 128 letters, digits, V(_), V(-) or V(.).
      - AWS does not require names to be unique; the module fails when several windows have this name.
    type: str
    required: true
  description:
    description:
      - Description of the window, 1 to 128 characters.
    type: str
  schedule:
    description:
      - When the window runs. Required with O(state=present).
      - 'V(cron(minutes hours day-of-month month day-of-week year)): six fields, or seven with a leading seconds
        field (1-59). One of day-of-month and day-of-week must be V(?). Day-of-week is 1-7 (Sunday is 1) or
        V(SUN)-V(SAT); V(TUE#3) is the third Tuesday, V(6L) the last Friday; day-of-month takes V(L), V(LW) and
        V(15W). Runs closer than 5 minutes are not supported. Example: V(cron(0 2 ? * SUN *)).'
      - 'V(rate(value unit)): unit V(minute), V(hour) or V(day), plural for values above 1, at least 5 minutes.
        Example: V(rate(7 days)).'
      - 'V(at(yyyy-mm-ddThh:mm:ss)): one run. Example: V(at(2026-07-04T22:00:00)).'
      - Names and units may be written in any case; the module sends them in AWS's spelling.
    type: str
  schedule_timezone:
    description:
      - IANA time zone the schedule is read in, for example V(Europe/Paris) or V(America/New_York). Unset means
        UTC.
    type: str
  schedule_offset:
    description:
      - Days to wait after each cron time before the window runs, 1 to 6. Only with a V(cron(...)) O(schedule).
      - For example V(cron(0 2 ? * TUE#2 *)) with an offset of 4 runs on the Saturday after Patch Tuesday.
    type: int
  duration:
    description:
      - How long the window lasts, 1 to 24 hours. Required with O(state=present).
    type: int
  cutoff:
    description:
      - Hours before the end of the window when no new task starts, 0 to 23 and below O(duration). Required with
        O(state=present).
    type: int
  start_date:
    description:
      - ISO-8601 date-time before which the window does not run, for example V(2026-01-05T00:00:00+01:00).
      - A date-time without offset is read in O(schedule_timezone).
    type: str
  end_date:
    description:
      - ISO-8601 date-time after which the window no longer runs; after O(start_date). AWS requires it to be in the
        future when it is sent.
    type: str
  enabled:
    description:
      - Whether the window runs on its schedule.
    type: bool
    default: true
  allow_unassociated_targets:
    description:
      - Allow tasks to target managed nodes by ID (O(fleetpatch.ssm.maintenance_window_task#module:instance_ids))
        without registering them as window targets.
    type: bool
    default: false
  state:
    description:
      - V(present) creates or updates the window, V(absent) deletes it with its targets and tasks.
    type: str
    choices: [present, absent]
    default: present
notes:
  - Tags are read only when O(tags) is set, so a run without O(tags) costs one C(DescribeMaintenanceWindows) and one
    C(GetMaintenanceWindow) call.
  - AWS allows 50 maintenance windows per account and region.
seealso:
  - module: fleetpatch.ssm.maintenance_window_target
  - module: fleetpatch.ssm.maintenance_window_task
  - module: fleetpatch.ssm.maintenance_window_info
  - name: Cron and rate expressions for Systems Manager (AWS Systems Manager User Guide)
    description: The schedule syntax of maintenance windows.
    link: https://docs.aws.amazon.com/systems-manager/latest/userguide/reference-cron-and-rate-expressions.html
  - name: Maintenance window scheduling and active period options (AWS Systems Manager User Guide)
    description: How schedule, time zone, offset, start and end dates combine.
    link: https://docs.aws.amazon.com/systems-manager/latest/userguide/maintenance-windows-schedule-options.html
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.tags.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Weekly scan of every group, Sunday 01:00 Paris time
  fleetpatch.ssm.maintenance_window:
    name: mw-scan-all
    description: Weekly patch scan of every patch group
    schedule: cron(0 1 ? * SUN *)
    schedule_timezone: Europe/Paris
    duration: 3
    cutoff: 1
    tags:
      Owner: platform

- name: Install on auto-patched groups the Saturday after Patch Tuesday, 03:00 UTC
  fleetpatch.ssm.maintenance_window:
    name: mw-install-auto
    schedule: cron(0 3 ? * TUE#2 *)
    schedule_offset: 4
    duration: 4
    cutoff: 1
    start_date: "2026-01-01T00:00:00Z"

- name: Pause a window without deleting it
  fleetpatch.ssm.maintenance_window:
    name: mw-install-auto
    schedule: cron(0 3 ? * TUE#2 *)
    schedule_offset: 4
    duration: 4
    cutoff: 1
    start_date: "2026-01-01T00:00:00Z"
    enabled: false

- name: Remove a window with its targets and tasks
  fleetpatch.ssm.maintenance_window:
    name: mw-legacy
    state: absent
"""

RETURN = r"""
maintenance_window:
  description:
    - The window after the task, in the module's option names; V(null) after O(state=absent).
    - In check mode, the window the task would produce (RV(maintenance_window.window_id) is V(null) for a window
      that would be created).
  returned: always
  type: dict
  contains:
    window_id:
      description: ID of the window.
      type: str
      sample: mw-0123456789abcdef0
    name:
      description: Name of the window.
      type: str
    description:
      description: Description, V(null) when unset.
      type: str
    schedule:
      description: The schedule, in AWS's spelling.
      type: str
      sample: cron(0 2 ? * SUN *)
    schedule_timezone:
      description: Time zone of the schedule, V(null) for UTC.
      type: str
    schedule_offset:
      description: Days after each cron time, V(null) when unset.
      type: int
    duration:
      description: Duration in hours.
      type: int
    cutoff:
      description: Hours before the end when no task starts.
      type: int
    start_date:
      description: Start of the active period (ISO 8601), V(null) when unset.
      type: str
    end_date:
      description: End of the active period (ISO 8601), V(null) when unset.
      type: str
    enabled:
      description: Whether the window runs on its schedule.
      type: bool
    allow_unassociated_targets:
      description: Whether tasks may target unregistered managed nodes.
      type: bool
    next_execution_time:
      description: When the window runs next, as AWS reports it; V(null) when it will not run.
      type: str
    tags:
      description: Tags of the window. Returned when O(tags) is set.
      type: dict
      returned: when O(tags) is set
    created_date:
      description: When the window was created (ISO 8601).
      type: str
    modified_date:
      description: When the window was last modified (ISO 8601).
      type: str
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.fleetpatch.ssm.plugins.module_utils import window as api
from ansible_collections.fleetpatch.ssm.plugins.module_utils.ssm import ManagedResource
from ansible_collections.fleetpatch.ssm.plugins.module_utils.ssm import ensure
from ansible_collections.fleetpatch.ssm.plugins.module_utils.tags import apply_tags
from ansible_collections.fleetpatch.ssm.plugins.module_utils.tags import check_tags
from ansible_collections.fleetpatch.ssm.plugins.module_utils.tags import desired_tags
from ansible_collections.fleetpatch.ssm.plugins.module_utils.tags import resource_tags
from ansible_collections.fleetpatch.ssm.plugins.module_utils.validation import check_pattern


class MaintenanceWindow(ManagedResource):
    noun = "maintenance window"
    result_key = "maintenance_window"

    def validate(self):
        check_pattern("name", self.params["name"], *api.NAME)
        if self.params["state"] == "present":
            self._desired = api.desired_window(self.params)
            check_tags(self.params["tags"])

    def read(self):
        identity = api.find_window(self.client, self.params["name"])
        state = identity and api.get_window(self.client, identity["window_id"])
        if state and self.params["tags"] is not None:  # tags cost a call: read them only when the task manages them
            state["tags"] = resource_tags(self.client, api.RESOURCE_TYPE, state["window_id"])
        return state

    def desired(self, current):
        desired = dict(self._desired)
        if self.params["tags"] is not None:
            desired["tags"] = desired_tags(current and current["tags"], self.params["tags"], self.params["purge_tags"])
        return desired

    def create(self, desired):
        api.create_window(self.client, desired, desired.get("tags"))

    def update(self, current, desired, changed):
        if set(changed) & set(api.WINDOW_FIELDS):
            api.update_window(self.client, current["window_id"], desired)
        if "tags" in changed:
            apply_tags(self.client, api.RESOURCE_TYPE, current["window_id"], current["tags"], desired["tags"])

    def delete(self, current):
        api.delete_window(self.client, current["window_id"])

    def predict(self, current, desired):
        predicted = super().predict(current, desired)
        if current is None:
            predicted.update(window_id=None, next_execution_time=None, created_date=None, modified_date=None)
        return predicted


def argument_spec():
    return dict(
        name=dict(type="str", required=True),
        description=dict(type="str"),
        schedule=dict(type="str"),
        schedule_timezone=dict(type="str"),
        schedule_offset=dict(type="int"),
        duration=dict(type="int"),
        cutoff=dict(type="int"),
        start_date=dict(type="str"),
        end_date=dict(type="str"),
        enabled=dict(type="bool", default=True),
        allow_unassociated_targets=dict(type="bool", default=False),
        tags=dict(type="dict", aliases=["resource_tags"]),
        purge_tags=dict(type="bool", default=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
    )


def main():
    module = AnsibleAWSModule(
        argument_spec=argument_spec(),
        required_if=[("state", "present", ["schedule", "duration", "cutoff"])],
        supports_check_mode=True,
    )
    ensure(MaintenanceWindow(module))


if __name__ == "__main__":
    main()
