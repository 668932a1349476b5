# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue 4's acceptance: the weekly cycle end to end on the lab's reference fleet (3 accounts x 2 regions).

The reference policy is applied once; then, the lab clock advanced a week at a time (the simulated vendors publish
updates as it moves), two weekly cycles run through the playbooks an AWX schedule runs (weekly_scan.yml, then
weekly_install.yml); then a sensitive review, an approval generated from it for a subset of servers and packages,
and the controlled install. The tests run in file order on one lab (`--dist loadfile` keeps the file on one
worker); each reads the state the previous one left.

Expectations never come from the collection: what each node's baseline approves is what the lab's simulated agent
reported Missing after the week's scan (DescribeInstancePatches, evaluated by the lab at the scan's time, the same
lab time as the install), what a version needs installed with it comes from the lab's package catalogs, what was
installed from the lab's install log (control API /install-log), reboots from the agents' command output
(ListCommandInvocations) and compliance (DescribeInstancePatchStates).

The second week is also the failure path: an account whose role refuses AssumeRole (/sts/deny), an agent that lost
its connection (/nodes/online) and a node whose install fails (/nodes/fail), besides the few offline and failing
nodes the reference fleet seeds. The run must finish everywhere else, name each failure and exit non-zero.
"""
from __future__ import annotations

import contextlib
import datetime
import functools
import json
import re
import sys
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
import yaml

import harness

sys.path.insert(0, str(harness.LAB_DIR))

from fleetlab import catalog  # noqa: E402  pylint: disable=wrong-import-position
from fleetlab.client import LabClient  # noqa: E402  pylint: disable=wrong-import-position
from fleetlab.platforms import PLATFORMS  # noqa: E402  pylint: disable=wrong-import-position

POLICY, SCAN, INSTALL = "playbooks/policy.yml", "playbooks/weekly_scan.yml", "playbooks/weekly_install.yml"
REVIEW, APPROVE = "playbooks/sensitive_review.yml", "playbooks/sensitive_approve.yml"
SENSITIVE_INSTALL = "playbooks/sensitive_install.yml"
REFERENCE = yaml.safe_load((harness.REPO / "playbooks/vars/reference_policy.yml").read_text())

MANAGEMENT, PRODUCTION, NONPRODUCTION = "123456789012", "234567890123", "345678901234"
REGIONS = ("eu-west-1", "us-east-1")
SENSITIVE = "prod-sensitive"
AUTO_GROUPS = ("prod-auto", "jump-log", "nonprod")
TAG_KEYS = ("PatchGroup", "Patch Group")
FAIL_TASK = "Fail naming everything that did not go right"
REBOOTED = "Rebooting the instance"
PLATFORM_OF = {(p.platform_name, p.version): p for p in PLATFORMS.values()}
AFTER_THE_REVIEW = datetime.timedelta(days=14)  # between the sensitive review and its approved install


# ---------------------------------------------------------------------------------------------- the lab's view

@dataclass(frozen=True)
class Node:
    node_id: str
    account: str
    region: str
    group: str | None
    platform: object  # fleetlab.platforms.Platform
    online: bool


class World:
    """The reference fleet as AWS and the lab show it (never through the collection)."""

    def __init__(self, lab: harness.Lab, workdir: Path) -> None:
        self.lab, self.workdir = lab, workdir
        self.control = LabClient(lab.env["FLEETLAB_CONTROL_URL"])
        self.run = functools.partial(harness.run_playbook, lab.env)
        self._sessions: dict = {}
        self._clients: dict = {}
        self.log_mark = 0
        self.nodes = self._read_nodes()

    def session(self, account: str) -> boto3.Session:
        if account not in self._sessions:
            env = self.lab.env
            base = boto3.Session(aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                                 aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name=REGIONS[0])
            if account != MANAGEMENT:
                credentials = base.client("sts", endpoint_url=env["AWS_ENDPOINT_URL"]).assume_role(
                    RoleArn=f"arn:aws:iam::{account}:role/acceptance", RoleSessionName="acceptance")["Credentials"]
                base = boto3.Session(aws_access_key_id=credentials["AccessKeyId"],
                                     aws_secret_access_key=credentials["SecretAccessKey"],
                                     aws_session_token=credentials["SessionToken"], region_name=REGIONS[0])
            self._sessions[account] = base
        return self._sessions[account]

    def client(self, service: str, account: str, region: str):
        """One client per service, account and region (building one per node read would cost more than the reads)."""
        key = (service, account, region)
        if key not in self._clients:
            endpoint = self.lab.env["AWS_ENDPOINT_URL"]
            self._clients[key] = self.session(account).client(service, region_name=region, endpoint_url=endpoint)
        return self._clients[key]

    def scopes(self):
        return [(account, region) for account in self.lab.accounts for region in REGIONS]

    def _read_nodes(self) -> dict:
        """Every managed node with its patch group (either tag key), platform and agent status."""
        nodes, groups = {}, {}
        for account, region in self.scopes():
            ssm = self.client("ssm", account, region)
            for group in (SENSITIVE, *AUTO_GROUPS):
                for key in TAG_KEYS:
                    for info in _listed(ssm, [{"Key": f"tag:{key}", "Values": [group]}]):
                        groups[info["InstanceId"]] = group
            for info in _listed(ssm, []):
                platform = PLATFORM_OF[(info["PlatformName"], info["PlatformVersion"])]
                nodes[info["InstanceId"]] = Node(info["InstanceId"], account, region, groups.get(info["InstanceId"]),
                                                 platform, info["PingStatus"] == "Online")
        return nodes

    def members(self, *groups: str) -> list:
        return [node for node in self.nodes.values() if node.group in groups]

    def approved_missing(self, node: Node) -> dict:
        """{package: version} the node's baseline approves and it lacks, as the lab's agent reported at the scan."""
        ssm = self.client("ssm", node.account, node.region)
        pages = ssm.get_paginator("describe_instance_patches").paginate(
            InstanceId=node.node_id, Filters=[{"Key": "State", "Values": ["Missing"]}])
        return dict(_offered(row, node.platform) for page in pages for row in page["Patches"])

    def installs_since_mark(self) -> dict:
        """{node: {package: (from version, to version)}} the lab's agents installed since the last `mark()`."""
        rows = self.control.get("/install-log")["installs"][self.log_mark:]
        installed: dict = defaultdict(dict)
        for row in rows:
            installed[row["node_id"]][row["package"]] = (row["from_version"], row["to_version"])
        return dict(installed)

    def mark(self) -> None:
        self.log_mark = len(self.control.get("/install-log")["installs"])

    def invocation_outputs(self, comment_prefix: str) -> dict:
        """{node: (status details, output)} of every command whose comment starts with `comment_prefix`."""
        outputs = {}
        for account, region in self.scopes():
            ssm = self.client("ssm", account, region)
            for page in ssm.get_paginator("list_commands").paginate():
                for command in page["Commands"]:
                    if not command.get("Comment", "").startswith(comment_prefix):
                        continue
                    for invocations in ssm.get_paginator("list_command_invocations").paginate(
                            CommandId=command["CommandId"], Details=True):
                        for invocation in invocations["CommandInvocations"]:
                            output = "".join(plugin.get("Output") or "" for plugin in invocation["CommandPlugins"])
                            outputs[invocation["InstanceId"]] = (invocation["StatusDetails"], output)
        return outputs

    def patch_states(self, nodes: list) -> dict:
        states = {}
        for (account, region), members in _by_scope(nodes).items():
            ssm = self.client("ssm", account, region)
            for start in range(0, len(members), 50):
                ids = [node.node_id for node in members[start:start + 50]]
                states.update({state["InstanceId"]: state for state in ssm.describe_instance_patch_states(
                    InstanceIds=ids)["InstancePatchStates"]})
        return states

    def lab_now(self) -> datetime.datetime:
        return datetime.datetime.fromisoformat(self.control.get("/clock")["now"])


