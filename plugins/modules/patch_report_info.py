#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetpatch.ssm project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: patch_report_info
short_description: Collect the patch compliance of every managed node across accounts and regions, and keep it
version_added: 0.1.0
description:
  - Reads, for every managed node of the listed accounts (assumed roles, or the task's own credentials) and
    regions, its identity (account, region, instance or C(mi-) id, name, cloud, Azure VM id of Azure VMs
    registered as hybrid nodes), platform, patch group, baseline, last patching operation (Scan or Install,
    start and end, snapshot, reboot option, install override list), counts per patch state, and per package
    its name, version, KB id, classification, severity, state, installed time and CVEs.
  - AWS Systems Manager overwrites a node's compliance on every scan. Each collection is therefore recorded as a
    run in a history file (SQLite, O(history_path)), and the packages updated on each node since its previous
    observation are derived there, from the installed versions before and after, cross-checked with
    InstalledTime where the operating system reports it. M(fleetpatch.ssm.patch_history_info) answers questions
    over that history and builds the report of the C(fleetpatch.ssm.patch_report) role.
  - "API calls: C(DescribeInstanceInformation) by pages of 50, C(DescribeInstancePatchStates) for the same 50
    nodes, and C(DescribeInstancePatches) (one node per call) only for nodes whose patch state is not already
    in the history (see O(package_details)); C(ec2:DescribeInstances) for the Name tags of EC2 nodes
    (O(ec2_names)); one C(sts:AssumeRole) per target with O(targets[].role_arn), one
    C(sts:GetCallerIdentity) per target without. Every call is retried with jittered backoff on
    C(ThrottlingException)."
  - "Nothing is silently dropped: an account or region that cannot be read is listed in RV(failures) (the
    others are collected); a node without patch state, whose patches cannot be read, not listed any more, or in
    an account-region that failed, is listed in RV(not_reported) with the reason."
  - Recording the run in the history file is this module's only write; it changes nothing in AWS, so it always
    reports C(changed=false). In check mode the run is collected and compared but not kept.
author:
  - fleetpatch.ssm maintainers (@fleetpatch)
options:
  targets:
    description:
      - The accounts and regions to collect. Without it, the task's credentials in the task's O(region).
    type: list
    elements: dict
    suboptions:
      role_arn:
        description:
          - IAM role to assume in the target account (it needs the C(ssm:Describe*) and C(ec2:DescribeInstances)
            permissions). Without it the task's own credentials are used.
        type: str
      account_id:
        description:
          - The target's 12-digit account id. With O(targets[].role_arn) it must be the role's account; without,
            the task's credentials must act in it (checked with C(sts:GetCallerIdentity)).
        type: str
      external_id:
        description:
          - ExternalId of the role's trust policy.
        type: str
      regions:
        description:
          - Regions to collect in this account. Default is the task's O(region).
        type: list
        elements: str
  role_session_name:
    description:
      - RoleSessionName of the assumed-role sessions (shows in CloudTrail).
    type: str
    default: fleetpatch-ssm
  package_details:
    description:
      - V(changed) reads the per-package rows of the nodes whose patch state is not the one the history already
        holds rows for (every Scan or Install makes a new state); V(all) reads every node; V(none) reads only
        the counts (no per-package history, no derived changes).
    type: str
    choices: [changed, all, none]
    default: changed
  ec2_names:
    description:
      - Read the C(Name) tag of EC2 instances (one C(ec2:DescribeInstances) page per 1,000 instances). Without
        it, and for nodes without a C(Name) tag, a node is named by its hybrid node name or computer name.
    type: bool
    default: true
  patch_groups:
    description:
      - Only nodes whose reported patch group is one of these. Default is every node.
    type: list
    elements: str
  max_workers:
    description:
      - Account-regions collected at the same time.
    type: int
    default: 16
  node_workers:
    description:
      - C(DescribeInstancePatches) calls in flight at the same time in each account-region.
    type: int
    default: 4
  history_path:
    description:
      - The history file (SQLite; created with its directory when missing). The C(fleetpatch.ssm.patch_report)
        role can keep it in S3 between runs (AWX jobs run in throw-away containers).
    type: path
    default: ~/.ansible/fleetpatch/report-history.sqlite
  history:
    description:
      - Record the run in O(history_path). V(false) keeps nothing (nothing is derived either).
    type: bool
    default: true
  label:
    description:
      - A label stored with the run (for example V(weekly-scan) or V(after-install)).
    type: str
  retention_days:
    description:
      - Delete runs older than this many days from the history after recording. V(0) keeps everything.
    type: int
    default: 0
  return_changes:
    description:
      - Return the package changes this run derived in RV(changes).
    type: bool
    default: true
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Collect the current account and region into the default history
  fleetpatch.ssm.patch_report_info:
  register: collection

