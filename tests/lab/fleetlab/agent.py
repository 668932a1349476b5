"""The simulated SSM agent: the AWS-RunPatchBaseline document as it runs on one managed node.

What the document does, per the SSM user guide ("SSM Command document for patching: AWS-RunPatchBaseline",
"How patches are installed", "How security patches are selected", "Patch compliance state values"):
* The baseline is the one of the node's patch group for its OS, else the OS default (`baselines.effective_baseline`),
  or the entry of a `BaselineOverride` JSON list (an S3 object) whose OperatingSystem is the node's.
* Candidates are the vendor's updates for what the node has installed, published at the evaluation time. A
  `SnapshotId` makes every node of one operation use the same approved set: its first use fixes the evaluation
  time; a snapshot is kept three days, after which the same id makes a new one.
* Approval: GlobalFilters narrow, each approval rule approves what matches all of its filters once its
  ApproveAfterDays / ApproveUntilDate is reached (Ubuntu supports neither: approval is immediate); a rule
  without EnableNonSecurity only approves versions from the security repository (Ubuntu: the candidate version
  in `<codename>-security`; Amazon Linux: packages in an updateinfo.xml update notice). ApprovedPatches approve
  whatever the rules discard (on Linux, non-security ones only with ApprovedPatchesEnableNonSecurity);
  RejectedPatches are removed. Amazon Linux installs the latest approved version; apt installs the candidate
  (the newest published version) or nothing; Windows offers only the newest KB of a superseded chain.
* RejectedPatchesAction ALLOW_AS_DEPENDENCY: a rejected package is installed only as a dependency and reports
  INSTALLED_OTHER; BLOCK: never installed, nor what depends on it (MISSING on Scan, FAILED on Install), and a
  rejected package already installed reports INSTALLED_REJECTED.
* Install installs every approved missing update; with `InstallOverrideList` (a YAML `patches:` list of
  id/title read from S3) exactly the listed patches, ignoring rules and the rejected list, reported as
  INSTALLED_OTHER; Scan ignores the override list. BaselineOverride with InstallOverrideList fails the document
  before any scan or install.
* RebootIfNeeded reboots after any install (Patch Manager does not evaluate whether a patch needs it) or when
  patches are pending a reboot; NoReboot leaves every patch it installed INSTALLED_PENDING_REBOOT until a reboot.
* Each operation replaces the node's compliance (DescribeInstancePatchStates / DescribeInstancePatches), except
  with BaselineOverride, whose results go to the command output only (NON_COMPLIANT packages).

Lab choices where AWS is silent (each marked where it is made): a snapshot pins the evaluation time, not the
baseline's content; InstalledTime is when the lab installed a version, else that version's release date (the
image shipped it), and the epoch for patches that are not installed; a failed install step changes nothing;
any FAILED patch fails the invocation; each non-compliant patch counts once (Critical, else Security, else Other).
"""
from __future__ import annotations

import datetime
import fnmatch
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from . import baselines, catalog
from .catalog import Catalog, Package, Update
from .platforms import Platform
from .state import LAB, Node, RegionState

