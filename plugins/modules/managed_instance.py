#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetpatch.ssm project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: managed_instance
short_description: Tag or deregister a hybrid managed node (mi-) of AWS Systems Manager
version_added: 0.1.0
description:
  - Manages a hybrid managed node, the C(mi-) node that an Azure VM or on-premises server becomes when its SSM agent
    registers with a hybrid activation (M(fleetpatch.ssm.hybrid_activation)).
  - O(state=present) sets the node's tags (C(AddTagsToResource) with resource type C(ManagedInstance)), e.g. the
    C(PatchGroup) that Patch Manager targets and the Azure VM's id that the C(fleetpatch.ssm.fleet) inventory uses
    to pair the node with its VM. Without O(tags) it changes nothing and returns the node.
  - O(state=absent) deregisters the node (C(DeregisterManagedInstance)); a node that is already gone is no change.
    The machine's agent keeps its registration files and stops working with Systems Manager; it needs a new
    activation to register again.
  - Only hybrid nodes. EC2 instances are tagged with amazon.aws's modules and never deregistered; an C(i-) ID is
    refused with an error.
  - Stale nodes (machines deleted without deregistering, still counting against the activation tier) are found with
    M(fleetpatch.ssm.managed_instance_info) (O(fleetpatch.ssm.managed_instance_info#module:connection_lost_days)) and
    deregistered with this module; see the examples.
author:
  - fleetpatch.ssm maintainers (@fleetpatch)
options:
  instance_id:
    description:
      - ID of the hybrid node, V(mi-) followed by 17 hexadecimal digits.
    type: str
    required: true
  tags:
    description:
      - Tags of the node. With O(purge_tags=false) (the default) they are added to the node's other tags; with
        O(purge_tags=true) they are the node's tags. C(aws:) keys are AWS's and never changed.
      - Unset leaves the node's tags alone.
    type: dict
    aliases: [resource_tags]
  purge_tags:
    description:
      - Remove the tags of the node that O(tags) does not list. Off by default, because nodes also carry tags
        copied from their activation and tags other automation sets.
    type: bool
    default: false
  state:
    description:
      - V(present) keeps the node registered with O(tags); V(absent) deregisters it.
    type: str
    choices: [present, absent]
    default: present
notes:
  - Check mode and C(--diff) are supported (the diff shows the tags).
  - A node must be registered before it can be tagged; in check mode of a playbook that registers it, the tagging
    task of a node not registered yet fails; skip it there (C(when=not ansible_check_mode)).
  - A run that changes nothing makes two calls (C(DescribeInstanceInformation), C(ListTagsForResource)).
seealso:
  - module: fleetpatch.ssm.managed_instance_info
  - module: fleetpatch.ssm.hybrid_activation
  - name: Deregistering managed nodes in a hybrid environment (AWS Systems Manager User Guide)
    description: What deregistration does to a node and its agent.
    link: https://docs.aws.amazon.com/systems-manager/latest/userguide/fleet-manager-deregister-hybrid-nodes.html
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Give a registered Azure VM its patch group and the ids the fleet inventory pairs it by
  fleetpatch.ssm.managed_instance:
    instance_id: "{{ registration.instance_id }}"
    tags:
      PatchGroup: "{{ tags.PatchGroup }}"
      Owner: "{{ tags.Owner | default('unknown') }}"
      AzureVmId: "{{ vm_id }}"
      AzureResourceId: "{{ resource_id }}"

- name: Find the hybrid nodes whose agent has not been heard from for 30 days
  fleetpatch.ssm.managed_instance_info:
    connection_lost_days: 30
  register: stale

- name: Deregister them
  fleetpatch.ssm.managed_instance:
    instance_id: "{{ item.instance_id }}"
    state: absent
  loop: "{{ stale.managed_instances }}"
  loop_control:
    label: "{{ item.instance_id }} {{ item.computer_name }} (last ping {{ item.last_ping_date_time }})"
"""

RETURN = r"""
managed_instance:
  description: The node after the task; V(null) when it is not registered (after O(state=absent)).
  returned: always
  type: dict
  contains:
    instance_id:
      description: ID of the node.
      type: str
      sample: mi-0123456789abcdef0
    name:
      description: Name given at registration (the activation's default instance name), V(null) when none.
      type: str
    computer_name:
      description: Host name the agent reports.
      type: str
      sample: vm-web-01
    ip_address:
      description: IP address the agent reports.
      type: str
    ping_status:
      description: V(Online) or V(ConnectionLost).
      type: str
    last_ping_date_time:
      description: When the agent last reached Systems Manager (ISO 8601).
      type: str
    last_ping_age_days:
      description: Days since the last ping, by the controller's clock.
      type: float
    agent_version:
      description: Version of the SSM agent.
      type: str
    is_latest_version:
      description: Whether the agent is the latest version.
      type: bool
    platform_type:
      description: V(Linux), V(Windows) or V(MacOS).
      type: str
    platform_name:
      description: Operating system name.
      type: str
      sample: Ubuntu
    platform_version:
      description: Operating system version.
      type: str
      sample: "22.04"
    activation_id:
      description: The activation the node registered with.
      type: str
    iam_role:
      description: IAM role of the node.
      type: str
    registration_date:
      description: When the node registered (ISO 8601).
      type: str
    resource_type:
      description: Always V(ManagedInstance).
      type: str
    source_id:
      description: The machine as its source names it (for an Azure VM, an id of the VM), or the node's ID.
      type: str
    source_type:
      description: V(Microsoft.Compute/virtualMachines) for Azure VMs, else V(AWS::SSM::ManagedInstance).
      type: str
    tags:
      description: Tags of the node.
      type: dict
      sample: {"PatchGroup": "prod-auto", "AzureVmId": "6b1d2c54-93a4-4c4e-9a0f-1f7c2b3d4e5f"}
"""

import datetime

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.fleetpatch.ssm.plugins.module_utils import managed_instance as api
from ansible_collections.fleetpatch.ssm.plugins.module_utils.ssm import ManagedResource
from ansible_collections.fleetpatch.ssm.plugins.module_utils.ssm import ensure
from ansible_collections.fleetpatch.ssm.plugins.module_utils.tags import apply_tags
from ansible_collections.fleetpatch.ssm.plugins.module_utils.tags import check_tags
from ansible_collections.fleetpatch.ssm.plugins.module_utils.tags import desired_tags
from ansible_collections.fleetpatch.ssm.plugins.module_utils.tags import resource_tags
from ansible_collections.fleetpatch.ssm.plugins.module_utils.validation import ParameterError


class ManagedInstance(ManagedResource):
    """A registered hybrid node: its tags are managed, it is never created here (its agent registers it)."""

    result_key = "managed_instance"

    def validate(self):
        api.check_instance_id(self.params["instance_id"], self.params["state"])
        check_tags(self.params["tags"])

    def read(self):
        node = api.get_node(self.client, self.params["instance_id"], datetime.datetime.now(datetime.timezone.utc))
        if node is None:
            return None
        return dict(node, tags=resource_tags(self.client, api.RESOURCE_TYPE, node["instance_id"]))

    def desired(self, current):
        if current is None:
            raise ParameterError(
                f"instance_id: {self.params['instance_id']!r} is not a hybrid node registered in this account and "
                "region; allowed: the ID of a registered node (machines register with their SSM agent and an "
                "activation: fleetpatch.ssm.hybrid_activation, the ssm_agent role)"
            )
        if self.params["tags"] is None:
            return {}
        return {"tags": desired_tags(current["tags"], self.params["tags"], self.params["purge_tags"])}

    def update(self, current, desired, changed):
        apply_tags(self.client, api.RESOURCE_TYPE, current["instance_id"], current["tags"], desired["tags"])

    def delete(self, current):
        api.deregister(self.client, current["instance_id"])


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            instance_id=dict(type="str", required=True),
            tags=dict(type="dict", aliases=["resource_tags"]),
            purge_tags=dict(type="bool", default=False),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        supports_check_mode=True,
    )
    ensure(ManagedInstance(module))


if __name__ == "__main__":
    main()
