# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reporting end to end: the lab's weekly cycle, the patch_report role through ansible-playbook, and the lab's
own record of what its simulated agents installed (control API /install-log) to hold the report against.

The module starts its own lab (harness.start_lab, fleet tests/integration/fleets/report.yml: three accounts, two
regions) and runs the cycle once (module fixture, so once per pytest-xdist worker that runs these tests):
  week 0  Scan the auto groups (the review picks approved packages from a jammy node's Missing rows), Install
          them (every node up to date), Scan the others                      -> report run 1 (the baseline)
  week 1  +7 lab days: Scan all, Install auto groups, Install the sensitive group with an InstallOverrideList
          of exactly approved packages (NoReboot)                            -> report run 2
  week 2  +7 lab days: Scan all, Install auto groups                         -> report run 3
"""
from __future__ import annotations

import csv
import datetime
import json
import re
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

import boto3
import pytest
import yaml

import harness

sys.path.insert(0, str(harness.LAB_DIR))

from fleetlab.client import LabClient  # noqa: E402  pylint: disable=wrong-import-position

FLEET = Path(__file__).resolve().parent / "fleets" / "report.yml"
PLAYBOOK = "tests/integration/playbooks/report/collect.yml"
NOTIFY_TASKS = Path(__file__).resolve().parent / "playbooks" / "report" / "notify.yml"
MANAGEMENT, PRODUCTION, NONPRODUCTION = "123456789012", "234567890123", "345678901234"
SCOPES = ((MANAGEMENT, "eu-west-1"), (PRODUCTION, "eu-west-1"), (PRODUCTION, "us-east-1"),
          (NONPRODUCTION, "eu-west-1"))
TARGETS = [
    {"regions": ["eu-west-1", "us-east-1"]},
    {"role_arn": f"arn:aws:iam::{PRODUCTION}:role/fleetpatch-report", "regions": ["eu-west-1", "us-east-1"]},
    {"role_arn": f"arn:aws:iam::{NONPRODUCTION}:role/fleetpatch-report", "regions": ["eu-west-1"]},
]
APPROVALS_BUCKET = "fleetpatch-approvals"
JAMMY_AMI = "ami-0f0c0a2e0b22e2204"  # the image id the lab launches ubuntu-22.04 instances from (provision.py)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def utc(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(str(text).replace(" ", "T"))


@dataclass
class Lab:
    """The in-process lab: boto3 sessions per account, Run Command helpers and the control API."""

    env: dict
    control: LabClient
    workdir: Path
    clients: dict = field(default_factory=dict)

    def session(self, account: str, region: str = "eu-west-1"):
        base = boto3.Session(aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
                             aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"], region_name=region)
        if account == MANAGEMENT:
            return base
        credentials = base.client("sts", endpoint_url=self.env["AWS_ENDPOINT_URL"]).assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/fleetpatch-test", RoleSessionName="report-test")["Credentials"]
        return boto3.Session(aws_access_key_id=credentials["AccessKeyId"],
                             aws_secret_access_key=credentials["SecretAccessKey"],
                             aws_session_token=credentials["SessionToken"], region_name=region)

    def client(self, service: str, account: str, region: str = "eu-west-1"):
        key = (service, account, region)
        if key not in self.clients:  # a client costs ~0.2 s to build: one per service, account and region
            self.clients[key] = self.session(account, region).client(
                service, endpoint_url=self.env["AWS_ENDPOINT_URL"])
        return self.clients[key]

    def run_patch_baseline(self, operation: str, groups, scopes=SCOPES, **parameters) -> None:
        """AWS-RunPatchBaseline on every node of `groups` (either patch group tag key), then wait for it."""
        for account, region in scopes:
            ssm = self.client("ssm", account, region)
            for group in groups:
                for key in ("PatchGroup", "Patch Group"):
                    ssm.send_command(DocumentName="AWS-RunPatchBaseline", MaxConcurrency="100%",
                                     Targets=[{"Key": f"tag:{key}", "Values": [group]}],
                                     Parameters={"Operation": [operation],
                                                 **{k: [v] for k, v in parameters.items()}})
        for account, region in scopes:
            assert self.control.post("/commands/wait", {"account": account, "region": region,
                                                        "timeout": 120})["done"]

    def installs(self, after: str, before: str | None = None) -> list:
        """The lab's install log between two AWS times."""
        rows = self.control.get("/install-log")["installs"]
        return [row for row in rows if utc(row["installed_time"]) > utc(after)
                and (before is None or utc(row["installed_time"]) <= utc(before))]

    def report(self, history: Path, output: Path, label: str, extra: dict | None = None) -> harness.PlaybookResult:
        return harness.run_playbook(self.env, PLAYBOOK, extra_vars={
            "patch_report_targets": TARGETS, "patch_report_history_path": str(history),
            "patch_report_output_dir": str(output), "patch_report_label": label, **(extra or {})})


@dataclass
class Run:
    """One report run of the cycle: the collection's result, its report and the lab's installs before it."""

    collection: dict
    report_dir: Path
    installs: list = field(default_factory=list)

    @property
    def report(self) -> dict:
        return json.loads((self.report_dir / "report.json").read_text())

    def csv(self, name: str) -> list:
        with open(self.report_dir / name, newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))


