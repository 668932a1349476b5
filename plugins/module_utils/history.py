# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetpatch.ssm project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The report history: an embedded SQLite file that keeps what SSM overwrites.

Why SQLite: every scan replaces a node's compliance in SSM, so the per-package past exists only if the
collection keeps it (MISSION.md R5). SQLite is in Python's standard library (nothing to install on the
controller or in an execution environment), is one file that can be copied to S3 between AWX jobs, answers the
history questions with indexed SQL, and writes a whole collection in one transaction: a collection that fails
half-way leaves no half-recorded run, and check mode rolls its run back.

Layout (schema version `SCHEMA_VERSION`, kept in `meta`; older files are migrated when opened, newer ones are
refused rather than misread):
  runs          one row per collection: when (`started_at` by the controller's clock; `as_of` by AWS's, the
                newest agent ping the run saw, which periods and trends use), label, status (complete |
                partial), scopes, options
  failures      account-regions (or parts of them) a run could not read, with the AWS error code
  nodes         one row per (account, region, instance id), with what the next run needs to know about it
  observations  one row per node per run: identity, status, last operation, counts, and `rows_run_id`, the run
                whose patch rows describe this state (an unchanged state reuses the earlier rows, not copies)
  patches       DescribeInstancePatches rows (as PatchRow), stored once per new state
  installed     per node and package, the newest installed version known (Missing rows hide it)
  changes       what changed on a node since its previous observation, derived when a run is recorded

Deriving changes (`compare`): a package's installed version is known from the rows that report it installed
(Installed, InstalledOther, InstalledPendingReboot, InstalledRejected); a Missing or Failed row shows the
candidate version, not the installed one, so the last known installed version carries over (`advance`). Between
two observations a package is
  updated    installed at another version than the last known one (from -> to); or, when no earlier row showed
             its installed version (it was Missing or Failed in every earlier observation), installed now at the
             version the earlier row offered or with an InstalledTime after the earlier observation; then
             `from_version` is None. (Reported installed at another version with neither sign, it was simply
             there all along: the newest candidate stopped being approved, and nothing is reported.)
  installed  present now and absent from the earlier rows (a new package, a dependency, or a Windows KB),
  removed    installed before and absent from the new rows.