- name: Three accounts, two regions each, after the weekly install window
  fleetpatch.ssm.patch_report_info:
    targets:
      - regions: [eu-west-1, us-east-1]                  # the management account, the task's credentials
      - role_arn: arn:aws:iam::234567890123:role/fleetpatch-report
        regions: [eu-west-1, us-east-1]
      - role_arn: arn:aws:iam::345678901234:role/fleetpatch-report
        regions: [eu-west-1, us-east-1]
    label: after-install
    history_path: /var/lib/fleetpatch/report-history.sqlite
  register: collection

- name: Say which account-regions could not be read
  ansible.builtin.debug:
    msg: "{{ item.account_id }}/{{ item.region }}: {{ item.code }} {{ item.message }}"
  loop: "{{ collection.failures }}"
"""

RETURN = r"""
run:
  description: The recorded run.
  returned: always
  type: dict
  contains:
    run_id:
      description: Id of the run in the history (query it with M(fleetpatch.ssm.patch_history_info)).
      type: int
    started_at:
      description: When the collection started (controller clock, ISO 8601).
      type: str
    as_of:
      description: AWS's time of the run, the newest agent ping it saw (periods and trends use it).
      type: str
    status:
      description: V(complete), or V(partial) when an account-region could not be (fully) read.
      type: str
    recorded:
      description: Whether the run was kept in the history (not in check mode, not with O(history=false)).
      type: bool
    history_path:
      description: The history file.
      type: str
totals:
  description: Node counts of the run by status, and the number of changes derived.
  returned: always
  type: dict
  sample: {"nodes": 1210, "reported": 1195, "no_patch_state": 3, "unreadable": 0, "not_collected": 12,
           "not_listed": 0, "changes": 4312, "rows_read": 1195, "duplicates": 0}