@dataclass
class Cycle:
    lab: Lab
    history: Path
    output: Path
    runs: list
    approvals: list
    sensitive_ids: set
    scan_only_ids: set


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("report-lab")
    with harness.running_lab("report-lab-", str(FLEET), workdir / "state") as started:
        yield Lab(env=started.env, control=LabClient(started.env["FLEETLAB_CONTROL_URL"]), workdir=workdir)


def _node_ids(lab: Lab, account: str, region: str, group: str) -> set:
    reservations = lab.client("ec2", account, region).describe_instances(
        Filters=[{"Name": "tag:PatchGroup", "Values": [group]}])["Reservations"]
    return {instance["InstanceId"] for r in reservations for instance in r["Instances"]}


def _approved_packages(lab: Lab) -> list:
    """The review: one upload (every binary of one source, same version) a scanned jammy node is missing; the
    sensitive servers run jammy too, at their image's versions."""
    ssm = lab.client("ssm", MANAGEMENT)
    reservations = lab.client("ec2", MANAGEMENT).describe_instances(Filters=[
        {"Name": "tag:PatchGroup", "Values": ["prod-auto"]}, {"Name": "image-id", "Values": [JAMMY_AMI]}])
    app = reservations["Reservations"][0]["Instances"][0]["InstanceId"]
    missing = ssm.describe_instance_patches(InstanceId=app, Filters=[{"Key": "State", "Values": ["Missing"]}])
    by_version: dict = {}
    for row in missing["Patches"]:
        name_arch, version = row["Title"].split(":", 1)
        if not name_arch.startswith("linux-"):
            by_version.setdefault(version, []).append(name_arch)
    version, names = sorted(by_version.items())[0]
    return [{"id": name_arch, "title": version, "package": name_arch.rsplit(".", 1)[0], "version": version}
            for name_arch in sorted(names)]


def _report(lab: Lab, history: Path, output: Path, label: str, since: str | None, **extra) -> Run:
    result = lab.report(history, output, label, extra)
    assert result.rc == 0, result.summary
    collection = result.task("Collect patch compliance across accounts and regions into the history").result
    report_dir = Path(result.task("Name the run's report directory").result["ansible_facts"]["patch_report_dir"])
    return Run(collection, report_dir, lab.installs(since, collection["run"]["as_of"]) if since else [])


@pytest.fixture(scope="module")
def cycle(lab) -> Cycle:
    history, output = lab.workdir / "history.sqlite", lab.workdir / "reports"
    ssm = lab.client("ssm", MANAGEMENT)
    sensitive = ssm.create_patch_baseline(Name="prod-sensitive-ubuntu", OperatingSystem="UBUNTU",
                                          Description="explicit approvals only")["BaselineId"]
    ssm.register_patch_baseline_for_patch_group(BaselineId=sensitive, PatchGroup="prod-sensitive")
    lab.client("s3", MANAGEMENT).create_bucket(
        Bucket=APPROVALS_BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})

    lab.run_patch_baseline("Scan", ["prod-auto"])
    approved = _approved_packages(lab)
    lab.run_patch_baseline("Install", ["prod-auto"])
    lab.run_patch_baseline("Scan", ["prod-sensitive", "scan-only"])
    week0 = _report(lab, history, output, "week0", None, patch_report_formats=["json"])

    lab.control.post("/clock/advance", {"days": 7})
    lab.run_patch_baseline("Scan", ["prod-auto", "prod-sensitive", "scan-only"])
    lab.client("s3", MANAGEMENT).put_object(
        Bucket=APPROVALS_BUCKET, Key="week1.yaml",
        Body=yaml.safe_dump({"patches": [{"id": a["id"], "title": a["title"]} for a in approved]}))
    lab.run_patch_baseline("Install", ["prod-auto"])
    lab.run_patch_baseline("Install", ["prod-sensitive"], scopes=[(MANAGEMENT, "eu-west-1")],
                           RebootOption="NoReboot", InstallOverrideList=f"s3://{APPROVALS_BUCKET}/week1.yaml")
    approvals = [{"package": a["package"], "version": a["version"], "approved_by": "reviewer@example.com",
                  "ticket": "CHG-1001"} for a in approved]
    week1 = _report(lab, history, output, "week1", week0.collection["run"]["as_of"],
                    patch_report_approvals=approvals)

    lab.control.post("/clock/advance", {"days": 7})
    lab.run_patch_baseline("Scan", ["prod-auto", "prod-sensitive", "scan-only"])
    lab.run_patch_baseline("Install", ["prod-auto"])
    week2 = _report(lab, history, output, "week2", week1.collection["run"]["as_of"],
                    patch_report_approvals=approvals, patch_report_formats=["json", "csv"])
    return Cycle(lab, history, output, [week0, week1, week2], approvals,
                 _node_ids(lab, MANAGEMENT, "eu-west-1", "prod-sensitive"),
                 _node_ids(lab, MANAGEMENT, "eu-west-1", "scan-only"))


