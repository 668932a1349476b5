#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetpatch.ssm project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: managed_instance_info
short_description: List the hybrid managed nodes (mi-) of AWS Systems Manager, with their tags and last ping
version_added: 0.1.0
description:
  - Lists the hybrid managed nodes of an account and Region (C(DescribeInstanceInformation), resource type
    C(ManagedInstance)) with their ID, computer name, ping status and last ping, platform, activation, the source machine
    (C(SourceId)/C(SourceType); Azure VMs have source type C(Microsoft.Compute/virtualMachines)) and tags.
  - Answers the onboarding questions (is this VM registered already, under which ID, is it online) and finds stale
    nodes to deregister with M(fleetpatch.ssm.managed_instance) (O(connection_lost_days)).
  - EC2 instances are not listed; the C(fleetpatch.ssm.fleet) inventory plugin shows the whole fleet.
author:
  - fleetpatch.ssm maintainers (@fleetpatch)
options:
  instance_ids:
    description: Only these nodes (C(mi-) IDs).
    type: list
    elements: str
  source_ids:
    description: Only the nodes whose C(SourceId) is one of these (e.g. Azure VM ids).
    type: list
    elements: str
  ping_status:
    description: Only nodes with one of these ping statuses.
    type: list
    elements: str
    choices: [Online, ConnectionLost]
  tags:
    description:
      - Only nodes that have all these tags with these values (C(tag:KEY) filters).
    type: dict
  connection_lost_days:
    description:
      - Only stale nodes, whose agent is C(ConnectionLost) and last reached Systems Manager this many days ago or
        more (by the controller's clock).
      - A node whose machine was deleted without deregistering stays C(ConnectionLost) for ever and keeps counting
        against the activation tier.
    type: int
  include_tags:
    description:
      - Read each node's tags (one C(ListTagsForResource) call per node).
    type: bool
    default: true
notes:
  - Filters are combined (a node must match all of them).
  - Costs one C(DescribeInstanceInformation) call per 50 nodes, plus one call per node for its tags.
seealso:
  - module: fleetpatch.ssm.managed_instance
  - module: fleetpatch.ssm.hybrid_activation
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Which Azure VMs are registered already
  fleetpatch.ssm.managed_instance_info:
    source_ids: "{{ groups['cloud_azure'] | map('extract', hostvars, 'azure_vm_id') | list }}"
    include_tags: false
  register: registered

- name: Is this machine's registration alive in the target account
  fleetpatch.ssm.managed_instance_info:
    instance_ids: ["{{ local_registration.ManagedInstanceID }}"]
  register: node

- name: Stale nodes of the nonprod patch group
  fleetpatch.ssm.managed_instance_info:
    tags:
      PatchGroup: nonprod
    connection_lost_days: 14
  register: stale
"""

RETURN = r"""
managed_instances:
  description:
    - The hybrid nodes, sorted by ID; each has the fields of M(fleetpatch.ssm.managed_instance)'s
      RV(fleetpatch.ssm.managed_instance#module:managed_instance) (C(tags) only with O(include_tags)).
  returned: always
  type: list
  elements: dict
  sample:
    - instance_id: mi-0123456789abcdef0
      computer_name: vm-web-01
      ping_status: ConnectionLost
      last_ping_date_time: "2026-01-02T08:00:00+00:00"
      last_ping_age_days: 31.2
      source_id: 6b1d2c54-93a4-4c4e-9a0f-1f7c2b3d4e5f
      source_type: Microsoft.Compute/virtualMachines
      tags: {"PatchGroup": "prod-auto"}
"""

import datetime

from ansible_collections.amazon.aws.plugins.module_utils.exceptions import AnsibleAWSError
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.fleetpatch.ssm.plugins.module_utils import managed_instance as api
from ansible_collections.fleetpatch.ssm.plugins.module_utils.ssm import ssm_client
from ansible_collections.fleetpatch.ssm.plugins.module_utils.tags import resource_tags
from ansible_collections.fleetpatch.ssm.plugins.module_utils.validation import ParameterError
from ansible_collections.fleetpatch.ssm.plugins.module_utils.validation import check_range


def validate(params):
    for instance_id in params["instance_ids"] or ():
        api.check_instance_id(instance_id)
    check_range("connection_lost_days", params["connection_lost_days"], 0, 36500)


def gather(client, params, now):
    ping_status = params["ping_status"]
    if params["connection_lost_days"] is not None:
        ping_status = ["ConnectionLost"]
    selection = dict(instance_ids=params["instance_ids"], source_ids=params["source_ids"], ping_status=ping_status)
    found = api.describe_nodes(client, api.node_filters(tags=params["tags"], **selection))
    nodes = [node for node in (api.node_state(info, now) for info in found) if api.matches(node, **selection)]
    if params["connection_lost_days"] is not None:
        nodes = [node for node in nodes if api.is_stale(node, params["connection_lost_days"])]
    if params["include_tags"]:
        nodes = [dict(node, tags=resource_tags(client, api.RESOURCE_TYPE, node["instance_id"])) for node in nodes]
    return sorted(nodes, key=lambda node: node["instance_id"])


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            instance_ids=dict(type="list", elements="str"),
            source_ids=dict(type="list", elements="str"),
            ping_status=dict(type="list", elements="str", choices=list(api.PING_STATUSES)),
            tags=dict(type="dict"),
            connection_lost_days=dict(type="int"),
            include_tags=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    try:
        validate(module.params)
        nodes = gather(ssm_client(module), module.params, datetime.datetime.now(datetime.timezone.utc))
    except ParameterError as error:
        module.fail_json(msg=str(error))
    except AnsibleAWSError as error:
        module.fail_json_aws_error(error)
    module.exit_json(changed=False, managed_instances=nodes)


if __name__ == "__main__":
    main()
