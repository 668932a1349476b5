# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The report history: reading patch rows, deriving changes, recording runs, and the questions it answers."""
from __future__ import annotations

import datetime
import sqlite3

import pytest

from ansible_collections.fleetpatch.ssm.plugins.module_utils import history as store
from ansible_collections.fleetpatch.ssm.plugins.module_utils import report_view
from ansible_collections.fleetpatch.ssm.plugins.module_utils.accounts import Failure
from ansible_collections.fleetpatch.ssm.plugins.module_utils.report_collect import NodeRecord
from ansible_collections.fleetpatch.ssm.plugins.module_utils.report_collect import parse_patch
from ansible_collections.fleetpatch.ssm.plugins.module_utils.report_collect import patch_state

UTC = datetime.timezone.utc
ACCOUNT, REGION = "123456789012", "eu-west-1"
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=UTC)


def at(day: int, hour: int = 12) -> datetime.datetime:
    return datetime.datetime(2026, 3, day, hour, tzinfo=UTC)


def row(title, state="INSTALLED", kb=None, installed=None, classification="Security", severity="Important",
        cves=None, windows=False):
    raw = {"Title": title, "KBId": kb if kb is not None else title.split(":")[0], "Classification": classification,
           "Severity": severity, "State": state, "InstalledTime": installed or EPOCH}
    if cves:
        raw["CVEIds"] = cves
    return parse_patch(raw, windows)


# ---------------------------------------------------------------------------------------------- reading rows

@pytest.mark.parametrize("title, kb, name, arch, version", [
    ("openssl.amd64:3.0.2-0ubuntu1.15", "openssl.amd64", "openssl", "amd64", "3.0.2-0ubuntu1.15"),
    # dpkg epochs belong to the version; yum/dnf titles always carry one, 0 is not printed by rpm
    ("openssh-server.amd64:1:8.9p1-3ubuntu0.6", "openssh-server.amd64", "openssh-server", "amd64",
     "1:8.9p1-3ubuntu0.6"),
    ("kernel.x86_64:0:6.1.102-108.177.amzn2023", "kernel.x86_64", "kernel", "x86_64", "6.1.102-108.177.amzn2023"),
    ("dbus.x86_64:1:1.12.28-1.amzn2023.0.1", "dbus.x86_64", "dbus", "x86_64", "1:1.12.28-1.amzn2023.0.1"),
    ("python3.10.amd64:3.10.12-1~22.04.5", "python3.10.amd64", "python3.10", "amd64", "3.10.12-1~22.04.5"),
    ("tzdata.noarch:0:2024a-1.amzn2023.0.1", "tzdata.noarch", "tzdata", "noarch", "2024a-1.amzn2023.0.1"),
    ("python3.8", "python3.8", "python3.8", "", None),  # no version in the title: kept, never diffed
])
def test_linux_titles_give_name_arch_and_version(title, kb, name, arch, version):
    parsed = row(title, kb=kb)
    assert (parsed.package, parsed.name, parsed.arch, parsed.version) == (
        f"{name}.{arch}" if arch else name, name, arch, version)


def test_windows_rows_are_identified_by_kb_even_without_a_title():
    parsed = row("", kb="KB4481031", state="INSTALLED_OTHER", classification="", windows=True)
    assert (parsed.package, parsed.name, parsed.version, parsed.title) == ("KB4481031", "KB4481031", None, "")


def test_the_epoch_installed_time_means_none_and_cves_are_kept():
    missing = row("curl.amd64:7.81.0-1ubuntu1.16", state="MISSING", cves="CVE-2024-1,CVE-2024-2")
    installed = row("curl.amd64:7.81.0-1ubuntu1.15", installed=at(2))
    assert (missing.installed_time, missing.cve_ids) == (None, "CVE-2024-1,CVE-2024-2")
    assert installed.installed_time == "2026-03-02T12:00:00+00:00"


