#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetpatch.ssm project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: hybrid_activation
short_description: Create and delete AWS Systems Manager hybrid activations, by name
version_added: 0.1.0
description:
  - Manages the hybrid activation that machines outside AWS (Azure VMs, on-premises servers) use to register as
    managed nodes (C(mi-) IDs) with the SSM agent (C(amazon-ssm-agent -register -code CODE -id ID -region REGION)).
  - AWS activations have no name. This module keeps O(name) in the activation tag C(fleetpatch:activation) and finds
    the activation by it, so that a rerun of the task reuses the activation instead of creating another one. Like
    every activation tag, AWS copies it to the nodes that register with the activation.
  - B(The activation code is a secret that AWS returns only once), when the activation is created. The module
    returns it in RV(activation_code) only from the task that created the activation; a task that finds the
    activation already there returns no code, because AWS cannot give it again. B(A task with O(state=present) must
    set C(no_log=true)), or the module refuses to run; the code would otherwise be printed by Ansible and kept in
    AWX job output. The code is never in the module's warnings, error messages or diff.
  - An activation cannot be changed once created (AWS has no call for it; its tags cannot be changed either). When
    the existing activation differs from the task, the module fails naming the fields, or with
    O(replace_on_change=true) deletes it and creates a new one (new ID and code).
  - An activation that has expired or used all its registrations is reported (RV(activation.expired),
    RV(activation.registrations_remaining), RV(activation.usable) and a warning) and left alone, or replaced with
    O(replace_unusable=true).
  - Deleting an activation does not deregister the nodes registered with it (see M(fleetpatch.ssm.managed_instance)).
author:
  - fleetpatch.ssm maintainers (@fleetpatch)