def _reported_updates(run: Run) -> set:
    """(instance, package, from, to) of every update the run's updates.csv lists (the user's view)."""
    return {(row["instance_id"], _package_name(row["package"]), row["from_version"] or None, row["to_version"])
            for row in run.csv("updates.csv") if row["kind"] != "removed"}


def _package_name(package: str) -> str:
    """updates.csv names Linux packages name.arch and Windows updates by KB; the lab's log by name and KB."""
    return package if re.fullmatch(r"KB\d+", package) else package.rsplit(".", 1)[0]


def _lab_updates(installs: list) -> set:
    """The same tuples from the lab's install log. Windows: a KB has no from-version in Patch Manager's rows
    (each KB is its own patch); the lab logs the superseded KB as from_version, which the report cannot know."""
    return {(row["node_id"], row["package"], None if row["package"].startswith("KB") else row["from_version"],
             row["to_version"]) for row in installs}


def test_week_report_lists_exactly_what_the_lab_installed(cycle):
    week1 = cycle.runs[1]
    assert week1.installs, "the cycle installed nothing: the test would prove nothing"

    assert _reported_updates(week1) == _lab_updates(week1.installs)
    report = week1.report
    assert report["totals"]["updated_packages"] == len(week1.installs)
    assert week1.collection["totals"]["changes"] == len(week1.installs)
    servers = {s["instance_id"]: s for s in report["servers"]}
    for instance_id in cycle.scan_only_ids:
        assert servers[instance_id]["updated"] == [], "a scanned-only server shows an update"
    updated = {row["node_id"] for row in week1.installs}
    assert {s["instance_id"] for s in report["servers"] if s["updated"]} == updated


def test_sensitive_servers_show_exactly_the_approved_packages(cycle):
    week1 = cycle.runs[1]
    installed = [row for row in week1.installs if row["node_id"] in cycle.sensitive_ids]
    assert installed, "the approved packages were installed on no sensitive server"
    approved = {(a["package"], a["version"]) for a in cycle.approvals}
    assert {(row["package"], row["to_version"]) for row in installed} <= approved

    servers = [s for s in week1.report["servers"] if s["instance_id"] in cycle.sensitive_ids]
    for server in servers:
        mine = {(u["name"], u["to_version"]) for u in server["updated"]}
        lab = {(row["package"], row["to_version"]) for row in installed if row["node_id"] == server["instance_id"]}
        assert mine == lab
        assert server["approval"]["status"] == ("approved" if lab else "unchanged")
        assert server["approval"]["install_override_list"] == f"s3://{APPROVALS_BUCKET}/week1.yaml"
        assert {p["name"] for p in server["pending_reboot"]} == {pair[0] for pair in lab}  # NoReboot
    assert week1.report["totals"]["sensitive_unapproved"] == 0


@dataclass
class Answers:
    """What fleetpatch.ssm.patch_history_info answered about week 1 (one playbook run for several tests)."""

    report: dict            # the report of week 1, with the first approval's version replaced
    run_changes: list       # what week 1's run installed
    package_changes: list   # which servers got `package` in the last 10 days
    package: str


@pytest.fixture(scope="module")
def answers(cycle) -> Answers:
    week1 = cycle.runs[1]
    package = sorted(row["package"] for row in week1.installs)[0]
    wrong_version = [dict(cycle.approvals[0], version="0:not-the-approved-version"), *cycle.approvals[1:]]
    result = harness.run_playbook(cycle.lab.env, "tests/integration/playbooks/report/query.yml", extra_vars={
        "history_path": str(cycle.history), "run_id": week1.collection["run"]["run_id"],
        "approvals": wrong_version, "package": package, "days": 10})
    assert result.rc == 0, result.summary
    return Answers(result.task("Build the report").result["report"],
                   result.task("What the run installed").result["changes"],
                   result.task("Which servers got the package").result["changes"], package)