Each change is cross-checked with the row's InstalledTime where the OS reports one: `confirms` when it is later
than the previous observation's operation, `contradicts` when it is not, `not_reported` when there is none.
Nothing is inferred from anything else: without an earlier observation of a node, nothing is reported changed.
"""

from __future__ import annotations

import datetime
import json
import sqlite3

from .report_collect import COUNT_COLUMNS
from .report_collect import REPORTED
from .report_collect import PatchRow

SCHEMA_VERSION = 1
NOT_COLLECTED, NOT_LISTED = "not_collected", "not_listed"
# Failure stages after which an account-region's nodes were not (all) read; others (ec2_names) only warn.
FATAL_STAGES = ("assume_role", "identity", "collect")
# A node not listed any more is reported as such for this many days after it was last seen, then forgotten.
FORGET_AFTER_DAYS = 30

IDENTITY_COLUMNS = (
    "name", "computer_name", "ip_address", "cloud", "resource_type", "source_id", "source_type", "azure_vm_id",
    "platform_type", "platform_name", "platform_version", "agent_version", "ping_status", "last_ping",
)
STATE_COLUMNS = (
    "patch_group", "baseline_id", "operation", "operation_start", "operation_end", "snapshot_id",
    "reboot_option", "install_override_list", "last_no_reboot_install",
    *COUNT_COLUMNS,
)
OBSERVATION_COLUMNS = ("status", "reason", *IDENTITY_COLUMNS, *STATE_COLUMNS, "state_key", "rows_run_id")
PATCH_COLUMNS = tuple(PatchRow.__dataclass_fields__)
INTEGER_COLUMNS = frozenset((*COUNT_COLUMNS, "rows_run_id"))
CHANGE_COLUMNS = (
    "package", "name", "arch", "kind", "from_version", "to_version", "title", "kb_id", "classification",
    "severity", "cve_ids", "state", "installed_time", "installed_time_check", "since_run_id", "operation",
    "operation_end", "snapshot_id", "install_override_list",
)


def _column_type(column: str) -> str:
    return "INTEGER" if column in INTEGER_COLUMNS else "TEXT"


_MIGRATIONS = {
    1: [
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE runs (run_id INTEGER PRIMARY KEY AUTOINCREMENT, started_at TEXT NOT NULL, finished_at TEXT,
               as_of TEXT, label TEXT, status TEXT NOT NULL, scopes TEXT NOT NULL DEFAULT '[]',
               options TEXT NOT NULL DEFAULT '{}')""",
        "CREATE INDEX runs_as_of ON runs (as_of)",
        """CREATE TABLE failures (run_id INTEGER NOT NULL, account_id TEXT, region TEXT, stage TEXT NOT NULL,
               code TEXT, message TEXT, target TEXT)""",
        """CREATE TABLE nodes (node_id INTEGER PRIMARY KEY, account_id TEXT NOT NULL, region TEXT NOT NULL,
               instance_id TEXT NOT NULL, last_seen_run_id INTEGER, last_seen_at TEXT, last_state_key TEXT,
               last_rows_run_id INTEGER, last_operation_end TEXT, UNIQUE (account_id, region, instance_id))""",
        f"""CREATE TABLE observations (run_id INTEGER NOT NULL, node_id INTEGER NOT NULL,
               {', '.join(f'{column} {_column_type(column)}' for column in OBSERVATION_COLUMNS)},
               PRIMARY KEY (run_id, node_id))""",
        "CREATE INDEX observations_node ON observations (node_id, run_id)",
        f"CREATE TABLE patches (run_id INTEGER NOT NULL, node_id INTEGER NOT NULL, {', '.join(PATCH_COLUMNS)})",
        "CREATE INDEX patches_node ON patches (node_id, run_id)",
        """CREATE TABLE installed (node_id INTEGER NOT NULL, package TEXT NOT NULL, version TEXT,
               run_id INTEGER NOT NULL, PRIMARY KEY (node_id, package))""",
        f"CREATE TABLE changes (run_id INTEGER NOT NULL, node_id INTEGER NOT NULL, {', '.join(CHANGE_COLUMNS)})",
        "CREATE INDEX changes_run ON changes (run_id)",
        "CREATE INDEX changes_node ON changes (node_id, run_id)",
        "CREATE INDEX changes_name ON changes (name)",
    ],
}


class HistoryError(Exception):
    """The history file cannot be used (written by a newer version, or not a history file)."""


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


# ---------------------------------------------------------------------------------------------- derivation

def advance(known: dict, rows) -> dict:
    """The installed versions known after an observation whose rows are `rows` (module docstring)."""
    present = {row.package for row in rows}
    after = {package: version for package, version in known.items() if package in present}
    after.update((row.package, row.version) for row in rows if row.is_installed)
    return after


def _same_update(before: PatchRow | None, after: PatchRow, windows: bool) -> bool:
    """The earlier row is about the update installed now (e.g. the Missing row of that version); on Windows a
    row's key is its KB, which is the update itself."""
    if before is None:
        return False
    if windows or (before.title and before.title == after.title):
        return True
    return after.version is not None and before.version == after.version


def _shows_an_update(earlier: PatchRow, row: PatchRow | None, before_time: str | None) -> bool:
    """A Linux package whose installed version was hidden (Missing or Failed rows only) is reported installed now:
    it was updated only if it now has the version the earlier row offered, or an InstalledTime after the
    earlier observation. Otherwise the data only shows a version that was there all along (the newest candidate
    may simply have stopped being approved)."""
    if row is None:
        return False
    later = bool(row.installed_time and before_time and row.installed_time > before_time)
    return _same_update(earlier, row, windows=False) or later


def _change_fields(after: PatchRow | None, before: PatchRow | None, windows: bool) -> dict:
    """What a change says about the update: the new row, completed from the earlier row of the same update.

    Rows installed from an InstallOverrideList can lose their classification (API reference: InstalledOther
    rows with empty Title and Classification), and CVE ids are only reported on Missing and Failed rows: the
    earlier Missing row of the same update has them.
    """
    row = after or before
    fields = {"title": row.title, "kb_id": row.kb_id, "classification": row.classification,
              "severity": row.severity, "cve_ids": row.cve_ids, "state": after.state if after else None}
    if after is not None and _same_update(before, after, windows):
        for name in ("title", "classification", "severity", "cve_ids"):
            fields[name] = fields[name] or getattr(before, name)
    return fields