options:
  name:
    description:
      - Name of the activation, the module's key for it (value of the activation tag C(fleetpatch:activation)).
      - 1 to 256 letters, digits, spaces and V(_) V(.) V(:) V(/) V(=) V(+) V(-) V(@).
    type: str
    required: true
  description:
    description:
      - Free text describing the activation (at most 256 characters). AWS asks not to put personal data in it.
    type: str
  iam_role:
    description:
      - The IAM service role the registered nodes use. Required with O(state=present).
      - Its name, with its path if it has one (V(service-role/SSMHybridNodes)); an ARN is reduced to that. The role
        must trust C(ssm.amazonaws.com) and have the C(AmazonSSMManagedInstanceCore) policy.
    type: str
  registration_limit:
    description:
      - How many machines can register with the activation, 1 to 1000.
      - Default O(planned_nodes) when that is set, else 1 (AWS's default).
    type: int
  expiration:
    description:
      - When the activation stops accepting registrations, as an ISO 8601 date or date and time (UTC unless it has
        an offset), e.g. V(2026-12-31T18:00:00Z). At most 30 days ahead (AWS's limit).
      - Compared with the existing activation's expiry like any other setting.
      - Mutually exclusive with O(expires_in_hours). Without either, the activation expires after 24 hours (AWS's
        default).
    type: str
  expires_in_hours:
    description:
      - The activation expires this many hours after it is created, 1 to 720 (30 days).
      - Used only when an activation is created; an existing activation is not compared with it (a rerun would
        always ask for a later expiry), only checked for being unexpired.
    type: int
  default_instance_name:
    description:
      - Name given to the nodes registered with the activation (their C(Name) in the Systems Manager console), at
        most 256 letters, digits, spaces and V(_) V(.) V(:) V(/) V(=) V(+) V(-) V(@).
    type: str
  tags:
    description:
      - Tags of the activation; AWS copies them to every node registered with it (a convenient way to give nodes
        their C(PatchGroup) when a wave is one patch group).
      - The activation's tags are compared as a whole (without C(fleetpatch:activation)); they cannot be changed, so
        a difference is a different setting (see O(replace_on_change)). Not compared when unset.
    type: dict
    aliases: [resource_tags]
  planned_nodes:
    description:
      - How many machines the caller is about to register. The module reads the account-region's instance tier
        (service setting C(/ssm/managed-instance/activation-tier)) and counts its hybrid nodes; the standard tier
        takes at most 1,000 hybrid nodes per account and Region. When the planned nodes do not fit, the module warns
        (or fails, O(tier_check=fail)) before anything is written, and returns RV(tier).
      - Sizes the activation when O(registration_limit) is unset; must not exceed O(registration_limit).
    type: int
  tier_check:
    description:
      - What to do when O(planned_nodes) do not fit the activation tier.
    type: str
    choices: [warn, fail]
    default: warn
  replace_unusable:
    description:
      - Replace an activation of this name that has expired or used all its registrations with a new one.
      - When false, such an activation is returned as it is, with a warning; the caller decides.
    type: bool
    default: false
  replace_on_change:
    description:
      - When the existing activation's settings differ from the task, delete it and create a new one (AWS cannot
        change an activation). When false, the task fails naming the fields that differ.
    type: bool
    default: false
  state:
    description:
      - V(present) makes sure a usable activation of this name exists; V(absent) deletes every activation of this
        name (nodes registered with them stay registered).
    type: str
    choices: [present, absent]
    default: present
notes:
  - Check mode and C(--diff) are supported; check mode never returns a code.
  - A run that changes nothing costs the C(DescribeActivations) pages of the account-region (AWS filters activations
    only by ID, IAM role and default instance name), plus C(GetServiceSetting) and the C(DescribeInstanceInformation)
    pages of its hybrid nodes when O(planned_nodes) is set.
  - If a task fails after creating an activation, the code is still in its (no_log) result; a lost code cannot be
    read again; delete the activation (O(state=absent)) or replace it (O(replace_on_change)).
seealso:
  - module: fleetpatch.ssm.managed_instance
  - module: fleetpatch.ssm.managed_instance_info
  - name: Create a hybrid activation (AWS Systems Manager User Guide)
    description: Activations, their code and ID, limits and expiry.
    link: https://docs.aws.amazon.com/systems-manager/latest/userguide/hybrid-activation-managed-nodes.html
  - name: Configuring instance tiers (AWS Systems Manager User Guide)
    description: The standard and advanced instance tiers and their node limits.
    link: https://docs.aws.amazon.com/systems-manager/latest/userguide/fleet-manager-configure-instance-tiers.html
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: An activation for this week's wave of Azure VMs (the code is a secret)
  fleetpatch.ssm.hybrid_activation:
    name: azure-wave-westeurope
    description: Azure VMs of subscription prod, onboarding wave
    iam_role: service-role/SSMHybridNodes
    planned_nodes: "{{ groups['cloud_azure'] | length }}"
    expires_in_hours: 4
    tags:
      Owner: platform-team
  register: activation
  no_log: true

- name: Register the VMs (the code only exists in the task that created the activation)
  ansible.builtin.include_role:
    name: fleetpatch.ssm.ssm_agent
  vars:
    ssm_agent_activation_id: "{{ activation.activation.activation_id }}"
    ssm_agent_activation_code: "{{ activation.activation_code }}"
  when: activation.activation_code is defined

- name: A long-lived activation that is replaced when it runs out
  fleetpatch.ssm.hybrid_activation:
    name: on-premises
    iam_role: SSMHybridNodes
    registration_limit: 50
    expires_in_hours: 720
    replace_unusable: true
  register: on_premises
  no_log: true

- name: Delete the wave's activation once the nodes are registered
  fleetpatch.ssm.hybrid_activation:
    name: azure-wave-westeurope
    state: absent
"""

RETURN = r"""
activation:
  description: The activation after the task; V(null) when there is none.
  returned: always
  type: dict
  contains:
    activation_id:
      description: ID of the activation (V(null) in check mode for an activation not created yet).
      type: str
      sample: 3b0ae0a1-52c5-4e0b-8c7e-1d6f0e2f9a41
    name:
      description: Name of the activation (its C(fleetpatch:activation) tag).
      type: str
      sample: azure-wave-westeurope
    description:
      description: Description, V(null) when unset.
      type: str
    iam_role:
      description: IAM role of the registered nodes.
      type: str
      sample: service-role/SSMHybridNodes
    registration_limit:
      description: How many machines can register with the activation.
      type: int
      sample: 20
    registrations_count:
      description: How many machines have registered with it.
      type: int
      sample: 3
    registrations_remaining:
      description: How many more machines can register with it.
      type: int
      sample: 17
    expiration_date:
      description: When the activation expires (ISO 8601, UTC).
      type: str
      sample: "2026-01-05T16:00:00+00:00"
    expired:
      description: Whether the activation has expired (AWS's C(Expired)).
      type: bool
    usable:
      description: Whether machines can still register with it (not expired, registrations remaining).
      type: bool
    default_instance_name:
      description: Name given to registered nodes, V(null) when unset.
      type: str
    tags:
      description: Tags of the activation, without C(fleetpatch:activation).
      type: dict
      sample: {"Owner": "platform-team"}
    created_date:
      description: When the activation was created (ISO 8601).
      type: str
activation_code:
  description:
    - The activation code, a secret. Only from the task that created the activation (never in check mode); AWS
      cannot return it again. Run the task with C(no_log=true).
  returned: when the task created an activation
  type: str
tier:
  description: The account-region's activation tier and how many hybrid nodes it can still take.
  returned: when O(planned_nodes) is set and O(state=present)
  type: dict
  contains:
    tier:
      description: V(standard) or V(advanced).
      type: str
    hybrid_nodes:
      description: Hybrid nodes registered in the account-region.
      type: int
    limit:
      description: Hybrid nodes the tier allows per account and Region; V(null) for the advanced tier (no such limit).
      type: int
    available:
      description: How many more hybrid nodes the tier takes; V(null) for the advanced tier.
      type: int
"""

import datetime

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.fleetpatch.ssm.plugins.module_utils import activation as api
from ansible_collections.fleetpatch.ssm.plugins.module_utils.ssm import ManagedResource
from ansible_collections.fleetpatch.ssm.plugins.module_utils.ssm import changed_fields
from ansible_collections.fleetpatch.ssm.plugins.module_utils.ssm import ensure
from ansible_collections.fleetpatch.ssm.plugins.module_utils.tags import check_tags
from ansible_collections.fleetpatch.ssm.plugins.module_utils.validation import ParameterError
from ansible_collections.fleetpatch.ssm.plugins.module_utils.validation import check_length
from ansible_collections.fleetpatch.ssm.plugins.module_utils.validation import check_tag_characters


class HybridActivation(ManagedResource):
    """The newest activation tagged with the task's name; its code is kept in `outputs`, not in its state."""

    result_key = "activation"

    def __init__(self, module, client=None) -> None:
        super().__init__(module, client)
        self.now = datetime.datetime.now(datetime.timezone.utc)
        self._named = []  # every activation of the name, newest first
        self._created_id = None

    @property
    def name(self) -> str:
        return self.params["name"]

    def validate(self):
        check_length("name", self.name, *api.NAME_LENGTH)
        check_tag_characters("name", self.name)
        if self.params["state"] == "absent":
            return
        if not self.module.no_log:
            raise ParameterError(
                "no_log: this task can return an activation code, a secret that Ansible would print; allowed: "
                "state=present only on a task with no_log: true"
            )
        api.check_activation_options(self.params)
        check_tags(self.params["tags"])
        limit = api.registration_limit(self.params)
        self._desired = api.desired_activation(self.params, limit, self.now)

    def read(self):
        if self._created_id:  # just created: read that one, whatever else carries the name
            records = api.list_activations(self.client, self._created_id)
            return api.activation_state(records[0]) if records else None
        self._named = api.find_activations(self.client, self.name)
        return self._named[0] if self._named else None

    def desired(self, current):
        desired = dict(self._desired)
        if self.params["planned_nodes"]:
            self._check_capacity(self.params["planned_nodes"])
        if current is None:
            return desired
        self._report_duplicates()
        self._check_settings(current, desired)
        if not current["usable"]:
            if self.params["replace_unusable"]:
                desired["usable"] = True  # a difference: ensure() replaces the activation
            else:
                self.module.warn(
                    f"The activation {self.name!r} ({current['activation_id']}) {api.unusable_reason(current)}; no "
                    "machine can register with it. Set replace_unusable=true to replace it."
                )
        return desired

    def _check_capacity(self, planned_nodes):
        capacity = api.tier_capacity(self.client)
        self.outputs["tier"] = capacity
        problem = api.capacity_problem(capacity, planned_nodes)
        if problem and self.params["tier_check"] == "fail":
            raise ParameterError(problem)
        if problem:
            self.module.warn(problem)

    def _report_duplicates(self):
        if len(self._named) > 1:
            others = ", ".join(state["activation_id"] for state in self._named[1:])
            self.module.warn(
                f"{len(self._named)} activations are named {self.name!r}; this task uses the newest, "
                f"{self._named[0]['activation_id']} (others: {others}); state=absent deletes them all."
            )

    def _check_settings(self, current, desired):
        """AWS cannot change an activation: a different setting is a new activation, or a refusal."""
        differing = changed_fields(current, desired)
        if differing and not self.params["replace_on_change"]:
            fields = ", ".join(f"{field} ({current.get(field)!r} -> {desired[field]!r})" for field in differing)
            raise ParameterError(
                f"{differing[0]}: the activation {self.name!r} ({current['activation_id']}) differs from the task in "
                f"{fields}, and AWS cannot change an activation; allowed: the existing settings, or "
                "replace_on_change=true to delete it and create a new one (new ID and code)"
            )

    def create(self, desired):
        request = api.create_request(self.name, desired, self.now, self.params["expires_in_hours"])
        response = api.create_activation(self.client, request)
        self._created_id = response["ActivationId"]
        self.outputs["activation_code"] = response["ActivationCode"]

    def update(self, current, desired, changed):
        self.delete(current)
        self.create(desired)

    def delete(self, current):
        for state in self._named:
            api.delete_activation(self.client, state["activation_id"])

    def predict(self, current, desired):
        # Any change is a new activation (AWS cannot update one).
        return api.predicted_activation({k: v for k, v in desired.items() if k != "usable"}, self.name)


def argument_spec():
    return dict(
        name=dict(type="str", required=True),
        description=dict(type="str"),
        iam_role=dict(type="str"),
        registration_limit=dict(type="int"),
        expiration=dict(type="str"),
        expires_in_hours=dict(type="int"),
        default_instance_name=dict(type="str"),
        tags=dict(type="dict", aliases=["resource_tags"]),
        planned_nodes=dict(type="int"),
        tier_check=dict(type="str", choices=["warn", "fail"], default="warn"),
        replace_unusable=dict(type="bool", default=False),
        replace_on_change=dict(type="bool", default=False),
        state=dict(type="str", choices=["present", "absent"], default="present"),
    )


def main():
    module = AnsibleAWSModule(
        argument_spec=argument_spec(),
        required_if=[("state", "present", ["iam_role"])],
        mutually_exclusive=[("expiration", "expires_in_hours")],
        supports_check_mode=True,
    )
    resource = HybridActivation(module)
    ensure(resource)


if __name__ == "__main__":
    main()