UTC = datetime.timezone.utc
# "If you specify a value [...], the snapshot of the patch baseline might not remain in place for more than three
# days. After that, a new snapshot will be generated even if you specify the same ID."
SNAPSHOT_LIFETIME = datetime.timedelta(days=3)
# DescribeInstancePatches needs an InstalledTime on every row; AWS shows the epoch where it has none (missing
# patches, and what the documentation calls "not every OS"); the lab does the same.
NOT_INSTALLED_TIME = datetime.datetime(1970, 1, 1, tzinfo=UTC)
OPERATIONS = ("Scan", "Install")
REBOOT_OPTIONS = ("RebootIfNeeded", "NoReboot")
_LEVELS = ("UNSPECIFIED", "INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL")  # least to most severe
# Filter keys each OS supports (CreatePatchBaseline / DescribePatchProperties); another key matches nothing.
_FILTER_ATTRIBUTES = {
    "UBUNTU": {"PRODUCT": "product", "PRIORITY": "priority", "SECTION": "section"},
    "AMAZON_LINUX_2": {"PRODUCT": "product", "CLASSIFICATION": "classification", "SEVERITY": "severity"},
    "AMAZON_LINUX_2023": {"PRODUCT": "product", "CLASSIFICATION": "classification", "SEVERITY": "severity"},
    "WINDOWS": {"PRODUCT": "product", "PRODUCT_FAMILY": "product_family", "CLASSIFICATION": "classification",
                "MSRC_SEVERITY": "severity", "PATCH_SET": "patch_set"},
}
_NON_COMPLIANT = ("MISSING", "FAILED", "INSTALLED_PENDING_REBOOT", "INSTALLED_REJECTED")
_COUNTS = {
    "INSTALLED": "InstalledCount", "INSTALLED_OTHER": "InstalledOtherCount",
    "INSTALLED_PENDING_REBOOT": "InstalledPendingRebootCount", "INSTALLED_REJECTED": "InstalledRejectedCount",
    "MISSING": "MissingCount", "FAILED": "FailedCount", "NOT_APPLICABLE": "NotApplicableCount",
    "AVAILABLE_SECURITY_UPDATE": "AvailableSecurityUpdateCount",
}


@dataclass
class AgentResult:
    status: str                 # "Success" | "Failed"
    response_code: int
    output: str
    rebooted: bool = False
    installed: list[dict[str, Any]] = field(default_factory=list)


class DocumentFailure(Exception):
    """The document stops before scanning or installing (bad parameters, an override file it cannot use)."""


# --------------------------------------------------------------------------------------------------------------
# The baseline as the agent applies it.

class Policy:
    """A patch baseline (GetPatchBaseline / BaselineOverride shape) applied to one OS at one evaluation time."""

    def __init__(self, baseline: dict, platform: Platform, evaluated_at: datetime.datetime) -> None:
        self.baseline = baseline
        self.platform = platform
        self.evaluated_at = evaluated_at
        self.global_filters = (baseline.get("GlobalFilters") or {}).get("PatchFilters") or []
        self.rules = (baseline.get("ApprovalRules") or {}).get("PatchRules") or []
        self.approved = baseline.get("ApprovedPatches") or []
        self.rejected_patterns = baseline.get("RejectedPatches") or []
        self.block = baseline.get("RejectedPatchesAction", "ALLOW_AS_DEPENDENCY") == "BLOCK"

    def approval(self, update: Update) -> str | None:
        """The compliance level this version is approved with (the most severe that applies), or None."""
        levels = []
        if self._explicitly_approved(update):
            levels.append(self.baseline.get("ApprovedPatchesComplianceLevel") or "UNSPECIFIED")
        if self._matches(self.global_filters, update):
            levels += [rule.get("ComplianceLevel") or "UNSPECIFIED"
                       for rule in self.rules if self._approves(rule, update)]
        return max(levels, key=_LEVELS.index) if levels else None

    def rejected(self, update: Update) -> bool:
        return _named(self.rejected_patterns, _package_specs(update, self.platform))

    def _explicitly_approved(self, update: Update) -> bool:
        names = _package_specs(update, self.platform)
        if self.platform.family.startswith("AMAZON_LINUX"):
            names += [update.advisory_id, *update.cves]  # AL approved lists also take advisory and CVE ids
        return _named(self.approved, names) and (
            self.platform.is_windows or self.baseline.get("ApprovedPatchesEnableNonSecurity")
            or self._in_security_repository(update))

    def _approves(self, rule: dict, update: Update) -> bool:
        filters = (rule.get("PatchFilterGroup") or {}).get("PatchFilters") or []
        if self.platform.is_windows:
            if update.patch_set != "OS" and not any(f.get("Key") == "PATCH_SET" for f in filters):
                return False  # without a PATCH_SET filter a Windows rule covers the operating system only
        elif not rule.get("EnableNonSecurity") and not self._in_security_repository(update):
            return False
        return self._matches(filters, update) and self._approval_date_reached(rule, update)

    def _approval_date_reached(self, rule: dict, update: Update) -> bool:
        if self.platform.family == "UBUNTU":
            return True  # "the auto-approval options are not supported for this operating system"
        if rule.get("ApproveUntilDate"):
            return update.released.date() <= datetime.date.fromisoformat(rule["ApproveUntilDate"])
        delay = datetime.timedelta(days=rule.get("ApproveAfterDays") or 0)
        return update.released + delay <= self.evaluated_at

    def _in_security_repository(self, update: Update) -> bool:
        """Ubuntu: the version comes from <codename>-security. AL: it is part of an update notice (advisory)."""
        if self.platform.family == "UBUNTU":
            return update.is_security
        return bool(update.advisory_id)

    def _matches(self, filters: list[dict], update: Update) -> bool:
        attributes = _FILTER_ATTRIBUTES.get(self.platform.family, {})
        for patch_filter in filters:
            attribute = attributes.get(patch_filter.get("Key", ""))
            if attribute is None:
                return False
            value = getattr(update, attribute)
            if not any(fnmatch.fnmatchcase(value, pattern) for pattern in patch_filter.get("Values") or []):
                return False
        return True


