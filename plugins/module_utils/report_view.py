# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetpatch.ssm project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Questions answered from the history (history.py), shaped for results and for the patch_report role.

* `changes()`: package changes with the node they happened on, filtered by run, time, package, node, account,
  region or patch group: "what did run R install", "which servers got openssl this week".
* `node_diff()`: what changed on one server between any two runs.
* `report()`: everything one report page shows for a run: per server (updated packages with from -> to,
  missing, failed, pending reboot, approval status of sensitive servers), summaries per account, region, patch
  group and OS, the period's changes against the period before (week over week), compliance over the last runs,
  and what could not be read.

Compliance follows the patch compliance states of the SSM user guide: a reporting node is non-compliant when
its state counts a non-compliant patch (CriticalNonCompliantCount, SecurityNonCompliantCount,
OtherNonCompliantCount, or, should AWS leave those out, Missing, Failed, InstalledPendingReboot and
InstalledRejected); nodes that did not report are counted apart, never as compliant.
"""

from __future__ import annotations

import datetime
import fnmatch
from collections import defaultdict

from .history import NOT_COLLECTED
from .history import NOT_LISTED
from .report_collect import NO_PATCH_STATE
from .report_collect import REPORTED
from .report_collect import UNREADABLE

NON_COMPLIANT_SPLIT = ("critical_non_compliant", "security_non_compliant", "other_non_compliant")
NON_COMPLIANT_STATES = ("missing", "failed", "installed_pending_reboot", "installed_rejected")
ROW_LISTS = {"MISSING": "missing", "FAILED": "failed", "INSTALLED_PENDING_REBOOT": "pending_reboot",
             "INSTALLED_REJECTED": "rejected"}
STATUSES = (REPORTED, NO_PATCH_STATE, UNREADABLE, NOT_COLLECTED, NOT_LISTED)
SUMMARY_DIMENSIONS = {"account": ("account_id",), "region": ("account_id", "region"),
                      "patch_group": ("patch_group",), "os": ("platform_name", "platform_version")}
# The non-compliance condition of one observation (alias o), in SQL and in Python (module docstring).
NON_COMPLIANT_SQL = "(" + " OR ".join(f"coalesce(o.{c}, 0) > 0" for c in NON_COMPLIANT_SPLIT + NON_COMPLIANT_STATES) + ")"
_NODE_COLUMNS = "n.account_id, n.region, n.instance_id"


def is_non_compliant(observation: dict) -> bool:
    return any(observation.get(c) for c in NON_COMPLIANT_SPLIT + NON_COMPLIANT_STATES)


def compliance(observation: dict) -> str:
    if observation["status"] != REPORTED:
        return "unknown"
    return "non_compliant" if is_non_compliant(observation) else "compliant"


def shift(moment: str, days: float) -> str:
    """An ISO time moved by `days` (negative: earlier)."""
    return (datetime.datetime.fromisoformat(moment) + datetime.timedelta(days=days)).isoformat()


# ---------------------------------------------------------------------------------------------- changes

def changes(history, run_id: int | None = None, since: str | None = None, until: str | None = None,
            package: str | None = None, instance: str | None = None, account_id: str | None = None,
            region: str | None = None, patch_group: str | None = None, kinds=None) -> list:
    """Package changes with their node, newest run first. `package` is a name, name.arch or KB id (glob
    patterns allowed); `instance` an instance id, Name or computer name; since/until bound the runs' `as_of`
    (AWS's time of the run, history.py)."""
    where, params = [], []

    def add(condition: str, *values) -> None:
        where.append(condition)
        params.extend(values)

    if run_id is not None:
        add("c.run_id = ?", run_id)
    if since:
        add("r.as_of >= ?", since)
    if until:
        add("r.as_of <= ?", until)
    if package:
        add("(c.name GLOB ? OR c.package GLOB ? OR c.kb_id GLOB ?)", package, package, package)
    if instance:
        add("(n.instance_id = ? OR o.name = ? OR o.computer_name = ?)", instance, instance, instance)
    if account_id:
        add("n.account_id = ?", account_id)
    if region:
        add("n.region = ?", region)
    if patch_group:
        add("o.patch_group = ?", patch_group)
    if kinds:
        add(f"c.kind IN ({', '.join('?' * len(kinds))})", *kinds)
    sql = (f"SELECT c.*, r.as_of AS observed_at, {_NODE_COLUMNS}, o.name AS node_name, o.patch_group, "
           "o.platform_name, o.platform_version, o.cloud FROM changes c JOIN runs r ON r.run_id = c.run_id "
           "JOIN nodes n ON n.node_id = c.node_id JOIN observations o ON o.run_id = c.run_id AND "
           "o.node_id = c.node_id" + (" WHERE " + " AND ".join(where) if where else "")
           + " ORDER BY c.run_id DESC, n.account_id, n.region, n.instance_id, c.package")
    return [_change_view(row) for row in history.query(sql, params)]


def _change_view(row: dict) -> dict:
    view = {key: value for key, value in row.items() if key not in ("node_id",)}
    view["cve_ids"] = [cve for cve in (row.get("cve_ids") or "").split(",") if cve]
    return view


def node_diff(history, instance: str, from_run: int, to_run: int) -> list:
    """[{account_id, region, instance_id, changes}] for every node `instance` names (usually one)."""
    result = []
    for node_id in history.node_ids(instance):
        (node,) = history.query(f"SELECT {_NODE_COLUMNS} FROM nodes n WHERE n.node_id = ?", (node_id,))
        found = history.diff(node_id, from_run, to_run)
        result.append(dict(node, changes=[dict(change, cve_ids=[c for c in (change["cve_ids"] or "").split(",")
                                                                if c]) for change in found]))
    return result


# ---------------------------------------------------------------------------------------------- report

def _observations(history, run_id: int) -> list:
    return history.query(
        f"SELECT o.*, {_NODE_COLUMNS} FROM observations o JOIN nodes n ON n.node_id = o.node_id "
        "WHERE o.run_id = ? ORDER BY n.account_id, n.region, o.name, n.instance_id", (run_id,))


def _non_compliant_rows(history, run_id: int) -> dict:
    """node_id -> {missing: [...], failed: [...], pending_reboot: [...], rejected: [...]} for the run."""
    rows = history.query(
        "SELECT p.* FROM observations o JOIN patches p ON p.node_id = o.node_id AND p.run_id = o.rows_run_id "
        f"WHERE o.run_id = ? AND p.state IN ({', '.join('?' * len(ROW_LISTS))}) ORDER BY p.package",
        (run_id, *ROW_LISTS))
    lists: dict = defaultdict(lambda: {name: [] for name in ROW_LISTS.values()})
    for row in rows:
        lists[row["node_id"]][ROW_LISTS[row["state"]]].append({
            "package": row["package"], "name": row["name"], "version": row["version"], "title": row["title"],
            "kb_id": row["kb_id"], "classification": row["classification"], "severity": row["severity"],
            "cve_ids": [cve for cve in (row["cve_ids"] or "").split(",") if cve],
        })
    return lists


def _period_changes(history, since: str, until: str) -> dict:
    """(account, region, instance) -> the changes recorded by runs started in (since, until]."""
    found: dict = defaultdict(list)
    for change in changes(history, since=since, until=until):
        if change["observed_at"] > since:
            found[(change["account_id"], change["region"], change["instance_id"])].append(change)
    return found


def _approval(observation: dict, updated: list, approvals: list) -> dict:
    """A sensitive server's approval status: every package change must match an approval entry.

    An approval entry is {package: name, name.arch or KB id (glob), version: exact version (any when absent),
    instance_ids: the servers it covers (all when absent), approved_by, approved_at, ticket}. Without approvals
    the changes cannot be verified and the status says so.
    """
    unapproved = []
    for change in updated:
        if not any(_approves(entry, observation, change) for entry in approvals):
            unapproved.append(change)
    if not updated:
        status = "unchanged"
    elif not approvals:
        status = "unverified"
    else:
        status = "unapproved_changes" if unapproved else "approved"
    return {"status": status, "install_override_list": observation.get("install_override_list"),
            "unapproved": [] if not approvals else [_short_change(c) for c in unapproved]}


def _approves(entry: dict, observation: dict, change: dict) -> bool:
    pattern = entry.get("package") or ""
    names = (change["name"], change["package"], change.get("kb_id"))
    if not any(fnmatch.fnmatchcase(value or "", pattern) for value in names):
        return False
    if entry.get("version") and entry["version"] != change.get("to_version"):
        return False
    instances = entry.get("instance_ids") or []
    return not instances or observation["instance_id"] in instances or observation.get("name") in instances


def _short_change(change: dict) -> dict:
    return {key: change.get(key) for key in (
        "package", "name", "kind", "from_version", "to_version", "title", "classification", "severity", "cve_ids",
        "installed_time", "installed_time_check", "operation", "snapshot_id", "observed_at", "run_id")}


def _stale(observation: dict, stale_after_days: float) -> bool:
    """Reporting, but its last patch operation is older than `stale_after_days` before its agent's last ping
    (both AWS times: the controller's clock plays no part)."""
    end, ping = observation.get("operation_end"), observation.get("last_ping")
    return bool(end and ping and shift(end, stale_after_days) < ping)


def _server(observation: dict, rows: dict, updated: list, sensitive: bool, approvals: list,
            stale_after_days: float) -> dict:
    counts = {name: observation.get(name) or 0 for name in (
        "installed", "installed_other", "installed_pending_reboot", "installed_rejected", "missing", "failed",
        "not_applicable", *NON_COMPLIANT_SPLIT)}
    server = {key: observation.get(key) for key in (
        "account_id", "region", "instance_id", "name", "computer_name", "ip_address", "cloud", "azure_vm_id",
        "platform_type", "platform_name", "platform_version", "ping_status", "last_ping", "status", "reason",
        "patch_group", "baseline_id", "operation", "operation_start", "operation_end", "snapshot_id",
        "reboot_option", "install_override_list")}
    server.update(counts=counts, compliance=compliance(observation), sensitive=sensitive,
                  stale=observation["status"] == REPORTED and _stale(observation, stale_after_days),
                  updated=[_short_change(change) for change in updated],
                  **(rows or {name: [] for name in ROW_LISTS.values()}))
    server["approval"] = _approval(observation, updated, approvals) if sensitive else None
    return server


def _summaries(servers: list) -> dict:
    result = {}
    for dimension, keys in SUMMARY_DIMENSIONS.items():
        groups: dict = {}
        for server in servers:
            key = tuple(server.get(k) or "" for k in keys)
            group = groups.setdefault(key, dict(zip(keys, key), nodes=0, reported=0, compliant=0,
                                                non_compliant=0, not_reported=0, stale=0, missing=0, failed=0,
                                                pending_reboot=0, updated_nodes=0, updated_packages=0))
            _count(group, server)
        result[dimension] = [groups[key] for key in sorted(groups)]
    return result


def _count(group: dict, server: dict) -> None:
    group["nodes"] += 1
    if server["status"] == REPORTED:
        group["reported"] += 1
        group[server["compliance"]] += 1
    else:
        group["not_reported"] += 1
    group["stale"] += server["stale"]
    group["missing"] += server["counts"]["missing"]
    group["failed"] += server["counts"]["failed"]
    group["pending_reboot"] += server["counts"]["installed_pending_reboot"]
    group["updated_nodes"] += bool(server["updated"])
    group["updated_packages"] += len(server["updated"])


def _package_counts(period: dict) -> dict:
    """Package name -> number of servers it was updated (or installed) on."""
    counts: dict = defaultdict(set)
    for node, found in period.items():
        for change in found:
            if change["kind"] != "removed":
                counts[change["name"]].add(node)
    return {name: len(nodes) for name, nodes in sorted(counts.items())}


def _compliance_by_group(history, run_id: int | None) -> dict:
    if run_id is None:
        return {}
    rows = history.query(
        f"SELECT coalesce(o.patch_group, '') AS patch_group, count(*) AS reported, "
        f"sum(NOT {NON_COMPLIANT_SQL}) AS compliant FROM observations o WHERE o.run_id = ? AND o.status = ? "
        "GROUP BY o.patch_group", (run_id, REPORTED))
    return {row["patch_group"]: _percent(row["compliant"], row["reported"]) for row in rows}


def _percent(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def trend(history, run_id: int, limit: int) -> list:
    """Compliance of the last `limit` runs up to `run_id`, oldest first (the report's chart)."""
    rows = history.query(
        f"SELECT r.run_id, r.as_of, r.started_at, r.label, count(o.node_id) AS nodes, sum(o.status = ?) AS reported, "
        f"sum(o.status = ? AND NOT {NON_COMPLIANT_SQL}) AS compliant, "
        f"sum(o.status = ? AND {NON_COMPLIANT_SQL}) AS non_compliant "
        "FROM runs r LEFT JOIN observations o ON o.run_id = r.run_id WHERE r.run_id <= ? "
        "GROUP BY r.run_id ORDER BY r.run_id DESC LIMIT ?", (REPORTED, REPORTED, REPORTED, run_id, limit))
    for row in rows:
        row["compliant_percent"] = _percent(row["compliant"] or 0, row["reported"] or 0)
    return rows[::-1]


def _run_before(history, moment: str) -> int | None:
    found = history.db.execute("SELECT max(run_id) FROM runs WHERE as_of <= ?", (moment,)).fetchone()
    return found[0] if found else None


def report(history, run_id: int | None = None, period_days: float = 7, sensitive_groups=(), approvals=(),
           trend_runs: int = 12, stale_after_days: float = 8) -> dict | None:
    """The data of one report page (module docstring); None when the history has no such run."""
    run = history.run(run_id)
    if run is None:
        return None
    run_id, end = run["run_id"], run["as_of"]
    start, previous_start = shift(end, -period_days), shift(end, -2 * period_days)
    period = _period_changes(history, start, end)
    previous = _period_changes(history, previous_start, start)
    rows = _non_compliant_rows(history, run_id)
    servers = []
    for observation in _observations(history, run_id):
        node = (observation["account_id"], observation["region"], observation["instance_id"])
        sensitive = observation.get("patch_group") in sensitive_groups
        servers.append(_server(observation, rows.get(observation["node_id"]), period.get(node, []), sensitive,
                               list(approvals), stale_after_days))
    this_week, last_week = _package_counts(period), _package_counts(previous)
    compared_run = _run_before(history, start)
    return {
        "run": {key: run[key] for key in ("run_id", "started_at", "finished_at", "as_of", "label", "status",
                                          "scopes")},
        "period": {"days": period_days, "start": start, "end": end, "previous_start": previous_start},
        "totals": _totals(servers),
        "summary": _summaries(servers),
        "servers": servers,
        "not_reported": [{key: s[key] for key in ("account_id", "region", "instance_id", "name", "status",
                                                  "reason", "stale", "operation_end", "last_ping")}
                         for s in servers if s["status"] != REPORTED or s["stale"]],
        "week_over_week": {
            "updated_packages": this_week,
            "previous_updated_packages": last_week,
            "newly_updated_packages": sorted(set(this_week) - set(last_week)),
            "updated_nodes": len(period),
            "previous_updated_nodes": len(previous),
            "compliance_by_patch_group": _compliance_by_group(history, run_id),
            "previous_compliance_by_patch_group": _compliance_by_group(history, compared_run),
            "compared_run_id": compared_run,
        },
        "trend": trend(history, run_id, trend_runs),
        "failures": history.query("SELECT account_id, region, stage, code, message, target FROM failures "
                                  "WHERE run_id = ? ORDER BY account_id, region", (run_id,)),
    }


def _totals(servers: list) -> dict:
    totals = {status: 0 for status in STATUSES}
    totals.update(nodes=len(servers), compliant=0, non_compliant=0, stale=0, updated_nodes=0, updated_packages=0,
                  sensitive_unapproved=0)
    for server in servers:
        totals[server["status"]] = totals.get(server["status"], 0) + 1
        if server["compliance"] != "unknown":
            totals[server["compliance"]] += 1
        totals["stale"] += server["stale"]
        totals["updated_nodes"] += bool(server["updated"])
        totals["updated_packages"] += len(server["updated"])
        totals["sensitive_unapproved"] += bool(server["approval"] and server["approval"]["unapproved"])
    totals["compliant_percent"] = _percent(totals["compliant"], totals[REPORTED])
    return totals
