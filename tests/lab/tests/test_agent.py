"""The simulated SSM agent (fleetlab.agent) and the package catalogs (fleetlab.catalog).

Each test builds a node whose installed packages it chooses from the catalog, a baseline through the SSM API
(CreatePatchBaseline + RegisterPatchBaselineForPatchGroup) and runs AWS-RunPatchBaseline in-process at an
evaluation time it chooses, then checks what a user relies on: which patches are approved, what gets installed,
and what the compliance report says.
"""
from __future__ import annotations

import datetime
import json
import random
from functools import partial

import pytest

from conftest import REGION, make_session
from fleetlab import agent, catalog, commands, provision
from fleetlab.platforms import PLATFORMS

DAY = datetime.timedelta(days=1)
HOUR = datetime.timedelta(hours=1)
# One account for the module: a fresh account per test costs about a second of client set-up, so each test keeps
# to its own patch group and S3 keys instead. conftest numbers its accounts from 200000000001 up.
ACCOUNT = "299000000001"


@pytest.fixture(scope="module")
def account(lab_server):
    session = make_session(lab_server.env["AWS_ENDPOINT_URL"], ACCOUNT)
    ssm = session.client("ssm", endpoint_url=lab_server.env["AWS_ENDPOINT_URL"])
    s3 = session.client("s3", endpoint_url=lab_server.env["AWS_ENDPOINT_URL"])
    s3.create_bucket(Bucket="agent-test", CreateBucketConfiguration={"LocationConstraint": REGION})
    return ssm, s3


@pytest.fixture
def env(lab, account, request):
    ssm, s3 = account
    return Patching(lab, ssm, s3, group=request.node.name)


class Patching:
    """One test's world: its patch group, nodes, baseline and S3 objects, and the agent run on its nodes."""

    def __init__(self, lab, ssm, s3, group: str) -> None:
        self.lab, self.ssm, self.s3, self.group = lab, ssm, s3, group

    def node(self, platform_key: str, installed: dict[str, str] | None = None):
        """A managed node of the test's patch group; with `installed`, exactly those packages."""
        (node,) = provision.launch_nodes(ACCOUNT, REGION, platform_key, 1, {"PatchGroup": self.group})
        if installed is not None:
            node.installed = dict(installed)
        return node

    def baseline(self, operating_system: str, rules: list[dict] | None = None, **extra) -> str:
        """A custom baseline registered for the test's patch group."""
        if rules is not None:
            extra["ApprovalRules"] = {"PatchRules": rules}
        baseline_id = self.ssm.create_patch_baseline(Name=f"agent-{operating_system.lower()}",
                                                     OperatingSystem=operating_system, **extra)["BaselineId"]
        self.ssm.register_patch_baseline_for_patch_group(BaselineId=baseline_id, PatchGroup=self.group)
        return baseline_id

    def put(self, name: str, body: str) -> str:
        key = f"{self.group}/{name}"
        self.s3.put_object(Bucket="agent-test", Key=key, Body=body.encode())
        return f"s3://agent-test/{key}"

    def run(self, node, now: datetime.datetime, command_id: str = "11111111-2222-3333-4444-555555555555",
            **parameters) -> agent.AgentResult:
        """AWS-RunPatchBaseline on `node` as the command worker runs it (under the lab lock, the account's S3)."""
        with self.lab.lock:
            return agent.run_patch_baseline(
                self.lab.region(ACCOUNT, REGION), node, {k: [v] for k, v in parameters.items()}, now=now,
                command_id=command_id, read_s3=partial(commands.read_s3, ACCOUNT))


def _rule(*filters: tuple[str, list[str]], **options) -> dict:
    return {"PatchFilterGroup": {"PatchFilters": [{"Key": k, "Values": v} for k, v in filters]}, **options}


def _states(node) -> dict[str, str]:
    return {row["KBId"]: row["State"] for row in node.patch_rows}


def _source(platform_key: str, package_name: str) -> list[str]:
    """The binary packages built from the same source as `package_name` (they share versions)."""
    cat = catalog.catalog_for(PLATFORMS[platform_key])
    source = cat.source_of[package_name]
    return [name for name, src in cat.source_of.items() if src == source]


