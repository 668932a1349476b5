# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetpatch.ssm project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Patch compliance of every managed node of one account-region, read the cheapest way AWS allows.

Per account-region (a `Scope` of accounts.py):
1. DescribeInstanceInformation, 50 nodes per page (the model allows 5-50): identity, platform, ping status.
2. For each page, DescribeInstancePatchStates for the same (at most 50, the API's limit) node ids: the last
   Scan/Install of each node, its counts per state, patch group, baseline, snapshot and reboot option.
3. DescribeInstancePatches (one node per call, pages of 50) only for nodes whose patch state is not the one
   already kept in the history (`known`): every Scan or Install replaces the state, so an unchanged state means
   unchanged rows. With `package_details="all"` every node is read; with "none" none is.
4. EC2 DescribeInstances (1,000 per page) for the Name tag of EC2 nodes, unless switched off; hybrid nodes carry
   their name in the instance information.
Nothing is silently dropped: a listed node without patch state, or whose patches cannot be read after the
retries (and one more attempt at the end of its account-region), is yielded with a status and the reason.

Patch rows (DescribeInstancePatches, `PatchComplianceData`) and how they are read (`parse_patch`):
* Windows: KBId is the update ("KB5034441"); Title is the update's title, empty for some InstalledOther rows
  (API reference example): the KB id identifies the row, there is no version.
* Linux: KBId is `name.arch`, Title `name.arch:version`. AWS documents yum/dnf package names as
  `name.arch:epoch:version-release` (user guide, "Package name formats for approved and rejected patch
  lists": dbus.x86_64:1:1.12.28-1.amzn2023.0.1) and Debian/Ubuntu versions carry their own `epoch:` when they
  have one (openssh-server.amd64:1:8.9p1-3ubuntu0.6). The version is everything after the first colon, with a
  zero epoch (`0:`) dropped as rpm and dpkg print it; a non-zero epoch is kept. A Title without a colon gives
  no version: that package's rows are kept but cannot show a from/to change.
* InstalledTime: AWS shows the epoch (1970-01-01) where it has none ("not every OS" reports it, and missing
  patches have none); that is stored as no time.
* CVEIds: reported on Missing and Failed rows only (API reference).
"""

from __future__ import annotations

import datetime
import hashlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from dataclasses import field

try:
    import botocore.exceptions
except ImportError:
    pass  # AnsibleAWSModule reports the missing SDK

from .accounts import Failure
from .accounts import error_code
from .ssm import RETRY_CODES
from .ssm import SSM_RETRY
from .ssm import paginate

MAX_IDS_PER_STATES_CALL = 50   # DescribeInstancePatchStates.InstanceIds: at most 50 (model)
EC2_PAGE_SIZE = 1000           # DescribeInstances MaxResults: 5-1000
PACKAGE_DETAILS = ("changed", "all", "none")
# Node statuses of a collection (history.py adds not_collected and not_listed).
REPORTED, NO_PATCH_STATE, UNREADABLE = "reported", "no_patch_state", "unreadable"
INSTALLED_STATES = ("INSTALLED", "INSTALLED_OTHER", "INSTALLED_PENDING_REBOOT", "INSTALLED_REJECTED")
AZURE_SOURCE_TYPE = "Microsoft.Compute/virtualMachines"
# Architectures a Linux package name can end with (rpm and dpkg names).
ARCHES = frozenset({"x86_64", "aarch64", "noarch", "i686", "i386", "amd64", "arm64", "all", "armhf", "armel",
                    "ppc64le", "s390x", "src"})
_NO_TIME = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
# Throttling and server-side errors worth one more attempt after the retries of SSM_RETRY ran out.
_RETRY_LATER = set(RETRY_CODES) | {"Throttling", "RequestLimitExceeded", "ServiceUnavailable", "InternalFailure"}

# InstancePatchState count members -> our names (history columns, report fields); COUNT_COLUMNS: ours.
COUNT_FIELDS = (
    ("InstalledCount", "installed"), ("InstalledOtherCount", "installed_other"),
    ("InstalledPendingRebootCount", "installed_pending_reboot"), ("InstalledRejectedCount", "installed_rejected"),
    ("MissingCount", "missing"), ("FailedCount", "failed"), ("NotApplicableCount", "not_applicable"),
    ("UnreportedNotApplicableCount", "unreported_not_applicable"),
    ("CriticalNonCompliantCount", "critical_non_compliant"),
    ("SecurityNonCompliantCount", "security_non_compliant"), ("OtherNonCompliantCount", "other_non_compliant"),
)
COUNT_COLUMNS = tuple(dict(COUNT_FIELDS).values())


def iso(moment) -> str | None:
    """A timestamp as ISO 8601 in UTC (history and results are text); None for AWS's "no time" (the epoch)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    if moment <= _NO_TIME:
        return None
    return moment.astimezone(datetime.timezone.utc).isoformat()


# ---------------------------------------------------------------------------------------------- records

@dataclass(frozen=True)
class PatchRow:
    """One DescribeInstancePatches row, with the package identity and version read from it."""

    package: str            # the key a package keeps across runs: name.arch (Linux) or the KB id (Windows)
    name: str
    arch: str
    version: str | None     # None on Windows and when the Title carries none
    title: str
    kb_id: str
    classification: str
    severity: str
    state: str
    installed_time: str | None
    cve_ids: str

    @property
    def is_installed(self) -> bool:
        return self.state in INSTALLED_STATES


def _split_arch(head: str) -> tuple:
    name, dot, arch = head.rpartition(".")
    return (name, arch) if dot and arch in ARCHES else (head, "")


def _version(text: str) -> str:
    """rpm and dpkg print no epoch when it is 0; the Title always carries one on yum/dnf."""
    return text[2:] if text.startswith("0:") else text


def parse_patch(row: dict, windows: bool) -> PatchRow:
    """A `PatchComplianceData` row as a PatchRow (the module docstring says how Title and KBId are read)."""
    title, kb_id = row.get("Title") or "", row.get("KBId") or ""
    common = dict(title=title, kb_id=kb_id, classification=row.get("Classification") or "",
                  severity=row.get("Severity") or "", state=row.get("State") or "",
                  installed_time=iso(row.get("InstalledTime")), cve_ids=row.get("CVEIds") or "")
    if windows:
        key = kb_id or title
        return PatchRow(package=key, name=key, arch="", version=None, **common)
    head, colon, rest = title.partition(":")
    name, arch = _split_arch(head if colon else (kb_id or title))
    version = _version(rest) if colon and rest else None
    return PatchRow(package=f"{name}.{arch}" if arch else name, name=name, arch=arch, version=version, **common)


@dataclass
class NodeRecord:
    """What one collection learnt about one managed node."""

    account_id: str
    region: str
    instance_id: str
    status: str = REPORTED
    reason: str | None = None
    error_code: str | None = None                   # the AWS error code when unreadable
    identity: dict = field(default_factory=dict)    # name, cloud, platform... (history's observation columns)
    state: dict = field(default_factory=dict)       # the InstancePatchState in our names, or {} without one
    state_key: str | None = None                    # fingerprint of the state the rows belong to
    rows: list | None = None                        # PatchRows; None when not read this time

    @property
    def windows(self) -> bool:
        return self.identity.get("platform_type") == "Windows"


def state_fingerprint(state: dict) -> str:
    """Identifies one reported patch state: every Scan or Install gives a new one (new times, new snapshot)."""
    text = "|".join(str(state.get(key)) for key in (
        "Operation", "OperationStartTime", "OperationEndTime", "SnapshotId", "BaselineId", "PatchGroup",
        *dict(COUNT_FIELDS)))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _cloud(info: dict) -> str:
    if info.get("ResourceType") == "EC2Instance":
        return "aws"
    return "azure" if info.get("SourceType") == AZURE_SOURCE_TYPE else "on-premises"


def node_identity(info: dict, ec2_name: str | None) -> dict:
    """The InstanceInformation fields a report shows, in our names."""
    return {
        "name": ec2_name or info.get("Name") or info.get("ComputerName") or info["InstanceId"],
        "computer_name": info.get("ComputerName"),
        "ip_address": info.get("IPAddress"),
        "cloud": _cloud(info),
        "resource_type": info.get("ResourceType"),
        "source_id": info.get("SourceId"),
        "source_type": info.get("SourceType"),
        "azure_vm_id": info.get("SourceId") if info.get("SourceType") == AZURE_SOURCE_TYPE else None,
        "platform_type": info.get("PlatformType"),
        "platform_name": info.get("PlatformName"),
        "platform_version": info.get("PlatformVersion"),
        "agent_version": info.get("AgentVersion"),
        "ping_status": info.get("PingStatus"),
        "last_ping": iso(info.get("LastPingDateTime")),
    }


def patch_state(state: dict) -> dict:
    """An InstancePatchState in our names (counts, last operation)."""
    result = {
        "patch_group": state.get("PatchGroup") or None,
        "baseline_id": state.get("BaselineId"),
        "operation": state.get("Operation"),
        "operation_start": iso(state.get("OperationStartTime")),
        "operation_end": iso(state.get("OperationEndTime")),
        "snapshot_id": state.get("SnapshotId"),
        "reboot_option": state.get("RebootOption"),
        "install_override_list": state.get("InstallOverrideList"),
        "last_no_reboot_install": iso(state.get("LastNoRebootInstallOperationTime")),
    }
    result.update({ours: state.get(member) or 0 for member, ours in COUNT_FIELDS})
    return result


# ---------------------------------------------------------------------------------------------- collection

@dataclass(frozen=True)
class Options:
    package_details: str = "changed"
    node_workers: int = 4       # DescribeInstancePatches calls in flight per account-region
    ec2_names: bool = True
    patch_groups: tuple = ()    # only nodes whose reported patch group is one of these (all when empty)


def _patch_states(ssm, instance_ids: list) -> dict:
    states = {}
    for start in range(0, len(instance_ids), MAX_IDS_PER_STATES_CALL):
        batch = instance_ids[start:start + MAX_IDS_PER_STATES_CALL]
        for page in paginate(ssm, "describe_instance_patch_states", InstanceIds=batch):
            states.update((state["InstanceId"], state) for state in page.get("InstancePatchStates") or [])
    return states


@SSM_RETRY
def _ec2_names(ec2) -> dict:
    """Instance id -> Name tag of the region's EC2 instances (the whole listing is retried when throttled)."""
    names = {}
    for page in ec2.get_paginator("describe_instances").paginate(PaginationConfig={"PageSize": EC2_PAGE_SIZE}):
        for reservation in page.get("Reservations") or []:
            for instance in reservation.get("Instances") or []:
                tags = {tag["Key"]: tag["Value"] for tag in instance.get("Tags") or []}
                if tags.get("Name"):
                    names[instance["InstanceId"]] = tags["Name"]
    return names


def _read_rows(ssm, record: NodeRecord) -> NodeRecord:
    """The node's DescribeInstancePatches rows; on failure the record says the node was unreadable, and why."""
    try:
        rows = []
        for page in paginate(ssm, "describe_instance_patches", InstanceId=record.instance_id):
            rows += [parse_patch(row, record.windows) for row in page.get("Patches") or []]
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        record.status, record.error_code = UNREADABLE, error_code(error)
        record.reason, record.rows = f"DescribeInstancePatches failed: {error}", None
        return record
    record.status, record.reason, record.error_code, record.rows = REPORTED, None, None, rows
    return record


def _worth_another_try(record: NodeRecord) -> bool:
    return record.status == UNREADABLE and record.error_code in _RETRY_LATER


class ScopeCollector:
    """Collects one account-region: a generator of NodeRecord (and non-fatal Failure) items."""

    def __init__(self, sessions, options: Options, known: dict) -> None:
        self.sessions = sessions
        self.options = options
        self.known = known  # (account, region, instance id) -> state_key whose rows the history holds

    def _needs_rows(self, record: NodeRecord) -> bool:
        if record.status != REPORTED or self.options.package_details == "none":
            return False
        key = (record.account_id, record.region, record.instance_id)
        return self.options.package_details == "all" or self.known.get(key) != record.state_key

    def _wanted(self, record: NodeRecord) -> bool:
        groups = self.options.patch_groups
        return not groups or record.state.get("patch_group") in groups

    def _names(self, scope):
        if not self.options.ec2_names:
            return {}, None
        try:
            return _ec2_names(self.sessions.client(scope, "ec2")), None
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
            return {}, Failure(scope.account_id, scope.region, "ec2_names", error_code(error),
                               f"EC2 Name tags not read (nodes are named by computer name): {error}",
                               scope.target.label)

    def _records(self, scope, ssm, names: dict):
        """Records of every listed node (rows not read yet), one DescribeInstanceInformation page at a time."""
        for page in paginate(ssm, "describe_instance_information"):
            infos = page.get("InstanceInformationList") or []
            states = _patch_states(ssm, [info["InstanceId"] for info in infos])
            for info in infos:
                record = NodeRecord(scope.account_id, scope.region, info["InstanceId"],
                                    identity=node_identity(info, names.get(info["InstanceId"])))
                state = states.get(record.instance_id)
                if state is None:
                    record.status = NO_PATCH_STATE
                    record.reason = "no patch compliance data: AWS-RunPatchBaseline has not reported for this node"
                else:
                    record.state, record.state_key = patch_state(state), state_fingerprint(state)
                if self._wanted(record):
                    yield record

    def __call__(self, scope):
        ssm = self.sessions.client(scope, "ssm")
        names, warning = self._names(scope)
        if warning is not None:
            yield warning
        in_flight: deque = deque()
        unreadable = []
        with ThreadPoolExecutor(max_workers=max(1, self.options.node_workers),
                                thread_name_prefix="fleetpatch-node") as pool:
            for record in self._records(scope, ssm, names):
                if self._needs_rows(record):
                    in_flight.append(pool.submit(_read_rows, ssm, record))
                else:
                    yield record
                while in_flight and in_flight[0].done():
                    yield from self._settled(in_flight.popleft().result(), unreadable)
            while in_flight:
                yield from self._settled(in_flight.popleft().result(), unreadable)
        # One more attempt, one node at a time, for nodes that stayed throttled through every retry.
        for record in unreadable:
            yield _read_rows(ssm, record)

    @staticmethod
    def _settled(record: NodeRecord, unreadable: list):
        if _worth_another_try(record):
            unreadable.append(record)
            return []
        return [record]