def _time_check(row: PatchRow | None, after_time: str | None) -> str | None:
    if row is None:
        return None
    if not row.installed_time:
        return "not_reported"
    return "confirms" if after_time is None or row.installed_time > after_time else "contradicts"


def compare(before_known: dict, after_known: dict, before_rows, after_rows, *, before_time: str | None = None,
            windows: bool = False) -> list:
    """The package changes between two observations of one node (module docstring), as dicts.

    `before_known`/`after_known`: installed versions known at each observation (`advance`); `before_rows`/
    `after_rows`: their patch rows; `before_time`: the earlier observation's operation end (for InstalledTime).
    """
    before_by_package = {row.package: row for row in before_rows}
    after_by_package = {}
    for row in after_rows:
        if row.is_installed or row.package not in after_by_package:
            after_by_package[row.package] = row
    changes = []
    for package, version in sorted(after_known.items()):
        row, earlier = after_by_package.get(package), before_by_package.get(package)
        if package in before_known:
            if before_known[package] == version:
                continue
            kind, from_version = "updated", before_known[package]
        elif earlier is not None and not windows:
            if not _shows_an_update(earlier, row, before_time):
                continue  # the installed version is seen for the first time, not changed
            kind, from_version = "updated", None
        else:
            kind, from_version = "installed", None
        name_row = row or earlier
        changes.append(dict(
            package=package, name=name_row.name, arch=name_row.arch, kind=kind, from_version=from_version,
            to_version=version, installed_time=row.installed_time if row else None,
            installed_time_check=_time_check(row, before_time), **_change_fields(row, earlier, windows)))
    for package in sorted(set(before_known) - set(after_known)):
        earlier = before_by_package.get(package)
        if earlier is None:
            continue  # known from an older observation only: nothing to describe it with
        changes.append(dict(package=package, name=earlier.name, arch=earlier.arch, kind="removed",
                            from_version=before_known[package], to_version=None, installed_time=None,
                            installed_time_check=None, **_change_fields(None, earlier, windows)))
    return changes


# ---------------------------------------------------------------------------------------------- the store

def _row(values) -> PatchRow:
    return PatchRow(*values)


