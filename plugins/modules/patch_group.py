#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetpatch.ssm project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: patch_group
short_description: Register a patch group with a patch baseline in AWS Systems Manager
version_added: 0.1.0
description:
  - Makes the managed nodes of a patch group (nodes tagged C(PatchGroup) or C(Patch Group) with the group's name)
    use a patch baseline.
  - A patch group has at most one baseline per operating system, so the registration is identified by the group
    and the operating system of O(baseline). Moving a group to another baseline of the same operating system
    deregisters the old baseline and registers the new one, reported as one change.
  - Nodes of a group that has no baseline for their operating system use the default baseline of that operating
    system, without any error; deregistering a group says so in a warning.
author:
  - fleetpatch.ssm maintainers (@fleetpatch)
options:
  patch_group:
    description:
      - Name of the patch group, the value of the nodes' C(PatchGroup) (or C(Patch Group)) tag.
      - 1 to 256 letters, digits, spaces and V(_) V(.) V(:) V(/) V(=) V(+) V(-) V(@).
    type: str
    required: true
    aliases: [name]
  baseline:
    description:
      - The patch baseline, by name or by ID (V(pb-) followed by 17 hexadecimal digits, or the ARN of an AWS-owned
        baseline). Required with O(state=present).
      - With O(state=absent), the group is deregistered only if it is registered with this baseline.
    type: str
  operating_system:
    description:
      - With O(state=absent) and no O(baseline), deregister whatever baseline the group has for this operating
        system.
    type: str
    choices:
      - ALMA_LINUX
      - AMAZON_LINUX
      - AMAZON_LINUX_2
      - AMAZON_LINUX_2022
      - AMAZON_LINUX_2023
      - CENTOS
      - DEBIAN
      - MACOS
      - ORACLE_LINUX
      - RASPBIAN
      - REDHAT_ENTERPRISE_LINUX
      - ROCKY_LINUX
      - SUSE
      - UBUNTU
      - WINDOWS
  state:
    description:
      - V(present) registers the group with O(baseline), V(absent) deregisters it.
    type: str
    choices: [present, absent]
    default: present
notes:
  - A run that changes nothing makes two list calls (C(DescribePatchBaselines) to find O(baseline) by name, or
    C(GetPatchBaseline) for an ID, and C(DescribePatchGroups)).
  - AWS allows 25 patch groups per baseline.
seealso:
  - module: fleetpatch.ssm.patch_baseline
  - module: fleetpatch.ssm.patch_baseline_info
  - name: Patch groups (AWS Systems Manager User Guide)
    description: How nodes are placed in patch groups and which baseline they use.
    link: https://docs.aws.amazon.com/systems-manager/latest/userguide/patch-manager-patch-groups.html
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Auto-patched application servers use the Amazon Linux 2023 and the Ubuntu baselines
  fleetpatch.ssm.patch_group:
    patch_group: prod-auto
    baseline: "{{ item }}"
  loop:
    - al2023-prod-auto
    - ubuntu-prod-auto

- name: Stop using a baseline for a group
  fleetpatch.ssm.patch_group:
    patch_group: nonprod
    baseline: ubuntu-nonprod
    state: absent

- name: Remove whatever Windows baseline the group has
  fleetpatch.ssm.patch_group:
    patch_group: legacy
    operating_system: WINDOWS
    state: absent
"""

RETURN = r"""
patch_group:
  description: The registration after the task; V(null) when the group has no baseline for the operating system.
  returned: always
  type: dict
  contains:
    patch_group:
      description: Name of the patch group.
      type: str
      sample: prod-auto
    operating_system:
      description: Operating system of the registration.
      type: str
      sample: AMAZON_LINUX_2023
    baseline_id:
      description: ID of the registered baseline.
      type: str
      sample: pb-0123456789abcdef0
    baseline_name:
      description: Name of the registered baseline.
      type: str
      sample: al2023-prod-auto
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.fleetpatch.ssm.plugins.module_utils import baseline as api
from ansible_collections.fleetpatch.ssm.plugins.module_utils.patch_rules import OPERATING_SYSTEMS
from ansible_collections.fleetpatch.ssm.plugins.module_utils.ssm import ManagedResource
from ansible_collections.fleetpatch.ssm.plugins.module_utils.ssm import ensure
from ansible_collections.fleetpatch.ssm.plugins.module_utils.validation import check_length
from ansible_collections.fleetpatch.ssm.plugins.module_utils.validation import check_tag_characters

PATCH_GROUP_LENGTH = (1, 256)  # [model] PatchGroup


class PatchGroupRegistration(ManagedResource):
    """The baseline registered for (patch group, operating system)."""

    result_key = "patch_group"

    def validate(self):
        check_length("patch_group", self.params["patch_group"], *PATCH_GROUP_LENGTH)
        check_tag_characters("patch_group", self.params["patch_group"])

    def read(self):
        self.baseline = None
        operating_system = self.params["operating_system"]
        if self.params["baseline"]:
            self.baseline = api.resolve_baseline(self.client, self.params["baseline"])
            operating_system = self.baseline["operating_system"]
        groups = api.list_patch_groups(self.client, name_prefix=self.params["patch_group"],
                                       operating_system=operating_system)
        current = next((g for g in groups if g["patch_group"] == self.params["patch_group"]), None)
        if self._leave_other_baseline(current):
            return None
        return current

    def _leave_other_baseline(self, current):
        """state=absent with a baseline removes that baseline's registration only, not another one's."""
        return bool(current and self.params["state"] == "absent" and self.baseline
                    and current["baseline_id"] != self.baseline["baseline_id"])

    def desired(self, current):
        return {
            "patch_group": self.params["patch_group"],
            "operating_system": self.baseline["operating_system"],
            "baseline_id": self.baseline["baseline_id"],
            "baseline_name": self.baseline["name"],
        }

    def create(self, desired):
        api.register_patch_group(self.client, desired["baseline_id"], desired["patch_group"])

    def update(self, current, desired, changed):
        # One baseline per group and OS (RegisterPatchBaselineForPatchGroup answers AlreadyExistsException):
        # moving the group is a deregistration followed by a registration.
        api.deregister_patch_group(self.client, current["baseline_id"], current["patch_group"])
        self.create(desired)

    def delete(self, current):
        api.deregister_patch_group(self.client, current["baseline_id"], current["patch_group"])
        self.module.warn(
            f"Nodes of patch group {current['patch_group']!r} running {current['operating_system']} now use the "
            "default patch baseline of that operating system."
        )


def argument_spec():
    return dict(
        patch_group=dict(type="str", required=True, aliases=["name"]),
        baseline=dict(type="str"),
        operating_system=dict(type="str", choices=list(OPERATING_SYSTEMS)),
        state=dict(type="str", choices=["present", "absent"], default="present"),
    )


def main():
    module = AnsibleAWSModule(
        argument_spec=argument_spec(),
        required_if=[("state", "present", ["baseline"])],
        required_one_of=[("baseline", "operating_system")],
        mutually_exclusive=[("baseline", "operating_system")],
        supports_check_mode=True,
    )
    ensure(PatchGroupRegistration(module))


if __name__ == "__main__":
    main()