# ---------------------------------------------------------------------------------------------- deriving changes

def changes(before_rows, after_rows, known=None, before_time="2026-03-01T12:00:00+00:00", windows=False):
    before_known = store.advance(known or {}, before_rows)
    return store.compare(before_known, store.advance(before_known, after_rows), before_rows, after_rows,
                         before_time=before_time, windows=windows)


def test_a_version_change_is_an_update_from_the_known_version():
    found = changes([row("curl.amd64:7.81.0-1ubuntu1.15")], [row("curl.amd64:7.81.0-1ubuntu1.16", installed=at(2))])
    assert [(c["name"], c["kind"], c["from_version"], c["to_version"], c["installed_time_check"]) for c in found] == [
        ("curl", "updated", "7.81.0-1ubuntu1.15", "7.81.0-1ubuntu1.16", "confirms")]


def test_the_installed_version_hidden_by_missing_rows_carries_over():
    known = store.advance({}, [row("curl.amd64:1.1")])  # an older observation saw 1.1 installed
    found = changes([row("curl.amd64:1.3", state="MISSING")], [row("curl.amd64:1.3", installed=at(2))], known)
    assert [(c["from_version"], c["to_version"]) for c in found] == [("1.1", "1.3")]


def test_missing_then_installed_at_the_offered_version_is_an_update_from_an_unrecorded_version():
    before = [row("sudo.amd64:1.9.9-1ubuntu2.5", state="MISSING", cves="CVE-2026-1")]
    found = changes(before, [row("sudo.amd64:1.9.9-1ubuntu2.5")])  # no InstalledTime on this OS
    assert [(c["kind"], c["from_version"], c["to_version"], c["installed_time_check"], c["cve_ids"])
            for c in found] == [("updated", None, "1.9.9-1ubuntu2.5", "not_reported", "CVE-2026-1")]


def test_a_version_seen_for_the_first_time_is_no_change():
    """Missing (candidate 2.5) before, Installed at 2.3 now with an old InstalledTime: the candidate stopped being
    approved; 2.3 was there all along."""
    before = [row("sudo.amd64:1.9.9-1ubuntu2.5", state="MISSING")]
    assert changes(before, [row("sudo.amd64:1.9.9-1ubuntu2.3", installed=at(1, 1) - datetime.timedelta(days=60))]) == []


def test_an_installed_time_after_the_earlier_observation_shows_an_update_to_another_version():
    before = [row("sudo.amd64:1.9.9-1ubuntu2.5", state="MISSING")]
    found = changes(before, [row("sudo.amd64:1.9.9-1ubuntu2.6", installed=at(2))])
    assert [(c["kind"], c["from_version"], c["to_version"]) for c in found] == [("updated", None, "1.9.9-1ubuntu2.6")]


def test_new_and_removed_packages():
    before = [row("linux-image-generic.amd64:5.15.0.118.118"), row("telnet.amd64:0.17-44build1")]
    after = [row("linux-image-generic.amd64:5.15.0.119.119", installed=at(2)),
             row("linux-image-5.15.0-119-generic.amd64:5.15.0-119.129", installed=at(2))]
    found = {(c["name"], c["kind"], c["from_version"], c["to_version"]) for c in changes(before, after)}
    assert found == {
        ("linux-image-generic", "updated", "5.15.0.118.118", "5.15.0.119.119"),
        ("linux-image-5.15.0-119-generic", "installed", None, "5.15.0-119.129"),
        ("telnet", "removed", "0.17-44build1", None),
    }


def test_an_installed_time_before_the_earlier_observation_contradicts():
    found = changes([row("curl.amd64:1.1")], [row("curl.amd64:1.2", installed=at(1, 1))])
    assert found[0]["installed_time_check"] == "contradicts"