def _package_specs(update: Update, platform: Platform) -> list[str]:
    """The names a patch list entry can match ("Package name formats for approved and rejected patch lists").

    Windows: the KB id. Ubuntu: the package name only. YUM: the package specifications yum accepts (name,
    name.arch, name-version-release, name-version-release.arch).
    """
    if platform.is_windows:
        return [update.version]
    if platform.family == "UBUNTU":
        return [update.package]
    full = f"{update.package}-{update.version}"
    return [update.package, f"{update.package}.{update.arch}", full, f"{full}.{update.arch}"]


def _named(patterns: list[str], names: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns for name in names if name)


# --------------------------------------------------------------------------------------------------------------
# Evaluation: what each package's state is against the policy.

@dataclass
class PackageStatus:
    package: Package
    installed: Update | None        # the installed version (Windows: the newest installed KB of the series)
    target: Update | None = None    # the approved version Install brings, None when nothing is to be done
    target_level: str | None = None
    blocked: bool = False           # BLOCK: the target needs a rejected package


def evaluate(node: Node, policy: Policy) -> list[PackageStatus]:
    """Per package the node has (Windows: per update series in the catalog), its target under the policy."""
    cat = catalog.catalog_for(node.platform)
    current = cat.current_versions(node.installed)
    statuses = []
    for name, package in cat.packages.items():
        version = current.get(name)
        status = PackageStatus(package, package.record(version))
        if not node.platform.is_windows and status.installed is None:
            continue  # not installed, or a version the catalog does not know (the lab cannot classify it)
        newer = package.newer(version, released_by=policy.evaluated_at)
        # apt installs the candidate (newest) version and Windows only offers the newest KB of a superseded
        # chain; yum installs the latest approved version.
        candidates = newer if node.platform.family.startswith("AMAZON_LINUX") else newer[-1:]
        for update in reversed(candidates):
            level = policy.approval(update)
            if level is not None and not policy.rejected(update):
                status.target, status.target_level = update, level
                status.blocked = policy.block and any(policy.rejected(d) for d in _missing_requirements(
                    cat, current, update))
                break
        statuses.append(status)
    return statuses


def _missing_requirements(cat: Catalog, current: dict[str, str], update: Update) -> list[Update]:
    """The versions `update` needs that the node does not have yet (installed with it, as dependencies)."""
    needed = []
    for name, version in update.requires:
        package = cat.packages[name]
        if package.rank(current.get(name)) < package.rank(version):
            needed.append(package.record(version))
    return needed


# --------------------------------------------------------------------------------------------------------------
# Installation.

@dataclass
class PlannedInstall:
    key: str                    # node.installed key: package name, or KB id on Windows
    from_version: str | None
    update: Update
    dependency: bool = False


def plan_from_baseline(node: Node, statuses: list[PackageStatus]) -> list[PlannedInstall]:
    """Every approved, installable target, with what it requires (dependencies)."""
    cat = catalog.catalog_for(node.platform)
    current = cat.current_versions(node.installed)
    plan: dict[str, PlannedInstall] = {}
    for status in statuses:
        if status.target is None or status.blocked or (status.installed is None and node.platform.is_windows):
            continue  # nothing approved, blocked by a rejected dependency, or not applicable (Windows)
        _add_with_requirements(plan, cat, current, status.target)
    return list(plan.values())


