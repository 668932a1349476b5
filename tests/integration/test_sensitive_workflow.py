# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sensitive-server workflow (role fleetpatch.ssm.sensitive_patching) through its playbooks against the lab:
review -> approve -> install -> verify, the guard, and the Ubuntu soak.

Each test works in an AWS account of its own (the `account` fixture) whose sensitive group is set up the way the
patch policy leaves it: baselines that approve nothing, registered for `prod-sensitive`. Servers join as hybrid
nodes (an activation carrying the PatchGroup tag, then the agent's registration through the lab's control API),
so they are managed nodes with installed packages from the lab's catalogs. What the playbooks report is compared
with what the lab's simulated agents really installed (control API `/install-log`).
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

import harness
from accounts import Fleet  # registers hybrid nodes and reads the lab's install log

GROUP = "prod-sensitive"
REVIEW = "playbooks/sensitive_review.yml"
APPROVE = "playbooks/sensitive_approve.yml"
INSTALL = "playbooks/sensitive_install.yml"
SOAK = "tests/integration/playbooks/sensitive/soak.yml"
RUN_STEPS = "tests/integration/playbooks/run_patch_baseline/steps.yml"
OPERATING_SYSTEMS = {"ubuntu-22.04": "UBUNTU", "amzn-2023": "AMAZON_LINUX_2023"}


# ---------------------------------------------------------------------------------------------- the lab

@contextlib.contextmanager
def _lab_serving_inventory(state_dir: Path):
    """A lab whose server also imports fleetlab.inventory (ListInventoryEntries)."""
    launcher = "import sys; from fleetlab import inventory; from fleetlab.server import main; sys.exit(main(sys.argv[1:]))"
    with open(state_dir.parent / "lab-inventory.log", "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-c", launcher, "--state-dir", str(state_dir), "--fleet", "none", "--no-azure"],
            env=dict(os.environ, PYTHONPATH=str(harness.LAB_DIR)), stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not (state_dir / "ready").exists():
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the lab did not start; see {state_dir.parent / 'lab-inventory.log'}")
            time.sleep(0.2)
        yield harness.Lab(state_dir=state_dir, env=harness.read_env_file(state_dir / "env.sh"))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def lab(lab, tmp_path_factory):
    """The session's lab when it serves SSM Inventory; else one of this module's that does.

    Until fleetlab/handlers.py imports fleetlab.inventory, the session's lab does not serve ListInventoryEntries;
    this fixture (and run_playbook below) then go away.
    """
    with urllib.request.urlopen(lab.env["FLEETLAB_CONTROL_URL"] + "/health", timeout=30) as response:
        served = json.loads(response.read())["operations"]
    if "ListInventoryEntries" in served:
        yield lab
        return
    with _lab_serving_inventory(tmp_path_factory.mktemp("lab-inventory") / "state") as own:
        yield own


@pytest.fixture(scope="module")
def run_playbook(lab):
    return functools.partial(harness.run_playbook, lab.env)


# ---------------------------------------------------------------------------------------------- the world