def test_an_override_install_loses_its_classification_which_the_missing_row_had():
    before = [row("2026-03 Cumulative Update (KB5035845)", kb="KB5035845", state="MISSING",
                  classification="SecurityUpdates", severity="Critical", cves="CVE-2026-21", windows=True)]
    after = [row("", kb="KB5035845", state="INSTALLED_OTHER", classification="", severity="", installed=at(2),
                 windows=True)]
    (found,) = changes(before, after, windows=True)
    assert (found["kind"], found["name"], found["from_version"], found["classification"], found["severity"],
            found["cve_ids"], found["title"]) == ("installed", "KB5035845", None, "SecurityUpdates", "Critical",
                                                  "CVE-2026-21", "2026-03 Cumulative Update (KB5035845)")


def test_nothing_changes_when_nothing_changed():
    rows = [row("curl.amd64:1.1"), row("sudo.amd64:1.2", state="MISSING")]
    assert changes(rows, rows) == []


# ---------------------------------------------------------------------------------------------- recording runs

def record(instance_id, rows=None, operation="Scan", end=at(1), account=ACCOUNT, region=REGION, status="reported",
           patch_group="prod-auto", name=None, ping=None, **counts):
    state = {"InstanceId": instance_id, "PatchGroup": patch_group, "BaselineId": "pb-0123456789abcdef0",
             "Operation": operation, "OperationStartTime": end - datetime.timedelta(minutes=5),
             "OperationEndTime": end, "SnapshotId": f"snap-{end.isoformat()}", "RebootOption": "RebootIfNeeded",
             **counts}
    from ansible_collections.fleetpatch.ssm.plugins.module_utils.report_collect import state_fingerprint
    return NodeRecord(account, region, instance_id, status=status,
                      identity={"name": name or instance_id, "platform_type": "Linux", "platform_name": "Ubuntu",
                                "platform_version": "22.04", "cloud": "aws",
                                "last_ping": (ping or end).isoformat(), "ping_status": "Online"},
                      state=patch_state(state) if status == "reported" else {},
                      state_key=state_fingerprint(state) if status == "reported" else None, rows=rows)


@pytest.fixture
def history(tmp_path):
    with store.History.open(str(tmp_path / "history.sqlite")) as opened:
        yield opened


def run(history, *records, label=None, failures=(), collected=((ACCOUNT, REGION),), keep=True):
    recorder = history.begin_run(label, {})
    for failure in failures:
        recorder.add_failure(failure)
        recorder.scope_failed(failure)
    for scope in collected:
        recorder.scope_collected(*scope)
    for item in records:
        recorder.add_node(item)
    recorder.complete()
    recorder.commit(keep)
    return recorder


def test_runs_derive_changes_between_consecutive_observations(history):
    run(history, record("i-1", [row("curl.amd64:1.1"), row("sudo.amd64:1.2", state="MISSING")]), label="week0")
    second = run(history, record("i-1", [row("curl.amd64:1.1"), row("sudo.amd64:1.2", installed=at(8))],
                                 operation="Install", end=at(8)), label="week1")

    (change,) = report_view.changes(history, run_id=second.run_id)
    assert (change["instance_id"], change["name"], change["from_version"], change["to_version"], change["kind"],
            change["operation"], change["since_run_id"]) == ("i-1", "sudo", None, "1.2", "updated", "Install", 1)
    assert [r["label"] for r in history.runs()] == ["week1", "week0"]


def test_an_unchanged_state_reuses_the_stored_rows(history):
    first = record("i-1", [row("curl.amd64:1.1")])
    run(history, first)
    assert history.known_states() == {(ACCOUNT, REGION, "i-1"): first.state_key}
    unchanged = record("i-1", rows=None)  # the collector skipped DescribeInstancePatches: same state
    run(history, unchanged)
    (observation,) = history.query("SELECT rows_run_id FROM observations WHERE run_id = 2")
    assert observation["rows_run_id"] == 1
    assert history.query("SELECT count(*) AS n FROM patches")[0]["n"] == 1
    report = report_view.report(history)
    assert report["servers"][0]["compliance"] == "compliant"