def _add_with_requirements(plan: dict[str, PlannedInstall], cat: Catalog, current: dict[str, str],
                           update: Update) -> None:
    """Add a requested update and the versions it requires (installed with it, as dependencies)."""
    _add(plan, cat, current, update, dependency=False)
    for requirement in _missing_requirements(cat, current, update):
        _add(plan, cat, current, requirement, dependency=True)


def _add(plan: dict[str, PlannedInstall], cat: Catalog, current: dict[str, str], update: Update,
         dependency: bool) -> None:
    """Add `update` to the plan, keeping the newest version per package and "requested" over "dependency"."""
    package = cat.packages[update.package]
    existing = plan.get(update.package)
    if existing is not None:
        if package.rank(existing.update.version) > package.rank(update.version):
            existing.dependency = existing.dependency and dependency
            return
        dependency = existing.dependency and dependency
    plan[update.package] = PlannedInstall(update.package, current.get(update.package), update, dependency)


@dataclass(frozen=True)
class OverrideEntry:
    id: str
    title: str | None


def parse_override_list(text: str | bytes) -> list[OverrideEntry]:
    """`patches:` entries with a required `id` and an optional `title`; other fields are ignored (user guide)."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise DocumentFailure(f"InstallOverrideList is not valid YAML: {error}") from None
    patches = document.get("patches") if isinstance(document, dict) else None
    if not isinstance(patches, list) or not all(isinstance(p, dict) and p.get("id") for p in patches):
        raise DocumentFailure("InstallOverrideList must contain a 'patches' list whose entries each have an 'id'")
    return [OverrideEntry(str(p["id"]), str(p["title"]) if p.get("title") is not None else None) for p in patches]


def plan_from_override(node: Node, entries: list[OverrideEntry], evaluated_at: datetime.datetime
                       ) -> tuple[list[PlannedInstall], list[Update]]:
    """Exactly the listed patches (no baseline rules, no rejected list), and those that cannot be installed.

    Linux: `id` matches name.arch (wildcards allowed), `title` the version (or name.arch:version); without a
    title the newest published version is installed. A listed version whose dependency is listed at another
    version is blocked and FAILED, as in the guide's apt/apt-utils example. Windows: `id` is the KB, installed
    when it is the newest published KB of a series the node has.
    """
    cat = catalog.catalog_for(node.platform)
    current = cat.current_versions(node.installed)
    plan: dict[str, PlannedInstall] = {}
    failed: list[Update] = []
    for name, version in current.items():
        package = cat.packages[name]
        newer = package.newer(version, released_by=evaluated_at)
        if node.platform.is_windows:
            chosen = newer[-1] if newer and _named([e.id for e in entries], [newer[-1].version]) else None
        else:
            chosen = _override_version(entries, newer)
        if chosen is None:
            continue
        if any(_override_excludes(entries, r) for r in _missing_requirements(cat, current, chosen)):
            failed.append(chosen)
        else:
            _add_with_requirements(plan, cat, current, chosen)
    return list(plan.values()), failed


def _override_entries_for(entries: list[OverrideEntry], update: Update) -> list[OverrideEntry]:
    return [e for e in entries if _named([e.id], [update.kb_id, update.package])]


def _override_version(entries: list[OverrideEntry], newer: list[Update]) -> Update | None:
    for update in reversed(newer):
        if any(_title_matches(e, update) for e in _override_entries_for(entries, update)):
            return update
    return None


def _override_excludes(entries: list[OverrideEntry], requirement: Update) -> bool:
    listed = _override_entries_for(entries, requirement)
    return bool(listed) and not any(_title_matches(e, requirement) for e in listed)


def _title_matches(entry: OverrideEntry, update: Update) -> bool:
    if entry.title is None:
        return True
    epoch_version = update.version if ":" in update.version else f"0:{update.version}"
    return _named([entry.title], [update.version, epoch_version, update.title])


def apply_installs(node: Node, plan: list[PlannedInstall], *, now: datetime.datetime, command_id: str
                   ) -> list[dict[str, Any]]:
    """Change the node's installed packages and record each change in LAB.install_log."""
    installed = []
    for item in plan:
        update = item.update
        key = update.version if node.platform.is_windows else item.key
        node.installed[key] = "installed" if node.platform.is_windows else update.version
        LAB.install_log.append({
            "account": node.account, "region": node.region, "node_id": node.node_id, "command_id": command_id,
            "package": key, "from_version": item.from_version, "to_version": update.version,
            "installed_time": now,
        })
        installed.append({
            "package": key, "kb_id": update.kb_id, "title": update.title, "from_version": item.from_version,
            "to_version": update.version, "classification": update.classification, "severity": update.severity,
            "cves": list(update.cves), "reboot_required": update.reboot_required, "dependency": item.dependency,
        })
    return installed


