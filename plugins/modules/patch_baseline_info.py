#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetpatch.ssm project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: patch_baseline_info
short_description: List AWS Systems Manager patch baselines, their rules, patch groups and defaults
version_added: 0.1.0
description:
  - Lists the patch baselines of the account and region, custom and AWS-owned, with their rules in the option
    names of M(fleetpatch.ssm.patch_baseline), the patch groups registered with them, and which baseline is the
    default of each operating system.
author:
  - fleetpatch.ssm maintainers (@fleetpatch)
options:
  name:
    description:
      - Only the baselines with exactly this name.
    type: str
  operating_system:
    description:
      - Only the baselines (and patch groups) of this operating system.
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
  owner:
    description:
      - V(Self) lists the account's own baselines, V(AWS) the AWS-owned (predefined) ones, V(All) both.
    type: str
    choices: [Self, AWS, All]
    default: All
  include_rules:
    description:
      - Read each baseline (one C(GetPatchBaseline) call per baseline) to return its filters, rules, patch lists,
        sources and patch groups. With V(false) only the identities are returned, from the list calls alone.
    type: bool
    default: true
  include_tags:
    description:
      - Read the tags of the account's own baselines (one C(ListTagsForResource) call per baseline), for example
        to find the baselines a policy owns. AWS-owned baselines have none.
    type: bool
    default: false
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Every baseline of the account and region, with rules
  fleetpatch.ssm.patch_baseline_info:
  register: baselines

- name: Which baseline is the default for Ubuntu
  fleetpatch.ssm.patch_baseline_info:
    operating_system: UBUNTU
    include_rules: false
  register: ubuntu
- ansible.builtin.debug:
    msg: "{{ ubuntu.default_baselines.UBUNTU.name }}"

- name: One custom baseline
  fleetpatch.ssm.patch_baseline_info:
    name: al2023-prod-auto
    owner: Self
"""

RETURN = r"""
patch_baselines:
  description:
    - The baselines, sorted by owner and name. With O(include_rules=true) each has the return values of
      M(fleetpatch.ssm.patch_baseline) (without C(tags)); otherwise C(baseline_id), C(name), C(operating_system),
      C(description) and C(default).
  returned: always
  type: list
  elements: dict
  contains:
    baseline_id:
      description: ID of the baseline (the full ARN for AWS-owned baselines).
      type: str
    name:
      description: Name of the baseline.
      type: str
    owner:
      description: V(Self) or V(AWS).
      type: str
    operating_system:
      description: Operating system of the baseline.
      type: str
    default:
      description: Whether the baseline is the default of its operating system.
      type: bool
    patch_groups:
      description: Patch groups registered with the baseline (with O(include_rules=true)).
      type: list
      elements: str
    tags:
      description: Tags of the baseline (the account's own baselines, with O(include_tags=true)).
      type: dict
      returned: with O(include_tags=true), for the account's own baselines (RV(patch_baselines[].owner=Self))
default_baselines:
  description: The default baseline of each operating system among the baselines listed.
  returned: always
  type: dict
  sample: {"UBUNTU": {"baseline_id": "pb-0123456789abcdef0", "name": "ubuntu-prod-auto"}}
patch_groups:
  description: The patch group registrations (of O(operating_system) when set).
  returned: always
  type: list
  elements: dict
  contains:
    patch_group:
      description: Name of the patch group.
      type: str
    operating_system:
      description: Operating system of the registration.
      type: str
    baseline_id:
      description: ID of the registered baseline.
      type: str
    baseline_name:
      description: Name of the registered baseline.
      type: str
"""

from ansible_collections.amazon.aws.plugins.module_utils.exceptions import AnsibleAWSError
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.fleetpatch.ssm.plugins.module_utils import baseline as api
from ansible_collections.fleetpatch.ssm.plugins.module_utils.patch_rules import OPERATING_SYSTEMS
from ansible_collections.fleetpatch.ssm.plugins.module_utils.ssm import ssm_client
from ansible_collections.fleetpatch.ssm.plugins.module_utils.tags import resource_tags

OWNERS = (api.OWNER_SELF, api.OWNER_AWS)


def list_identities(client, params):
    """Identities of the requested owners, each tagged with its owner (one DescribePatchBaselines per owner)."""
    identities = []
    for owner in OWNERS:
        if params["owner"] not in ("All", owner):
            continue
        for identity in api.list_baselines(client, owner=owner, name_prefix=params["name"],
                                           operating_system=params["operating_system"]):
            if params["name"] is None or identity["name"] == params["name"]:
                identities.append(dict(identity, owner=owner))
    return identities


def describe(client, identity):
    """The baseline in patch_baseline's terms; None if it vanished since it was listed."""
    response = api.get_baseline(client, identity["baseline_id"])
    return response and dict(api.baseline_state(response, identity), owner=identity["owner"])


def with_tags(client, baseline):
    """The baseline with its tags; AWS-owned baselines are not the account's to tag."""
    if baseline["owner"] != api.OWNER_SELF:
        return baseline
    return dict(baseline, tags=resource_tags(client, api.RESOURCE_TYPE, baseline["baseline_id"]))


def gather(client, params):
    identities = list_identities(client, params)
    if params["include_rules"]:
        baselines = [b for b in (describe(client, identity) for identity in identities) if b]
    else:
        baselines = identities
    if params["include_tags"]:
        baselines = [with_tags(client, baseline) for baseline in baselines]
    return {
        "patch_baselines": sorted(baselines, key=lambda b: (b["owner"], b["name"] or "", b["baseline_id"])),
        "default_baselines": {
            b["operating_system"]: {"baseline_id": b["baseline_id"], "name": b["name"]} for b in baselines
            if b["default"]
        },
        "patch_groups": api.list_patch_groups(client, operating_system=params["operating_system"]),
    }


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            name=dict(type="str"),
            operating_system=dict(type="str", choices=list(OPERATING_SYSTEMS)),
            owner=dict(type="str", choices=["Self", "AWS", "All"], default="All"),
            include_rules=dict(type="bool", default=True),
            include_tags=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    try:
        result = gather(ssm_client(module), module.params)
    except AnsibleAWSError as error:
        module.fail_json_aws_error(error)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