class Sensitive(Fleet):
    """A fresh account with the sensitive group as the patch policy leaves it, and the workflow's playbooks."""

    def __init__(self, account, run_playbook, history: Path) -> None:
        super().__init__(account)
        self.run_playbook, self.history = run_playbook, history
        self.reviewed: set = set()
        self.bucket = f"approvals-{self.account_id}"
        self.client("s3").create_bucket(Bucket=self.bucket,
                                        CreateBucketConfiguration={"LocationConstraint": self.region})
        self.own_baselines = {}
        for operating_system in OPERATING_SYSTEMS.values():
            baseline_id = account.ssm.create_patch_baseline(
                Name=f"sensitive-{operating_system.lower()}", OperatingSystem=operating_system,
                Description="explicit approvals only")["BaselineId"]
            account.ssm.register_patch_baseline_for_patch_group(BaselineId=baseline_id, PatchGroup=GROUP)
            self.own_baselines[operating_system] = baseline_id

    def play(self, playbook: str, as_account: bool = True, **extra_vars) -> harness.PlaybookResult:
        """Run a playbook of the workflow with the account's credentials (else the lab's own, which assume roles)."""
        variables = dict({"sensitive_patching_history_dir": str(self.history),
                          "sensitive_patching_operating_systems": sorted(OPERATING_SYSTEMS.values()),
                          "sensitive_patching_s3_bucket": "approvals-{account_id}",
                          "sensitive_patching_poll_interval": 1,
                          # The lab answers inventory at once: no need to poll it every minute like real agents.
                          "sensitive_patching_inventory_poll": 2}, **extra_vars)
        return self.run_playbook(playbook, extra_vars=variables, env=self.env if as_account else None)

    def review(self) -> dict:
        result = self.play(REVIEW)
        assert result.rc == 0, result.summary
        (run_dir,) = [path for path in (self.history / "reviews").iterdir() if path.name not in self.reviewed]
        self.reviewed.add(run_dir.name)
        return yaml.safe_load((run_dir / "review.yml").read_text())

    def installs(self) -> dict:
        """{node: {package: version}} of everything the lab's agents installed in this account."""
        installed: dict = {}
        for row in self.control(f"/install-log?account={self.account_id}")["installs"]:
            installed.setdefault(row["node_id"], {})[row["package"]] = row["to_version"]
        return installed

    def registrations(self) -> dict:
        return {mapping["BaselineIdentity"]["OperatingSystem"]: mapping["BaselineIdentity"]["BaselineId"]
                for mapping in self.account.ssm.describe_patch_groups()["Mappings"] if mapping["PatchGroup"] == GROUP}

    def write(self, name: str, document: dict) -> str:
        path = self.history / "inbox" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(document))
        return str(path)


@pytest.fixture
def sensitive(account, run_playbook, tmp_path) -> Sensitive:
    return Sensitive(account, run_playbook, tmp_path / "history")


def package_name(kb_id: str) -> str:
    return kb_id.rsplit(".", 1)[0]


def offered(review: dict, instance_id: str) -> dict:
    """{package name: candidate version} the review offers a server (the install log names packages)."""
    (server,) = [server for server in review["servers"] if server["instance_id"] == instance_id]
    return {package_name(entry["package"]): entry["candidate_version"].split(":", 1)[-1]
            if server["os_family"] != "UBUNTU" else entry["candidate_version"] for entry in server["missing"]}


def failure_message(result: harness.PlaybookResult) -> str:
    """The message of the task that failed the play (the last failure: rescued ones come before it)."""
    return [task for task in result.tasks if task.status == "failed"][-1].result["msg"]


# ---------------------------------------------------------------------------------------------- tests

def test_nothing_installs_on_sensitive_servers_without_an_approval(sensitive):
    nodes = sensitive.register("ubuntu-22.04", 2, {"PatchGroup": GROUP})

    # The module's own guard (what patch_cycle passes): targeted by instance id, the sensitive nodes are found by
    # their tag and the Install is refused before SendCommand.
    guarded = sensitive.run_playbook(RUN_STEPS, env=sensitive.env, extra_vars={"steps": [{
        "step": "install by instance id, guarded", "spec": {"operation": "Install", "instance_ids": nodes,
                                                            "protected_patch_groups": [GROUP], "poll_interval": 1}}]})
    assert guarded.rc == 0, guarded.summary
    refusal = guarded.task("install by instance id, guarded")
    assert refusal.status == "failed" and "Install refused, nothing was sent: " + ", ".join(nodes) in \
        refusal.result["msg"]
    assert sensitive.account.ssm.list_commands()["Commands"] == []

    mistaken = sensitive.run_playbook(RUN_STEPS, env=sensitive.env, extra_vars={"steps": [{
        "step": "install the group by mistake", "spec": {"operation": "Install", "patch_group": GROUP,
                                                         "poll_interval": 1}}]})
    refused = sensitive.play(INSTALL)

    assert mistaken.rc == 0, mistaken.summary
    run = mistaken.task("install the group by mistake").result
    assert run["clean"] and sorted(node["instance_id"] for node in run["nodes"]) == nodes
    assert refused.rc != 0 and "Install refused: sensitive servers are installed only with a recorded approval" in \
        failure_message(refused)
    assert sensitive.installs() == {}  # the baselines approve nothing; the install playbook refused