def test_an_unapproved_change_on_a_sensitive_server_is_named(cycle, answers):
    week1, first = cycle.runs[1], cycle.approvals[0]
    flagged = {(s["instance_id"], u["name"]) for s in answers.report["servers"] if s["sensitive"]
               for u in s["approval"]["unapproved"]}
    expected = {(row["node_id"], row["package"]) for row in week1.installs
                if row["node_id"] in cycle.sensitive_ids and row["package"] == first["package"]}
    assert expected, "the first approved package was installed nowhere: the test would prove nothing"
    assert flagged == expected
    assert answers.report["totals"]["sensitive_unapproved"] == len({pair[0] for pair in expected})


def test_history_answers_what_a_run_installed_and_which_servers_got_a_package(cycle, answers):
    week1 = cycle.runs[1]
    assert {(c["instance_id"], _package_name(c["package"]), c["to_version"]) for c in answers.run_changes} == {
        (row["node_id"], row["package"], row["to_version"]) for row in week1.installs}
    expected = {row["node_id"] for run in cycle.runs[1:] for row in run.installs if row["package"] == answers.package}
    assert {c["instance_id"] for c in answers.package_changes} == expected


def test_week_over_week_names_the_newly_updated_packages(cycle):
    week1, week2 = cycle.runs[1], cycle.runs[2]
    assert week2.installs, "nothing was installed in week 2"
    this_week = {_package_name(row["package"]) for row in week2.installs}
    last_week = {_package_name(row["package"]) for row in week1.installs}

    wow = week2.report["week_over_week"]
    assert set(wow["updated_packages"]) == this_week
    assert set(wow["previous_updated_packages"]) == last_week
    assert set(wow["newly_updated_packages"]) == this_week - last_week
    assert wow["compared_run_id"] == week1.collection["run"]["run_id"]
    assert _reported_updates(week2) == _lab_updates(week2.installs)


def test_report_files_and_history(cycle):
    assert sorted(p.name for p in cycle.runs[1].report_dir.iterdir()) == [
        "missing.csv", "report.html", "report.json", "servers.csv", "updates.csv"]
    week2 = cycle.runs[2]
    assert sorted(p.name for p in week2.report_dir.iterdir()) == [  # patch_report_formats: [json, csv]
        "missing.csv", "report.json", "servers.csv", "updates.csv"]
    report = week2.report
    assert [point["run_id"] for point in report["trend"]] == [1, 2, 3]
    assert len(week2.csv("servers.csv")) == report["totals"]["nodes"] == 21
    with sqlite3.connect(cycle.history) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("1",)
        assert [label for (label,) in db.execute("SELECT label FROM runs ORDER BY run_id")] == [
            "week0", "week1", "week2"]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_html_report_opens_in_headless_chromium_and_shows_the_updates(cycle, tmp_path):
    week1 = cycle.runs[1]
    page = week1.report_dir / "report.html"
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         "--enable-logging=stderr", "--v=0", "--virtual-time-budget=2000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == [], "\n".join(console)
    dom = proc.stdout
    assert re.search(r'id="shown">\d+ of \d+ servers<', dom)  # the filter script ran: it wrote the counter
    rows = dom.split('<tr class="server"')[1:]  # one chunk per server row (rows nest package tables)
    assert len(rows) == week1.report["totals"]["nodes"]
    shown = set()
    for row in rows:
        instance = re.search(r"<small>((?:i|mi)-[0-9a-f]+)", row).group(1)
        updates = re.findall(r'<span class="package">(.*?)</span> <span class="from">(.*?)</span> → '
                             r'<span class="to">(.*?)</span>', row)
        for package, old, new in updates:
            shown.add((instance, package, None if old in ("new", "not recorded") else old, new))
    assert shown == _lab_updates(week1.installs)