def _listed(ssm, filters: list) -> list:
    pages = ssm.get_paginator("describe_instance_information").paginate(Filters=filters, MaxResults=50)
    return [info for page in pages for info in page["InstanceInformationList"]]


def _by_scope(nodes: list) -> dict:
    scopes = defaultdict(list)
    for node in nodes:
        scopes[(node.account, node.region)].append(node)
    return scopes


def _offered(row: dict, platform) -> tuple:
    """(package, version) of a Missing row: the KB on Windows; name and the title's version on Linux (YUM titles
    carry `epoch:`, which the install log leaves out when it is 0)."""
    if platform.is_windows:
        return row["KBId"], row["KBId"]
    version = row["Title"][len(row["KBId"]) + 1:]
    return row["KBId"].rsplit(".", 1)[0], _plain(version)


def _plain(version: str) -> str:
    return re.sub(r"^0:", "", version)


def dependencies(node: Node, approved: dict) -> dict:
    """{package: version} the lab's catalog says the approved versions need installed with them."""
    if node.platform.is_windows:
        return {}
    packages = catalog.catalog_for(node.platform).packages
    return {name: version for package, wanted in approved.items()
            for name, version in packages[package].record(wanted).requires}


def has_newer(package, version: str, when: datetime.datetime) -> bool:
    """Whether the lab's catalog publishes a version of `package` newer than `version` (a version it knows) by
    `when`."""
    assert package.record(version) is not None, (package.name, version)
    return bool(package.newer(version, released_by=when))