def test_review_approve_install_verify_exactly_the_approved_set(sensitive):
    first, second = sensitive.register("ubuntu-22.04", 2, {"PatchGroup": GROUP})
    (amazon,) = sensitive.register("amzn-2023", 1, {"PatchGroup": GROUP})
    (bystander,) = sensitive.register("ubuntu-22.04", 1, {"PatchGroup": "prod-auto"})

    review = sensitive.review()

    assert sensitive.registrations() == sensitive.own_baselines  # the review baselines were for the scan only
    assert {server["instance_id"] for server in review["servers"]} == {first, second, amazon}
    reviewed = {server["instance_id"]: server for server in review["servers"]}
    assert all(entry["installed_version"] and entry["candidate_version"] for entry in reviewed[first]["missing"])
    run_dir = sensitive.history / "reviews" / review["run_id"]
    assert {"review.yml", "review.md", "review.html"} <= {path.name for path in run_dir.iterdir()}

    # Weeks pass: newer versions are published after the review; the approval still names the review's.
    sensitive.control("/clock/advance", {"days": 35})
    approved = sensitive.play(APPROVE, sensitive_patching_run_id=review["run_id"],
                              sensitive_patching_approval_file=str(sensitive.history / "inbox" / "CHG-1.yml"),
                              sensitive_patching_generate={"approval_id": "CHG-1", "reviewer": "jane.doe@example.com",
                                                           "reason": "Monthly patching", "servers": [first]})
    openssl = sensitive.play(APPROVE, sensitive_patching_approval_file=sensitive.write("CHG-2.yml", {
        "approval_id": "CHG-2", "review_run_id": review["run_id"], "reviewer": "john.roe@example.com",
        "reason": "OpenSSL security update", "approved_at": review["created_at"], "expires_at": "2099-01-01T00:00:00Z",
        "packages": [{"package": entry["package"], "version": entry["candidate_version"], "servers": [amazon]}
                     for entry in reviewed[amazon]["missing"] if entry["package"].startswith("openssl")]}))
    assert approved.rc == 0, approved.summary
    assert openssl.rc == 0, openssl.summary
    record = sensitive.history / "approvals" / review["run_id"] / "CHG-1.yml"
    assert record.exists() and oct(record.stat().st_mode & 0o777) == "0o444"
    assert sensitive.account.tags(sensitive.own_baselines["UBUNTU"])["fleetpatch:last-approval"] == "CHG-2"

    installed = [sensitive.play(INSTALL, sensitive_patching_approval_file=str(path)) for path in (
        sensitive.history / "inbox" / "CHG-1.yml", sensitive.history / "inbox" / "CHG-2.yml")]

    for result in installed:
        assert result.rc == 0, result.summary
    done = sensitive.installs()
    assert set(done) == {first, amazon}  # exactly the approved servers
    expected_first = offered(review, first)
    assert {package: version for package, version in done[first].items() if package in expected_first} == \
        expected_first  # every approved package, at the review's version, not a newer one
    assert set(done[amazon]) == {package_name(entry["package"]) for entry in reviewed[amazon]["missing"]
                                 if entry["package"].startswith("openssl")}  # nothing else on that server
    verifications = sorted((sensitive.history / "reviews" / review["run_id"]).glob("verification-*.yml"))
    assert [yaml.safe_load(path.read_text())["status"] for path in verifications] == ["verified", "verified"]

    later = sensitive.review()  # the next review shows what was published after the first one
    newer = {package for package, version in offered(later, first).items()
             if package in expected_first and version != expected_first[package]}
    assert newer, "some approved package should have a newer version by now"
    assert bystander not in done