# --------------------------------------------------------------------------------------------------------------
# Compliance report.

@dataclass
class Row:
    update: Update
    state: str
    level: str | None = None        # compliance level of the approval (CriticalNonCompliantCount)
    cves: tuple[str, ...] = ()
    installed_time: datetime.datetime = NOT_INSTALLED_TIME

    def as_patch(self) -> dict[str, Any]:
        """A PatchComplianceData entry; CVE ids are reported for missing and failed patches only."""
        patch = {"Title": self.update.title, "KBId": self.update.kb_id, "Classification": self.update.classification,
                 "Severity": self.update.severity, "State": self.state, "InstalledTime": self.installed_time}
        if self.state in ("MISSING", "FAILED") and self.cves:
            patch["CVEIds"] = ",".join(self.cves)
        return patch


@dataclass
class ReportContext:
    policy: Policy
    operation: str
    failed: set[str]                          # update titles whose installation failed in this operation
    override_installed: set[str]              # node.installed keys installed by this run's override list
    installed_times: dict[str, datetime.datetime]  # row Title -> InstalledTime already known


def compliance_rows(node: Node, statuses: list[PackageStatus], ctx: ReportContext) -> list[Row]:
    rows = []
    for status in statuses:
        if node.platform.is_windows:
            rows += _windows_rows(node, status, ctx)
        else:
            rows.append(_linux_row(node, status, ctx))
    return rows


def _linux_row(node: Node, status: PackageStatus, ctx: ReportContext) -> Row:
    if status.target is not None:
        return _missing_row(status, ctx)
    return _installed_row(node, status.package.name, status.installed, ctx)


def _windows_rows(node: Node, status: PackageStatus, ctx: ReportContext) -> list[Row]:
    cat = catalog.catalog_for(node.platform)
    rows = [_installed_row(node, kb, u, ctx) for kb in node.installed
            if (u := cat.kb(kb)) is not None and u.package == status.package.name]
    if status.target is None:
        rows += _available_security_row(status, ctx)
    elif status.installed is None:
        # "approved in the baseline, but the service or feature that uses the patch isn't installed"
        rows.append(Row(status.target, "NOT_APPLICABLE", status.target_level))
    else:
        rows.append(_missing_row(status, ctx))
    return rows


def _missing_row(status: PackageStatus, ctx: ReportContext) -> Row:
    """MISSING on Scan; FAILED when this Install tried it or a BLOCKed dependency prevents it."""
    target = status.target
    failed = target.title in ctx.failed or (status.blocked and ctx.operation == "Install")
    cves = _fixed_cves(status)
    return Row(target, "FAILED" if failed else "MISSING", status.target_level, cves)


def _fixed_cves(status: PackageStatus) -> tuple[str, ...]:
    """CVEs fixed between the installed version and the target (each skipped update's fixes are in it)."""
    package, target = status.package, status.target
    start, end = package.rank(status.installed.version if status.installed else None), package.rank(target.version)
    return tuple(sorted({cve for update in package.versions[start + 1:end + 1] for cve in update.cves}))


def _installed_row(node: Node, key: str, record: Update, ctx: ReportContext) -> Row:
    policy = ctx.policy
    time = ctx.installed_times.get(record.title, record.released)
    level = policy.approval(record)
    if key in node.pending_reboot:
        state = "INSTALLED_PENDING_REBOOT"
    elif policy.rejected(record):
        state = "INSTALLED_REJECTED" if policy.block else "INSTALLED_OTHER"
    elif key in ctx.override_installed or level is None:
        state = "INSTALLED_OTHER"
    else:
        state = "INSTALLED"
    return Row(record, state, level, installed_time=time)