class History:
    """An open history file. `History.open(path)`; `":memory:"` keeps nothing (a collection without history)."""

    def __init__(self, connection: sqlite3.Connection, path: str) -> None:
        self.db = connection
        self.path = path

    @classmethod
    def open(cls, path: str, timeout: float = 60.0) -> History:
        try:
            connection = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA foreign_keys = OFF")
            history = cls(connection, path)
            history._migrate()
        except sqlite3.DatabaseError as error:
            raise HistoryError(f"{path}: not a fleetpatch.ssm history file ({error})") from None
        return history

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def schema_version(self) -> int:
        exists = self.db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
        if not exists:
            if self.db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                raise HistoryError(f"{self.path}: an SQLite file that is not a fleetpatch.ssm history")
            return 0
        row = self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0]) if row else 0

    def _migrate(self) -> None:
        """Bring an older file to SCHEMA_VERSION (under the write lock); refuse a newer one."""
        if self._checked_version() == SCHEMA_VERSION:
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for target in range(self._checked_version() + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[target]:
                    self.db.execute(statement)
                self.db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(target),))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def _checked_version(self) -> int:
        version = self.schema_version()
        if version > SCHEMA_VERSION:
            raise HistoryError(f"{self.path}: history schema {version} was written by a newer fleetpatch.ssm; "
                               f"this one reads schema {SCHEMA_VERSION} and older")
        return version

    def known_states(self) -> dict:
        """(account, region, instance id) -> the state whose patch rows the history holds (report_collect)."""
        rows = self.db.execute("SELECT account_id, region, instance_id, last_state_key FROM nodes "
                               "WHERE last_rows_run_id IS NOT NULL")
        return {(a, r, i): key for a, r, i, key in rows}

    def rows_of(self, node_id: int, rows_run_id: int | None) -> list:
        if rows_run_id is None:
            return []
        cursor = self.db.execute(f"SELECT {', '.join(PATCH_COLUMNS)} FROM patches WHERE node_id = ? AND run_id = ?",
                                 (node_id, rows_run_id))
        return [_row(values) for values in cursor]

    def query(self, sql: str, params=()) -> list:
        """Rows as dicts (column name -> value)."""
        cursor = self.db.execute(sql, params)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, values)) for values in cursor]

    def runs(self, limit: int | None = None) -> list:
        sql = ("SELECT r.*, (SELECT count(*) FROM observations o WHERE o.run_id = r.run_id) AS nodes, "
               "(SELECT count(*) FROM changes c WHERE c.run_id = r.run_id) AS changes, "
               "(SELECT count(*) FROM failures f WHERE f.run_id = r.run_id) AS failures "
               "FROM runs r ORDER BY r.run_id DESC")
        runs = self.query(sql + (" LIMIT ?" if limit else ""), (limit,) if limit else ())
        for run in runs:
            run["scopes"], run["options"] = json.loads(run["scopes"]), json.loads(run["options"])
        return runs

    def run(self, run_id: int | None = None) -> dict | None:
        """One run (the latest when run_id is None), or None."""
        if run_id is None:
            found = self.db.execute("SELECT max(run_id) FROM runs").fetchone()[0]
            if found is None:
                return None
            run_id = found
        runs = [run for run in self.runs() if run["run_id"] == run_id]
        return runs[0] if runs else None

    def node_ids(self, instance: str) -> list:
        """Node ids whose instance id, or name in any observation, is `instance`."""
        rows = self.db.execute(
            "SELECT node_id FROM nodes WHERE instance_id = ? UNION "
            "SELECT DISTINCT node_id FROM observations WHERE name = ? OR computer_name = ?",
            (instance, instance, instance))
        return sorted(node_id for (node_id,) in rows)

    def installed_as_of(self, node_id: int, run_id: int) -> tuple:
        """(known installed versions, rows, operation end) of a node at `run_id`, folded over its observations."""
        observations = self.db.execute(
            "SELECT rows_run_id, operation_end FROM observations WHERE node_id = ? AND run_id <= ? "
            "AND rows_run_id IS NOT NULL ORDER BY run_id", (node_id, run_id)).fetchall()
        known, rows, used, operation_end = {}, [], None, None
        for rows_run_id, operation_end in observations:
            if rows_run_id != used:
                rows, used = self.rows_of(node_id, rows_run_id), rows_run_id
                known = advance(known, rows)
        return known, rows, operation_end

    def diff(self, node_id: int, from_run: int, to_run: int) -> list:
        """What changed on a node between two runs (not only consecutive ones)."""
        before_known, before_rows, before_time = self.installed_as_of(node_id, from_run)
        after_known, after_rows = self.installed_as_of(node_id, to_run)[:2]
        windows = self.db.execute("SELECT platform_type FROM observations WHERE node_id = ? ORDER BY run_id DESC "
                                  "LIMIT 1", (node_id,)).fetchone()
        return compare(before_known, after_known, before_rows, after_rows, before_time=before_time,
                       windows=bool(windows) and windows[0] == "Windows")

    # -------------------------------------------------------------------------------------------- writing

    def begin_run(self, label: str | None, options: dict, started_at: str | None = None) -> Recorder:
        """Start recording a run (one transaction: `Recorder.finish` commits it or rolls it back)."""
        self.db.execute("BEGIN IMMEDIATE")
        cursor = self.db.execute("INSERT INTO runs (started_at, label, status, options) VALUES (?, ?, ?, ?)",
                                 (started_at or utc_now(), label, "running", json.dumps(options, sort_keys=True)))
        return Recorder(self, cursor.lastrowid)

    def prune(self, older_than: str) -> int:
        """Delete the runs started before `older_than` (ISO time); return how many. Patch rows a kept observation
        still describes itself with move to the oldest such observation's run instead of being deleted."""
        query = "SELECT run_id FROM runs WHERE started_at < ?"
        old = [run_id for (run_id,) in self.db.execute(query, (older_than,))]
        if not old:
            return 0
        self.db.execute("BEGIN IMMEDIATE")
        try:
            marks = ",".join("?" * len(old))
            moves = self.db.execute(
                f"SELECT node_id, rows_run_id, min(run_id) FROM observations WHERE rows_run_id IN ({marks}) "
                f"AND run_id NOT IN ({marks}) GROUP BY node_id, rows_run_id", old + old).fetchall()
            for node_id, old_run, new_run in moves:
                where = (node_id, old_run)
                self.db.execute("UPDATE patches SET run_id = ? WHERE node_id = ? AND run_id = ?", (new_run, *where))
                self.db.execute("UPDATE observations SET rows_run_id = ? WHERE node_id = ? AND rows_run_id = ?",
                                (new_run, *where))
                self.db.execute("UPDATE nodes SET last_rows_run_id = ? WHERE node_id = ? AND last_rows_run_id = ?",
                                (new_run, *where))
            for table in ("patches", "observations", "changes", "failures", "runs"):
                self.db.execute(f"DELETE FROM {table} WHERE run_id IN ({marks})", old)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return len(old)