def _find(platform_key: str, predicate):
    """The first (package, index) of the catalog whose versions satisfy predicate(versions, index)."""
    cat = catalog.catalog_for(PLATFORMS[platform_key])
    for package in cat.packages.values():
        if package.installed_share == 0:
            continue
        for index in range(1, len(package.versions)):
            if predicate(package.versions, index):
                return package, index
    raise AssertionError(f"the {platform_key} catalog has no package for this scenario")


def _at_version(platform_key: str, package_name: str, version: str) -> dict[str, str]:
    """`package_name` and its sibling binaries installed at `version` (nothing else)."""
    return {name: version for name in _source(platform_key, package_name)}


# --- catalog -------------------------------------------------------------------------------------------------------

def test_catalog_releases_updates_every_week_of_the_window():
    """Advancing the lab clock a week at a time reveals new updates every week, on every Linux release."""
    week_count = (catalog.LAST_RELEASE_DAY - catalog.FIRST_RELEASE_DAY) // 7 + 1
    for platform in PLATFORMS.values():
        days = [u.release_day for u in catalog.catalog_for(platform).updates()]
        assert min(days) >= catalog.FIRST_RELEASE_DAY and max(days) <= catalog.LAST_RELEASE_DAY
        if not platform.is_windows:  # Windows follows Microsoft's monthly cadence
            weeks = {(day - catalog.FIRST_RELEASE_DAY) // 7 for day in days}
            assert weeks == set(range(week_count)), platform.key


def test_initial_installed_is_deterministic_and_keeps_source_binaries_together():
    ubuntu = PLATFORMS["ubuntu-22.04"]
    first = catalog.initial_installed(ubuntu, random.Random(7))
    assert first == catalog.initial_installed(ubuntu, random.Random(7))
    assert first["libssl3"] == first["openssl"] and first["libc-bin"] == first["libc6"]
    assert f"linux-image-5.15.0-{first['linux-image-generic'].split('.')[3]}-generic" in first
    windows = catalog.initial_installed(PLATFORMS["windows-2022"], random.Random(7))
    assert windows and all(kb.startswith("KB") and value == "installed" for kb, value in windows.items())
    # Fresh nodes only run versions published before the lab started.
    cat = catalog.catalog_for(ubuntu)
    assert all(cat.packages[name].record(version).release_day < 0 for name, version in first.items())


# --- Ubuntu: security pocket -------------------------------------------------------------------------------------

def _security_then_updates(versions, index):
    previous, current = versions[index - 1], versions[index]
    return (index >= 2 and previous.pocket.endswith("-security") and current.pocket.endswith("-updates")
            and current.release_day - previous.release_day >= 2 and previous.release_day >= catalog.FIRST_RELEASE_DAY)


def test_ubuntu_security_only_baseline_ignores_a_candidate_from_the_updates_pocket(env):
    package, index = _find("ubuntu-22.04", _security_then_updates)
    security, updates = package.versions[index - 1], package.versions[index]
    node = env.node("ubuntu-22.04", _at_version("ubuntu-22.04", package.name, package.versions[index - 2].version))
    env.baseline("UBUNTU", [_rule(("PRODUCT", ["*"]), ("PRIORITY", ["*"]))])

    # While the security upload is the candidate, it is approved.
    env.run(node, security.released + DAY, Operation="Scan")
    assert _states(node)[security.kb_id] == "MISSING"
    # Once a newer version is in -updates, apt's candidate is not a security update: nothing is approved.
    env.run(node, updates.released + DAY, Operation="Scan")
    assert _states(node)[security.kb_id] != "MISSING" and node.patch_state["MissingCount"] == 0
    result = env.run(node, updates.released + DAY, Operation="Install")
    assert result.installed == [] and node.installed[package.name] == package.versions[index - 2].version


def test_ubuntu_enable_non_security_approves_the_updates_candidate(env):
    package, index = _find("ubuntu-22.04", _security_then_updates)
    updates = package.versions[index]
    node = env.node("ubuntu-22.04", _at_version("ubuntu-22.04", package.name, package.versions[index - 2].version))
    env.baseline("UBUNTU", [_rule(("PRODUCT", ["Ubuntu22.04"]), ("PRIORITY", ["*"]), EnableNonSecurity=True)])

    result = env.run(node, updates.released + DAY, Operation="Install")

    assert {(i["package"], i["to_version"]) for i in result.installed} >= {(package.name, updates.version)}
    assert node.installed[package.name] == updates.version


# --- Amazon Linux: ApproveAfterDays against the lab clock ---------------------------------------------------------

def test_amazon_linux_approve_after_days_counts_from_the_release_date(env, monkeypatch):
    def last_security_update(versions, index):
        return (index == len(versions) - 1 and versions[index].classification == "Security"
                and versions[index].release_day >= catalog.FIRST_RELEASE_DAY)

    package, index = _find("amzn-2", last_security_update)
    update = package.versions[index]
    node = env.node("amzn-2", _at_version("amzn-2", package.name, package.versions[index - 1].version))
    env.baseline("AMAZON_LINUX_2", [_rule(("PRODUCT", ["*"]), ("CLASSIFICATION", ["Security"]),
                                          ("SEVERITY", ["*"]), ApproveAfterDays=7)])

    def scan_on(moment: datetime.datetime) -> str:
        monkeypatch.setattr(env.lab.clock, "offset", moment - (env.lab.clock.now() - env.lab.clock.offset))
        env.run(node, env.lab.clock.now(), Operation="Scan")
        return _states(node)[update.kb_id]

    assert scan_on(update.released + 6 * DAY) != "MISSING"
    assert scan_on(update.released + 7 * DAY) == "MISSING"
    row = next(r for r in node.patch_rows if r["KBId"] == update.kb_id)
    assert row["Title"] == update.title and row["Classification"] == "Security"
    assert set(update.cves) <= set(row["CVEIds"].split(","))


# --- explicit approvals and rejections -----------------------------------------------------------------------------

def _openssl_update(platform_key: str):
    """An openssl update with the version installed before it (openssl needs openssl-libs at the same version)."""
    cat = catalog.catalog_for(PLATFORMS[platform_key])
    versions = cat.packages["openssl"].versions
    update = next(u for u in reversed(versions) if u.release_day <= 0)
    return versions[versions.index(update) - 1].version, update


def test_explicit_approval_installs_only_that_package_and_its_dependencies(env):
    before, update = _openssl_update("amzn-2023")
    sudo = catalog.catalog_for(PLATFORMS["amzn-2023"]).packages["sudo"].versions[0].version
    installed = {**_at_version("amzn-2023", "openssl", before), **_at_version("amzn-2023", "sudo", sudo)}
    node = env.node("amzn-2023", installed)
    env.baseline("AMAZON_LINUX_2023", ApprovedPatches=["openssl"])

    result = env.run(node, update.released + DAY, Operation="Install")

    assert {(i["package"], i["dependency"]) for i in result.installed} == {("openssl", False), ("openssl-libs", True)}
    assert node.installed["sudo"] == installed["sudo"]
    states = _states(node)
    assert states["openssl.x86_64"] == "INSTALLED" and states["openssl-libs.x86_64"] == "INSTALLED_OTHER"


def test_rejected_package_is_installed_as_a_dependency_unless_blocked(env):
    before, update = _openssl_update("amzn-2023")
    allow = env.node("amzn-2023", _at_version("amzn-2023", "openssl", before))
    env.baseline("AMAZON_LINUX_2023", ApprovedPatches=["openssl"], RejectedPatches=["openssl-libs"])

    result = env.run(allow, update.released + DAY, Operation="Install")
    assert {i["package"] for i in result.installed} == {"openssl", "openssl-libs"}
    assert _states(allow)["openssl-libs.x86_64"] == "INSTALLED_OTHER"


def test_block_never_installs_a_rejected_package_nor_what_needs_it(env):
    before, update = _openssl_update("amzn-2023")
    node = env.node("amzn-2023", _at_version("amzn-2023", "openssl", before))
    env.baseline("AMAZON_LINUX_2023", ApprovedPatches=["openssl"], RejectedPatches=["openssl-libs"],
                 RejectedPatchesAction="BLOCK")

    env.run(node, update.released + DAY, Operation="Scan")
    assert _states(node) == {"openssl.x86_64": "MISSING", "openssl-libs.x86_64": "INSTALLED_REJECTED"}
    result = env.run(node, update.released + DAY, Operation="Install")
    assert result.status == "Failed" and result.installed == []
    assert node.installed == _at_version("amzn-2023", "openssl", before)
    assert _states(node)["openssl.x86_64"] == "FAILED"
    assert node.patch_state["FailedCount"] == 1 and node.patch_state["InstalledRejectedCount"] == 1


# --- Install: exactly the approved set --------------------------------------------------------------------------

def test_install_changes_exactly_the_packages_the_scan_reported_missing(env):
    node = env.node("ubuntu-22.04")
    env.baseline("UBUNTU", [_rule(("PRODUCT", ["*"]), ("PRIORITY", ["*"]))])
    now = env.lab.clock.now() + 30 * DAY

    env.run(node, now, Operation="Scan")
    missing = {row["Title"] for row in node.patch_rows if row["State"] == "MISSING"}
    assert missing, "a node launched with older packages has approved security updates 30 days later"
    before = dict(node.installed)
    result = env.run(node, now, Operation="Install", command_id="99999999-2222-3333-4444-555555555555")

    requested = {f"{i['kb_id']}:{i['to_version']}" for i in result.installed if not i["dependency"]}
    assert requested == missing
    changed = {name for name, version in node.installed.items() if before.get(name) != version}
    assert changed == {i["package"] for i in result.installed}
    log = [e for e in env.lab.install_log if e["command_id"] == "99999999-2222-3333-4444-555555555555"]
    assert {(e["node_id"], e["package"], e["from_version"], e["to_version"]) for e in log} == {
        (node.node_id, i["package"], i["from_version"], i["to_version"]) for i in result.installed}
    assert result.rebooted and node.last_boot == now
    assert node.patch_state["MissingCount"] == 0 and node.patch_state["Operation"] == "Install"
    assert all(row["InstalledTime"] == now for row in node.patch_rows if row["Title"] in missing)


def test_failed_install_changes_nothing_and_reports_failed(env):
    node = env.node("amzn-2")
    env.baseline("AMAZON_LINUX_2", [_rule(("CLASSIFICATION", ["*"]), ApproveAfterDays=0)])
    node.fail_install = "dpkg was interrupted"
    before = dict(node.installed)

    result = env.run(node, env.lab.clock.now() + 30 * DAY, Operation="Install")

    assert result.status == "Failed" and result.response_code != 0 and "dpkg was interrupted" in result.output
    assert node.installed == before and node.fail_install is None
    assert node.patch_state["FailedCount"] > 0 and node.patch_state["MissingCount"] == 0


# --- RebootOption ------------------------------------------------------------------------------------------------

def test_no_reboot_leaves_installed_patches_pending_until_a_reboot(env):
    node = env.node("amzn-2023")
    env.baseline("AMAZON_LINUX_2023", [_rule(("CLASSIFICATION", ["*"]), ApproveAfterDays=0)])
    booted, now = node.last_boot, catalog.release_time(30) + 12 * HOUR  # later runs stay on the same day

    result = env.run(node, now, Operation="Install", RebootOption="NoReboot")
    assert result.installed and not result.rebooted and node.last_boot == booted
    pending = {row["KBId"] for row in node.patch_rows if row["State"] == "INSTALLED_PENDING_REBOOT"}
    assert pending == {i["kb_id"] for i in result.installed}
    assert node.patch_state["LastNoRebootInstallOperationTime"] == now
    env.run(node, now, Operation="Scan")
    assert node.patch_state["InstalledPendingRebootCount"] == len(pending)

    # An Install with RebootIfNeeded reboots for pending patches even when it installs nothing.
    later = now + HOUR
    result = env.run(node, later, Operation="Install", RebootOption="RebootIfNeeded")
    assert result.installed == [] and result.rebooted and node.last_boot == later
    assert node.patch_state["InstalledPendingRebootCount"] == 0
    assert node.patch_state["LastNoRebootInstallOperationTime"] == now


# --- InstallOverrideList and BaselineOverride ---------------------------------------------------------------------

def test_install_override_list_installs_exactly_the_listed_patches(env):
    cat = catalog.catalog_for(PLATFORMS["ubuntu-22.04"])
    curl_versions = cat.packages["curl"].versions
    sudo_versions = cat.packages["sudo"].versions
    installed = {**_at_version("ubuntu-22.04", "curl", curl_versions[0].version),
                 **_at_version("ubuntu-22.04", "sudo", sudo_versions[0].version),
                 **_at_version("ubuntu-22.04", "bash", cat.packages["bash"].versions[0].version)}
    node = env.node("ubuntu-22.04", installed)
    # The baseline approves nothing and rejects curl: the override list skips both.
    env.baseline("UBUNTU", [_rule(("PRODUCT", ["*"]), ("PRIORITY", ["Extra"]))], RejectedPatches=["curl"])
    now = env.lab.clock.now() + 60 * DAY
    url = env.put("lists/override.yaml", "patches:\n"
                  "  - id: 'curl.amd64'\n"
                  f"  - id: 'sudo.*'\n    title: '{sudo_versions[1].version}'\n")

    result = env.run(node, now, Operation="Install", InstallOverrideList=url)

    assert result.status == "Success"
    assert {(i["package"], i["to_version"]) for i in result.installed} == {
        ("curl", curl_versions[-1].version), ("sudo", sudo_versions[1].version),
        *{(b, curl_versions[-1].version) for b in _source("ubuntu-22.04", "curl") if b != "curl"}}
    assert node.installed["bash"] == installed["bash"]
    states = _states(node)
    assert states["curl.amd64"] == states["sudo.amd64"] == "INSTALLED_OTHER"
    assert node.patch_state["InstallOverrideList"] == url

    # Scan ignores the override list.
    before = dict(node.installed)
    result = env.run(node, now, Operation="Scan", InstallOverrideList=url)
    assert result.installed == [] and node.installed == before and "InstallOverrideList" not in node.patch_state


def test_install_override_list_cannot_be_combined_with_a_baseline_override(env):
    node = env.node("amzn-2")
    env.baseline("AMAZON_LINUX_2", [_rule(("CLASSIFICATION", ["*"]), ApproveAfterDays=0)])
    before = dict(node.installed)
    url = env.put("override.yaml", "patches:\n  - id: 'kernel.x86_64'\n")

    result = env.run(node, env.lab.clock.now() + 30 * DAY, Operation="Install", InstallOverrideList=url,
                     BaselineOverride=url)

    assert result.status == "Failed" and "cannot be used together" in result.output
    assert node.installed == before and node.patch_state is None


def test_missing_override_list_fails_the_document(env):
    node = env.node("amzn-2")
    env.baseline("AMAZON_LINUX_2", [_rule(("CLASSIFICATION", ["*"]), ApproveAfterDays=0)])

    result = env.run(node, env.lab.clock.now(), Operation="Install",
                     InstallOverrideList="s3://agent-test/no-such-list.yaml")

    assert result.status == "Failed" and "Unable to download" in result.output and node.patch_state is None


def test_baseline_override_applies_its_rules_but_keeps_the_recorded_compliance(env):
    node = env.node("amzn-2023")
    env.baseline("AMAZON_LINUX_2023", [_rule(("CLASSIFICATION", ["Enhancement"]), ApproveAfterDays=360)])
    now = env.lab.clock.now() + 30 * DAY
    env.run(node, now, Operation="Scan")
    recorded = node.patch_state
    override = [{"OperatingSystem": "AMAZON_LINUX_2023", "ApprovalRules": {"PatchRules": [
        _rule(("CLASSIFICATION", ["*"]), ApproveAfterDays=0)]}}]
    url = env.put("override.json", json.dumps(override))

    result = env.run(node, now, Operation="Install", BaselineOverride=url)

    assert result.installed and result.status == "Success"
    assert node.patch_state is recorded  # "doesn't overwrite the patch compliance"


# --- SnapshotId ----------------------------------------------------------------------------------------------------

def test_snapshot_id_gives_every_node_the_evaluation_time_of_its_first_use(env):
    def late_update(versions, index):
        return versions[index].classification == "Security" and versions[index].release_day >= 0 \
            and index == len(versions) - 1

    package, index = _find("amzn-2", late_update)
    update = package.versions[index]
    installed = _at_version("amzn-2", package.name, package.versions[index - 1].version)
    first, second, third = (env.node("amzn-2", installed) for _ in range(3))
    env.baseline("AMAZON_LINUX_2", [_rule(("CLASSIFICATION", ["*"]), ApproveAfterDays=0)])
    snapshot = "0f6a1b2c-3d4e-4f50-8a6b-7c8d9e0f1a2b"

    env.run(first, update.released - DAY, Operation="Scan", SnapshotId=snapshot)
    env.run(second, update.released + DAY, Operation="Scan", SnapshotId=snapshot)
    env.run(third, update.released + DAY, Operation="Scan")

    assert _states(first)[update.kb_id] == _states(second)[update.kb_id] != "MISSING"
    assert _states(third)[update.kb_id] == "MISSING"
    assert second.patch_state["SnapshotId"] == snapshot != third.patch_state["SnapshotId"]
    # A snapshot lasts three days; the same id then makes a new one.
    env.run(second, update.released + 4 * DAY, Operation="Scan", SnapshotId=snapshot)
    assert _states(second)[update.kb_id] == "MISSING"


# --- Windows ---------------------------------------------------------------------------------------------------------

def test_windows_rules_filter_on_classification_and_msrc_severity(env):
    cat = catalog.catalog_for(PLATFORMS["windows-2022"])
    oldest = {name: package.versions[0] for name, package in cat.packages.items() if name != "sqlserver"}
    node = env.node("windows-2022", {u.version: "installed" for u in oldest.values()})
    env.baseline("WINDOWS", [_rule(("PRODUCT", ["WindowsServer2022"]), ("CLASSIFICATION", ["SecurityUpdates"]),
                                   ("MSRC_SEVERITY", ["Critical"]), ApproveAfterDays=0),
                             _rule(("PATCH_SET", ["APPLICATION"]), ("PRODUCT", ["*"]), ApproveAfterDays=0)])
    now = env.lab.clock.now()
    newest = {name: [u for u in package.versions if u.released <= now][-1]
              for name, package in cat.packages.items()}

    result = env.run(node, now, Operation="Install")

    # Only the newest cumulative update (SecurityUpdates, Critical): not .NET (Important), not the preview (Updates).
    assert [(i["package"], i["from_version"]) for i in result.installed] == [
        (newest["cumulative"].version, oldest["cumulative"].version)]
    states = _states(node)
    assert states[newest["cumulative"].version] == "INSTALLED"
    assert newest["dotnet"].version not in states and newest["preview"].version not in states
    assert states[oldest["dotnet"].version] == "INSTALLED_OTHER"
    # An approved application patch for a product the node does not have is NOT_APPLICABLE.
    assert states[newest["sqlserver"].version] == "NOT_APPLICABLE"
    row = next(r for r in node.patch_rows if r["KBId"] == newest["cumulative"].version)
    assert (row["Classification"], row["Severity"]) == ("SecurityUpdates", "Critical")
    assert row["Title"].endswith(f"({newest['cumulative'].version})")


# --- through the API ----------------------------------------------------------------------------------------------

def test_send_command_runs_the_agent_and_the_compliance_apis_serve_its_report(env, control):
    """SendCommand -> the agent -> DescribeInstancePatchStates / DescribeInstancePatches (model-checked output)."""
    node = env.node("ubuntu-24.04")
    env.baseline("UBUNTU", [_rule(("PRODUCT", ["*"]), ("PRIORITY", ["*"]))])

    command_id = env.ssm.send_command(InstanceIds=[node.node_id], DocumentName="AWS-RunPatchBaseline",
                                      Parameters={"Operation": ["Install"], "RebootOption": ["NoReboot"]}
                                      )["Command"]["CommandId"]
    assert control.post("/commands/wait", {"account": ACCOUNT, "region": REGION, "command_id": command_id})["done"]

    invocation = env.ssm.get_command_invocation(CommandId=command_id, InstanceId=node.node_id,
                                                PluginName="PatchLinux")
    assert invocation["Status"] == "Success" and "RebootOption: NoReboot" in invocation["StandardOutputContent"]
    (state,) = env.ssm.describe_instance_patch_states(InstanceIds=[node.node_id])["InstancePatchStates"]
    assert state["PatchGroup"] == env.group and state["Operation"] == "Install"
    installed = {e["package"] for e in env.lab.install_log if e["command_id"] == command_id}
    assert installed and state["InstalledPendingRebootCount"] == len(installed)
    pending = env.ssm.describe_instance_patches(InstanceId=node.node_id, Filters=[
        {"Key": "State", "Values": ["InstalledPendingReboot"]}])["Patches"]
    assert {p["KBId"].rsplit(".", 1)[0] for p in pending} == installed
