# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetpatch.ssm project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The review of a sensitive server: what Patch Manager would install on it, and what it has installed now.

What AWS gives (and nothing else is inferred):
  * DescribeInstancePatches rows of the node's last operation (one node per call, filters Classification, KBId,
    Severity and State only): Title, KBId, Classification, Severity, State and, on Missing and Failed rows,
    CVEIds. On Linux KBId is `name.arch` and Title carries the candidate version in the package manager's
    format (user guide, InstallOverrideList "title"): APT `name.arch:version`, YUM `name.arch:epoch:version-release`.
    On Windows KBId is the KB and Title the update's title.
  * SSM Inventory (ListInventoryEntries, one node and one type per call; pages of at most 50): AWS:Application
    for Linux packages, as SSM Agent gathers them - dpkg's whole ${Version} (epoch included); rpm's Version,
    Release and Epoch (empty when none); architectures with amd64 reported as x86_64 (user guide, "Metadata
    collected by inventory", and the agent's application gatherer). AWS:WindowsUpdate for installed KBs.
  A row's version and the inventory's version are compared in one form: APT's version as is, YUM's
  `epoch:version-release` with epoch 0 when there is none (how Patch Manager writes YUM titles).

New packages: DescribeInstancePatches lists updates of installed packages only, but installing some of them brings
packages the server never had. On Ubuntu a kernel meta package (linux-image-generic, linux-generic,
linux-image-aws, their -hwe-NN.NN forms...) is versioned <kernel>.<ABI>.<upload> and depends on that ABI's kernel
image and modules, packages of their own (linux-image-<kernel>-<ABI>-<flavour>, linux-modules-...), which apt
installs as new packages with it. An InstallOverrideList does not stop that: it selects the patches to install,
and the package manager adds what they depend on. The review names those packages (`new_packages` of the entry),
derived from Ubuntu's naming, so that an approval can name them too and the verification can refuse anything
else that appears. Their exact versions are not knowable before the install (AWS lists no dependency); the
approval names packages, the verification reports the versions found.

Reboot expected: AWS's patch APIs say nothing per patch (Patch Manager reboots after any install with
RebootIfNeeded and leaves patches InstalledPendingReboot with NoReboot). The review says what is likely and marks
it as a heuristic: on Linux, packages whose update takes effect only after a reboot (kernel and its meta
packages, the C library, systemd/udev, D-Bus, CPU microcode: what `needs-restarting -r` and Ubuntu's
reboot-required hooks flag); on Windows, the operating system's cumulative updates. Anything else is "no" on
Linux and "unknown" on Windows.
"""

from __future__ import annotations

import fnmatch
import re

from .ssm import SSMErrorHandler
from .ssm import iso_dates
from .ssm import paginated_items

# DescribeInstancePatches State filter values of the rows a review reads.
REVIEW_STATES = ["Missing", "Failed", "InstalledPendingReboot"]
CANDIDATE_STATES = ("MISSING", "FAILED")
PENDING_REBOOT = "INSTALLED_PENDING_REBOOT"

APPLICATION, WINDOWS_UPDATE = "AWS:Application", "AWS:WindowsUpdate"
INVENTORY_PAGE = 50  # [model] ListInventoryEntries MaxResults 1-50
# SSM Agent's inventory architecture names (model.FormatArchitecture): dpkg's amd64 is reported as x86_64.
AGENT_ARCHITECTURES = {"amd64": "x86_64", "386": "i386"}

WINDOWS = "WINDOWS"
# DescribeInstanceInformation PlatformName (+ version) -> the baseline OperatingSystem Patch Manager applies.
PLATFORM_FAMILIES = {"Ubuntu": "UBUNTU", "Debian GNU/Linux": "DEBIAN"}
AMAZON_LINUX_FAMILIES = {"2": "AMAZON_LINUX_2", "2023": "AMAZON_LINUX_2023"}

REBOOT_PACKAGES = ("kernel", "kernel-*", "linux-image*", "linux-generic*", "linux-modules*", "linux-firmware",
                   "glibc", "glibc-*", "libc6", "libc6-*", "libc-bin", "systemd", "systemd-*", "libsystemd*",
                   "udev", "dbus", "dbus-*", "*-microcode", "microcode_ctl")
LINUX_REBOOT_REASON = ("heuristic: kernel, C library, systemd, D-Bus and microcode updates take effect after a "
                       "reboot; AWS reports no reboot flag per package")
LINUX_NO_REBOOT_REASON = "heuristic: services restart without a reboot; AWS reports no reboot flag per package"
WINDOWS_REBOOT_REASON = "heuristic: Windows cumulative updates restart the server; AWS reports no reboot flag per KB"
WINDOWS_UNKNOWN_REASON = "unknown: AWS reports no reboot flag per KB"

# Ubuntu kernel meta packages and what each brings for the ABI of its version (see the module docstring). The
# `virtual` flavour installs the `generic` kernel.
KERNEL_META = re.compile(r"linux-(?P<kind>image-|headers-)?(?P<flavour>[a-z][a-z0-9]*)(-hwe-[0-9.]+)?(-edge)?")
KERNEL_META_VERSION = re.compile(r"(?P<kernel>\d+\.\d+\.\d+)\.(?P<abi>\d+)(\.\d+)*(~[\w.+]+)?")
KERNEL_FLAVOURS = {"virtual": "generic"}
KERNEL_IMAGE_PACKAGES = ("linux-image-{abi}-{flavour}", "linux-modules-{abi}-{flavour}",
                         "linux-modules-extra-{abi}-{flavour}")
KERNEL_HEADER_PACKAGES = ("linux-headers-{abi}-{flavour}", "linux-headers-{abi}")
KERNEL_META_BRINGS = {"image-": KERNEL_IMAGE_PACKAGES, "headers-": KERNEL_HEADER_PACKAGES,
                      None: KERNEL_IMAGE_PACKAGES + KERNEL_HEADER_PACKAGES}
# linux-<word> packages that are not kernel meta packages.
NOT_KERNEL_META = ("firmware", "base", "libc", "tools", "sound", "doc", "source")


# ---------------------------------------------------------------------------------------------- identities

def os_family(node: dict):
    """The Patch Manager operating system of an InstanceInformation record, or None when it is not one of those
    the collection knows (its rows are still reviewed; its versions are compared as text)."""
    if node.get("PlatformType") == "Windows":
        return WINDOWS
    name, version = node.get("PlatformName") or "", str(node.get("PlatformVersion") or "")
    if name == "Amazon Linux":
        return AMAZON_LINUX_FAMILIES.get(version.split(".", maxsplit=1)[0])
    return PLATFORM_FAMILIES.get(name)


def split_kb_id(kb_id: str) -> tuple:
    """A Linux KBId `name.arch` -> (name, arch); names may hold dots (python3.10.amd64)."""
    name, dot, arch = kb_id.rpartition(".")
    return (name, arch) if dot and name else (kb_id, "")


def package_key(kb_id: str, family) -> str:
    """How a package is named in `installed` maps: the KB on Windows; `name.arch` with the inventory's
    architecture names on Linux, so that rows (dpkg's amd64) and inventory entries (x86_64) meet."""
    if family == WINDOWS:
        return kb_id
    name, arch = split_kb_id(kb_id)
    return f"{name}.{AGENT_ARCHITECTURES.get(arch, arch)}" if arch else name


def candidate_version(row: dict, family) -> str:
    """The version a Missing or Failed row offers: the title's version part on Linux, the KB on Windows."""
    if family == WINDOWS:
        return row["KBId"]
    title, prefix = row.get("Title") or "", row["KBId"] + ":"
    return title[len(prefix):] if title.startswith(prefix) else title


def inventory_version(entry: dict) -> str:
    """An AWS:Application entry's version in the rows' form: rpm `epoch:version-release`, dpkg's as reported."""
    if entry.get("Release"):
        return f"{entry.get('Epoch') or '0'}:{entry.get('Version', '')}-{entry['Release']}"
    return entry.get("Version", "")


def installed_packages(entries: list, family) -> dict:
    """{package key: installed version} from inventory entries (AWS:WindowsUpdate on Windows: KB -> KB)."""
    if family == WINDOWS:
        return {entry["HotFixId"]: entry["HotFixId"] for entry in entries if entry.get("HotFixId")}
    installed = {}
    for entry in entries:
        arch = entry.get("Architecture") or ""
        key = f"{entry['Name']}.{AGENT_ARCHITECTURES.get(arch, arch)}" if arch else entry["Name"]
        installed[key] = inventory_version(entry)
    return installed


# ---------------------------------------------------------------------------------------------- review entries

def reboot_expectation(row: dict, family) -> tuple:
    """(True | False | None, why): see the module docstring."""
    if family == WINDOWS:
        title = row.get("Title") or ""
        if "Cumulative Update" in title and ".NET" not in title:
            return True, WINDOWS_REBOOT_REASON
        return None, WINDOWS_UNKNOWN_REASON
    name = split_kb_id(row["KBId"])[0]
    if any(fnmatch.fnmatchcase(name, pattern) for pattern in REBOOT_PACKAGES):
        return True, LINUX_REBOOT_REASON
    return False, LINUX_NO_REBOOT_REASON


def new_packages(row: dict, family) -> list:
    """Packages (`name.arch`) that installing the row's candidate brings new to the server: see the module
    docstring. Only Ubuntu's kernel meta packages are known to; anything else: none."""
    if family != "UBUNTU":
        return []
    name, arch = split_kb_id(row["KBId"])
    meta = KERNEL_META.fullmatch(name)
    version = KERNEL_META_VERSION.fullmatch(candidate_version(row, family))
    if not meta or not version or meta["flavour"] in NOT_KERNEL_META:
        return []
    abi = f"{version['kernel']}-{version['abi']}"
    flavour = KERNEL_FLAVOURS.get(meta["flavour"], meta["flavour"])
    brought = [pattern.format(abi=abi, flavour=flavour) for pattern in KERNEL_META_BRINGS[meta["kind"]]]
    return [f"{package}.{arch}" if arch else package for package in brought]


def cve_ids(row: dict) -> list:
    return sorted(cve for cve in (row.get("CVEIds") or "").split(",") if cve)


def review_entry(row: dict, family, installed: dict) -> dict:
    """One package (or KB) a server would get: installed and candidate version, what AWS says about it."""
    reboot, reason = reboot_expectation(row, family)
    windows = family == WINDOWS
    return {
        "package": row["KBId"],
        "title": row.get("Title") or "",
        "installed_version": None if windows else installed.get(package_key(row["KBId"], family)),
        "candidate_version": candidate_version(row, family),
        "state": row["State"],
        "classification": row.get("Classification") or "",
        "severity": row.get("Severity") or "",
        "cve_ids": cve_ids(row),
        "reboot_expected": reboot,
        "reboot_reason": reason,
        "new_packages": new_packages(row, family),
    }


def _link_same_versions(entries: list) -> None:
    """Packages moving from the same installed version to the same candidate are usually binaries of one source
    (openssl and libssl3): the package manager needs them together. Each entry names the others."""
    groups = {}
    for entry in entries:
        if entry["installed_version"]:
            groups.setdefault((entry["installed_version"], entry["candidate_version"]), []).append(entry["package"])
    for entry in entries:
        group = groups.get((entry["installed_version"], entry["candidate_version"]), [])
        entry["same_version_as"] = sorted(name for name in group if name != entry["package"])


def server_review(node: dict, state, rows: list, installed: dict) -> dict:
    """A server's part of the review: identity, the scan it comes from, each candidate, pending reboots."""
    family = os_family(node)
    candidates = [review_entry(row, family, installed) for row in rows if row["State"] in CANDIDATE_STATES]
    candidates.sort(key=lambda entry: entry["package"])
    _link_same_versions(candidates)
    state = state or {}
    review = {
        "instance_id": node["InstanceId"],
        "computer_name": node.get("ComputerName"),
        "platform_name": node.get("PlatformName"),
        "platform_version": node.get("PlatformVersion"),
        "os_family": family,
        "ping_status": node.get("PingStatus"),
        "patch_group": state.get("PatchGroup"),
        "baseline_id": state.get("BaselineId"),
        "snapshot_id": state.get("SnapshotId"),
        "operation": state.get("Operation"),
        "operation_end_time": state.get("OperationEndTime"),
        "missing": candidates,
        "pending_reboot": sorted(row["KBId"] for row in rows if row["State"] == PENDING_REBOOT),
    }
    return iso_dates(review, "operation_end_time")


# ---------------------------------------------------------------------------------------------- AWS reads

@SSMErrorHandler.common_error_handler("read a node's patches")
def review_rows(client, instance_id: str) -> list:
    """The node's Missing, Failed and InstalledPendingReboot rows (DescribeInstancePatches, State filter)."""
    return paginated_items(client, "describe_instance_patches", "Patches", InstanceId=instance_id,
                           Filters=[{"Key": "State", "Values": REVIEW_STATES}])


@SSMErrorHandler.common_error_handler("read a node's software inventory")
def inventory_entries(client, instance_id: str, type_name: str) -> tuple:
    """(entries, CaptureTime or None) of one inventory type: NextToken by hand (botocore has no paginator for
    ListInventoryEntries), each page a retried call."""
    entries, capture_time, token = [], None, None
    while True:
        page = client.list_inventory_entries(InstanceId=instance_id, TypeName=type_name, MaxResults=INVENTORY_PAGE,
                                             aws_retry=True, **({"NextToken": token} if token else {}))
        entries += page.get("Entries") or []
        capture_time = capture_time or page.get("CaptureTime")
        token = page.get("NextToken")
        if not token:
            return entries, capture_time


def node_inventory(client, node: dict) -> dict:
    """{installed: {package key: version}, capture_time}: what SSM Inventory last gathered on the node."""
    family = os_family(node)
    type_name = WINDOWS_UPDATE if family == WINDOWS else APPLICATION
    entries, capture_time = inventory_entries(client, node["InstanceId"], type_name)
    return {"installed": installed_packages(entries, family), "capture_time": capture_time}