failures:
  description: Account-regions (or parts of them) that could not be read, and why.
  returned: always
  type: list
  elements: dict
  contains:
    account_id:
      description: The account (null when even the task's own account could not be identified).
      type: str
    region:
      description: The region.
      type: str
    stage:
      description: V(assume_role), V(identity), V(collect), or V(ec2_names) (a warning; nodes were collected).
      type: str
    code:
      description: AWS's error code, or the exception's name.
      type: str
    message:
      description: The error message.
      type: str
not_reported:
  description: Nodes of this run without current patch data, with the reason.
  returned: always
  type: list
  elements: dict
  contains:
    status:
      description: V(no_patch_state), V(unreadable), V(not_collected) or V(not_listed).
      type: str
changes:
  description:
    - Package changes derived by this run (O(return_changes=true)), one per node and package.
    - C(kind) is V(updated), V(installed) or V(removed); C(from_version) is null when no earlier row of the
      history reported the package installed; C(installed_time_check) is V(confirms), V(contradicts) or
      V(not_reported).
  returned: when O(return_changes=true)
  type: list
  elements: dict
"""

import datetime
import os

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.fleetpatch.ssm.plugins.module_utils import accounts
from ansible_collections.fleetpatch.ssm.plugins.module_utils import report_view
from ansible_collections.fleetpatch.ssm.plugins.module_utils.history import History
from ansible_collections.fleetpatch.ssm.plugins.module_utils.history import HistoryError
from ansible_collections.fleetpatch.ssm.plugins.module_utils.report_collect import Options
from ansible_collections.fleetpatch.ssm.plugins.module_utils.report_collect import REPORTED
from ansible_collections.fleetpatch.ssm.plugins.module_utils.report_collect import ScopeCollector
from ansible_collections.fleetpatch.ssm.plugins.module_utils.validation import ParameterError

NOT_REPORTED_FIELDS = ("account_id", "region", "instance_id", "name", "status", "reason")


def collect(history, sessions, targets, options: Options, max_workers: int, label=None, keep: bool = True,
            with_changes: bool = True) -> dict:
    """Collect every scope of `targets` into a new run of `history`; return the module's result.

    Also the entry point of bench/bench_report.py (no AnsibleModule needed).
    """
    scopes, failures = accounts.resolve_scopes(sessions, targets)
    recorder = history.begin_run(label, {
        "package_details": options.package_details, "ec2_names": options.ec2_names,
        "patch_groups": list(options.patch_groups), "targets": [t.label for t in targets]})
    try:
        for failure in failures:
            recorder.add_failure(failure)
            recorder.scope_failed(failure)
        collector = ScopeCollector(sessions, options, history.known_states())
        for scope, item in accounts.run_scopes(scopes, collector, max_workers):
            if isinstance(item, accounts.ScopeEnd):
                if item.failure is None:
                    recorder.scope_collected(scope.account_id, scope.region)
                else:
                    recorder.add_failure(item.failure)
                    recorder.scope_failed(item.failure)
            elif isinstance(item, accounts.Failure):
                recorder.add_failure(item)
            else:
                recorder.add_node(item)
        recorder.complete()
        result = _result(history, recorder, keep, with_changes)
        recorder.commit(keep)
    except BaseException:
        recorder.abort()
        raise
    return result


def _result(history, recorder, keep: bool, with_changes: bool) -> dict:
    run = history.run(recorder.run_id)
    not_reported = history.query(
        "SELECT n.account_id, n.region, n.instance_id, o.name, o.status, o.reason FROM observations o "
        "JOIN nodes n ON n.node_id = o.node_id WHERE o.run_id = ? AND o.status != ? "
        "ORDER BY n.account_id, n.region, n.instance_id", (recorder.run_id, REPORTED))
    result = {
        "run": {"run_id": run["run_id"], "started_at": run["started_at"], "finished_at": run["finished_at"],
                "as_of": run["as_of"], "status": run["status"], "label": run["label"], "recorded": keep,
                "history_path": history.path},
        "totals": dict(recorder.counts),
        "failures": [failure.as_dict() for failure in recorder.failures],
        "not_reported": not_reported,
    }
    if with_changes:
        result["changes"] = report_view.changes(history, run_id=recorder.run_id)
    return result


def _open_history(params) -> History:
    if not params["history"]:
        return History.open(":memory:")
    path = params["history_path"]
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    return History.open(path)


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            targets=dict(type="list", elements="dict", options=dict(
                role_arn=dict(type="str"),
                account_id=dict(type="str"),
                external_id=dict(type="str", no_log=False),
                regions=dict(type="list", elements="str"),
            )),
            role_session_name=dict(type="str", default=accounts.DEFAULT_SESSION_NAME),
            package_details=dict(type="str", choices=["changed", "all", "none"], default="changed"),
            ec2_names=dict(type="bool", default=True),
            patch_groups=dict(type="list", elements="str"),
            max_workers=dict(type="int", default=16),
            node_workers=dict(type="int", default=4),
            history_path=dict(type="path", default="~/.ansible/fleetpatch/report-history.sqlite"),
            history=dict(type="bool", default=True),
            label=dict(type="str"),
            retention_days=dict(type="int", default=0),
            return_changes=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        for name in ("max_workers", "node_workers"):
            if params[name] < 1:
                raise ParameterError(f"{name}: {params[name]} is out of range; allowed: 1 or more")
        accounts.check_session_name(params["role_session_name"])
        targets = accounts.targets_from_params(params["targets"], module.region)
        options = Options(package_details=params["package_details"], node_workers=params["node_workers"],
                          ec2_names=params["ec2_names"], patch_groups=tuple(params["patch_groups"] or ()))
        sessions = accounts.Sessions(accounts.Connection.from_module(module), params["role_session_name"])
        keep = params["history"] and not module.check_mode
        with _open_history(params) as history:
            result = collect(history, sessions, targets, options, params["max_workers"], params["label"], keep,
                             params["return_changes"])
            if keep and params["retention_days"] > 0:
                cutoff = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(
                    days=params["retention_days"])
                result["run"]["pruned_runs"] = history.prune(cutoff.isoformat())
    except (ParameterError, HistoryError) as error:
        module.fail_json(msg=str(error))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
