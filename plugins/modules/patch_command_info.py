#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetpatch.ssm project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: patch_command_info
short_description: Progress and per-node results of an AWS-RunPatchBaseline run
version_added: 0.1.0
description:
  - Reads the AWS-RunPatchBaseline commands of a run started by M(fleetpatch.ssm.run_patch_baseline) with
    O(fleetpatch.ssm.run_patch_baseline#module:wait=false) (or by anyone else) and returns their progress - one
    C(ListCommands) call per command, whatever the number of nodes.
  - With O(details=true), also what the run did on each node, as M(fleetpatch.ssm.run_patch_baseline) reports it.
  - Used with C(until), C(retries) and C(delay), each retry is one progress read; Ansible prints a line per retry
    (and the counts at verbosity 2), so a long run shows it is alive where a single waiting task shows nothing.
  - Never fails because of what it reads; use RV(clean) or the node lists in C(failed_when).
author:
  - fleetpatch.ssm maintainers (@fleetpatch)
options:
  command_ids:
    description:
      - IDs of the run's commands (RV(fleetpatch.ssm.run_patch_baseline#module:command_ids)), each 36 characters.
      - Every command must run the AWS-RunPatchBaseline document.
    type: list
    elements: str
    required: true
    aliases: [command_id]
  wait_timeout:
    description:
      - Seconds to wait for the run to finish before answering; V(0) answers at once. The task does not fail when
        they pass (read RV(done)).
    type: int
    default: 0
  poll_interval:
    description: Seconds between two reads while waiting.
    type: int
    default: 15
  details:
    description:
      - Also list every node's invocation and the compliance it reported for the run (RV(nodes) and the node lists),
        which reads every invocation (pages of 50) and the nodes' patch states.
    type: bool
    default: false
  package_details:
    description:
      - With O(details=true), after an Install, read each node's patches to list those the run installed and those
        that failed (one node per call).
    type: bool
    default: true
notes:
  - Supports check mode; it only reads.
seealso:
  - module: fleetpatch.ssm.run_patch_baseline
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Start an install on the auto-patched group
  fleetpatch.ssm.run_patch_baseline:
    operation: Install
    patch_group: prod-auto
    reboot_option: RebootIfNeeded
    wait: false
  register: run

- name: Follow the run (a line per retry; counts at verbosity 2)
  fleetpatch.ssm.patch_command_info:
    command_ids: "{{ run.command_ids }}"
  register: progress
  until: progress.done
  retries: 240
  delay: 30

- name: Per-node results; fail unless every node succeeded
  fleetpatch.ssm.patch_command_info:
    command_ids: "{{ run.command_ids }}"
    details: true
  register: outcome
  failed_when: not outcome.clean

- name: Show who needs a reboot
  ansible.builtin.debug:
    var: outcome.reboot_pending_nodes
"""

RETURN = r"""
command_ids:
  description: The commands read.
  returned: always
  type: list
  elements: str
status:
  description:
    - The run's status in Run Command's words (V(Pending), V(InProgress), V(Success), V(Failed), V(Incomplete),
      V(DeliveryTimedOut), V(ExecutionTimedOut), V(Cancelled)); with several commands, the most severe.
  returned: always
  type: str
done:
  description: Whether every command has finished (the condition for C(until)).
  returned: always
  type: bool
target_count:
  description: Nodes targeted.
  returned: always
  type: int
completed_count:
  description: Nodes finished, whatever the result.
  returned: always
  type: int
error_count:
  description: Nodes failed or timed out while running.
  returned: always
  type: int
delivery_timed_out_count:
  description: Nodes not reached in time.
  returned: always
  type: int
percent_complete:
  description: RV(completed_count) as a percentage of RV(target_count).
  returned: always
  type: int
summary:
  description: One line of progress; with O(details=true), naming the nodes that did not succeed.
  returned: always
  type: str
  sample: "InProgress: 37/120 nodes done, 1 error(s)"
commands:
  description:
    - Each command, as M(fleetpatch.ssm.run_patch_baseline) returns
      RV(fleetpatch.ssm.run_patch_baseline#module:commands).
  returned: always
  type: list
  elements: dict
operation:
  description: The document's Operation (of the first command).
  returned: always
  type: str
snapshot_id:
  description: The document's SnapshotId (of the first command), V(null) when none was sent.
  returned: always
  type: str
clean:
  description: Whether the run finished and every node succeeded.
  returned: when O(details=true)
  type: bool
nodes:
  description:
    - Per node, as M(fleetpatch.ssm.run_patch_baseline) returns RV(fleetpatch.ssm.run_patch_baseline#module:nodes).
  returned: when O(details=true)
  type: list
  elements: dict
failed_nodes:
  description: Nodes where the document failed.
  returned: when O(details=true)
  type: list
  elements: str
undeliverable_nodes:
  description: Nodes the command could not reach.
  returned: when O(details=true)
  type: list
  elements: str
timed_out_nodes:
  description: Nodes not reached, or not finished, in time.
  returned: when O(details=true)
  type: list
  elements: str
cancelled_nodes:
  description: Nodes where the run was cancelled or not sent because of MaxErrors.
  returned: when O(details=true)
  type: list
  elements: str
running_nodes:
  description: Nodes still pending or running.
  returned: when O(details=true)
  type: list
  elements: str
reboot_pending_nodes:
  description: Nodes that need a reboot.
  returned: when O(details=true)
  type: list
  elements: str
"""

from ansible_collections.amazon.aws.plugins.module_utils.exceptions import AnsibleAWSError
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.fleetpatch.ssm.plugins.module_utils import commands
from ansible_collections.fleetpatch.ssm.plugins.module_utils.ssm import ssm_client
from ansible_collections.fleetpatch.ssm.plugins.module_utils.validation import ParameterError
from ansible_collections.fleetpatch.ssm.plugins.module_utils.validation import check_length
from ansible_collections.fleetpatch.ssm.plugins.module_utils.validation import field_path


def validate(params: dict) -> None:
    if not params["command_ids"]:
        raise ParameterError("command_ids: 0 entries; allowed: at least 1")
    for index, command_id in enumerate(params["command_ids"]):
        check_length(field_path("command_ids", index), command_id, *commands.COMMAND_ID_LENGTH)
    commands.check_wait_options(params)


def check_documents(statuses: list) -> None:
    """The per-node results read AWS-RunPatchBaseline's report: other documents are refused by name."""
    others = [f"{command['CommandId']} ({command.get('DocumentName')})" for command in statuses
              if command.get("DocumentName", "").rsplit("/", 1)[-1] != commands.DOCUMENT]
    if others:
        raise ParameterError(f"command_ids: {', '.join(others)} do not run {commands.DOCUMENT}")


def gather(client, params: dict) -> dict:
    """Read the commands (refusing other documents before any wait), wait if asked, then report."""
    statuses = commands.wait_for_commands(client, params["command_ids"], 0, params["poll_interval"])
    check_documents(statuses)
    if params["wait_timeout"] and not all(commands.is_done(command) for command in statuses):
        statuses = commands.wait_for_commands(client, params["command_ids"], params["wait_timeout"],
                                              params["poll_interval"])
    nodes = commands.collect_nodes(client, statuses, params["package_details"]) if params["details"] else None
    first = commands.Run.of(statuses[0])
    return dict(commands.run_report(statuses, nodes), operation=first.operation, snapshot_id=first.snapshot_id)


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            command_ids=dict(type="list", elements="str", required=True, aliases=["command_id"]),
            wait_timeout=dict(type="int", default=0),
            poll_interval=dict(type="int", default=15),
            details=dict(type="bool", default=False),
            package_details=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    try:
        validate(module.params)
        result = gather(ssm_client(module), module.params)
    except ParameterError as error:
        module.fail_json(msg=str(error))
    except AnsibleAWSError as error:
        module.fail_json_aws_error(error)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