def _available_security_row(status: PackageStatus, ctx: ReportContext) -> list[Row]:
    """Windows: a security update the baseline does not approve, when the baseline asks for it to be reported
    (AvailableSecurityUpdatesComplianceStatus, "Supported for Windows Server managed nodes only")."""
    if not ctx.policy.baseline.get("AvailableSecurityUpdatesComplianceStatus") or status.installed is None:
        return []
    newer = status.package.newer(status.installed.version, released_by=ctx.policy.evaluated_at)
    if newer and newer[-1].is_security:
        return [Row(newer[-1], "AVAILABLE_SECURITY_UPDATE")]
    return []


def patch_state(node: Node, rows: list[Row], *, policy: Policy, fields: dict[str, Any]) -> dict[str, Any]:
    """The node's InstancePatchState: counts per state and the non-compliant split the API documents."""
    state: dict[str, Any] = {"InstanceId": node.node_id, **{name: 0 for name in _COUNTS.values()},
                             "UnreportedNotApplicableCount": 0, "CriticalNonCompliantCount": 0,
                             "SecurityNonCompliantCount": 0, "OtherNonCompliantCount": 0, **fields}
    non_compliant = _NON_COMPLIANT
    if policy.baseline.get("AvailableSecurityUpdatesComplianceStatus") == "NON_COMPLIANT":
        non_compliant += ("AVAILABLE_SECURITY_UPDATE",)
    for row in rows:
        state[_COUNTS[row.state]] += 1
        if row.state in non_compliant:
            # Critical: approved with ComplianceLevel CRITICAL; Security: a security patch; Other: the rest.
            # The API reference does not say whether a patch counts in both; the lab counts it once.
            if row.level == "CRITICAL":
                state["CriticalNonCompliantCount"] += 1
            elif row.update.is_security:
                state["SecurityNonCompliantCount"] += 1
            else:
                state["OtherNonCompliantCount"] += 1
    if not node.platform.is_windows:
        del state["AvailableSecurityUpdateCount"]  # "Applies to Windows Server managed nodes only"
    return {key: value for key, value in state.items() if value is not None}


# --------------------------------------------------------------------------------------------------------------
# The document.

@dataclass
class _Parameters:
    operation: str
    snapshot_id: str | None
    install_override_list: str | None
    baseline_override: str | None
    reboot_option: str


def _parameters(parameters: dict[str, list[str]]) -> _Parameters:
    """The document's parameters as SendCommand passes them (one value per name; "" means not set)."""
    def first(name: str) -> str | None:
        return (parameters.get(name) or [""])[0] or None

    params = _Parameters(first("Operation") or "", first("SnapshotId"), first("InstallOverrideList"),
                         first("BaselineOverride"), first("RebootOption") or "RebootIfNeeded")
    if params.operation not in OPERATIONS:
        raise DocumentFailure(f"Operation must be one of {', '.join(OPERATIONS)}, not {params.operation!r}")
    if params.reboot_option not in REBOOT_OPTIONS:
        raise DocumentFailure(f"RebootOption must be one of {', '.join(REBOOT_OPTIONS)}")
    if params.install_override_list and params.baseline_override:
        # "You can't use these two parameters at the same time. The patching document fails if both parameters
        # are supplied, and it doesn't perform any scans or installs on the instance."
        raise DocumentFailure("BaselineOverride and InstallOverrideList cannot be used together")
    return params


def evaluation_time(state: RegionState, snapshot_id: str | None, now: datetime.datetime) -> datetime.datetime:
    """A snapshot's first use fixes the evaluation time for every node of that snapshot, for three days."""
    if snapshot_id is None:
        return now
    pinned = state.snapshots.get(snapshot_id)
    if pinned is None or now - pinned > SNAPSHOT_LIFETIME:
        state.snapshots[snapshot_id] = pinned = now
    return pinned


