#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetpatch.ssm project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: patch_review_info
short_description: What Patch Manager would install on managed nodes, with their installed versions
version_added: 0.1.0
description:
  - Reads, per managed node, the patches its last AWS-RunPatchBaseline operation reported missing or failed
    (C(DescribeInstancePatches)) and the versions SSM Inventory says are installed (C(ListInventoryEntries),
    type C(AWS:Application) on Linux, C(AWS:WindowsUpdate) on Windows). Each candidate comes with its installed
    and candidate version, classification, severity (Ubuntu - the package priority), CVEs and whether a reboot is
    expected. This is the data of the sensitive-server review of the M(fleetpatch.ssm.run_patch_baseline) scan
    that precedes it (role C(fleetpatch.ssm.sensitive_patching)).
  - With O(snapshot_id), only nodes whose last report is that snapshot's Scan are reviewed; the others are listed in
    RV(not_reported) with the reason (every operation overwrites a node's report, so an older one would be
    misleading).
  - With O(expected) and O(installed_before), compares SSM Inventory now with an earlier inventory of the same
    nodes and reports, per node, whether every expected package is at its expected version and nothing else
    changed (RV(verification)).
  - Reads only; nothing is changed.
author:
  - fleetpatch.ssm maintainers (@fleetpatch)
options:
  instance_ids:
    description:
      - Managed node IDs (V(i-...), V(mi-...)). Exactly one of O(instance_ids) and O(patch_group) is required.
    type: list
    elements: str
  patch_group:
    description: The managed nodes of a patch group (their C(PatchGroup) or C(Patch Group) tag).
    type: str
  snapshot_id:
    description: The snapshot (GUID) of the Scan whose reports are reviewed.
    type: str
  patches:
    description:
      - Read each node's missing, failed and pending-reboot patches (C(DescribeInstancePatches), one node per call).
      - V(false) for an inventory snapshot only (before and after an install).
    type: bool
    default: true
  inventory:
    description: Read each node's installed software from SSM Inventory (pages of 50 entries per call).
    type: bool
    default: true
  return_installed:
    description:
      - Return every installed package and version of each node (RV(servers[].installed)), for a later
        comparison with O(installed_before).
    type: bool
    default: false
  expected:
    description:
      - Per instance ID, the packages an install was to change, as a list of C(package) (the review's package, the
        DescribeInstancePatches KBId) and C(version) (the approved version); an entry with C(new=true) and no
        version names a package the install may bring new (any version).
      - RV(fleetpatch.ssm.patch_approval#module:servers) has this form.
      - Requires O(installed_before) with the same instance IDs.
    type: dict
  installed_before:
    description: Per instance ID, RV(servers[].installed) of an earlier call (before the install).
    type: dict
  allow_new_packages:
    description:
      - With O(expected), whether packages that were not installed before and are now, and that O(expected) does
        not name as C(new), still let a node be V(verified). They are listed in C(new_packages) either way, each
        with C(approved).
      - The default V(false) is the safe one - on a sensitive server nothing appears that nobody approved. The
        approval names the new packages its packages bring (such as the new kernel image of an Ubuntu kernel meta
        package, listed in the review's C(new_packages)).
    type: bool
    default: false
  inventory_not_before:
    description:
      - An ISO 8601 time (the install's end). A node whose inventory was gathered earlier is reported
        V(inventory_stale) instead of being compared - SSM Inventory is gathered on a schedule, not after each
        install.
    type: str
notes:
  - Calls per node - one C(DescribePatchStates) per 50 nodes, one or more C(DescribeInstancePatches) pages, one or
    more C(ListInventoryEntries) pages (the API has no paginator; the module follows C(NextToken)).
  - Versions are compared in the form Patch Manager writes them in titles - APT's version as is, YUM's
    V(epoch:version-release) with epoch V(0) when the package has none.
  - C(reboot_expected) is a heuristic where AWS gives nothing (each entry says so in C(reboot_reason)).
seealso:
  - module: fleetpatch.ssm.run_patch_baseline
  - module: fleetpatch.ssm.patch_approval
  - name: Metadata collected by inventory (AWS Systems Manager User Guide)
    description: The attributes of AWS:Application and AWS:WindowsUpdate.
    link: https://docs.aws.amazon.com/systems-manager/latest/userguide/inventory-schema.html
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Scan the sensitive servers with one snapshot
  fleetpatch.ssm.run_patch_baseline:
    operation: Scan
    patch_group: prod-sensitive
  register: scan

- name: What each of them would get, with installed and candidate versions
  fleetpatch.ssm.patch_review_info:
    patch_group: prod-sensitive
    snapshot_id: "{{ scan.snapshot_id }}"
  register: review

- name: Inventory before an install
  fleetpatch.ssm.patch_review_info:
    instance_ids: [i-0123456789abcdef0]
    patches: false
    return_installed: true
  register: before

- name: After the install, check that exactly the approved versions changed
  fleetpatch.ssm.patch_review_info:
    instance_ids: [i-0123456789abcdef0]
    patches: false
    expected:
      i-0123456789abcdef0: [{package: openssl.amd64, version: 3.0.2-0ubuntu1.15}]
    installed_before: "{{ before.servers | items2dict(key_name='instance_id', value_name='installed') }}"
  register: check
  failed_when: check.verification | rejectattr('status', 'eq', 'verified') | list | length > 0
"""

RETURN = r"""
servers:
  description: One entry per node reviewed, in instance ID order.
  returned: always
  type: list
  elements: dict
  contains:
    instance_id:
      description: Managed node ID.
      type: str
    computer_name:
      description: Host name reported by the agent.
      type: str
    platform_name:
      description: Operating system name (C(DescribeInstanceInformation)).
      type: str
    platform_version:
      description: Operating system version.
      type: str
    os_family:
      description: V(UBUNTU), V(AMAZON_LINUX_2), V(AMAZON_LINUX_2023), V(WINDOWS)..., or V(null) when unknown.
      type: str
    patch_group:
      description: The patch group of the node's last report.
      type: str
    baseline_id:
      description: The patch baseline of the node's last report.
      type: str
    snapshot_id:
      description: The snapshot of the node's last report.
      type: str
    operation_end_time:
      description: When the reported operation ended.
      type: str
    missing:
      description:
        - Each package (Windows - KB) the baseline of the scan approves and the node lacks (state V(MISSING)) or
          failed to install (V(FAILED)).
        - C(package) (KBId - V(name.arch) on Linux), C(title), C(installed_version) (SSM Inventory; V(null) on
          Windows or when the inventory does not list it), C(candidate_version), C(state), C(classification),
          C(severity), C(cve_ids), C(reboot_expected) (V(true), V(false), V(null) - unknown), C(reboot_reason),
          C(same_version_as) (packages moving between the same versions, usually of one source package).
      type: list
      elements: dict
    pending_reboot:
      description: Packages installed and pending a reboot (V(INSTALLED_PENDING_REBOOT)).
      type: list
      elements: str
    inventory_capture_time:
      description: When SSM Inventory gathered the node's software.
      type: str
    installed:
      description: Package key (V(name.arch) with the inventory's architecture, or the KB) -> version.
      returned: with O(return_installed=true)
      type: dict
not_reported:
  description: Nodes without a report of the O(snapshot_id) Scan, or not listed as managed nodes, with why.
  returned: always
  type: list
  elements: dict
  contains:
    instance_id:
      description: Managed node ID.
      type: str
    reason:
      description: Why the node is not reviewed.
      type: str
verification:
  description:
    - Per node of O(expected) - C(status) V(verified), V(mismatch) or V(inventory_stale); C(approved) (each
      expected package with the version C(found)); C(not_at_approved_version); C(unapproved_changes) (packages not
      expected that were installed and changed version or disappeared, with C(before) and C(after));
      C(new_packages) (packages that appeared, with C(before), C(after) and C(approved)); C(unapproved_new_packages)
      (those the approval does not name, see O(allow_new_packages)).
  returned: with O(expected)
  type: list
  elements: dict
"""

from ansible_collections.amazon.aws.plugins.module_utils.exceptions import AnsibleAWSError
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.fleetpatch.ssm.plugins.module_utils import commands
from ansible_collections.fleetpatch.ssm.plugins.module_utils import review
from ansible_collections.fleetpatch.ssm.plugins.module_utils.approvals import parse_time
from ansible_collections.fleetpatch.ssm.plugins.module_utils.approvals import verify_server
from ansible_collections.fleetpatch.ssm.plugins.module_utils.ssm import ssm_client
from ansible_collections.fleetpatch.ssm.plugins.module_utils.validation import ParameterError
from ansible_collections.fleetpatch.ssm.plugins.module_utils.validation import check_pattern

STALE = "inventory_stale"


def validate(params: dict) -> None:
    commands.check_targets(params)
    check_pattern("snapshot_id", params["snapshot_id"], commands.SNAPSHOT_ID_PATTERN,
                  "a GUID such as 8b8f2d4e-6a36-4c5e-9d57-0f3c1a2b4c5d")
    if params["expected"] is not None:
        missing = sorted(set(params["expected"]) - set(params["installed_before"] or {}))
        if missing:
            raise ParameterError(f"installed_before: no earlier inventory of {', '.join(missing)}; allowed: the "
                                 "servers[].installed of an earlier call for every node of expected")
        if not params["inventory"]:
            raise ParameterError("expected: needs inventory=true (the comparison reads SSM Inventory)")
    if params["inventory_not_before"] is not None:
        try:
            parse_time(params["inventory_not_before"])
        except ValueError:
            raise ParameterError(f"inventory_not_before: {params['inventory_not_before']!r} is not an ISO 8601 "
                                 "time with a time zone") from None


def listed_nodes(client, params: dict) -> tuple:
    """(InstanceInformation records, [not listed]) of the targets."""
    selections = commands.target_selections(client, instance_ids=params["instance_ids"],
                                            patch_group=params["patch_group"])
    nodes = {node["InstanceId"]: node for selection in selections for node in selection.nodes}
    unlisted = [{"instance_id": instance_id, "reason": "not listed as a managed node by AWS (stopped, terminated, "
                 "unregistered or unknown)"} for instance_id in commands.unlisted_ids(selections)]
    return [nodes[instance_id] for instance_id in sorted(nodes)], unlisted


def why_not_reported(node: dict, state, snapshot_id):
    """Why a node's last report is not the Scan of `snapshot_id` (None: it is, or no snapshot was asked for)."""
    if snapshot_id is None:
        return None
    if not state:
        return f"no patch report (agent {node.get('PingStatus') or 'unknown'})"
    if (state.get("Operation"), state.get("SnapshotId")) != ("Scan", snapshot_id):
        return (f"its last report is the {state.get('Operation')} of snapshot {state.get('SnapshotId')}, not the "
                f"Scan of {snapshot_id} (agent {node.get('PingStatus') or 'unknown'})")
    return None


def review_server(client, node: dict, state, params: dict) -> dict:
    rows = review.review_rows(client, node["InstanceId"]) if params["patches"] else []
    inventory = review.node_inventory(client, node) if params["inventory"] else {"installed": {}, "capture_time": None}
    server = review.server_review(node, state, rows, inventory["installed"])
    server["inventory_capture_time"] = inventory["capture_time"]
    if params["return_installed"] or params["expected"] is not None:
        server["installed"] = inventory["installed"]
    return server


def verification(servers: list, params: dict) -> list:
    by_id = {server["instance_id"]: server for server in servers}
    not_before = parse_time(params["inventory_not_before"]) if params["inventory_not_before"] else None
    results = []
    for instance_id, approved in sorted(params["expected"].items()):
        server = by_id.get(instance_id)
        if server is None:
            results.append({"instance_id": instance_id, "status": "mismatch", "approved": [],
                            "not_at_approved_version": [item["package"] for item in approved],
                            "unapproved_changes": [], "reason": "not a managed node listed by AWS any more"})
            continue
        captured = server["inventory_capture_time"]
        if not_before and (captured is None or parse_time(captured) < not_before):
            results.append({"instance_id": instance_id, "status": STALE, "inventory_capture_time": captured})
            continue
        results.append(verify_server(instance_id, server["os_family"], approved,
                                     params["installed_before"][instance_id], server["installed"],
                                     params["allow_new_packages"]))
    return results


def run(module) -> dict:
    params = module.params
    validate(params)
    client = ssm_client(module)
    nodes, not_reported = listed_nodes(client, params)
    states = commands.patch_states(client, [node["InstanceId"] for node in nodes])
    servers = []
    for node in nodes:
        state = states.get(node["InstanceId"])
        reason = why_not_reported(node, state, params["snapshot_id"])
        if reason:
            not_reported.append({"instance_id": node["InstanceId"], "reason": reason})
        else:
            servers.append(review_server(client, node, state, params))
    result = {"changed": False, "servers": servers,
              "not_reported": sorted(not_reported, key=lambda item: item["instance_id"])}
    if params["expected"] is not None:
        result["verification"] = verification(servers, params)
    return result


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            instance_ids=dict(type="list", elements="str"),
            patch_group=dict(type="str"),
            snapshot_id=dict(type="str"),
            patches=dict(type="bool", default=True),
            inventory=dict(type="bool", default=True),
            return_installed=dict(type="bool", default=False),
            expected=dict(type="dict"),
            installed_before=dict(type="dict"),
            allow_new_packages=dict(type="bool", default=False),
            inventory_not_before=dict(type="str"),
        ),
        mutually_exclusive=[("instance_ids", "patch_group")],
        required_one_of=[("instance_ids", "patch_group")],
        required_together=[("expected", "installed_before")],
        supports_check_mode=True,
    )
    try:
        module.exit_json(**run(module))
    except ParameterError as error:
        module.fail_json(msg=str(error))
    except AnsibleAWSError as error:
        module.fail_json_aws_error(error)


if __name__ == "__main__":
    main()