def test_history_kept_in_s3_and_runs_exported_for_athena(cycle, tmp_path):
    """An AWX-like job: no local history; the role downloads it from S3, records the run, uploads it back, and
    exports the run as JSON Lines under <prefix>/<dataset>/dt=<date>/account=<id>/run-<id>.json."""
    s3, bucket = cycle.lab.client("s3", MANAGEMENT), "fleetpatch-reports"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.upload_file(str(cycle.history), bucket, "history/report-history.sqlite")
    local = tmp_path / "job" / "report-history.sqlite"  # does not exist: a fresh container

    result = cycle.lab.report(local, tmp_path / "reports", "awx", {
        "patch_report_history_s3_bucket": bucket, "patch_report_history_s3_key": "history/report-history.sqlite",
        "patch_report_s3_bucket": bucket, "patch_report_s3_prefix": "athena", "patch_report_formats": ["json"]})

    assert result.rc == 0, result.summary
    run = result.task("Collect patch compliance across accounts and regions into the history").result["run"]
    assert run["run_id"] == len(cycle.runs) + 1  # the history came from S3
    uploaded = tmp_path / "uploaded.sqlite"
    s3.download_file(bucket, "history/report-history.sqlite", str(uploaded))
    with sqlite3.connect(uploaded) as db:
        assert db.execute("SELECT max(run_id) FROM runs").fetchone() == (run["run_id"],)
    date = run["as_of"][:10]
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="athena/")["Contents"])
    assert keys == sorted(f"athena/{dataset}/dt={date}/account={account}/run-{run['run_id']}.json"
                          for dataset in ("nodes", "patches", "updates")
                          for account in (MANAGEMENT, PRODUCTION, NONPRODUCTION))
    nodes = [json.loads(line) for account in (MANAGEMENT, PRODUCTION, NONPRODUCTION) for line in s3.get_object(
        Bucket=bucket, Key=f"athena/nodes/dt={date}/account={account}/run-{run['run_id']}.json")[
        "Body"].read().decode().splitlines()]
    assert len(nodes) == 21 and {n["run_id"] for n in nodes} == {run["run_id"]}
    assert {(n["account_id"], n["instance_id"]) for n in nodes} == {
        (s["account_id"], s["instance_id"]) for s in cycle.runs[2].report["servers"]}


def test_throttled_and_one_account_unreachable(cycle, tmp_path):
    """30% of SSM calls throttled, AssumeRole into one account refused (the lab's /sts/deny: AccessDenied, as
    AWS answers when the role's trust policy does not allow the caller): the rest is collected, the account is
    named, every node of the others is there exactly once, and the refused account's nodes are listed."""
    unreachable = _node_ids(cycle.lab, NONPRODUCTION, "eu-west-1", "prod-auto")
    history = tmp_path / "history.sqlite"
    shutil.copy(cycle.history, history)
    record = tmp_path / "notified.json"
    cycle.lab.control.post("/sts/deny", {"accounts": [NONPRODUCTION]})
    cycle.lab.control.post("/throttle", {"ratio": 0.3, "seed": 7})
    try:
        result = cycle.lab.report(history, tmp_path / "reports", "throttled", {
            "patch_report_notify_tasks": str(NOTIFY_TASKS), "notify_record_file": str(record),
            "patch_report_fail_on_failures": True})
        throttled = cycle.lab.control.get("/throttle")["counts"]["throttled"]
    finally:
        cycle.lab.control.post("/throttle", {})
        cycle.lab.control.post("/sts/deny", {"accounts": []})
    assert throttled > 0, "the lab throttled nothing: the test would prove nothing"

    assert result.rc == 2, result.summary  # patch_report_fail_on_failures: the run was not clean
    assert result.task("Fail when an account or region could not be read").status == "failed"
    collection = result.task("Collect patch compliance across accounts and regions into the history").result
    assert collection["run"]["status"] == "partial"
    assert [(f["account_id"], f["region"], f["stage"], f["code"]) for f in collection["failures"]] == [
        (NONPRODUCTION, "eu-west-1", "assume_role", "AccessDenied")]
    notified = json.loads(record.read_text())
    assert [f["account_id"] for f in notified["failures"]] == [NONPRODUCTION]

    report = json.loads((Path(notified["report_dir"]) / "report.json").read_text())
    keys = [(s["account_id"], s["region"], s["instance_id"]) for s in report["servers"]]
    assert len(keys) == len(set(keys)), "a node is listed twice"
    for account, region in SCOPES[:3]:
        listed = {i["InstanceId"] for page in cycle.lab.client("ssm", account, region).get_paginator(
            "describe_instance_information").paginate() for i in page["InstanceInformationList"]}
        reported = {s["instance_id"] for s in report["servers"]
                    if (s["account_id"], s["region"]) == (account, region) and s["status"] == "reported"}
        assert reported == listed
    assert {s["instance_id"] for s in report["servers"] if s["account_id"] == NONPRODUCTION} == unreachable
    assert {s["status"] for s in report["servers"] if s["account_id"] == NONPRODUCTION} == {"not_collected"}
    assert report["failures"][0]["account_id"] == NONPRODUCTION