def cycle_vars(workdir: Path, **changes) -> dict:
    return dict(REFERENCE, patch_cycle_results_dir=str(workdir / "runs"), patch_cycle_poll_interval=1, **changes)


def sensitive_vars(workdir: Path, **changes) -> dict:
    return dict(REFERENCE, sensitive_patching_accounts=REFERENCE["patch_policy_accounts"],
                sensitive_patching_regions=list(REGIONS), sensitive_patching_history_dir=str(workdir / "history"),
                sensitive_patching_s3_bucket="acceptance-approvals-{account_id}", sensitive_patching_poll_interval=1,
                sensitive_patching_inventory_wait=60, sensitive_patching_inventory_poll=2, **changes)


def last_results(workdir: Path, operation: str) -> dict:
    return json.loads(sorted((workdir / "runs").glob(f"*-{operation}.json"))[-1].read_text())


# ---------------------------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A lab of this module's own with the reference fleet (the session's lab has an empty one)."""
    with harness.running_lab("lab-acceptance-", "reference", tmp_path_factory.mktemp("lab")) as started:
        yield started


@pytest.fixture(scope="module")
def world(lab, tmp_path_factory) -> World:
    """The reference fleet with the reference policy applied (one playbook per account, at the same time: the role
    works through its accounts one after the other)."""
    world = World(lab, tmp_path_factory.mktemp("acceptance"))
    with ThreadPoolExecutor(max_workers=len(REFERENCE["patch_policy_accounts"])) as pool:
        results = list(pool.map(lambda account: world.run(POLICY, extra_vars=dict(
            REFERENCE, patch_policy_accounts=[account])), REFERENCE["patch_policy_accounts"]))
    for result in results:
        assert result.rc == 0, result.summary
    for account in lab.accounts:  # where the sensitive install reads its InstallOverrideLists
        world.client("s3", account, REGIONS[0]).create_bucket(
            Bucket=f"acceptance-approvals-{account}", CreateBucketConfiguration={"LocationConstraint": REGIONS[0]})
    return world


# ---------------------------------------------------------------------------------------------- one week

@dataclass
class Week:
    scan: harness.PlaybookResult
    install: harness.PlaybookResult
    expected: dict      # {node: {package: version}} approved and missing at the scan
    installed: dict     # {node: {package: (from, to)}} what the agents installed during the install
    outputs: dict       # {node: (status details, output)} of the install's commands
    results: dict       # the install's results file


def run_week(world: World, trouble=contextlib.nullcontext, **install_changes) -> Week:
    """A week passes; the weekly scan, then the weekly install (within `trouble`, a context manager)."""
    world.control.post("/clock/advance", {"days": 7})
    # The reference fleet seeds a few offline nodes: the scan names them; they are not this test's subject.
    scan = world.run(SCAN, extra_vars=cycle_vars(world.workdir, patch_cycle_fail_on_node_errors=False))
    expected = {node.node_id: world.approved_missing(node) for node in world.members(*AUTO_GROUPS)}
    world.mark()
    with trouble():
        install = world.run(INSTALL, extra_vars=cycle_vars(world.workdir, **install_changes))
    results = last_results(world.workdir, "install")
    return Week(scan, install, expected, world.installs_since_mark(),
                world.invocation_outputs(f"fleetpatch cycle {results['run_id']}: Install"), results)


def assert_installed_exactly(node: Node, approved: dict, installed: dict) -> None:
    """Every approved version installed; anything else installed only because an approved version needs it at
    that version (a package of the same source, Ubuntu's new kernel image)."""
    versions = {package: _plain(to) for package, (_from, to) in installed.items()}
    assert {package: versions.get(package) for package in approved} == approved, node
    needed = dependencies(node, approved)
    extra = {package: version for package, version in versions.items() if package not in approved}
    assert all(_plain(needed.get(package, "")) == version for package, version in extra.items()), (node, extra)