def _read_object(url: str, read_s3: Callable[[str], str | bytes]) -> str | bytes:
    """An override file (s3:// or https S3 URL); the document fails when it cannot download it."""
    try:
        return read_s3(url)
    except FileNotFoundError as error:
        raise DocumentFailure(f"Unable to download {url}: {error}") from None


def _override_baseline(url: str, platform: Platform, read_s3: Callable[[str], str | bytes]) -> dict | None:
    """The BaselineOverride entry for this OS: a JSON list of baselines (GetPatchBaseline shape).

    AWS does not document a list without an entry for the node's OS; the lab then uses the node's own baseline.
    """
    try:
        document = json.loads(_read_object(url, read_s3))
    except ValueError as error:
        raise DocumentFailure(f"BaselineOverride is not valid JSON: {error}") from None
    if not isinstance(document, list) or not all(isinstance(b, dict) for b in document):
        raise DocumentFailure("BaselineOverride must be a JSON list of patch baselines")
    return next((b for b in document if b.get("OperatingSystem", "WINDOWS") == platform.family), None)


@dataclass
class _Outcome:
    """What the Install step did."""

    installed: list[dict[str, Any]] = field(default_factory=list)
    failed: set[str] = field(default_factory=set)   # titles of the updates that failed
    failure: str | None = None                      # why the install step failed as a whole
    rebooted: bool = False


def run_patch_baseline(state: RegionState, node: Node, parameters: dict[str, list[str]], *,
                       now: datetime.datetime, command_id: str,
                       read_s3: Callable[[str], str | bytes]) -> AgentResult:
    """Run AWS-RunPatchBaseline on `node` (called under LAB.lock by the command worker)."""
    try:
        return _run(state, node, parameters, now=now, command_id=command_id, read_s3=read_s3)
    except DocumentFailure as failure:
        return AgentResult("Failed", 1, f"{_header(node)}\nERROR: {failure}\nfailed to run commands: exit status 1")


def _run(state: RegionState, node: Node, parameters: dict[str, list[str]], *, now: datetime.datetime,
         command_id: str, read_s3: Callable[[str], str | bytes]) -> AgentResult:
    params = _parameters(parameters)
    evaluated_at = evaluation_time(state, params.snapshot_id, now)
    baseline, patch_group = baselines.effective_baseline(state, node)
    override = (_override_baseline(params.baseline_override, node.platform, read_s3)
                if params.baseline_override else None)
    policy = Policy(override or baseline, node.platform, evaluated_at)
    overrides = (parse_override_list(_read_object(params.install_override_list, read_s3))
                 if params.install_override_list and params.operation == "Install" else None)
    known_times = {row["Title"]: row["InstalledTime"] for row in node.patch_rows
                   if row["State"].startswith("INSTALLED")}

    outcome = _Outcome()
    if params.operation == "Install":
        outcome = _install(node, params, policy, overrides, now=now, command_id=command_id)
    ctx = ReportContext(policy, params.operation, outcome.failed,
                        {item["package"] for item in outcome.installed if overrides is not None},
                        {**known_times, **{item["title"]: now for item in outcome.installed}})
    rows = compliance_rows(node, evaluate(node, policy), ctx)
    report = patch_state(node, rows, policy=policy, fields={
        "PatchGroup": patch_group or "", "BaselineId": baseline.get("BaselineId", ""),
        "SnapshotId": params.snapshot_id or str(uuid.uuid4()),  # AWS makes one per node when none is given
        "OperationStartTime": now, "OperationEndTime": now, "Operation": params.operation,
        "RebootOption": params.reboot_option,
        "InstallOverrideList": params.install_override_list if overrides is not None else None,
        "LastNoRebootInstallOperationTime": _last_no_reboot_install(node, params, now),
    })
    if override is None:
        node.patch_state, node.patch_rows = report, [row.as_patch() for row in rows]
    # The document exits with an error when an installation failed (AWS does not document the exit code when
    # only some patches failed; the lab fails the invocation for any FAILED patch).
    ok = outcome.failure is None and not any(row.state == "FAILED" for row in rows)
    output = "\n".join([
        *_describe_run(node, params, policy, patch_group, evaluated_at, report),
        *_describe_install(params, outcome),
        *_describe_result(rows, report, baseline_override=override is not None),
    ])
    return AgentResult("Success" if ok else "Failed", 0 if ok else 1, output, outcome.rebooted, outcome.installed)