def test_check_mode_rolls_the_run_back(history):
    run(history, record("i-1", [row("curl.amd64:1.1")]), keep=False)
    assert history.runs() == []
    assert history.known_states() == {}


def test_a_node_recorded_twice_in_a_run_is_kept_once(history):
    recorder = run(history, record("i-1", [row("curl.amd64:1.1")]), record("i-1", [row("curl.amd64:1.1")]))
    assert recorder.counts["duplicates"] == 1
    assert history.query("SELECT count(*) AS n FROM observations")[0]["n"] == 1


def test_nodes_of_an_unreachable_scope_and_nodes_no_longer_listed_stay_in_the_report(history):
    other = ("234567890123", "us-east-1")
    run(history, record("i-1", [row("curl.amd64:1.1")]), record("i-2", [row("curl.amd64:1.1")]),
        record("i-9", [row("curl.amd64:1.1")], account=other[0], region=other[1]), collected=[(ACCOUNT, REGION), other])
    refused = Failure(other[0], other[1], "assume_role", "AccessDenied", "not authorized", "arn:...")
    recorder = run(history, record("i-1", [row("curl.amd64:1.1")]), failures=[refused])

    assert recorder.counts["not_listed"] == recorder.counts["not_collected"] == 1
    report = report_view.report(history)
    statuses = {s["instance_id"]: (s["status"], s["compliance"]) for s in report["servers"]}
    assert statuses == {"i-1": ("reported", "compliant"), "i-2": ("not_listed", "unknown"),
                        "i-9": ("not_collected", "unknown")}
    assert report["failures"] == [{"account_id": other[0], "region": other[1], "stage": "assume_role",
                                   "code": "AccessDenied", "message": "not authorized", "target": "arn:..."}]
    assert report["run"]["status"] == "partial"
    assert {n["instance_id"] for n in report["not_reported"]} == {"i-2", "i-9"}


def test_a_newer_schema_is_refused_and_a_foreign_sqlite_file_too(tmp_path):
    path = tmp_path / "history.sqlite"
    store.History.open(str(path)).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(store.HistoryError, match="schema 99 was written by a newer"):
        store.History.open(str(path))
    foreign = tmp_path / "other.sqlite"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE t (x)")
    with pytest.raises(store.HistoryError, match="not a fleetpatch.ssm history"):
        store.History.open(str(foreign))


def test_prune_keeps_the_rows_later_runs_still_use(history):
    run(history, record("i-1", [row("curl.amd64:1.1")]))
    run(history, record("i-1", rows=None))  # same state: points at run 1's rows
    history.db.execute("UPDATE runs SET started_at = '2000-01-01T00:00:00+00:00' WHERE run_id = 1")

    assert history.prune("2001-01-01T00:00:00+00:00") == 1
    assert [r["run_id"] for r in history.runs()] == [2]
    (server,) = report_view.report(history)["servers"]
    assert server["status"] == "reported"
    assert history.rows_of(1, 2)[0].version == "1.1"


# ---------------------------------------------------------------------------------------------- questions

@pytest.fixture
def three_weeks(history):
    run(history, record("i-1", [row("openssl.amd64:3.0.2-0ubuntu1.14"), row("curl.amd64:7.81.0-1ubuntu1.15")],
                        name="app-1", end=at(1)), label="week0")
    run(history, record("i-1", [row("openssl.amd64:3.0.2-0ubuntu1.15", installed=at(8)),
                                row("curl.amd64:7.81.0-1ubuntu1.15")], operation="Install", name="app-1", end=at(8),
                        installed=2), label="week1")
    run(history, record("i-1", [row("openssl.amd64:3.0.2-0ubuntu1.15"),
                                row("curl.amd64:7.81.0-1ubuntu1.16", installed=at(15))], operation="Install",
                        name="app-1", end=at(15), installed=2), label="week2")
    return history