def assert_exactly_the_approved_updates(world: World, week: Week) -> None:
    """Every auto-group node that ran the install has exactly its approved updates, was rebooted when it installed
    anything (RebootIfNeeded) and has nothing pending a reboot; every other one installed nothing."""
    ran = {node for node, (status, _output) in week.outputs.items() if status == "Success"}
    for node in world.members(*AUTO_GROUPS):
        installed = week.installed.get(node.node_id, {})
        if node.node_id not in ran:
            assert installed == {}, f"{node.node_id} did not run the install but installed {installed}"
            continue
        assert_installed_exactly(node, week.expected[node.node_id], installed)
        output = week.outputs[node.node_id][1]
        assert (REBOOTED in output) is bool(installed), (node, output)
    states = world.patch_states([node for node in world.members(*AUTO_GROUPS) if node.node_id in ran])
    assert {state["RebootOption"] for state in states.values()} == {"RebootIfNeeded"}
    assert [node for node, state in states.items() if state["InstalledPendingRebootCount"]] == []


# ---------------------------------------------------------------------------------------------- tests

def test_week_one_installs_exactly_each_auto_nodes_approved_updates_and_leaves_sensitive_servers(world):
    week = run_week(world, patch_cycle_fail_on_node_errors=False)  # the fleet's seeded failures are named below

    assert week.scan.rc == 0, week.scan.summary
    assert week.install.rc == 0, week.install.summary
    assert sum(len(packages) for packages in week.expected.values()) > 0  # the week brought approved updates
    assert_exactly_the_approved_updates(world, week)
    sensitive = {node.node_id for node in world.members(SENSITIVE)}
    assert sensitive.isdisjoint(week.installed) and sensitive.isdisjoint(week.outputs)  # never targeted
    ungrouped = {node.node_id for node in world.nodes.values() if node.group is None}
    assert ungrouped and ungrouped.isdisjoint(week.installed)

    # The reference fleet's seeded offline and failing nodes: named in the results, installed nothing.
    offline = {node.node_id for node in world.members(*AUTO_GROUPS) if not node.online}
    failed = {node for node, (status, _output) in week.outputs.items() if status == "Failed"}
    assert offline and failed
    named = {node for row in week.results["results"]
             for node in row["undeliverable_nodes"] + row["failed_nodes"]}
    assert named == offline | failed
    assert (offline | failed).isdisjoint(week.installed)
    assert week.results["clean"] is False and week.results["failures"] == []


def test_week_two_finishes_everywhere_else_names_each_failure_and_exits_non_zero(world):
    candidates = [node for node in world.members("prod-auto")
                  if node.online and node.account == PRODUCTION and node.region == "eu-west-1"]
    disconnected, failing = candidates[0], candidates[1]
    where = {"account": PRODUCTION, "region": "eu-west-1"}

    @contextlib.contextmanager
    def trouble():
        world.control.post("/nodes/online", dict(where, node_id=disconnected.node_id, online=False))
        world.control.post("/nodes/fail", dict(where, node_id=failing.node_id, message="dpkg lock held by apt"))
        world.control.post("/sts/deny", {"accounts": [NONPRODUCTION]})
        try:
            yield
        finally:
            world.control.post("/sts/deny", {"accounts": []})
            world.control.post("/nodes/online", dict(where, node_id=disconnected.node_id, online=True))

    week = run_week(world, trouble)

    assert week.scan.rc == 0, week.scan.summary
    assert week.install.rc != 0
    message = week.install.task(FAIL_TASK).result["msg"]
    assert f"nonproduction ({NONPRODUCTION}) (Assume the account's role: " in message, message
    assert disconnected.node_id in message and failing.node_id in message, message
    assert week.outputs[disconnected.node_id][0] == "Undeliverable"
    assert week.outputs[failing.node_id][0] == "Failed"
    denied = {node.node_id for node in world.nodes.values() if node.account == NONPRODUCTION}
    assert denied.isdisjoint(week.outputs) and denied.isdisjoint(week.installed)  # nothing sent there
    # Everywhere else the week completed: exactly the approved updates, rebooted.
    assert_exactly_the_approved_updates(world, week)
    assert any(week.installed.get(node) for node in week.expected if node not in denied)
    assert {node.node_id for node in world.members(SENSITIVE)}.isdisjoint(week.installed)
    assert [failure["account"] for failure in week.results["failures"]] == [f"nonproduction ({NONPRODUCTION})"]