class Recorder:
    """Writes one run: nodes as they are collected, failures, then `finish()`."""

    def __init__(self, history: History, run_id: int) -> None:
        self.history = history
        self.db = history.db
        self.run_id = run_id
        self.scopes: set = set()
        self.failures: list = []
        self.seen: set = set()
        self.as_of: str | None = None
        self.status = "running"
        self.counts = {"nodes": 0, "reported": 0, "no_patch_state": 0, "unreadable": 0, "not_collected": 0,
                       "not_listed": 0, "changes": 0, "rows_read": 0, "duplicates": 0}

    def _node(self, account_id: str, region: str, instance_id: str) -> tuple:
        found = self.db.execute(
            "SELECT node_id, last_state_key, last_rows_run_id, last_operation_end FROM nodes "
            "WHERE account_id = ? AND region = ? AND instance_id = ?", (account_id, region, instance_id)).fetchone()
        if found:
            return found
        cursor = self.db.execute("INSERT INTO nodes (account_id, region, instance_id) VALUES (?, ?, ?)",
                                 (account_id, region, instance_id))
        return cursor.lastrowid, None, None, None

    def add_node(self, record) -> list:
        """Record one NodeRecord (report_collect); return the changes derived for it."""
        self.scopes.add((record.account_id, record.region))
        node_id, last_key, last_rows_run, last_operation_end = self._node(
            record.account_id, record.region, record.instance_id)
        if node_id in self.seen:
            self.counts["duplicates"] += 1  # one record per node and run, whatever a listing repeated
            return []
        self.seen.add(node_id)
        ping = record.identity.get("last_ping")
        if ping and (self.as_of is None or ping > self.as_of):
            self.as_of = ping
        changes = []
        if record.rows is not None:
            rows_run_id = self.run_id
            changes = self._derive(node_id, record, last_rows_run, last_operation_end)
            self.db.executemany(f"INSERT INTO patches VALUES (?, ?, {', '.join('?' * len(PATCH_COLUMNS))})",
                                [(self.run_id, node_id, *row.__dict__.values()) for row in record.rows])
            self.counts["rows_read"] += 1
        elif record.status == REPORTED and record.state_key == last_key:
            rows_run_id = last_rows_run  # the state is the one the history holds rows for
        else:
            rows_run_id = None
        values = {"status": record.status, "reason": record.reason, **record.identity, **record.state,
                  "state_key": record.state_key, "rows_run_id": rows_run_id}
        self.db.execute(f"INSERT INTO observations (run_id, node_id, {', '.join(OBSERVATION_COLUMNS)}) "
                        f"VALUES (?, ?, {', '.join('?' * len(OBSERVATION_COLUMNS))})",
                        (self.run_id, node_id, *(values.get(column) for column in OBSERVATION_COLUMNS)))
        self.db.execute(
            "UPDATE nodes SET last_seen_run_id = ?, last_seen_at = ?, last_state_key = coalesce(?, last_state_key), "
            "last_rows_run_id = coalesce(?, last_rows_run_id), last_operation_end = coalesce(?, last_operation_end) "
            "WHERE node_id = ?",
            (self.run_id, utc_now(), record.state_key if rows_run_id else None, rows_run_id,
             record.state.get("operation_end") if rows_run_id else None, node_id))
        self.counts["nodes"] += 1
        self.counts[record.status if record.status in self.counts else "reported"] += 1
        return changes

    def _derive(self, node_id: int, record, last_rows_run: int | None, before_time: str | None) -> list:
        if last_rows_run is None:
            # First rows of this node: what is installed becomes the known state; nothing to compare with.
            self._store_known(node_id, {}, advance({}, record.rows))
            return []
        before_known = dict(self.db.execute("SELECT package, version FROM installed WHERE node_id = ?", (node_id,)))
        after_known = advance(before_known, record.rows)
        changes = compare(before_known, after_known, self.history.rows_of(node_id, last_rows_run), record.rows,
                          before_time=before_time, windows=record.windows)
        state = record.state
        attributed = state.get("operation") == "Install" and (
            before_time is None or (state.get("operation_start") or "") >= before_time)
        operation = {key: state.get(key) if attributed else None
                     for key in ("operation", "operation_end", "snapshot_id", "install_override_list")}
        for change in changes:
            change.update(operation, since_run_id=last_rows_run)
        self.db.executemany(
            f"INSERT INTO changes (run_id, node_id, {', '.join(CHANGE_COLUMNS)}) "
            f"VALUES (?, ?, {', '.join('?' * len(CHANGE_COLUMNS))})",
            [(self.run_id, node_id, *(change.get(column) for column in CHANGE_COLUMNS)) for change in changes])
        self._store_known(node_id, before_known, after_known)
        self.counts["changes"] += len(changes)
        return changes

    def _store_known(self, node_id: int, before: dict, after: dict) -> None:
        gone = [(node_id, package) for package in before if package not in after]
        self.db.executemany("DELETE FROM installed WHERE node_id = ? AND package = ?", gone)
        self.db.executemany("INSERT OR REPLACE INTO installed VALUES (?, ?, ?, ?)",
                            [(node_id, package, version, self.run_id) for package, version in after.items()
                             if before.get(package, object()) != version])

    def add_failure(self, failure) -> None:
        self.failures.append(failure)
        self.db.execute("INSERT INTO failures VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (self.run_id, failure.account_id, failure.region, failure.stage, failure.code,
                         failure.message, failure.target))

    def scope_collected(self, account_id: str, region: str) -> None:
        self.scopes.add((account_id, region))

    def _carry_over(self, account_id: str, region: str, status: str, reason: str) -> int:
        """Observations, copied from their last one, for the scope's recently seen nodes this run did not see."""
        since = (datetime.datetime.now(datetime.timezone.utc)
                 - datetime.timedelta(days=FORGET_AFTER_DAYS)).isoformat()
        copied = [c for c in OBSERVATION_COLUMNS if c not in ("status", "reason", "rows_run_id")]
        cursor = self.db.execute(
            f"INSERT INTO observations (run_id, node_id, status, reason, rows_run_id, {', '.join(copied)}) "
            f"SELECT ?, o.node_id, ?, ?, NULL, {', '.join('o.' + c for c in copied)} "
            "FROM nodes n JOIN observations o ON o.node_id = n.node_id AND o.run_id = n.last_seen_run_id "
            "WHERE n.account_id = ? AND n.region = ? AND n.last_seen_at >= ? AND n.last_seen_run_id < ?",
            (self.run_id, status, reason, account_id, region, since, self.run_id))
        self.counts[status] += cursor.rowcount
        self.counts["nodes"] += cursor.rowcount
        return cursor.rowcount

    def scope_failed(self, failure) -> None:
        """The scope could not be read (fully): its recently seen nodes are listed as not collected."""
        if failure.account_id and failure.region:
            self._carry_over(failure.account_id, failure.region, NOT_COLLECTED,
                             f"{failure.stage}: {failure.code}: {failure.message}")

    def complete(self) -> None:
        """Mark the nodes no longer listed in the collected scopes and close the run (still uncommitted)."""
        failed = {(f.account_id, f.region) for f in self.failures if f.stage in FATAL_STAGES}
        for account_id, region in sorted(self.scopes - failed):
            self._carry_over(account_id, region, NOT_LISTED,
                             "not listed by DescribeInstanceInformation (stopped, terminated or deregistered)")
        finished = utc_now()
        self.status = "partial" if failed else "complete"
        scopes = sorted(f"{a}/{r}" for a, r in self.scopes)
        self.db.execute("UPDATE runs SET finished_at = ?, as_of = coalesce(?, started_at), status = ?, scopes = ? "
                        "WHERE run_id = ?", (finished, self.as_of, self.status, json.dumps(scopes), self.run_id))

    def commit(self, keep: bool = True) -> None:
        """End the run's transaction: keep it, or roll it back (check mode)."""
        self.db.execute("COMMIT" if keep else "ROLLBACK")

    def abort(self) -> None:
        self.db.execute("ROLLBACK")