def test_which_servers_got_a_package_by_glob_and_by_name(three_weeks):
    found = report_view.changes(three_weeks, package="openssl*", instance="app-1")
    assert [(c["run_id"], c["to_version"]) for c in found] == [(2, "3.0.2-0ubuntu1.15")]
    assert report_view.changes(three_weeks, package="openssl*", since="2026-03-10T00:00:00+00:00") == []


def test_diff_between_any_two_runs(three_weeks):
    (diff,) = report_view.node_diff(three_weeks, "app-1", 1, 3)
    assert {(c["name"], c["from_version"], c["to_version"]) for c in diff["changes"]} == {
        ("openssl", "3.0.2-0ubuntu1.14", "3.0.2-0ubuntu1.15"), ("curl", "7.81.0-1ubuntu1.15", "7.81.0-1ubuntu1.16")}


def test_the_report_compares_the_period_with_the_one_before(three_weeks):
    report = report_view.report(three_weeks, period_days=7)
    wow = report["week_over_week"]
    assert (wow["updated_packages"], wow["previous_updated_packages"], wow["newly_updated_packages"]) == (
        {"curl": 1}, {"openssl": 1}, ["curl"])
    assert [(u["name"], u["from_version"]) for u in report["servers"][0]["updated"]] == [
        ("curl", "7.81.0-1ubuntu1.15")]
    assert [point["run_id"] for point in report["trend"]] == [1, 2, 3]
    assert report["period"]["end"] == "2026-03-15T12:00:00+00:00"  # AWS's time of the run: its newest ping


def test_missing_failed_and_pending_reboot_lists_and_compliance(history):
    run(history, record("i-1", [row("curl.amd64:1.2", state="MISSING", cves="CVE-1"),
                                row("sudo.amd64:1.3", state="FAILED"),
                                row("bash.amd64:5.1", state="INSTALLED_PENDING_REBOOT")],
                        missing=1, failed=1, installed_pending_reboot=1, SecurityNonCompliantCount=3))
    (server,) = report_view.report(history)["servers"]
    assert server["compliance"] == "non_compliant"
    assert ([p["name"] for p in server["missing"]], server["missing"][0]["cve_ids"],
            [p["name"] for p in server["failed"]], [p["name"] for p in server["pending_reboot"]]) == (
        ["curl"], ["CVE-1"], ["sudo"], ["bash"])


@pytest.mark.parametrize("approvals, status, unapproved", [
    ([], "unverified", []),
    ([{"package": "openssl", "version": "3.0.2-0ubuntu1.15"}], "approved", []),
    ([{"package": "openssl*"}], "approved", []),
    ([{"package": "openssl", "version": "3.0.2-0ubuntu1.99"}], "unapproved_changes", ["openssl"]),
    ([{"package": "openssl", "instance_ids": ["db-2"]}], "unapproved_changes", ["openssl"]),
    ([{"package": "openssl", "instance_ids": ["app-1"]}], "approved", []),
])
def test_sensitive_servers_changes_are_checked_against_the_approvals(three_weeks, approvals, status, unapproved):
    three_weeks.db.execute("UPDATE observations SET patch_group = 'prod-sensitive'")
    report = report_view.report(three_weeks, run_id=2, sensitive_groups=["prod-sensitive"], approvals=approvals)
    (server,) = report["servers"]
    assert server["approval"]["status"] == status
    assert [u["name"] for u in server["approval"]["unapproved"]] == unapproved


def test_a_stale_node_is_listed_as_not_reporting(history):
    run(history, record("i-1", [row("curl.amd64:1.1")], end=at(1), ping=at(20)))
    report = report_view.report(history, stale_after_days=8)
    assert report["servers"][0]["stale"] is True
    assert [n["instance_id"] for n in report["not_reported"]] == ["i-1"]