def _install(node: Node, params: _Parameters, policy: Policy, overrides: list[OverrideEntry] | None, *,
             now: datetime.datetime, command_id: str) -> _Outcome:
    """Install the approved (or listed) patches, then reboot as RebootOption says."""
    outcome = _Outcome()
    if overrides is not None:
        plan, not_installable = plan_from_override(node, overrides, policy.evaluated_at)
        outcome.failed = {update.title for update in not_installable}
    else:
        plan = plan_from_baseline(node, evaluate(node, policy))
    if node.fail_install:
        # Failure injection (one-shot): the install step fails before changing anything, the lab's choice for a
        # failed apt/yum/Windows Update transaction; every planned patch reports FAILED.
        outcome.failure, node.fail_install = node.fail_install, None
        outcome.failed |= {item.update.title for item in plan}
    else:
        outcome.installed = apply_installs(node, plan, now=now, command_id=command_id)
    if params.reboot_option == "NoReboot":
        node.pending_reboot.update(item["package"] for item in outcome.installed)
    elif outcome.installed or node.pending_reboot:
        node.last_boot, outcome.rebooted = now, True
        node.pending_reboot.clear()
    return outcome


def _last_no_reboot_install(node: Node, params: _Parameters, now: datetime.datetime) -> datetime.datetime | None:
    """LastNoRebootInstallOperationTime: "the last attempt to patch the managed node with NoReboot"."""
    if params.operation == "Install" and params.reboot_option == "NoReboot":
        return now
    return (node.patch_state or {}).get("LastNoRebootInstallOperationTime")


def _header(node: Node) -> str:
    return (f"AWS-RunPatchBaseline on {node.node_id} ({node.platform.platform_name} {node.platform.version}) "
            f"- fleetlab simulated SSM Agent {node.agent_version}")


def _describe_run(node: Node, params: _Parameters, policy: Policy, patch_group: str | None,
                  evaluated_at: datetime.datetime, report: dict) -> list[str]:
    lines = [
        _header(node),
        f"Operation: {params.operation}  RebootOption: {params.reboot_option}  SnapshotId: {report['SnapshotId']}",
        (f"Patch baseline: {policy.baseline.get('BaselineId', 'BaselineOverride')} "
         f"(patch group: {patch_group or '-'}; evaluated at {evaluated_at.isoformat()})"),
    ]
    if params.install_override_list and params.operation == "Install":
        lines.append(f"InstallOverrideList: {params.install_override_list}")
    return lines


def _describe_install(params: _Parameters, outcome: _Outcome) -> list[str]:
    """The installed packages (what the document prints, abbreviated), failure and reboot."""
    if params.operation != "Install":
        return []
    lines = [f"Installed {len(outcome.installed)} package(s):" if outcome.installed
             else "No approved updates were installed."]
    lines += [f"  {i['kb_id']} {i['from_version'] or '(new)'} -> {i['to_version']}"
              + (" (dependency)" if i["dependency"] else "") for i in outcome.installed]
    if outcome.failure:
        lines.append(f"ERROR: package installation failed: {outcome.failure}")
    if outcome.rebooted:
        lines.append("Rebooting the instance to complete the installation (RebootOption=RebootIfNeeded).")
    elif params.reboot_option == "NoReboot" and outcome.installed:
        lines.append("Reboot skipped (RebootOption=NoReboot): installed patches are pending a reboot.")
    return lines


def _describe_result(rows: list[Row], report: dict, *, baseline_override: bool) -> list[str]:
    """Non-compliant patches; a BaselineOverride run prints only those ("The results only print out packages
    that are marked as NON_COMPLIANT"), other runs end with the counts they report."""
    shown = _NON_COMPLIANT if baseline_override else ("FAILED",)
    lines = [f"  {row.state} {row.update.title}" for row in rows if row.state in shown]
    if not baseline_override:
        lines.append("Summary: " + ", ".join(f"{name.removesuffix('Count')}={report[name]}"
                                             for name in _COUNTS.values() if name in report))
    return lines
