#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetpatch.ssm project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: patch_history_info
short_description: Ask the patch report history what changed, where and when
version_added: 0.1.0
description:
  - Answers from the history file that M(fleetpatch.ssm.patch_report_info) writes, not from SSM's latest
    snapshot (SSM overwrites each node's compliance on every scan). Makes no AWS call.
  - V(runs) lists the recorded runs; V(changes) lists package changes (what did run R install, which servers
    got openssl this week); V(diff) says what changed on one server between two runs; V(report) returns the data
    of the C(fleetpatch.ssm.patch_report) role's report for one run.
  - Times are AWS's (the newest agent ping each run saw, RV(runs[].as_of)), so periods follow the clock of the
    data, not the controller's.
author:
  - fleetpatch.ssm maintainers (@fleetpatch)
options:
  history_path:
    description:
      - The history file written by M(fleetpatch.ssm.patch_report_info).
    type: path
    default: ~/.ansible/fleetpatch/report-history.sqlite
  query:
    description:
      - What to return (see the description).
    type: str
    choices: [runs, changes, diff, report]
    default: report
  run_id:
    description:
      - V(changes) - only the changes recorded by this run. V(report) - the run to report (default the latest).
        V(diff) - the later run (default the latest).
    type: int
  from_run_id:
    description:
      - V(diff) - the earlier run (default the run before O(run_id)).
    type: int
  instance:
    description:
      - V(changes) - only this server. V(diff) - the server (required). An instance or C(mi-) id, a Name or a
        computer name.
    type: str
  package:
    description:
      - V(changes) - only this package, by name, C(name.arch) or KB id; glob patterns such as V(openssl*).
    type: str
  since:
    description:
      - V(changes) - only runs at or after this time (ISO 8601 date or date and time, UTC when no zone).
    type: str
  until:
    description:
      - V(changes) - only runs at or before this time (ISO 8601).
    type: str
  days:
    description:
      - V(changes) - only runs of the last so many days before the newest run (O(since) wins when both are set).
    type: float
  account_id:
    description:
      - V(changes) - only this account.
    type: str
  region:
    description:
      - V(changes) - only this region.
    type: str
  patch_group:
    description:
      - V(changes) - only servers of this patch group.
    type: str
  kinds:
    description:
      - V(changes) - only these kinds of change.
    type: list
    elements: str
    choices: [updated, installed, removed]
  limit:
    description:
      - V(runs) - at most this many runs, newest first.
    type: int
    default: 50
  period_days:
    description:
      - V(report) - the period whose changes the report lists, ending at the run; the period before it of the
        same length is the week-over-week comparison.
    type: float
    default: 7
  sensitive_groups:
    description:
      - V(report) - patch groups whose servers get an approval status.
    type: list
    elements: str
    default: [prod-sensitive]
  approvals:
    description:
      - V(report) - approved packages; every change on a sensitive server must match one, else it is listed as
        unapproved.
    type: list
    elements: dict
    default: []
    suboptions:
      package:
        description: Name, C(name.arch) or KB id (glob patterns allowed).
        type: str
        required: true
      version:
        description: The approved version (any version when absent).
        type: str
      instance_ids:
        description: The servers (ids or names) the approval covers (all when absent).
        type: list
        elements: str
      approved_by:
        description: Who approved (shown in the report).
        type: str
      approved_at:
        description: When (shown in the report).
        type: str
      ticket:
        description: Ticket or reason (shown in the report).
        type: str
  trend_runs:
    description:
      - V(report) - how many runs the compliance chart shows.
    type: int
    default: 12
  stale_after_days:
    description:
      - V(report) - a reporting node whose last patch operation is older than this before its agent's last ping
        is listed as stale (it is online but does not scan).
    type: float
    default: 8
"""

EXAMPLES = r"""
- name: What did run 42 install
  fleetpatch.ssm.patch_history_info:
    query: changes
    run_id: 42
    kinds: [updated, installed]
  register: run42

- name: Which servers got openssl this week
  fleetpatch.ssm.patch_history_info:
    query: changes
    package: "openssl*"
    days: 7
  register: openssl

- name: What changed on db-01 between runs 40 and 42
  fleetpatch.ssm.patch_history_info:
    query: diff
    instance: db-01
    from_run_id: 40
    run_id: 42

- name: The data of the latest report
  fleetpatch.ssm.patch_history_info:
    query: report
    approvals:
      - {package: openssl, version: 3.0.2-0ubuntu1.15, approved_by: jdoe, ticket: CHG-1234}
  register: report
"""

RETURN = r"""
runs:
  description: The runs, newest first (O(query=runs)).
  returned: when O(query=runs)
  type: list
  elements: dict
  contains:
    run_id:
      description: The run's id.
      type: int
    as_of:
      description: AWS's time of the run.
      type: str
    status:
      description: V(complete) or V(partial).
      type: str
    nodes:
      description: Nodes observed.
      type: int
    changes:
      description: Package changes derived.
      type: int
    failures:
      description: Account-regions that failed.
      type: int
changes:
  description:
    - Package changes with the server they happened on, newest run first (O(query=changes)).
    - C(kind) is V(updated) (C(from_version) -> C(to_version); C(from_version) is null when the history never
      saw the earlier version installed), V(installed) or V(removed). C(observed_at) is the run that saw it;
      C(installed_time) and C(installed_time_check) come from the row's InstalledTime.
  returned: when O(query=changes)
  type: list
  elements: dict
diffs:
  description: Per server O(instance) names, what changed between the two runs (O(query=diff)).
  returned: when O(query=diff)
  type: list
  elements: dict
report:
  description:
    - The report of a run (O(query=report)); null when the history has no run. Keys C(run), C(period),
      C(totals), C(summary) (per account, region, patch group, OS), C(servers) (per server its status,
      compliance, updated packages, missing, failed, pending reboot and approval status), C(not_reported),
      C(week_over_week), C(trend) and C(failures).
  returned: when O(query=report)
  type: dict
"""

import datetime
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleetpatch.ssm.plugins.module_utils import report_view
from ansible_collections.fleetpatch.ssm.plugins.module_utils.history import History
from ansible_collections.fleetpatch.ssm.plugins.module_utils.history import HistoryError
from ansible_collections.fleetpatch.ssm.plugins.module_utils.validation import ParameterError


def moment(field: str, value: str | None) -> str | None:
    """An ISO 8601 date or time as the history stores times (UTC, isoformat)."""
    if not value:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise ParameterError(f"{field}: {value!r} is not valid; allowed: an ISO 8601 date or date and time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed.astimezone(datetime.timezone.utc).isoformat()


def _changes(history: History, params: dict) -> dict:
    since = moment("since", params["since"])
    if since is None and params["days"] is not None:
        latest = history.run()
        since = latest and report_view.shift(latest["as_of"], -params["days"])
    return {"changes": report_view.changes(
        history, run_id=params["run_id"], since=since, until=moment("until", params["until"]),
        package=params["package"], instance=params["instance"], account_id=params["account_id"],
        region=params["region"], patch_group=params["patch_group"], kinds=params["kinds"])}


def _diff(history: History, params: dict) -> dict:
    if not params["instance"]:
        raise ParameterError("instance: required with query=diff")
    to_run = history.run(params["run_id"])
    if to_run is None:
        raise ParameterError(f"run_id: {params['run_id']!r} is not a run of the history")
    from_run = params["from_run_id"] or to_run["run_id"] - 1
    return {"diffs": report_view.node_diff(history, params["instance"], from_run, to_run["run_id"])}


def _report(history: History, params: dict) -> dict:
    return {"report": report_view.report(
        history, run_id=params["run_id"], period_days=params["period_days"],
        sensitive_groups=params["sensitive_groups"], approvals=params["approvals"],
        trend_runs=params["trend_runs"], stale_after_days=params["stale_after_days"])}


QUERIES = {
    "runs": lambda history, params: {"runs": history.runs(params["limit"])},
    "changes": _changes,
    "diff": _diff,
    "report": _report,
}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            history_path=dict(type="path", default="~/.ansible/fleetpatch/report-history.sqlite"),
            query=dict(type="str", choices=list(QUERIES), default="report"),
            run_id=dict(type="int"),
            from_run_id=dict(type="int"),
            instance=dict(type="str"),
            package=dict(type="str"),
            since=dict(type="str"),
            until=dict(type="str"),
            days=dict(type="float"),
            account_id=dict(type="str"),
            region=dict(type="str"),
            patch_group=dict(type="str"),
            kinds=dict(type="list", elements="str", choices=["updated", "installed", "removed"]),
            limit=dict(type="int", default=50),
            period_days=dict(type="float", default=7),
            sensitive_groups=dict(type="list", elements="str", default=["prod-sensitive"]),
            approvals=dict(type="list", elements="dict", default=[], options=dict(
                package=dict(type="str", required=True),
                version=dict(type="str"),
                instance_ids=dict(type="list", elements="str"),
                approved_by=dict(type="str"),
                approved_at=dict(type="str"),
                ticket=dict(type="str"),
            )),
            trend_runs=dict(type="int", default=12),
            stale_after_days=dict(type="float", default=8),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if not os.path.exists(params["history_path"]):
        module.fail_json(msg=f"history_path: {params['history_path']} does not exist: run "
                             "fleetpatch.ssm.patch_report_info first")
    try:
        with History.open(params["history_path"]) as history:
            result = QUERIES[params["query"]](history, params)
    except (ParameterError, HistoryError) as error:
        module.fail_json(msg=str(error))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