def _approvable(server: dict, node: Node, install_time: datetime.datetime) -> list:
    """A subset of a server's reviewed packages: a kernel meta package where offered (it brings a new kernel image)
    and one of which the vendor publishes a newer version before `install_time` (the lab's catalog says which), each
    with every package that moves with it (same source)."""
    packages = catalog.catalog_for(node.platform).packages

    def republished(entry: dict) -> bool:
        name = entry["package"].rsplit(".", 1)[0]
        return has_newer(packages[name], _plain(entry["candidate_version"]), install_time)

    missing = server["missing"]
    chosen = [entry for entry in missing if entry["new_packages"]][:1] + [
        entry for entry in missing if republished(entry)][:1]
    return sorted({package for entry in chosen or missing[:1]
                   for package in (entry["package"], *entry["same_version_as"])})


def test_sensitive_servers_get_exactly_the_approved_packages_not_what_was_released_after_the_review(world):
    result = world.run(REVIEW, extra_vars=sensitive_vars(world.workdir))
    assert result.rc == 0, result.summary
    (run_dir,) = (world.workdir / "history" / "reviews").iterdir()
    review = yaml.safe_load((run_dir / "review.yml").read_text())
    reviewed = {server["instance_id"]: server for server in review["servers"] if server["missing"]}
    by_family = defaultdict(list)
    for server in reviewed.values():
        by_family[server["os_family"]].append(server)
    kernel_offered = [server for server in by_family["UBUNTU"]
                      if any(entry["new_packages"] for entry in server["missing"])]
    chosen = [kernel_offered[0], by_family["AMAZON_LINUX_2"][0]]
    install_time = world.lab_now() + AFTER_THE_REVIEW
    packages = sorted({package for server in chosen
                       for package in _approvable(server, world.nodes[server["instance_id"]], install_time)})
    assert len(packages) < sum(len(server["missing"]) for server in chosen)  # a subset

    # The vendors publish newer versions after the review.
    world.control.post("/clock/advance", {"days": AFTER_THE_REVIEW.days})
    world.mark()
    approval_file = world.workdir / "CHG-100.yml"
    approved = world.run(APPROVE, extra_vars=sensitive_vars(
        world.workdir, sensitive_patching_run_id=review["run_id"], sensitive_patching_approval_file=str(approval_file),
        sensitive_patching_generate={"approval_id": "CHG-100", "reviewer": "jane.doe@example.com",
                                     "reason": "acceptance", "servers": [s["instance_id"] for s in chosen],
                                     "packages": packages}))
    assert approved.rc == 0, approved.summary
    installed = world.run(SENSITIVE_INSTALL, extra_vars=sensitive_vars(
        world.workdir, sensitive_patching_approval_file=str(approval_file)))
    assert installed.rc == 0, installed.summary

    approval = yaml.safe_load(approval_file.read_text())
    # The kernel meta package brings a new kernel image: the review named it and the generated approval too.
    assert any(entry["package"].startswith("linux-image-") for entry in approval["new_packages"])
    expected: dict = defaultdict(dict)
    for entry in approval["packages"]:
        for server in entry["servers"]:
            expected[server][entry["package"].rsplit(".", 1)[0]] = _plain(entry["version"])
    done = world.installs_since_mark()
    assert sorted(done) == sorted(expected)  # exactly the approved servers
    newer_now = 0
    now = world.lab_now()
    for server, versions in expected.items():
        node = world.nodes[server]
        assert_installed_exactly(node, versions, done[server])  # the review's versions, nothing else
        packages_of = catalog.catalog_for(node.platform).packages
        newer_now += sum(has_newer(packages_of[package], version, now) for package, version in versions.items())
    assert newer_now, "some approved package should have a newer version by the install: the test proves nothing"
    states = world.patch_states([world.nodes[server] for server in expected])
    assert all(state["InstalledPendingRebootCount"] > 0 for state in states.values())  # NoReboot: not rebooted
    (verification,) = run_dir.glob("verification-CHG-100-*.yml")
    verified = yaml.safe_load(verification.read_text())
    assert verified["status"] == "verified"  # with new packages refused unless approved (the default)
    kernel_server = next(server for server in verified["servers"] if server["instance_id"] == chosen[0]["instance_id"])
    assert [(new["package"].startswith("linux-image-"), new["approved"]) for new in kernel_server["new_packages"]] \
        == [(True, True)]