def test_approvals_of_unknown_runs_or_packages_are_refused(sensitive):
    (node,) = sensitive.register("ubuntu-22.04", 1, {"PatchGroup": GROUP})
    review = sensitive.review()
    entry = next(server for server in review["servers"] if server["instance_id"] == node)["missing"][0]
    base = {"approval_id": "CHG-9", "review_run_id": review["run_id"], "reviewer": "jane", "reason": "r",
            "approved_at": review["created_at"], "expires_at": "2099-01-01T00:00:00Z",
            "packages": [{"package": entry["package"], "version": entry["candidate_version"]}]}

    unknown_run = sensitive.play(APPROVE, sensitive_patching_approval_file=sensitive.write(
        "run.yml", dict(base, review_run_id="20200101T000000Z-00000000")))
    unknown_package = sensitive.play(APPROVE, sensitive_patching_approval_file=sensitive.write(
        "package.yml", dict(base, packages=[{"package": "nosuch.amd64", "version": "1.0"}])))

    assert unknown_run.rc != 0 and "review run 20200101T000000Z-00000000 is unknown" in failure_message(unknown_run)
    assert unknown_package.rc != 0
    assert f"nosuch.amd64 is not in review {review['run_id']}" in failure_message(unknown_package)
    assert not (sensitive.history / "approvals").exists()  # nothing was recorded


def test_ubuntu_soak_installs_candidates_first_seen_n_days_ago(sensitive):
    (node,) = sensitive.register("ubuntu-22.04", 1, {"PatchGroup": GROUP})
    soak = {"sensitive_patching_soak_days": 7, "sensitive_patching_operating_systems": ["UBUNTU"]}

    fresh = sensitive.play(SOAK, **soak)
    assert fresh.rc == 0, fresh.summary
    assert sensitive.installs() == {}  # everything was first seen just now
    first = yaml.safe_load(next((sensitive.history / "reviews").iterdir()).joinpath("review.yml").read_text())

    sensitive.control("/clock/advance", {"days": 8})
    soaked = sensitive.play(SOAK, **soak)

    assert soaked.rc == 0, soaked.summary
    before = offered(first, node)
    installed = sensitive.installs()[node]
    assert installed and all(before.get(package) == version for package, version in installed.items()
                             if package in before)  # only versions known for 8 days, none newer


def test_an_account_whose_role_cannot_be_assumed_is_named_and_the_others_are_reviewed(sensitive):
    nodes = sensitive.register("ubuntu-22.04", 1, {"PatchGroup": GROUP})
    unreachable = "399000000001"
    sensitive.control("/sts/deny", {"accounts": [unreachable]})
    try:
        result = sensitive.play(REVIEW, as_account=False, sensitive_patching_accounts=[
            {"name": "production", "role_arn": f"arn:aws:iam::{sensitive.account_id}:role/fleetpatch-sensitive"},
            {"name": "unreachable", "role_arn": f"arn:aws:iam::{unreachable}:role/fleetpatch-sensitive"}])
    finally:
        sensitive.control("/sts/deny", {"accounts": []})

    assert result.rc != 0
    message = failure_message(result)
    assert f"did not complete in unreachable ({unreachable}) (Assume the account's role" in message, message
    assert "AccessDenied" in message
    (run_dir,) = (sensitive.history / "reviews").iterdir()  # written before the play failed
    review = yaml.safe_load((run_dir / "review.yml").read_text())
    assert [server["instance_id"] for server in review["servers"]] == nodes
    assert [failure["account"] for failure in review["failures"]] == [f"unreachable ({unreachable})"]
